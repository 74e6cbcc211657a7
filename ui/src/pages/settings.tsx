// #/settings[/mail|/storage|/backups|/crons|/export|/import|/tokens|/sql]: application settings,
// SMTP with a test email, S3 storage with a test, backups, crons, collections export/import with
// a diff preview, token invalidation, and the SQL console (pages/sql.tsx).
import { useEffect, useState } from 'preact/hooks';
import { pb, errMessage, fieldErrors, randomString, untilRestarted } from '../api';
import { collections, loadCollections } from '../store';
import { SqlConsole } from './sql';
import { Labeled, Toggle, toast, confirmDialog, useDirtyGuard, getPath, setPath, fmtDate, Spinner } from '../ui';

type Spec = [string, 'text' | 'number' | 'bool' | 'password' | 'list' | 'select' | 'heading', string, string[]?];

function SettingsForm({ title, specs, extra }: { title: string; specs: Spec[]; extra?: (s: any, setS: (v: any) => void) => any }) {
  const [s, setS] = useState<any>(null);
  const [orig, setOrig] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const dirty = !!s && JSON.stringify(s) !== orig;
  useDirtyGuard(dirty);
  const load = () =>
    pb.settings.getAll({ requestKey: null }).then((x) => {
      setS(x);
      setOrig(JSON.stringify(x));
    });
  const [loadError, setLoadError] = useState('');
  useEffect(() => void load().catch((e) => setLoadError(errMessage(e))), []);
  if (loadError)
    return (
      <p class="error">
        {loadError}{' '}
        <button class="btn small" onClick={() => (setLoadError(''), load().catch((e) => setLoadError(errMessage(e))))}>
          Retry
        </button>
      </p>
    );
  if (!s) return <Spinner />;
  const save = async (e: Event) => {
    e.preventDefault();
    const body: any = {};
    for (const [p, kind] of specs) {
      if (kind === 'heading') continue;
      const top = p.split('.')[0];
      body[top] = s[top];
    }
    try {
      const x = await pb.settings.update(body);
      setS(x);
      setOrig(JSON.stringify(x));
      setErrors({});
      toast('Settings saved.');
    } catch (err) {
      setErrors(fieldErrors(err));
      toast(errMessage(err), 'err');
    }
  };
  const input = ([p, kind, label, options]: Spec) => {
    if (kind === 'heading') return <h3 key={p}>{label}</h3>;
    const v = getPath(s, p);
    const set = (x: any) => setS(setPath(s, p, x));
    if (kind === 'bool') return <Toggle key={p} name={p} label={label} checked={v} onChange={set} />;
    return (
      <Labeled key={p} label={label} error={errors[p]}>
        {kind === 'select' ? (
          <select name={p} value={v} onChange={(e) => set(e.currentTarget.value)}>
            {options!.map((o) => (
              <option key={o} value={o}>
                {o || 'default'}
              </option>
            ))}
          </select>
        ) : kind === 'list' ? (
          <input name={p} value={(v || []).join(', ')} onInput={(e) => set(e.currentTarget.value.split(',').map((x) => x.trim()).filter(Boolean))} />
        ) : (
          <input name={p} type={kind} value={v ?? ''} onInput={(e) => set(kind === 'number' ? Number(e.currentTarget.value) : e.currentTarget.value)} />
        )}
      </Labeled>
    );
  };
  return (
    <form class="form settings-form" onSubmit={save}>
      <h2>{title}</h2>
      {specs.map(input)}
      {extra?.(s, setS)}
      <div class="actions">
        {dirty && (
          <button type="button" class="btn" onClick={() => (setS(JSON.parse(orig)), setErrors({}))}>
            Cancel
          </button>
        )}
        <button class="btn primary" disabled={!dirty}>
          Save changes
        </button>
      </div>
    </form>
  );
}

