// Per-collection API documentation with this collection's fields in the examples.
import { useState } from 'preact/hooks';
import { pb, Collection } from '../api';
import { Modal } from '../ui';

function example(f: any): any {
  switch (f.type) {
    case 'number':
      return 123;
    case 'bool':
      return true;
    case 'email':
      return 'test@example.com';
    case 'url':
      return 'https://example.com';
    case 'date':
    case 'autodate':
      return '2024-01-01 10:00:00.123Z';
    case 'select':
      return (f.maxSelect || 1) > 1 ? [f.values?.[0] || 'a'] : f.values?.[0] || 'a';
    case 'file':
      return (f.maxSelect || 1) > 1 ? ['filename.jpg'] : 'filename.jpg';
    case 'relation':
      return (f.maxSelect || 1) > 1 ? ['RELATION_RECORD_ID'] : 'RELATION_RECORD_ID';
    case 'json':
      return { key: 'value' };
    case 'geoPoint':
      return { lon: 24.5, lat: 42.7 };
    case 'editor':
      return '<p>text</p>';
    default:
      return f.name === 'id' ? 'RECORD_ID' : 'test';
  }
}

export function ApiPreview({ coll, onClose }: { coll: Collection; onClose: () => void }) {
  const [tab, setTab] = useState('list');
  const base = `${pb.baseURL.replace(/\/$/, '')}/api/collections/${coll.name}`;
  const visible = coll.fields.filter((f) => !f.hidden);
  const rec: any = { collectionId: coll.id, collectionName: coll.name };
  for (const f of visible) rec[f.name] = example(f);
  const body: any = {};
  for (const f of coll.fields) if (!f.system && f.type !== 'autodate') body[f.name] = example(f);
  if (coll.type === 'auth') Object.assign(body, { email: 'test@example.com', password: '12345678', passwordConfirm: '12345678' });
  const j = (x: any) => JSON.stringify(x, null, 2);
  const tabs: Record<string, { method: string; path: string; rule?: string; req?: string; res: string; note?: string }> = {
    list: { method: 'GET', path: `${base}/records?page=1&perPage=30&sort=-created&filter=...`, rule: coll.listRule, res: j({ page: 1, perPage: 30, totalPages: 1, totalItems: 1, items: [rec] }), note: 'Query: page, perPage, sort, filter, expand, fields, skipTotal.' },
    view: { method: 'GET', path: `${base}/records/RECORD_ID`, rule: coll.viewRule, res: j(rec), note: 'Query: expand, fields.' },
    ...(coll.type !== 'view'
      ? {
          create: { method: 'POST', path: `${base}/records`, rule: coll.createRule, req: j(body), res: j(rec), note: 'JSON or multipart/form-data (for files).' },
          update: { method: 'PATCH', path: `${base}/records/RECORD_ID`, rule: coll.updateRule, req: j(body), res: j(rec), note: 'Files: "field+" appends, "field-" removes.' },
          delete: { method: 'DELETE', path: `${base}/records/RECORD_ID`, rule: coll.deleteRule, res: '204 No Content' },
          realtime: {
            method: 'SSE',
            path: `${pb.baseURL.replace(/\/$/, '')}/api/realtime`,
            req: `pb.collection('${coll.name}').subscribe('*', (e) => {\n  console.log(e.action, e.record);\n});`,
            res: j({ action: 'create', record: rec }),
            note: 'Subscribe to "*" or to one record id; events follow the list/view rules.',
          },
        }
      : {}),
    ...(coll.type === 'auth'
      ? { 'auth-with-password': { method: 'POST', path: `${base}/auth-with-password`, req: j({ identity: 'test@example.com', password: '12345678' }), res: j({ token: 'JWT', record: rec }) } }
      : {}),
  };
  const t = tabs[tab];
  return (
    <Modal panel title={`API preview: ${coll.name}`} onClose={onClose}>
      <div class="tabs" role="tablist">
        {Object.keys(tabs).map((k) => (
          <button key={k} role="tab" aria-selected={tab === k} class={tab === k ? 'active' : ''} onClick={() => setTab(k)}>
            {k}
          </button>
        ))}
      </div>
      <p>
        <span class={`badge m-${t.method}`}>{t.method}</span> <code>{t.path}</code>
      </p>
      {t.rule !== undefined && <p class="muted">{t.rule === null ? 'Superusers only.' : t.rule === '' ? 'Public: anyone may call it.' : `Rule: ${t.rule}`}</p>}
      {t.note && <p class="muted">{t.note}</p>}
      {t.req && (
        <>
          <h4>Request</h4>
          <pre class="code">{t.req}</pre>
        </>
      )}
      <h4>Response</h4>
      <pre class="code">{t.res}</pre>
    </Modal>
  );
}
