// #/logs and #/logs/{id}: the per-hour chart, list with filter, level and the superuser-requests
// toggle, a detail view, and the log settings.
import { useEffect, useState } from 'preact/hooks';
import { pb, errMessage } from '../api';
import { navigate } from '../store';
import { Modal, Toggle, toast, fmtDate, Labeled, Pager, SearchBar } from '../ui';

const LEVELS: Record<number, string> = { [-4]: 'DEBUG', 0: 'INFO', 4: 'WARN', 8: 'ERROR' };

const HOUR = 3600_000;
const parse = (d: string) => Date.parse(d.replace(' ', 'T'));

/** Requests per hour as bars, one slot per hour (empty hours too) over at least the last 24. */
function Chart({ stats }: { stats: { total: number; date: string }[] }) {
  if (!stats.length) return <div class="chart muted center">No logs in this period.</div>;
  const byHour = new Map(stats.map((s) => [Math.floor(parse(s.date) / HOUR), s.total]));
  const hours = [...byHour.keys()];
  const last = Math.max(Math.floor(Date.now() / HOUR), ...hours);
  const first = Math.max(Math.min(last - 23, ...hours), last - 24 * 7 + 1);
  const slots = Array.from({ length: last - first + 1 }, (_, i) => ({ h: first + i, total: byHour.get(first + i) || 0 }));
  const max = Math.max(...slots.map((s) => s.total), 1);
  const w = 1000;
  const h = 120;
  const bw = w / slots.length;
  const label = (hr: number) => new Date(hr * HOUR).toISOString().slice(0, 13).replace('T', ' ') + 'h';
  // the axis labels are HTML under the chart: inside the stretched SVG they were squeezed
  // to a third of their width on a phone
  return (
    <div class="chart-box">
      <svg class="chart" viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="none" role="img" aria-label="Requests per hour">
        {slots.map((s) => {
          const bh = (s.total / max) * h;
          return (
            <rect key={s.h} x={(s.h - first) * bw + 1} y={h - bh} width={Math.max(bw - 2, 1)} height={bh} class="bar">
              <title>
                {label(s.h)}: {s.total}
              </title>
            </rect>
          );
        })}
      </svg>
      <div class="chart-axis">
        <span>{label(first)} UTC</span>
        <span>
          {label(last)} · max {max}/h
        </span>
      </div>
    </div>
  );
}

function LogSettings({ onClose }: { onClose: () => void }) {
  const [s, setS] = useState<any>(null);
  useEffect(() => void pb.settings.getAll().then((x) => setS(x.logs)), []);
  if (!s) return null;
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      await pb.settings.update({ logs: s });
      toast('Log settings saved.');
      onClose();
    } catch (err) {
      toast(errMessage(err), 'err');
    }
  };
  return (
    <Modal title="Log settings" onClose={onClose} small>
      <form class="form" onSubmit={save}>
        <Labeled label="Max days retention (0 = no logs)">
          <input type="number" value={s.maxDays} onInput={(e) => setS({ ...s, maxDays: Number(e.currentTarget.value) })} />
        </Labeled>
        <Labeled label="Min level">
          <select value={s.minLevel} onChange={(e) => setS({ ...s, minLevel: Number(e.currentTarget.value) })}>
            {Object.entries(LEVELS).map(([k, v]) => (
              <option key={k} value={k}>
                {v} ({k})
              </option>
            ))}
          </select>
        </Labeled>
        <Toggle label="Log IP" checked={s.logIP} onChange={(v) => setS({ ...s, logIP: v })} />
        <Toggle label="Log auth id" checked={s.logAuthId} onChange={(v) => setS({ ...s, logAuthId: v })} />
        <div class="actions">
          <button class="btn primary">Save</button>
        </div>
      </form>
    </Modal>
  );
}

