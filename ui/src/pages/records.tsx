// The records table of one collection: columns (selectable, remembered), sort by header, search
// (plain text or a filter expression), pages, bulk select/delete, CSV export/import, and live
// updates through the realtime API; "Explain" shows SQLite's plan of the filter (pages/explain.tsx).
import { useEffect, useMemo, useState, useRef } from 'preact/hooks';
import { pb, Collection, errMessage } from '../api';
import { navigate, hideControls } from '../store';
import { confirmDialog, toast, fmtDate, Modal, Pager, SearchBar } from '../ui';
import { CollectionEditor } from './collection-editor';
import { RecordEditor } from './record-editor';
import { ApiPreview } from './api-preview';
import { CsvImport, toCsv } from './csv';
import { ExplainModal, explainUnsupported } from './explain';

const PER_PAGE = 40;

/** Plain text becomes a "contains" over the text-like fields; anything with an operator is a filter. */
export function searchFilter(coll: Collection, q: string): string {
  q = q.trim();
  if (!q) return '';
  if (/[=~<>!]|&&|\|\|/.test(q)) return q;
  const esc = q.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  const names = coll.fields.filter((f) => ['text', 'email', 'url', 'editor', 'select', 'relation'].includes(f.type) && !f.hidden).map((f) => f.name);
  return names.map((n) => `${n} ~ "${esc}"`).join(' || ');
}

function cell(rec: any, f: any) {
  const v = rec[f.name];
  if (v === '' || v == null || (Array.isArray(v) && !v.length)) return <span class="muted">N/A</span>;
  switch (f.type) {
    case 'bool':
      return v ? <span class="badge ok">True</span> : <span class="badge">False</span>;
    case 'file':
      return (
        <span class="thumbs">
          {(Array.isArray(v) ? v : [v]).slice(0, 3).map((n: string) =>
            /\.(png|jpe?g|gif|webp)$/i.test(n) && !f.protected ? <img key={n} loading="lazy" src={pb.files.getURL(rec, n, { thumb: '100x100' })} alt={n} /> : <span class="chip">{n}</span>,
          )}
        </span>
      );
    case 'editor':
      return <span class="clip">{String(v).replace(/<[^>]*>/g, ' ').slice(0, 80)}</span>;
    case 'json':
      return <code class="clip">{JSON.stringify(v).slice(0, 80)}</code>;
    case 'date':
    case 'autodate':
      return <span class="nowrap">{fmtDate(v)}</span>;
    case 'geoPoint':
      return (
        <code>
          {v.lat?.toFixed?.(5)}, {v.lon?.toFixed?.(5)}
        </code>
      );
    case 'relation':
    case 'select':
      return (
        <span>
          {(Array.isArray(v) ? v : [v]).map((x: string) => (
            <span class="chip" key={x}>
              {x}
            </span>
          ))}
        </span>
      );
    default:
      return <span class="clip">{String(v)}</span>;
  }
}

const OPS = ['=', '!=', '>', '>=', '<', '<=', '~', '!~', '?=', '?~'];

/** Writes one `field op value` condition for the search box (beyond PocketBase). */
function FilterBuilder({ coll, onAdd }: { coll: Collection; onAdd: (expr: string, join: string) => void }) {
  const fields = coll.fields.filter((f) => f.type !== 'password');
  const [field, setField] = useState(fields[0]?.name || 'id');
  const [op, setOp] = useState('=');
  const [value, setValue] = useState('');
  const f = fields.find((x) => x.name === field);
  const literal = () => {
    if (f?.type === 'number' && value !== '' && !Number.isNaN(Number(value))) return value;
    if (f?.type === 'bool') return /^(true|1)$/i.test(value) ? 'true' : 'false';
    if (value.startsWith('@')) return value;
    return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  };
  return (
    <div class="builder row wrap">
      <select aria-label="Field" value={field} onChange={(e) => setField(e.currentTarget.value)}>
        {fields.map((x) => (
          <option key={x.name}>{x.name}</option>
        ))}
      </select>
      <select aria-label="Operator" value={op} onChange={(e) => setOp(e.currentTarget.value)}>
        {OPS.map((o) => (
          <option key={o}>{o}</option>
        ))}
      </select>
      <input aria-label="Value" placeholder={f?.type === 'bool' ? 'true / false' : 'value or @now, @request…'} value={value} onInput={(e) => setValue(e.currentTarget.value)} />
      <button type="button" class="btn small" onClick={() => onAdd(`${field} ${op} ${literal()}`, '&&')}>
        + AND
      </button>
      <button type="button" class="btn small" onClick={() => onAdd(`${field} ${op} ${literal()}`, '||')}>
        + OR
      </button>
    </div>
  );
}

