// The collection editor: fields (every type and option, flags, rename, reorder, delete), indexes,
// API rules, the view query with a live preview, auth options; duplicate, truncate, delete.
import { useEffect, useState } from 'preact/hooks';
import { pb, Collection, Field, errMessage, fieldErrors, randomString } from '../api';
import { collections, loadCollections, navigate } from '../store';
import { Modal, EditorFooter, Labeled, Toggle, toast, confirmDialog, confirmDiscard, useDirtyGuard, getPath, setPath, allowLeave } from '../ui';
import { RuleInput } from './rule-input';

export const FIELD_TYPES = ['text', 'editor', 'number', 'bool', 'email', 'url', 'date', 'autodate', 'select', 'file', 'relation', 'json', 'geoPoint', 'password'];

type Opt = [string, 'number' | 'text' | 'bool' | 'list' | 'collection', string?];
const OPTIONS: Record<string, Opt[]> = {
  text: [['min', 'number', 'Min length'], ['max', 'number', 'Max length'], ['pattern', 'text', 'Regex pattern'], ['autogeneratePattern', 'text', 'Autogenerate pattern'], ['primaryKey', 'bool', 'Primary key']],
  editor: [['maxSize', 'number', 'Max size (bytes)'], ['convertURLs', 'bool', 'Convert URLs']],
  number: [['min', 'number', 'Min'], ['max', 'number', 'Max'], ['onlyInt', 'bool', 'No decimals']],
  bool: [],
  email: [['exceptDomains', 'list', 'Except domains'], ['onlyDomains', 'list', 'Only domains']],
  url: [['exceptDomains', 'list', 'Except domains'], ['onlyDomains', 'list', 'Only domains']],
  date: [['min', 'text', 'Min date (UTC)'], ['max', 'text', 'Max date (UTC)']],
  autodate: [['onCreate', 'bool', 'On create'], ['onUpdate', 'bool', 'On update']],
  select: [['values', 'list', 'Choices'], ['maxSelect', 'number', 'Max select']],
  file: [['maxSelect', 'number', 'Max files'], ['maxSize', 'number', 'Max size (bytes)'], ['mimeTypes', 'list', 'MIME types'], ['thumbs', 'list', 'Thumb sizes (e.g. 100x100)'], ['protected', 'bool', 'Protected']],
  relation: [['collectionId', 'collection', 'Collection'], ['minSelect', 'number', 'Min select'], ['maxSelect', 'number', 'Max select'], ['cascadeDelete', 'bool', 'Cascade delete']],
  json: [['maxSize', 'number', 'Max size (bytes)']],
  geoPoint: [],
  password: [['min', 'number', 'Min length'], ['max', 'number', 'Max length'], ['pattern', 'text', 'Regex pattern'], ['cost', 'number', 'Bcrypt cost']],
};

function newField(type: string, existing: Field[]): Field {
  let n = 1;
  let name = `field${n}`;
  while (existing.some((f) => f.name === name)) name = `field${++n}`;
  const f: Field = { name, type, required: false, hidden: false, presentable: false, system: false };
  if (type === 'select') Object.assign(f, { values: ['a', 'b'], maxSelect: 1 });
  if (type === 'file') Object.assign(f, { maxSelect: 1, maxSize: 0, mimeTypes: [], thumbs: [] });
  if (type === 'relation') Object.assign(f, { collectionId: collections.value.find((c) => !c.system)?.id || '', maxSelect: 1, cascadeDelete: false });
  if (type === 'autodate') Object.assign(f, { onCreate: true, onUpdate: false });
  return f;
}