export function LogsPage({ path }: { path: string }) {
  const id = path.split('/')[2] || '';
  const [search, setSearch] = useState('');
  const [filter, setFilter] = useState('');
  const [level, setLevel] = useState('');
  const [superusers, setSuperusers] = useState(() => localStorage.getItem('pbun_logs_su') !== '0');
  const [items, setItems] = useState<any[]>([]);
  const [stats, setStats] = useState<any[]>([]);
  const [page, setPage] = useState(1);
  const [total, setTotal] = useState(0);
  const [detail, setDetail] = useState<any>(null);
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [error, setError] = useState('');

  const full = [filter && `(${filter})`, level !== '' && `level >= ${level}`, !superusers && `data.auth != "_superusers"`].filter(Boolean).join(' && ');
  const load = async () => {
    try {
      const [list, st] = await Promise.all([pb.logs.getList(page, 50, { filter: full, sort: '-created', requestKey: null }), pb.logs.getStats({ filter: full, requestKey: null })]);
      setItems(list.items);
      setTotal(list.totalItems);
      setStats(st as any);
      setError('');
    } catch (e) {
      setError(errMessage(e));
    }
  };
  useEffect(() => void load(), [full, page]);
  useEffect(() => {
    if (!id) return setDetail(null);
    pb.logs.getOne(id, { requestKey: null }).then(setDetail, (e) => toast(errMessage(e), 'err'));
  }, [id]);

  return (
    <main class="main full">
      <header class="page-header">
        <h1>Logs</h1>
        <div class="actions">
          <button class="btn" onClick={() => setSettingsOpen(true)}>
            ⚙ Log settings
          </button>
          <button class="btn" title="Refresh" onClick={load}>
            ↻
          </button>
        </div>
      </header>
      <SearchBar setPage={setPage} onSearch={() => setFilter(search)}>
        <input type="search" name="filter" placeholder='Filter, e.g. data.status >= 400 || message ~ "GET"' value={search} onInput={(e) => setSearch(e.currentTarget.value)} />
        <select aria-label="Level" name="level" value={level} onChange={(e) => (setLevel(e.currentTarget.value), setPage(1))}>
          <option value="">All levels</option>
          {Object.entries(LEVELS).map(([k, v]) => (
            <option key={k} value={k}>
              {v}+
            </option>
          ))}
        </select>
        <Toggle
          label="Include requests by superusers"
          checked={superusers}
          onChange={(v) => {
            localStorage.setItem('pbun_logs_su', v ? '1' : '0');
            setSuperusers(v);
          }}
        />
        <button class="btn">Search</button>
      </SearchBar>
      {error && <p class="error">{error}</p>}
      <Chart stats={stats} />
      <div class="table-wrap">
        <table class="table logs">
          <thead>
            <tr>
              <th>Level</th>
              <th>Message</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {items.map((l) => (
              <tr key={l.id} tabIndex={0} data-id={l.id} onClick={() => navigate(`/logs/${l.id}`)} onKeyDown={(e) => e.key === 'Enter' && navigate(`/logs/${l.id}`)}>
                <td>
                  <span class={`badge lvl${l.level}`}>{LEVELS[l.level] || l.level}</span>
                </td>
                <td>
                  <span class="clip">
                    {l.message}
                    {l.data?.status ? <span class="muted"> · {l.data.status}</span> : null}
                  </span>
                  {l.data?.auth ? <span class="chip">{l.data.auth}</span> : null}
                </td>
                <td class="nowrap">{fmtDate(l.created)}</td>
              </tr>
            ))}
            {!items.length && (
              <tr>
                <td colSpan={3} class="muted center">
                  No logs found.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <Pager total={total} page={page} pages={Math.ceil(total / 50)} setPage={setPage} />
      {detail && (
        <Modal panel title="Log details" onClose={() => navigate('/logs')}>
          <dl class="kv">
            <dt>id</dt>
            <dd>{detail.id}</dd>
            <dt>level</dt>
            <dd>{LEVELS[detail.level] || detail.level}</dd>
            <dt>created</dt>
            <dd>{fmtDate(detail.created)}</dd>
            <dt>message</dt>
            <dd>{detail.message}</dd>
            {Object.entries(detail.data || {}).map(([k, v]) => (
              <>
                <dt key={k}>data.{k}</dt>
                <dd>{typeof v === 'object' ? <pre class="code">{JSON.stringify(v, null, 2)}</pre> : String(v)}</dd>
              </>
            ))}
          </dl>
        </Modal>
      )}
      {settingsOpen && <LogSettings onClose={() => setSettingsOpen(false)} />}
    </main>
  );
}