function RateLimits({ s, setS }: any) {
  const rules: any[] = s.rateLimits?.rules || [];
  const set = (next: any[]) => setS({ ...s, rateLimits: { ...s.rateLimits, rules: next } });
  return (
    <div>
      {rules.length > 0 && (
        <div class="row muted small">
          <span class="grow">Label</span>
          <span class="grow">Max requests</span>
          <span class="grow">Per seconds</span>
          <span style="width:120px">Audience</span>
        </div>
      )}
      {rules.map((r, i) => (
        <div class="row" key={i}>
          <input aria-label="Label" placeholder="label, e.g. /api/ or *:auth" value={r.label} onInput={(e) => set(rules.map((x, j) => (j === i ? { ...x, label: e.currentTarget.value } : x)))} />
          <input aria-label="Max requests" type="number" value={r.maxRequests} onInput={(e) => set(rules.map((x, j) => (j === i ? { ...x, maxRequests: Number(e.currentTarget.value) } : x)))} />
          <input aria-label="Duration" type="number" value={r.duration} onInput={(e) => set(rules.map((x, j) => (j === i ? { ...x, duration: Number(e.currentTarget.value) } : x)))} />
          <select aria-label="Audience" value={r.audience || ''} onChange={(e) => set(rules.map((x, j) => (j === i ? { ...x, audience: e.currentTarget.value } : x)))}>
            <option value="">all</option>
            <option value="@guest">@guest</option>
            <option value="@auth">@auth</option>
          </select>
          <button type="button" class="btn small danger" onClick={() => set(rules.filter((_, j) => j !== i))}>
            ×
          </button>
        </div>
      ))}
      <button type="button" class="btn small" onClick={() => set([...rules, { label: '', maxRequests: 300, duration: 10, audience: '' }])}>
        + Rate limit rule
      </button>
    </div>
  );
}

function Application() {
  const [health, setHealth] = useState<any>(null);
  useEffect(() => void pb.health.check({ requestKey: null }).then(setHealth, () => {}), []);
  return (
    <SettingsForm
      title="Application"
      specs={[
        ['meta.appName', 'text', 'Application name'],
        ['meta.appURL', 'text', 'Application URL'],
        ['meta.hideControls', 'bool', 'Hide collection create and edit controls'],
        ['h-batch', 'heading', 'Batch API'],
        ['batch.enabled', 'bool', 'Enable batch API'],
        ['batch.maxRequests', 'number', 'Batch: max requests'],
        ['batch.timeout', 'number', 'Batch: timeout (s)'],
        ['batch.maxBodySize', 'number', 'Batch: max body size (bytes, 0 = default)'],
        ['h-proxy', 'heading', 'Trusted proxy and superuser IPs'],
        ['trustedProxy.headers', 'list', 'Trusted proxy headers (e.g. X-Forwarded-For)'],
        ['trustedProxy.useLeftmostIP', 'bool', 'Use the leftmost IP'],
        ['superuserIPs', 'list', 'Superuser IP allow-list (empty = any)'],
        ['h-rate', 'heading', 'Rate limits'],
        ['rateLimits.enabled', 'bool', 'Enable rate limiting'],
      ]}
      extra={(s, setS) => (
        <>
          {health?.data && (
            <p class="muted small">
              Your IP as the server sees it: {health.data.realIP || 'n/a'}
              {health.data.possibleProxyHeader ? ` (possible proxy header: ${health.data.possibleProxyHeader})` : ''}
            </p>
          )}
          <RateLimits s={s} setS={setS} />
        </>
      )}
    />
  );
}