function FieldRow({ f, i, n, errors, onChange, onRemove, onMove }: any) {
  const [open, setOpen] = useState(!f.id);
  const opts: Opt[] = OPTIONS[f.type] || [];
  const err = (k: string) => errors[`fields.${i}.${k}`];
  const rowErr = Object.keys(errors).some((k) => k.startsWith(`fields.${i}.`));
  return (
    <div class={`frow ${f._removed ? 'removed' : ''} ${rowErr ? 'has-error' : ''}`} data-field-row={f.name}>
      <div class="frow-head">
        <span class={`ftype t-${f.type}`}>{f.type}</span>
        <input class="fname" aria-label="Field name" name={`fields.${i}.name`} value={f.name} disabled={f.system || f._removed} onInput={(e) => onChange({ ...f, name: e.currentTarget.value })} />
        {f.system && <span class="badge">system</span>}
        <span class="grow" />
        <button type="button" class="btn small" aria-label="Move up" disabled={i === 0} onClick={() => onMove(-1)}>
          ↑
        </button>
        <button type="button" class="btn small" aria-label="Move down" disabled={i === n - 1} onClick={() => onMove(1)}>
          ↓
        </button>
        <button type="button" class="btn small" aria-expanded={open} onClick={() => setOpen(!open)}>
          Options
        </button>
        {!f.system &&
          (f._removed ? (
            <button type="button" class="btn small" onClick={() => onChange({ ...f, _removed: false })}>
              Restore
            </button>
          ) : (
            <button type="button" class="btn small danger" aria-label={`Remove field ${f.name}`} onClick={onRemove}>
              Remove
            </button>
          ))}
      </div>
      {err('name') && <small class="error">{err('name')}</small>}
      {open && !f._removed && (
        <div class="frow-opts">
          {opts.map(([k, kind, label]) => (
            <Labeled key={k} label={label || k} error={err(k)}>
              {kind === 'bool' ? (
                <input type="checkbox" name={`fields.${i}.${k}`} checked={!!f[k]} onChange={(e) => onChange({ ...f, [k]: e.currentTarget.checked })} />
              ) : kind === 'number' ? (
                <input type="number" name={`fields.${i}.${k}`} value={f[k] ?? ''} onInput={(e) => onChange({ ...f, [k]: e.currentTarget.value === '' ? 0 : Number(e.currentTarget.value) })} />
              ) : kind === 'list' ? (
                <input name={`fields.${i}.${k}`} placeholder="comma separated" value={(f[k] || []).join(', ')} onInput={(e) => onChange({ ...f, [k]: e.currentTarget.value.split(',').map((s) => s.trim()).filter(Boolean) })} />
              ) : kind === 'collection' ? (
                <select name={`fields.${i}.${k}`} value={f[k] || ''} onChange={(e) => onChange({ ...f, [k]: e.currentTarget.value })}>
                  <option value="">- select -</option>
                  {collections.value.map((c) => (
                    <option key={c.id} value={c.id}>
                      {c.name}
                    </option>
                  ))}
                </select>
              ) : (
                <input name={`fields.${i}.${k}`} value={f[k] ?? ''} onInput={(e) => onChange({ ...f, [k]: e.currentTarget.value })} />
              )}
            </Labeled>
          ))}
          <Labeled label="Help text (shown under the input in the record form)" error={err('help')}>
            <input name={`fields.${i}.help`} value={f.help || ''} onInput={(e) => onChange({ ...f, help: e.currentTarget.value })} />
          </Labeled>
          <div class="row wrap flags">
            {f.type !== 'autodate' && <Toggle label="Nonempty (required)" name={`fields.${i}.required`} checked={f.required} onChange={(v) => onChange({ ...f, required: v })} />}
            <Toggle label="Hidden" name={`fields.${i}.hidden`} checked={f.hidden} onChange={(v) => onChange({ ...f, hidden: v })} />
            <Toggle label="Presentable" name={`fields.${i}.presentable`} checked={f.presentable} onChange={(v) => onChange({ ...f, presentable: v })} />
          </div>
        </div>
      )}
    </div>
  );
}

