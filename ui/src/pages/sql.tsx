// #/settings/sql: the SQL console (PocketBase 0.39+), over `POST /api/sql`. An editor (Ctrl+Enter
// runs), a confirmation before statements that may change data, the error as the server words
// it, the last statement's rows in a table sortable in the browser, CSV of the rows, and the
// last ten queries kept in localStorage.
import { useState } from 'preact/hooks';
import { pb, errMessage } from '../api';
import { hideControls } from '../store';
import { confirmDialog } from '../ui';
import { csvLine } from './csv';

type Result = { execTime?: number; affectedRows?: number; columns?: { name: string; type: string }[]; rows?: (string | null)[][] };

const HISTORY_KEY = 'pbun_sql_history';
const PAGE_ROWS = 250;
// the same words PocketBase's console asks about: any of them may change data or the schema
const RISKY = ['ALTER', 'REPLACE', 'INSERT', 'CREATE', 'UPDATE', 'DELETE', 'DROP', 'DETACH', 'PRAGMA'];

function risky(q: string): boolean {
  const words = ` ${q.replace(/[\s;]+/g, ' ').toUpperCase()} `;
  return RISKY.some((w) => words.includes(` ${w} `));
}

function loadHistory(): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(HISTORY_KEY) || '[]');
    return Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export function SqlConsole() {
  const [query, setQuery] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<Result | null>(null);
  const [error, setError] = useState('');
  const [sort, setSort] = useState<{ i: number; asc: boolean } | null>(null);
  const [shown, setShown] = useState(PAGE_ROWS);
  const [history, setHistory] = useState<string[]>(loadHistory);
  const [askedOnce, setAskedOnce] = useState(false);

  const remember = (q: string) => {
    const norm = (s: string) => s.replace(/[\s;]/g, '').toUpperCase();
    const next = [q, ...history.filter((h) => norm(h) !== norm(q))].slice(0, 10);
    setHistory(next);
    localStorage.setItem(HISTORY_KEY, JSON.stringify(next));
  };

  const run = async () => {
    const q = query.trim();
    if (!q || busy) return;
    // with hideControls on, the console asks once whatever the query (as PocketBase does)
    if (risky(q) || (hideControls.value && !askedOnce)) {
      setAskedOnce(true);
      const ok = await confirmDialog('This statement may change data or the schema, and it may not be reversible. Execute it?', 'Execute');
      if (!ok) return;
    }
    setBusy(true);
    setError('');
    setResult(null);
    setSort(null);
    setShown(PAGE_ROWS);
    try {
      const r = await pb.send<Result>('/api/sql', { method: 'POST', body: { query: q }, requestKey: null });
      setResult(r);
      remember(q);
    } catch (e: any) {
      setError(e?.response?.message || errMessage(e));
    } finally {
      setBusy(false);
    }
  };

  const rows = (() => {
    const all = result?.rows || [];
    if (!sort) return all;
    const { i, asc } = sort;
    return [...all].sort((a, b) => {
      const [x, y] = asc ? [a[i], b[i]] : [b[i], a[i]];
      if (x === y) return 0;
      if (x == null) return -1;
      if (y == null) return 1;
      return x.localeCompare(y, undefined, { numeric: true });
    });
  })();
  const cols = result?.columns || [];

  const downloadCsv = () => {
    const text = [cols.map((c) => c.name), ...rows].map((r) => csvLine(r.map((v) => (v == null ? '' : v)))).join('\r\n') + '\r\n';
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
    a.download = `export_${new Date().toISOString().replace(/[-:.]/g, '')}.csv`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };

  return (
    <section class="sql-console">
      <header class="page-header">
        <h2>SQL console</h2>
        <div class="actions">
          <select
            aria-label="Recent queries"
            name="history"
            value=""
            onChange={(e) => {
              const v = e.currentTarget.value;
              if (v) setQuery(v);
            }}
          >
            <option value="">Recent queries ({history.length})</option>
            {history.map((h, i) => (
              <option key={i} value={h}>
                {h.length > 80 ? h.slice(0, 80) + '…' : h}
              </option>
            ))}
          </select>
          <button class="btn primary" onClick={run} disabled={busy || !query.trim()}>
            {busy ? 'Executing…' : '▶ Execute'}
          </button>
        </div>
      </header>
      <textarea
        class="code sql-editor"
        name="query"
        rows={8}
        spellcheck={false}
        placeholder="e.g. EXPLAIN QUERY PLAN SELECT * FROM users WHERE verified = true"
        value={query}
        onInput={(e) => setQuery(e.currentTarget.value)}
        onKeyDown={(e) => {
          if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {
            e.preventDefault();
            run();
          }
        }}
      />
      <details class="small muted">
        <summary>Caveats</summary>
        <ul>
          <li>At most 1000 rows are returned.</li>
          <li>A query may run for up to 3 minutes.</li>
          <li>Values come back as text, without formatting.</li>
          <li>Several statements may run; only the last one's rows are shown.</li>
        </ul>
      </details>
      {error && <pre class="alert err">{error}</pre>}
      {result && !cols.length && (
        <div class="alert ok">
          <strong>Query executed successfully.</strong>
          {!!result.affectedRows && <p>Affected rows: {result.affectedRows}</p>}
        </div>
      )}
      {result && cols.length > 0 && (
        <>
          <div class="row wrap small muted">
            <span>
              {rows.length} row(s) in {result.execTime ?? 0} ms
            </span>
            <span class="grow" />
            <button class="btn small" onClick={downloadCsv} disabled={!rows.length}>
              Download CSV
            </button>
          </div>
          <div class="table-wrap">
            <table class="table sql-result">
              <thead>
                <tr>
                  {cols.map((c, i) => (
                    <th key={i}>
                      <button class="sort" onClick={() => setSort(sort?.i === i ? { i, asc: !sort.asc } : { i, asc: true })}>
                        {c.name} {sort?.i === i ? (sort.asc ? '↑' : '↓') : ''}
                      </button>
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {rows.slice(0, shown).map((r, j) => (
                  <tr key={j}>
                    {cols.map((c, i) => (
                      <td key={i} data-name={c.name}>
                        {r[i] == null ? <span class="muted">NULL</span> : <span class="clip">{r[i]!.length > 2000 ? r[i]!.slice(0, 2000) + '…' : r[i]}</span>}
                      </td>
                    ))}
                  </tr>
                ))}
                {!rows.length && (
                  <tr>
                    <td colSpan={cols.length} class="muted center">
                      No rows found.
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
          </div>
          {rows.length > shown && (
            <button class="btn block" onClick={() => setShown(shown + PAGE_ROWS)}>
              Show {Math.min(PAGE_ROWS, rows.length - shown)} more of {rows.length - shown}
            </button>
          )}
        </>
      )}
    </section>
  );
}