function Mail() {
  const [email, setEmail] = useState('');
  const [template, setTemplate] = useState('verification');
  // the auth collection whose mail template is sent (its templates can differ)
  const [coll, setColl] = useState('_superusers');
  const auths = collections.value.filter((c) => c.type === 'auth');
  const test = async () => {
    try {
      await pb.settings.testEmail(coll, email, template);
      toast('Test email sent.');
    } catch (e) {
      toast(errMessage(e), 'err');
    }
  };
  return (
    <>
      <SettingsForm
        title="Mail settings"
        specs={[
          ['meta.senderName', 'text', 'Sender name'],
          ['meta.senderAddress', 'text', 'Sender address'],
          ['smtp.enabled', 'bool', 'Use SMTP mail server (otherwise sendmail)'],
          ['smtp.host', 'text', 'SMTP host'],
          ['smtp.port', 'number', 'Port'],
          ['smtp.username', 'text', 'Username'],
          ['smtp.password', 'password', 'Password'],
          ['smtp.authMethod', 'select', 'Auth method', ['', 'PLAIN', 'LOGIN']],
          ['smtp.tls', 'bool', 'TLS encryption'],
          ['smtp.localName', 'text', 'EHLO/HELO domain'],
        ]}
      />
      <div class="card sub">
        <h3>Send test email</h3>
        <div class="row wrap">
          <input type="email" name="testEmail" placeholder="to@example.com" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
          <select value={template} onChange={(e) => setTemplate(e.currentTarget.value)} aria-label="Template">
            {['verification', 'password-reset', 'email-change', 'otp', 'login-alert'].map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
          <select value={coll} onChange={(e) => setColl(e.currentTarget.value)} aria-label="Auth collection">
            {(auths.length ? auths : [{ name: '_superusers' }]).map((c) => (
              <option key={c.name}>{c.name}</option>
            ))}
          </select>
          <button class="btn" onClick={test} disabled={!email}>
            Send
          </button>
        </div>
      </div>
    </>
  );
}

function S3Test({ filesystem }: { filesystem: string }) {
  const test = async () => {
    try {
      await pb.settings.testS3(filesystem);
      toast('S3 connection successful.');
    } catch (e) {
      toast(errMessage(e), 'err');
    }
  };
  return (
    <button type="button" class="btn" onClick={test}>
      Test connection (saved settings)
    </button>
  );
}

const s3Specs = (p: string): Spec[] => [
  [`${p}.enabled`, 'bool', 'Use S3 storage'],
  [`${p}.bucket`, 'text', 'Bucket'],
  [`${p}.region`, 'text', 'Region'],
  [`${p}.endpoint`, 'text', 'Endpoint'],
  [`${p}.accessKey`, 'text', 'Access key'],
  [`${p}.secret`, 'password', 'Secret'],
  [`${p}.forcePathStyle`, 'bool', 'Force path-style addressing'],
];

function Storage() {
  return <SettingsForm title="Files storage" specs={s3Specs('s3')} extra={() => <S3Test filesystem="storage" />} />;
}

function Backups() {
  const [list, setList] = useState<any[] | null>(null);
  const [name, setName] = useState('');
  const [busy, setBusy] = useState('');
  const load = () => pb.backups.getFullList({ requestKey: null }).then((l) => setList(l.sort((a: any, b: any) => (a.modified < b.modified ? 1 : -1))), (e) => toast(errMessage(e), 'err'));
  useEffect(() => void load(), []);
  const create = async () => {
    setBusy('create');
    try {
      await pb.backups.create(name.trim() ? (name.endsWith('.zip') ? name.trim() : name.trim() + '.zip') : '');
      toast('Backup created.');
      setName('');
      load();
    } catch (e) {
      toast(errMessage(e), 'err');
    } finally {
      setBusy('');
    }
  };
  const upload = async (file: File) => {
    try {
      await pb.backups.upload({ file });
      toast('Backup uploaded.');
      load();
    } catch (e) {
      toast(errMessage(e), 'err');
    }
  };
  const download = async (key: string) => {
    try {
      const token = await pb.files.getToken();
      const a = document.createElement('a');
      a.href = pb.backups.getDownloadURL(token, key);
      a.download = key;
      a.click();
    } catch (e) {
      toast(errMessage(e), 'err');
    }
  };
  const restore = async (key: string) => {
    if (!(await confirmDialog(`Restore ${key}? The current data is replaced and the server restarts.`, 'Restore'))) return;
    setBusy('restore');
    try {
      await untilRestarted(async () => {
        await pb.backups.restore(key);
        toast('Restoring: the server restarts…');
      });
      location.reload();
    } catch (e) {
      toast(errMessage(e), 'err');
      setBusy('');
    }
  };
  const del = async (key: string) => {
    if (!(await confirmDialog(`Delete backup ${key}?`, 'Delete'))) return;
    try {
      await pb.backups.delete(key);
      toast('Backup deleted.');
      load();
    } catch (e) {
      toast(errMessage(e), 'err');
    }
  };
  return (
    <>
      <h2>Backups</h2>
      <div class="row wrap">
        <input placeholder="Optional name, e.g. before_migration.zip" name="backupName" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <button class="btn primary" onClick={create} disabled={!!busy}>
          {busy === 'create' ? 'Creating…' : 'Create backup'}
        </button>
        <label class="btn">
          Upload backup
          <input type="file" accept=".zip" hidden name="backupUpload" onChange={(e) => e.currentTarget.files?.[0] && upload(e.currentTarget.files[0])} />
        </label>
      </div>
      {busy === 'restore' && <p class="notice">Restoring… the page reloads when the server is back.</p>}
      <div class="table-wrap">
        <table class="table backups">
          <thead>
            <tr>
              <th>Name</th>
              <th>Size</th>
              <th>Modified</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {(list || []).map((b) => (
              <tr key={b.key} data-key={b.key}>
                <td>{b.key}</td>
                <td>{(b.size / 1024).toFixed(1)} KB</td>
                <td class="nowrap">{fmtDate(b.modified)}</td>
                <td class="nowrap">
                  <button class="btn small" onClick={() => download(b.key)}>
                    Download
                  </button>{' '}
                  <button class="btn small" onClick={() => restore(b.key)} disabled={!!busy}>
                    Restore
                  </button>{' '}
                  <button class="btn small danger" onClick={() => del(b.key)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
            {list && !list.length && (
              <tr>
                <td colSpan={4} class="muted center">
                  No backups yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      <SettingsForm
        title="Backup options"
        specs={[['backups.cron', 'text', 'Auto backup cron (e.g. 0 0 * * *; empty = off)'], ['backups.cronMaxKeep', 'number', 'Max auto backups to keep'], ...s3Specs('backups.s3')]}
        extra={() => <S3Test filesystem="backups" />}
      />
    </>
  );
}

function Crons() {
  const [list, setList] = useState<any[]>([]);
  useEffect(() => void pb.crons.getFullList({ requestKey: null }).then(setList, (e) => toast(errMessage(e), 'err')), []);
  const run = async (id: string) => {
    try {
      await pb.crons.run(id);
      toast(`Cron ${id} started.`);
    } catch (e) {
      toast(errMessage(e), 'err');
    }
  };
  return (
    <>
      <h2>Crons</h2>
      <table class="table">
        <thead>
          <tr>
            <th>Id</th>
            <th>Expression</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {list.map((c) => (
            <tr key={c.id}>
              <td>{c.id}</td>
              <td>
                <code>{c.expression}</code>
              </td>
              <td>
                <button class="btn small" onClick={() => run(c.id)}>
                  Run now
                </button>
              </td>
            </tr>
          ))}
          {!list.length && (
            <tr>
              <td colSpan={3} class="muted center">
                No cron jobs.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </>
  );
}

const strip = (c: any) => {
  const { created, updated, ...rest } = c;
  return rest;
};

function Export() {
  // the collections left out of the export (all are in by default, as in PocketBase)
  const [left, setLeft] = useState<string[]>([]);
  const picked = collections.value.filter((c) => !left.includes(c.id));
  const json = JSON.stringify(picked.map(strip), null, 2);
  const download = () => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([json], { type: 'application/json' }));
    a.download = 'pb_schema.json';
    a.click();
  };
  return (
    <>
      <h2>Export collections</h2>
      <div class="row wrap export-pick">
        <Toggle label={<strong>All</strong>} name="export.all" checked={!left.length} onChange={(on) => setLeft(on ? [] : collections.value.map((c) => c.id))} />
        {collections.value.map((c) => (
          <Toggle key={c.id} label={c.name} name={`export.${c.name}`} checked={!left.includes(c.id)} onChange={(on) => setLeft(on ? left.filter((id) => id !== c.id) : [...left, c.id])} />
        ))}
      </div>
      <div class="row">
        <button class="btn" onClick={() => navigator.clipboard?.writeText(json).then(() => toast('Copied.'))}>
          Copy
        </button>
        <button class="btn primary" onClick={download} disabled={!picked.length}>
          Download JSON
        </button>
      </div>
      <pre class="code export">{json}</pre>
    </>
  );
}

const show = (v: any) => (v === undefined ? '(unset)' : JSON.stringify(v));

/** What importing `nu` over the existing collection `old` changes, one line per change:
 * fields added, removed (their data goes), renamed or with changed options (fields are matched
 * by id, then by name), and any other changed property. Properties absent from `nu` are left
 * alone by the import, so they are not compared. */
function schemaDiff(old: any, nu: any): string[] {
  const lines: string[] = [];
  if (Array.isArray(nu.fields)) {
    const olds: any[] = old.fields || [];
    const matched = new Set<any>();
    const inNewOrder: any[] = []; // the existing fields, in the order of the import
    for (const f of nu.fields) {
      const o = olds.find((x) => f.id && x.id === f.id) || olds.find((x) => !matched.has(x) && x.name === f.name && !nu.fields.some((y: any) => y !== f && y.id && y.id === x.id));
      if (!o) {
        lines.push(`+ field ${f.name} (${f.type})`);
        continue;
      }
      matched.add(o);
      inNewOrder.push(o);
      if (o.name !== f.name) lines.push(`~ field ${o.name} renamed to ${f.name}`);
      for (const k of Object.keys(f).filter((k) => k !== 'name' && k !== 'id' && JSON.stringify(f[k]) !== JSON.stringify(o[k]))) lines.push(`~ field ${f.name}.${k}: ${show(o[k])} → ${show(f[k])}`);
    }
    for (const o of olds.filter((x) => !matched.has(x))) lines.push(`− field ${o.name} (${o.type}) and its data`);
    if (inNewOrder.some((o, i) => o !== olds.filter((x) => matched.has(x))[i])) lines.push('~ fields reordered');
  }
  for (const k of Object.keys(nu).filter((k) => !['id', 'fields', 'created', 'updated'].includes(k))) {
    if (JSON.stringify(nu[k]) !== JSON.stringify(old[k])) lines.push(`~ ${k}: ${show(old[k])} → ${show(nu[k])}`);
  }
  return lines;
}

function Import() {
  const [text, setText] = useState('');
  const [parsed, setParsed] = useState<any[] | null>(null);
  const [error, setError] = useState('');
  const [deleteMissing, setDeleteMissing] = useState(false);
  const review = () => {
    try {
      const v = JSON.parse(text);
      if (!Array.isArray(v)) throw new Error('Expected an array of collections.');
      setParsed(v);
      setError('');
    } catch (e: any) {
      setParsed(null);
      setError('Invalid JSON: ' + e.message);
    }
  };
  const existing = collections.value;
  const find = (c: any) => existing.find((x) => (c.id && x.id === c.id) || x.name === c.name);
  const added = (parsed || []).filter((c) => !find(c));
  const changed = (parsed || []).filter((c) => find(c) && schemaDiff(find(c), c).length > 0);
  const deleted = deleteMissing ? existing.filter((x) => !x.system && !(parsed || []).some((c) => (c.id && c.id === x.id) || c.name === x.name)) : [];
  const apply = async () => {
    if (deleted.length && !(await confirmDialog(`Import will DELETE ${deleted.map((d) => d.name).join(', ')} with their data. Continue?`, 'Import'))) return;
    try {
      await pb.collections.import(parsed!, deleteMissing);
      toast('Collections imported.');
      await loadCollections();
      setParsed(null);
      setText('');
    } catch (e) {
      toast(errMessage(e), 'err');
    }
  };
  return (
    <>
      <h2>Import collections</h2>
      <input type="file" accept=".json" onChange={async (e) => setText(await e.currentTarget.files![0].text())} />
      <textarea class="code" rows={10} name="importJson" placeholder="Paste the exported JSON" value={text} onInput={(e) => (setText(e.currentTarget.value), setParsed(null))} />
      {error && <p class="error">{error}</p>}
      <Toggle label="Delete collections (and their data) missing from the import" name="deleteMissing" checked={deleteMissing} onChange={(v) => (setDeleteMissing(v), setParsed(null))} />
      <div class="row">
        <button class="btn" onClick={review} disabled={!text}>
          Review
        </button>
      </div>
      {parsed && (
        <div class="diff card sub">
          <h3>Changes</h3>
          {!added.length && !changed.length && !deleted.length && <p class="muted">No changes.</p>}
          {added.map((c) => (
            <div class="diff-add" key={c.name}>
              + {c.name} (new {c.type || 'base'} collection)
            </div>
          ))}
          {changed.map((c) => (
            <div class="diff-change" key={c.name}>
              ~ {c.name}
              <ul>
                {schemaDiff(find(c)!, c).map((line, i) => (
                  <li key={i} class={line[0] === '+' ? 'diff-add' : line[0] === '−' ? 'diff-del' : ''}>
                    {line}
                  </li>
                ))}
              </ul>
            </div>
          ))}
          {deleted.map((c) => (
            <div class="diff-del" key={c.name}>
              − {c.name} (deleted)
            </div>
          ))}
          <button class="btn primary" onClick={apply}>
            Confirm and import
          </button>
        </div>
      )}
    </>
  );
}

function Tokens() {
  const auths = collections.value.filter((c) => c.type === 'auth');
  const invalidate = async (list: any[]) => {
    if (!(await confirmDialog(`Invalidate every token of ${list.map((c) => c.name).join(', ')}? Everyone signs in again (you too).`, 'Invalidate'))) return;
    try {
      for (const c of list) {
        const body: any = {};
        for (const k of ['authToken', 'verificationToken', 'passwordResetToken', 'emailChangeToken', 'fileToken']) body[k] = { ...c[k], secret: randomString(50) };
        await pb.collections.update(c.id, body);
      }
      toast('Tokens invalidated.');
      await loadCollections().catch(() => {});
    } catch (e) {
      toast(errMessage(e), 'err');
    }
  };
  return (
    <>
      <h2>Token secrets</h2>
      <p class="muted">New secrets make every token issued before unusable.</p>
      <ul class="plain">
        {auths.map((c) => (
          <li key={c.id} class="row">
            <span class="grow">{c.name}</span>
            <button class="btn small danger" onClick={() => invalidate([c])}>
              Invalidate all
            </button>
          </li>
        ))}
      </ul>
      <button class="btn danger" onClick={() => invalidate(auths)}>
        Invalidate for all auth collections
      </button>
    </>
  );
}

const PAGES: [string, string][] = [
  ['', 'Application'],
  ['mail', 'Mail settings'],
  ['storage', 'Files storage'],
  ['backups', 'Backups'],
  ['crons', 'Crons'],
  ['export', 'Export collections'],
  ['import', 'Import collections'],
  ['tokens', 'Token secrets'],
  ['sql', 'SQL console'],
];

export function SettingsPage({ path }: { path: string }) {
  const sub = path.split('/')[2] || '';
  return (
    <>
      <aside class="sidebar">
        <h4>System</h4>
        <ul>
          {PAGES.map(([k, label]) => (
            <li key={k} class={sub === k ? 'active' : ''}>
              <a href={`#/settings${k ? '/' + k : ''}`}>{label}</a>
            </li>
          ))}
          <li>
            <a href="#/collections/_superusers">Superusers</a>
          </li>
        </ul>
      </aside>
      <main class="main settings">
        {sub === '' && <Application />}
        {sub === 'mail' && <Mail />}
        {sub === 'storage' && <Storage />}
        {sub === 'backups' && <Backups />}
        {sub === 'crons' && <Crons />}
        {sub === 'export' && <Export />}
        {sub === 'import' && <Import />}
        {sub === 'tokens' && <Tokens />}
        {sub === 'sql' && <SqlConsole />}
      </main>
    </>
  );
}