export function RecordsView({ coll, sub }: { coll: Collection; sub: string[] }) {
  const [items, setItems] = useState<any[]>([]);
  const [total, setTotal] = useState(0);
  const [page, setPage] = useState(1);
  const [sort, setSort] = useState(() => (coll.fields.some((f) => f.name === 'created') ? '-created' : ''));
  const [search, setSearch] = useState('');
  const [applied, setApplied] = useState('');
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState('');
  const [importing, setImporting] = useState(false);
  const [colsOpen, setColsOpen] = useState(false);
  const [builderOpen, setBuilderOpen] = useState(false);
  const [explaining, setExplaining] = useState(false);
  const lastClicked = useRef<number>(-1);
  const storageKey = `pbun_cols_${coll.id}`;
  const allFields = coll.fields.filter((f) => !(f.type === 'password' || (f.hidden && f.name === 'tokenKey')));
  const [hiddenCols, setHiddenCols] = useState<string[]>(() => JSON.parse(localStorage.getItem(storageKey) || '[]'));
  const shown = allFields.filter((f) => !hiddenCols.includes(f.name));
  const filter = useMemo(() => searchFilter(coll, applied), [coll, applied]);
  const searchRef = useRef<HTMLInputElement>(null);

  useEffect(() => localStorage.setItem('pbun_last_collection', coll.name), [coll.name]);

  const load = async () => {
    setLoading(true);
    try {
      const res = await pb.collection(coll.name).getList(page, PER_PAGE, { sort: sort || undefined, filter: filter || undefined, requestKey: null });
      setItems(res.items);
      setTotal(res.totalItems);
      setError('');
    } catch (e) {
      setError(errMessage(e));
      setItems([]);
      setTotal(0);
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => void load(), [coll.id, page, sort, filter]);

  // realtime: created/updated/deleted records show up without a reload
  useEffect(() => {
    if (coll.type === 'view') return;
    let unsub: (() => Promise<void>) | undefined;
    let stopped = false;
    pb.collection(coll.name)
      .subscribe('*', (e) => {
        if (e.action === 'delete') setItems((xs) => xs.filter((x) => x.id !== e.record.id));
        else if (e.action === 'update') setItems((xs) => xs.map((x) => (x.id === e.record.id ? e.record : x)));
        else if (e.action === 'create') {
          setItems((xs) => (xs.some((x) => x.id === e.record.id) ? xs : page === 1 && !filter ? [e.record, ...xs].slice(0, PER_PAGE) : xs));
          setTotal((t) => t + 1);
        }
        if (e.action === 'delete') setTotal((t) => Math.max(0, t - 1));
      })
      .then((u) => {
        if (stopped) u();
        else unsub = u;
      })
      .catch(() => {});
    return () => {
      stopped = true;
      unsub?.().catch(() => {});
    };
  }, [coll.id, page, filter]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === '/' && !(e.target as HTMLElement).closest('input,textarea,[contenteditable]')) {
        e.preventDefault();
        searchRef.current?.focus();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const toggleSort = (name: string) => setSort(sort === name ? `-${name}` : sort === `-${name}` ? '' : name);
  const toggleRow = (id: string, idx: number, shift: boolean) => {
    const next = new Set(selected);
    if (shift && lastClicked.current >= 0) {
      const [a, b] = [Math.min(idx, lastClicked.current), Math.max(idx, lastClicked.current)];
      items.slice(a, b + 1).forEach((r) => next.add(r.id));
    } else if (next.has(id)) next.delete(id);
    else next.add(id);
    lastClicked.current = idx;
    setSelected(next);
  };
  const bulkDelete = async () => {
    if (!(await confirmDialog(`Delete ${selected.size} selected record(s)?`, 'Delete'))) return;
    let ok = 0;
    for (const id of selected) {
      try {
        await pb.collection(coll.name).delete(id);
        ok++;
      } catch (e) {
        toast(`${id}: ${errMessage(e)}`, 'err');
      }
    }
    toast(`Deleted ${ok} record(s).`);
    setSelected(new Set());
    load();
  };
  const exportCsv = async () => {
    try {
      const all = await pb.collection(coll.name).getFullList({ filter: filter || undefined, sort: sort || undefined, batch: 500 });
      const blob = new Blob([toCsv(coll, all)], { type: 'text/csv' });
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `${coll.name}.csv`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
      toast(`Exported ${all.length} record(s).`);
    } catch (e) {
      toast(errMessage(e), 'err');
    }
  };
  const setCols = (names: string[]) => {
    setHiddenCols(names);
    localStorage.setItem(storageKey, JSON.stringify(names));
  };
  const pages = Math.max(1, Math.ceil(total / PER_PAGE));
  const readOnly = coll.type === 'view';
  const recordId = sub[0] === 'records' ? sub[1] : '';

  return (
    <section class="records">
      <header class="page-header">
        <h1>
          <span class="muted">Collections /</span> {coll.name}
        </h1>
        <div class="actions">
          {!hideControls.value && (
            <button class="btn" title="Edit collection" onClick={() => navigate(`/collections/${coll.name}/edit`)}>
              ⚙ Edit collection
            </button>
          )}
          <button class="btn" onClick={() => navigate(`/collections/${coll.name}/api`)}>
            API preview
          </button>
          <button class="btn" onClick={load} title="Refresh">
            ↻
          </button>
          {!readOnly && (
            <button class="btn primary" onClick={() => navigate(`/collections/${coll.name}/records/new`)}>
              + New record
            </button>
          )}
        </div>
      </header>
      <SearchBar setPage={setPage} onSearch={() => setApplied(search)}>
        <input
          ref={searchRef}
          type="search"
          name="search"
          placeholder={`Search term or filter like created > "2024-01-01 10:00:00"  (press / to focus)`}
          value={search}
          onInput={(e) => setSearch(e.currentTarget.value)}
        />
        <button class="btn">Search</button>
        <button type="button" class="btn" onClick={() => setBuilderOpen(!builderOpen)} aria-expanded={builderOpen}>
          Filter builder
        </button>
        <button type="button" class="btn" onClick={() => setColsOpen(!colsOpen)} aria-expanded={colsOpen}>
          Columns
        </button>
        {!explainUnsupported.value && (
          <button type="button" class="btn" title="SQLite's plan for this filter and sort, and the index that would help" onClick={() => setExplaining(true)}>
            Explain
          </button>
        )}
        <button type="button" class="btn" onClick={exportCsv}>
          Export CSV
        </button>
        {!readOnly && (
          <button type="button" class="btn" onClick={() => setImporting(true)}>
            Import CSV
          </button>
        )}
      </SearchBar>
      {builderOpen && <FilterBuilder coll={coll} onAdd={(expr, join) => setSearch(search.trim() && searchFilter(coll, search) === search.trim() ? `${search.trim()} ${join} ${expr}` : expr)} />}
      {colsOpen && (
        <div class="columns-picker">
          {allFields.map((f) => (
            <label key={f.name}>
              <input type="checkbox" checked={!hiddenCols.includes(f.name)} onChange={(e) => setCols(e.currentTarget.checked ? hiddenCols.filter((n) => n !== f.name) : [...hiddenCols, f.name])} />
              {f.name}
            </label>
          ))}
        </div>
      )}
      {error && <p class="error">{error}</p>}
      {selected.size > 0 && (
        <div class="bulkbar">
          Selected {selected.size}
          <button class="btn" onClick={() => setSelected(new Set())}>
            Reset
          </button>
          <button class="btn danger" onClick={bulkDelete}>
            Delete selected
          </button>
        </div>
      )}
      <div class="table-wrap">
        <table class="table">
          <thead>
            <tr>
              {!readOnly && (
                <th class="check">
                  <input
                    type="checkbox"
                    aria-label="Select all"
                    checked={items.length > 0 && items.every((r) => selected.has(r.id))}
                    onChange={(e) => setSelected(e.currentTarget.checked ? new Set(items.map((r) => r.id)) : new Set())}
                  />
                </th>
              )}
              {shown.map((f) => (
                <th key={f.name}>
                  <button class="sort" onClick={() => toggleSort(f.name)}>
                    <span class={`ftype t-${f.type}`}>{f.type}</span> {f.name} {sort === f.name ? '↑' : sort === `-${f.name}` ? '↓' : ''}
                  </button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {items.map((r, idx) => (
              <tr
                key={r.id}
                tabIndex={0}
                data-id={r.id}
                onClick={(e) => !(e.target as HTMLElement).closest('.check') && !readOnly && navigate(`/collections/${coll.name}/records/${r.id}`)}
                onKeyDown={(e) => e.key === 'Enter' && !readOnly && navigate(`/collections/${coll.name}/records/${r.id}`)}
              >
                {!readOnly && (
                  <td class="check">
                    <input type="checkbox" aria-label={`Select ${r.id}`} checked={selected.has(r.id)} onClick={(e) => toggleRow(r.id, idx, (e as MouseEvent).shiftKey)} />
                  </td>
                )}
                {shown.map((f) => (
                  <td key={f.name}>{cell(r, f)}</td>
                ))}
              </tr>
            ))}
            {!items.length && !loading && (
              <tr>
                <td colSpan={shown.length + 1} class="muted center">
                  No records found.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <Pager total={total} page={page} pages={pages} setPage={setPage} showPage />
      {sub[0] === 'edit' && <CollectionEditor coll={coll} onClose={() => navigate(`/collections/${coll.name}`)} onTruncated={load} />}
      {sub[0] === 'api' && <ApiPreview coll={coll} onClose={() => navigate(`/collections/${coll.name}`)} />}
      {recordId && <RecordEditor key={recordId} coll={coll} id={recordId === 'new' ? '' : recordId} onClose={() => navigate(`/collections/${coll.name}`)} onSaved={load} />}
      {explaining && <ExplainModal coll={coll} filter={searchFilter(coll, search)} sort={sort} onClose={() => setExplaining(false)} />}
      {importing && (
        <Modal title={`Import CSV into ${coll.name}`} onClose={() => setImporting(false)}>
          <CsvImport
            coll={coll}
            onDone={() => {
              setImporting(false);
              load();
            }}
          />
        </Modal>
      )}
    </section>
  );
}