// The column list (and WHERE clause) of `CREATE [UNIQUE] INDEX name ON table (...)`: the part
// after the table name, where a field's name is a column.
const INDEX_HEAD = /^(.*?\bON\s+(?:`[^`]*`|"[^"]*"|\[[^\]]*\]|\w+)\s*)([\s\S]*)$/i;
const columnRe = (name: string) => new RegExp(`(^|[^\\w])([\`"\\[]?)${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([\`"\\]]?)(?![\\w])`, 'g');

/** `sql` with column `from` renamed to `to` (the index's own name and table left alone). */
export function renameIndexColumn(sql: string, from: string, to: string): string {
  const m = sql.match(INDEX_HEAD);
  return m ? m[1] + m[2].replace(columnRe(from), (_x, pre, q1, q2) => `${pre}${q1}${to}${q2}`) : sql;
}

/** Whether index `sql` names column `name`. */
export function indexUsesColumn(sql: string, name: string): boolean {
  const m = sql.match(INDEX_HEAD);
  return !!m && columnRe(name).test(m[2]);
}

function IndexesEditor({ c, setC, errors }: any) {
  const [adding, setAdding] = useState(false);
  const [unique, setUnique] = useState(false);
  const [cols, setCols] = useState<string[]>([]);
  const [where, setWhere] = useState('');
  const add = () => {
    if (!cols.length) return;
    const name = `idx_${c.name || 'coll'}_${cols.join('_')}`.replace(/\W/g, '_');
    const sql = `CREATE ${unique ? 'UNIQUE ' : ''}INDEX \`${name}\` ON \`${c.name}\` (${cols.map((x) => `\`${x}\``).join(', ')})${where ? ` WHERE ${where}` : ''}`;
    setC({ ...c, indexes: [...(c.indexes || []), sql] });
    setAdding(false);
    setCols([]);
    setWhere('');
    setUnique(false);
  };
  return (
    <div class="indexes">
      <h3>Indexes</h3>
      {(c.indexes || []).map((sql: string, i: number) => (
        <div class={`index ${errors[`indexes.${i}`] ? 'has-error' : ''}`} key={i}>
          <div class="row">
            <input class="code grow" name={`indexes.${i}`} value={sql} onInput={(e) => setC({ ...c, indexes: c.indexes.map((x: string, j: number) => (j === i ? e.currentTarget.value : x)) })} />
            <button type="button" class="btn small danger" onClick={() => setC({ ...c, indexes: c.indexes.filter((_: any, j: number) => j !== i) })}>
              Remove
            </button>
          </div>
          {errors[`indexes.${i}`] && <small class="error">{errors[`indexes.${i}`]}</small>}
        </div>
      ))}
      {errors.indexes && <small class="error">{errors.indexes}</small>}
      {adding ? (
        <div class="card sub new-index">
          <Toggle label="Unique" name="newIndex.unique" checked={unique} onChange={setUnique} />
          <div class="row wrap">
            {c.fields
              .filter((f: Field) => !f._removed)
              .map((f: Field) => (
                <Toggle key={f.name} label={f.name} name={`newIndex.columns.${f.name}`} checked={cols.includes(f.name)} onChange={(on) => setCols(on ? [...cols, f.name] : cols.filter((x) => x !== f.name))} />
              ))}
          </div>
          <Labeled label="WHERE (optional partial index)">
            <input value={where} onInput={(e) => setWhere(e.currentTarget.value)} />
          </Labeled>
          <button type="button" class="btn primary small" onClick={add}>
            Add index
          </button>
        </div>
      ) : (
        <button type="button" class="btn small" onClick={() => setAdding(true)}>
          + New index
        </button>
      )}
    </div>
  );
}

function ViewQuery({ c, setC, errors }: any) {
  const [preview, setPreview] = useState<any>(null);
  const [perr, setPerr] = useState('');
  useEffect(() => {
    if (!c.viewQuery?.trim()) return;
    const t = setTimeout(async () => {
      try {
        const r = await pb.send('/api/collections/meta/dry-run-view', { method: 'POST', body: { query: c.viewQuery }, requestKey: null });
        setPreview(r);
        setPerr('');
      } catch (e) {
        setPreview(null);
        setPerr(errMessage(e));
      }
    }, 400);
    return () => clearTimeout(t);
  }, [c.viewQuery]);
  const fields = preview?.collection?.fields || preview?.fields || [];
  return (
    <div>
      <Labeled label="Select query" error={errors.viewQuery} hint="A single SELECT statement; it must return an id column.">
        <textarea class="code" rows={6} name="viewQuery" value={c.viewQuery || ''} onInput={(e) => setC({ ...c, viewQuery: e.currentTarget.value })} />
      </Labeled>
      {perr && <p class="error">{perr}</p>}
      {fields.length > 0 && (
        <div class="preview">
          <h4>Inferred fields</h4>
          <div class="chips">
            {fields.map((f: Field) => (
              <span class="chip" key={f.name}>
                <span class={`ftype t-${f.type}`}>{f.type}</span> {f.name}
              </span>
            ))}
          </div>
          {Array.isArray(preview?.records) && <p class="muted">{preview.records.length} sample record(s).</p>}
        </div>
      )}
    </div>
  );
}

const TEMPLATES: [string, string][] = [
  ['verificationTemplate', 'Verification email'],
  ['resetPasswordTemplate', 'Password reset email'],
  ['confirmEmailChangeTemplate', 'Email change email'],
  ['otp.emailTemplate', 'OTP email'],
  ['authAlert.emailTemplate', 'Login alert email'],
];
const TOKENS: [string, string][] = [
  ['authToken', 'Auth'],
  ['verificationToken', 'Email verification'],
  ['passwordResetToken', 'Password reset'],
  ['emailChangeToken', 'Email change'],
  ['fileToken', 'Protected file access'],
];

// oauth2.mappedFields: the OAuth2 profile values copied into a new user's fields
const MAPPED: [string, string][] = [
  ['id', 'OAuth2 id'],
  ['name', 'OAuth2 name'],
  ['username', 'OAuth2 username'],
  ['avatarURL', 'OAuth2 avatar'],
];

// the optional settings of an OAuth2 provider that are plain text
const PROVIDER_TEXT: [string, string][] = [
  ['displayName', 'Display name'],
  ['authURL', 'Auth URL'],
  ['tokenURL', 'Token URL'],
  ['userInfoURL', 'User info URL'],
];

function AuthOptions({ c, setC, errors }: any) {
  const [providers, setProviders] = useState<any[]>([]);
  const [addName, setAddName] = useState('');
  useEffect(() => {
    pb.send('/api/collections/meta/oauth2-providers', { requestKey: null }).then(
      (r: any) => setProviders(Array.isArray(r) ? r : []),
      () => {},
    );
  }, []);
  const g = (p: string) => getPath(c, p);
  const s = (p: string, v: any) => setC(setPath(c, p, v));
  const num = (p: string, label: string) => (
    <Labeled label={label} error={errors[p]}>
      <input type="number" name={p} value={g(p) ?? ''} onInput={(e) => s(p, Number(e.currentTarget.value))} />
    </Labeled>
  );
  const list: any[] = g('oauth2.providers') || [];
  return (
    <div class="auth-options">
      <h3>Password</h3>
      <Toggle label="Enable password auth" name="passwordAuth.enabled" checked={g('passwordAuth.enabled')} onChange={(v) => s('passwordAuth.enabled', v)} />
      <Labeled label="Identity fields" error={errors['passwordAuth.identityFields']}>
        <input name="passwordAuth.identityFields" value={(g('passwordAuth.identityFields') || []).join(', ')} onInput={(e) => s('passwordAuth.identityFields', e.currentTarget.value.split(',').map((x) => x.trim()).filter(Boolean))} />
      </Labeled>
      <h3>One-time password (OTP)</h3>
      <Toggle label="Enable OTP" name="otp.enabled" checked={g('otp.enabled')} onChange={(v) => s('otp.enabled', v)} />
      <div class="row">
        {num('otp.duration', 'Duration (s)')}
        {num('otp.length', 'Length')}
      </div>
      <h3>Multi-factor authentication (MFA)</h3>
      <Toggle label="Enable MFA" name="mfa.enabled" checked={g('mfa.enabled')} onChange={(v) => s('mfa.enabled', v)} />
      <div class="row">
        {num('mfa.duration', 'Duration (s)')}
        <Labeled label="MFA rule (empty = everyone)" error={errors['mfa.rule']}>
          <input class="code" name="mfa.rule" value={g('mfa.rule') || ''} onInput={(e) => s('mfa.rule', e.currentTarget.value)} />
        </Labeled>
      </div>
      <h3>OAuth2</h3>
      <Toggle label="Enable OAuth2" name="oauth2.enabled" checked={g('oauth2.enabled')} onChange={(v) => s('oauth2.enabled', v)} />
      {list.map((p, i) => (
        <div class="card sub" key={i}>
          <div class="row">
            <strong class="grow">{p.displayName || providers.find((x) => x.name === p.name)?.displayName || p.name}</strong>
            <button type="button" class="btn small danger" onClick={() => s('oauth2.providers', list.filter((_, j) => j !== i))}>
              Remove
            </button>
          </div>
          <div class="row">
            <Labeled label="Client ID" error={errors[`oauth2.providers.${i}.clientId`]}>
              <input name={`oauth2.providers.${i}.clientId`} value={p.clientId || ''} onInput={(e) => s(`oauth2.providers`, list.map((x, j) => (j === i ? { ...x, clientId: e.currentTarget.value } : x)))} />
            </Labeled>
            <Labeled label="Client secret" error={errors[`oauth2.providers.${i}.clientSecret`]}>
              <input type="password" autocomplete="new-password" name={`oauth2.providers.${i}.clientSecret`} value={p.clientSecret || ''} onInput={(e) => s(`oauth2.providers`, list.map((x, j) => (j === i ? { ...x, clientSecret: e.currentTarget.value } : x)))} />
            </Labeled>
          </div>
          <details>
            <summary>Display name, endpoints, PKCE (optional)</summary>
            <small class="hint">The endpoints are needed for OIDC and self-hosted providers; empty ones use the provider's defaults.</small>
            <div class="row wrap">
              {PROVIDER_TEXT.map(([k, label]) => (
                <Labeled key={k} label={label} error={errors[`oauth2.providers.${i}.${k}`]}>
                  <input name={`oauth2.providers.${i}.${k}`} value={p[k] || ''} onInput={(e) => s(`oauth2.providers`, list.map((x, j) => (j === i ? { ...x, [k]: e.currentTarget.value } : x)))} />
                </Labeled>
              ))}
              <Labeled label="PKCE">
                <select name={`oauth2.providers.${i}.pkce`} value={p.pkce == null ? '' : String(p.pkce)} onChange={(e) => s(`oauth2.providers`, list.map((x, j) => (j === i ? { ...x, pkce: e.currentTarget.value === '' ? null : e.currentTarget.value === 'true' } : x)))}>
                  <option value="">provider default</option>
                  <option value="true">on</option>
                  <option value="false">off</option>
                </select>
              </Labeled>
            </div>
          </details>
        </div>
      ))}
      <div class="row">
        <select value={addName} onChange={(e) => setAddName(e.currentTarget.value)} aria-label="OAuth2 provider">
          <option value="">- add provider -</option>
          {providers
            .filter((p) => !list.some((x) => x.name === p.name))
            .map((p) => (
              <option key={p.name} value={p.name}>
                {p.displayName || p.name}
              </option>
            ))}
        </select>
        <button type="button" class="btn small" disabled={!addName} onClick={() => (s('oauth2.providers', [...list, { name: addName, clientId: '', clientSecret: '' }]), setAddName(''))}>
          Add
        </button>
      </div>
      {g('oauth2.enabled') && (
        <>
          <h4>Fields filled from the OAuth2 profile of a new user</h4>
          <div class="row wrap">
            {MAPPED.map(([k, label]) => (
              <Labeled key={k} label={label} error={errors[`oauth2.mappedFields.${k}`]}>
                <select name={`oauth2.mappedFields.${k}`} value={g(`oauth2.mappedFields.${k}`) || ''} onChange={(e) => s(`oauth2.mappedFields.${k}`, e.currentTarget.value)}>
                  <option value="">- none -</option>
                  {c.fields
                    .filter((f: Field) => !f._removed && !['password', 'tokenKey', 'email', 'emailVisibility', 'verified', 'id'].includes(f.name))
                    .map((f: Field) => (
                      <option key={f.name} value={f.name}>
                        {f.name}
                      </option>
                    ))}
                </select>
              </Labeled>
            ))}
          </div>
        </>
      )}
      <h3>Token durations (seconds)</h3>
      <div class="row wrap">{TOKENS.map(([k, label]) => num(`${k}.duration`, label))}</div>
      <button
        type="button"
        class="btn small danger"
        onClick={async () => {
          if (!(await confirmDialog('Invalidate every token issued for this collection (all sessions sign out) when you save?', 'Invalidate'))) return;
          let next = c;
          for (const [k] of TOKENS) next = setPath(next, `${k}.secret`, randomString(50));
          setC(next);
          toast('New token secrets set; save the collection to apply.');
        }}
      >
        Invalidate all previously issued tokens
      </button>
      <h3>Mail templates</h3>
      <Toggle label="Send a login alert on a new device" name="authAlert.enabled" checked={g('authAlert.enabled')} onChange={(v) => s('authAlert.enabled', v)} />
      {TEMPLATES.map(([k, label]) => (
        <details key={k}>
          <summary>{label}</summary>
          <Labeled label="Subject" error={errors[`${k}.subject`]}>
            <input name={`${k}.subject`} value={g(`${k}.subject`) || ''} onInput={(e) => s(`${k}.subject`, e.currentTarget.value)} />
          </Labeled>
          <Labeled label="Body (HTML)" error={errors[`${k}.body`]}>
            <textarea class="code" rows={6} name={`${k}.body`} value={g(`${k}.body`) || ''} onInput={(e) => s(`${k}.body`, e.currentTarget.value)} />
          </Labeled>
        </details>
      ))}
    </div>
  );
}

export function CollectionEditor({ coll, onClose, onTruncated }: { coll?: Collection; onClose: () => void; onTruncated?: () => void }) {
  const [c, setCRaw] = useState<any>(coll ? structuredClone(coll) : null);
  const [tab, setTab] = useState('fields');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [dirty, setDirty] = useState(false);
  const [busy, setBusy] = useState(false);
  useDirtyGuard(dirty);
  const setC = (v: any) => {
    setCRaw(v);
    setDirty(true);
  };
  const loadScaffold = async (type: string) => {
    const sc: any = await pb.send('/api/collections/meta/scaffolds', { requestKey: null });
    const base = structuredClone(sc[type]);
    base.name = c?.name || '';
    delete base.id;
    if (c?.fields && type !== 'view') {
      const keep = c.fields.filter((f: Field) => !f.system && !base.fields.some((b: Field) => b.name === f.name));
      base.fields = [...base.fields, ...keep];
    }
    setCRaw(base);
  };
  useEffect(() => {
    if (!coll) loadScaffold('base').catch((e) => toast(errMessage(e), 'err'));
  }, []);
  if (!c) return null;

  const close = async () => {
    if (await confirmDiscard(dirty)) onClose();
  };
  const save = async (e?: Event) => {
    e?.preventDefault();
    setBusy(true);
    setErrors({});
    // the server re-creates every index and refuses one that names a column that is gone, so
    // (as PocketBase's dashboard does) a renamed field is renamed in the indexes too, and the
    // indexes of a deleted field are dropped with it
    const original = (f: Field) => (f.id && coll?.fields.find((x) => x.id === f.id)?.name) || f.name;
    let indexes: string[] = c.indexes || [];
    for (const f of c.fields.filter((f: Field) => !f._removed && original(f) !== f.name)) indexes = indexes.map((sql) => renameIndexColumn(sql, original(f), f.name));
    const removedFields = c.fields.filter((f: Field) => f._removed && f.id);
    const dropped = indexes.filter((sql) => removedFields.some((f: Field) => indexUsesColumn(sql, original(f))));
    indexes = indexes.filter((sql) => !dropped.includes(sql));
    const body = { ...c, indexes, fields: c.fields.filter((f: Field) => !f._removed).map(({ _removed, ...f }: any) => f) };
    // what an existing collection's clients or data lose: said before saving, as PocketBase's
    // dashboard does
    const changes: string[] = [];
    if (coll && c.name !== coll.name) changes.push(`Rename collection ${coll.name} to ${c.name} (clients using the old name stop working).`);
    for (const f of c.fields.filter((f: Field) => !f._removed && original(f) !== f.name)) changes.push(`Rename field ${original(f)} to ${f.name}.`);
    for (const f of removedFields) changes.push(`Delete field ${original(f)} and all its data.`);
    for (const sql of dropped) changes.push(`Drop index ${sql.match(/INDEX\s+(?:IF NOT EXISTS\s+)?[`"[]?(\w+)/i)?.[1] || sql} (it uses a deleted field).`);
    if (coll && c.type === 'view' && c.viewQuery !== coll.viewQuery) changes.push('Change the view query (the view is re-created).');
    if (c.id && changes.length && !(await confirmDialog(`Save these changes?\n${changes.map((x) => `• ${x}`).join('\n')}`, 'Confirm'))) {
      setBusy(false);
      return;
    }
    try {
      const saved = c.id ? await pb.collections.update(c.id, body) : await pb.collections.create(body);
      toast(c.id ? 'Collection updated.' : 'Collection created.');
      setDirty(false);
      await loadCollections();
      allowLeave();
      navigate(`/collections/${saved.name}`);
      if (c.id && saved.name === coll?.name) onClose();
    } catch (err) {
      const fe = fieldErrors(err);
      setErrors(fe);
      toast(errMessage(err), 'err');
      if (Object.keys(fe).some((k) => /Rule$/.test(k))) setTab('rules');
    } finally {
      setBusy(false);
    }
  };
  const duplicate = () => {
    const copy = structuredClone(c);
    delete copy.id;
    copy.name = `${c.name}_duplicate`;
    copy.system = false;
    copy.fields = copy.fields.map((f: any) => ({ ...f, id: undefined }));
    copy.indexes = (copy.indexes || []).map((sql: string) => sql.replace(/INDEX\s+`?(\w+)`?/i, (_m: string, n: string) => `INDEX \`${n}_dup\``).replace(new RegExp(`\`${c.name}\``, 'g'), `\`${copy.name}\``));
    setCRaw(copy);
    setDirty(true);
    toast('Duplicate ready: review and save.');
  };
  const truncate = async () => {
    if (!(await confirmDialog(`Delete ALL records of ${c.name}? This cannot be undone.`, 'Truncate'))) return;
    try {
      await pb.collections.truncate(c.id);
      toast('Collection truncated.');
      // a truncate sends no realtime events: the records list reloads itself
      onTruncated?.();
      allowLeave();
      onClose();
    } catch (e) {
      toast(errMessage(e), 'err');
    }
  };
  const remove = async () => {
    if (!(await confirmDialog(`Delete collection ${c.name} with all its records and files?`, 'Delete'))) return;
    try {
      await pb.collections.delete(c.id);
      toast('Collection deleted.');
      setDirty(false);
      await loadCollections();
      allowLeave();
      navigate('/collections');
    } catch (e) {
      toast(errMessage(e), 'err');
    }
  };
  const move = (i: number, d: number) => {
    const fs = [...c.fields];
    [fs[i], fs[i + d]] = [fs[i + d], fs[i]];
    setC({ ...c, fields: fs });
  };
  const isNew = !c.id;
  const rules: [string, string][] = [
    ['listRule', 'List/Search rule'],
    ['viewRule', 'View rule'],
    ...(c.type !== 'view'
      ? ([
          ['createRule', 'Create rule'],
          ['updateRule', 'Update rule'],
          ['deleteRule', 'Delete rule'],
        ] as [string, string][])
      : []),
    ...(c.type === 'auth'
      ? ([
          ['authRule', 'Auth rule (extra condition to sign in)'],
          ['manageRule', 'Manage rule (edit other users’ email/password)'],
        ] as [string, string][])
      : []),
  ];
  const footer = (
    <EditorFooter form="collection-form" isNew={isNew} busy={busy} onCancel={close}>
      {!isNew && (
        <div class="row">
          <button type="button" class="btn small" onClick={duplicate}>
            Duplicate
          </button>
          {c.type !== 'view' && (
            <button type="button" class="btn small danger" onClick={truncate}>
              Truncate
            </button>
          )}
          {!c.system && (
            <button type="button" class="btn small danger" onClick={remove}>
              Delete
            </button>
          )}
        </div>
      )}
    </EditorFooter>
  );
  return (
    <Modal panel title={isNew ? 'New collection' : `Edit collection ${coll?.name}`} onClose={close} footer={footer}>
      <form id="collection-form" class="form" onSubmit={save}>
        <div class="row">
          <Labeled label="Name" error={errors.name} class="grow">
            <input name="name" required value={c.name} disabled={c.system} onInput={(e) => setC({ ...c, name: e.currentTarget.value })} placeholder='e.g. "posts"' />
          </Labeled>
          <Labeled label="Type">
            <select name="type" value={c.type} disabled={!isNew} onChange={(e) => loadScaffold(e.currentTarget.value)}>
              <option value="base">Base</option>
              <option value="auth">Auth</option>
              <option value="view">View</option>
            </select>
          </Labeled>
        </div>
        <div class="tabs" role="tablist">
          {[
            ['fields', c.type === 'view' ? 'Query' : 'Fields'],
            ['rules', 'API rules'],
            ...(c.type === 'auth' ? [['options', 'Options']] : []),
          ].map(([k, label]) => (
            <button type="button" role="tab" aria-selected={tab === k} class={tab === k ? 'active' : ''} key={k} onClick={() => setTab(k)}>
              {label}
              {k === 'rules' && Object.keys(errors).some((e) => /Rule$/.test(e)) && <span class="dot" />}
            </button>
          ))}
        </div>
        {tab === 'fields' && c.type === 'view' && <ViewQuery c={c} setC={setC} errors={errors} />}
        {tab === 'fields' && c.type !== 'view' && (
          <>
            {c.fields.map((f: Field, i: number) => (
              <FieldRow
                key={f.id || `new${i}`}
                f={f}
                i={i}
                n={c.fields.length}
                errors={errors}
                onChange={(nf: Field) => setC({ ...c, fields: c.fields.map((x: Field, j: number) => (j === i ? nf : x)) })}
                onRemove={() => setC({ ...c, fields: f.id ? c.fields.map((x: Field, j: number) => (j === i ? { ...x, _removed: true } : x)) : c.fields.filter((_: any, j: number) => j !== i) })}
                onMove={(d: number) => move(i, d)}
              />
            ))}
            <div class="add-field">
              <span class="label">+ New field:</span>
              {FIELD_TYPES.map((t) => (
                <button type="button" key={t} class="btn small" data-add-field={t} onClick={() => setC({ ...c, fields: [...c.fields, newField(t, c.fields)] })}>
                  {t}
                </button>
              ))}
            </div>
            <IndexesEditor c={c} setC={setC} errors={errors} />
          </>
        )}
        {tab === 'rules' && (
          <div class="rules">
            <p class="muted">
              Rules are filters: empty means anyone; locked means superusers only. Type <code>@</code> for macros.
            </p>
            {rules.map(([k, label]) => (
              <RuleInput key={k} label={label} name={k} coll={c} value={c[k] ?? null} error={errors[k]} onChange={(v) => setC({ ...c, [k]: v })} />
            ))}
          </div>
        )}
        {tab === 'options' && <AuthOptions c={c} setC={setC} errors={errors} />}
      </form>
    </Modal>
  );
}
