// "Explain" on the records page (beyond PocketBase): SQLite's plan for the current filter and
// sort, from PocketBun's `GET /api/collections/{c}/explain`, and the index it suggests, added
// with one click through the ordinary collection update. PocketBase has no such endpoint: its
// 404 turns the button off for the rest of the session.
import { signal } from '@preact/signals';
import { useEffect, useState } from 'preact/hooks';
import { pb, Collection, errMessage } from '../api';
import { loadCollections } from '../store';
import { Modal, Spinner, toast } from '../ui';

type PlanRow = { id: number; parent: number; detail: string };
type Explained = {
  sql: string;
  plan: PlanRow[];
  countPlan: PlanRow[];
  fullScan: boolean;
  suggestedColumns: string[];
  suggestedIndex: string | null;
  note: string;
};

const UNSUPPORTED_KEY = 'pbun_explain_unsupported';
/** The server answered the explain endpoint with 404 (PocketBase): hide the button. */
export const explainUnsupported = signal(sessionStorage.getItem(UNSUPPORTED_KEY) === pb.baseURL);

function Plan({ rows }: { rows: PlanRow[] }) {
  const depth = (r: PlanRow): number => {
    let d = 0;
    for (let p = r.parent; p; d++) p = rows.find((x) => x.id === p)?.parent ?? 0;
    return d;
  };
  return (
    <ul class="plan">
      {rows.map((r) => (
        <li key={r.id} style={{ paddingLeft: `${depth(r) * 18}px` }} class={/^SCAN /.test(r.detail) && !/ USING /.test(r.detail) ? 'scan' : /^SEARCH /.test(r.detail) ? 'search' : ''}>
          {r.detail}
        </li>
      ))}
    </ul>
  );
}

export function ExplainModal({ coll, filter, sort, onClose }: { coll: Collection; filter: string; sort: string; onClose: () => void }) {
  const [res, setRes] = useState<Explained | null>(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const unsupported = () => {
    sessionStorage.setItem(UNSUPPORTED_KEY, pb.baseURL);
    explainUnsupported.value = true;
    setRes(null);
    setError('This server has no explain endpoint (PocketBun adds one; PocketBase has none).');
  };
  const load = async () => {
    setError('');
    try {
      const r = await pb.send<Explained>(`/api/collections/${encodeURIComponent(coll.name)}/explain`, {
        query: { filter: filter || undefined, sort: sort || undefined },
        requestKey: null,
      });
      // PocketBase has no such route: a 404, or (serving a --publicDir with its default index
      // fallback) index.html, which is no plan either
      if (!Array.isArray(r?.plan)) return unsupported();
      setRes(r);
    } catch (e: any) {
      if (e?.status === 404 && !e?.response?.message?.includes('collection')) return unsupported();
      setError(errMessage(e));
      setRes(null);
    }
  };
  useEffect(() => void load(), [coll.id, filter, sort]);

  const addIndex = async () => {
    if (!res?.suggestedIndex) return;
    setBusy(true);
    try {
      await pb.collections.update(coll.id, { indexes: [...(coll.indexes || []), res.suggestedIndex] });
      toast('Index added.');
      await loadCollections();
      await load();
    } catch (e) {
      toast(errMessage(e), 'err');
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal title={`Explain: ${coll.name}`} onClose={onClose} class="explain">
      <p class="muted small">
        Filter: <code>{filter || '(none)'}</code> · Sort: <code>{sort || '(none)'}</code>
      </p>
      {error && <p class="error explain-error">{error}</p>}
      {!res && !error && <Spinner />}
      {res && (
        <div class="explain-body">
          <h3>Query plan {res.fullScan && <span class="badge lvl4">full scan</span>}</h3>
          <Plan rows={res.plan} />
          <details>
            <summary>Count query plan</summary>
            <Plan rows={res.countPlan} />
          </details>
          <details>
            <summary>SQL</summary>
            <pre class="code">{res.sql}</pre>
          </details>
          <h3>Index</h3>
          <p class="note">{res.note}</p>
          {res.suggestedIndex && (
            <>
              <pre class="code suggested-index">{res.suggestedIndex}</pre>
              <button class="btn primary" onClick={addIndex} disabled={busy}>
                {busy ? 'Adding…' : 'Add index'}
              </button>
            </>
          )}
        </div>
      )}
    </Modal>
  );
}
