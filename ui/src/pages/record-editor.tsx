// The record editor: one input per field type, files with previews/removal, a relation picker,
// JSON validation, auth-record actions (verify, email/password, impersonate, external auths).
import { useEffect, useRef, useState } from 'preact/hooks';
import { signal } from '@preact/signals';
import { pb, Collection, Field, errMessage, fieldErrors, randomString } from '../api';
import { byIdOrName } from '../store';
import { Modal, EditorFooter, Labeled, Toggle, toast, confirmDialog, confirmDiscard, useDirtyGuard, fmtDate, Spinner, allowLeave } from '../ui';

const AUTH_SPECIAL = ['email', 'emailVisibility', 'verified', 'password', 'tokenKey'];

/** "2024-01-02 03:04:05.000Z" <-> the value of an <input type="datetime-local"> (both UTC). */
const toLocalInput = (v: string) => (v ? v.replace(' ', 'T').slice(0, 19) : '');
const fromLocalInput = (v: string) => (v ? v.replace('T', ' ') + (v.length === 16 ? ':00' : '') + '.000Z' : '');

/** The open link dialog of a rich-text input: the record editor renders it beside its form,
 * outside the field's <label> (whose clicks go to its first button) and the <form> (Enter). */
const linkDialog = signal<((url: string) => void) | null>(null);

/** The link dialog of the rich-text editor: the URL for the selected text (or, with no text
 * selected, a link whose text is the URL). Enter inserts. */
function LinkDialog({ onInsert, onClose }: { onInsert: (url: string) => void; onClose: () => void }) {
  const [url, setUrl] = useState('https://');
  const insert = () => {
    const u = url.trim();
    if (u && u !== 'https://') onInsert(u);
  };
  return (
    <Modal title="Insert link" onClose={onClose} small class="link-dialog">
      <Labeled label="URL">
        <input
          name="linkUrl"
          type="url"
          value={url}
          onInput={(e) => setUrl(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter') {
              e.preventDefault();
              insert();
            }
          }}
        />
      </Labeled>
      <div class="actions">
        <button type="button" class="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="button" class="btn primary" onClick={insert} disabled={!url.trim() || url.trim() === 'https://'}>
          Insert link
        </button>
      </div>
    </Modal>
  );
}

function RichText({ value, onChange, name }: { value: string; onChange: (v: string) => void; name: string }) {
  const ref = useRef<HTMLDivElement>(null);
  // the editor's selection when the link dialog opened (the dialog's input takes the focus)
  const saved = useRef<Range | null>(null);
  useEffect(() => {
    if (ref.current && ref.current.innerHTML !== value) ref.current.innerHTML = value || '';
    return () => void (linkDialog.value = null);
  }, []);
  const cmd = (c: string, arg?: string) => {
    document.execCommand(c, false, arg);
    ref.current?.focus();
    onChange(ref.current!.innerHTML);
  };
  const openLink = () => {
    const sel = window.getSelection();
    const r = sel && sel.rangeCount ? sel.getRangeAt(0) : null;
    saved.current = r && ref.current?.contains(r.commonAncestorContainer) ? r.cloneRange() : null;
    linkDialog.value = insertLink;
  };
  const insertLink = (url: string) => {
    linkDialog.value = null;
    const el = ref.current!;
    el.focus();
    const sel = window.getSelection()!;
    sel.removeAllRanges();
    if (saved.current) sel.addRange(saved.current);
    else {
      const end = document.createRange();
      end.selectNodeContents(el);
      end.collapse(false);
      sel.addRange(end);
    }
    if (sel.isCollapsed) {
      const a = document.createElement('a');
      a.href = url;
      a.textContent = url;
      cmd('insertHTML', a.outerHTML);
    } else cmd('createLink', url);
  };
  return (
    <div class="rte">
      <div class="rte-bar">
        <button type="button" class="btn small" onClick={() => cmd('bold')}>
          <b>B</b>
        </button>
        <button type="button" class="btn small" onClick={() => cmd('italic')}>
          <i>I</i>
        </button>
        <button type="button" class="btn small" onClick={() => cmd('insertUnorderedList')}>
          • List
        </button>
        <button type="button" class="btn small" onClick={() => cmd('formatBlock', 'h3')}>
          H
        </button>
        <button type="button" class="btn small" onMouseDown={(e) => e.preventDefault()} onClick={openLink}>
          Link
        </button>
      </div>
      <div ref={ref} class="rte-body" contentEditable data-field={name} onInput={() => onChange(ref.current!.innerHTML)} />
    </div>
  );
}

function RelationPicker({ field, value, onChange }: { field: Field; value: string[]; onChange: (v: string[]) => void }) {
  const target = byIdOrName(field.collectionId);
  const [open, setOpen] = useState(false);
  const [q, setQ] = useState('');
  const [items, setItems] = useState<any[]>([]);
  const multiple = (field.maxSelect || 1) > 1;
  const label = (r: any) => {
    const p = target?.fields.find((f) => f.presentable) || target?.fields.find((f) => ['name', 'title', 'email'].includes(f.name));
    return p && r[p.name] ? `${r[p.name]} (${r.id})` : r.id;
  };
  useEffect(() => {
    if (!open || !target) return;
    const texts = target.fields.filter((f) => ['text', 'email', 'url'].includes(f.type) && !f.hidden).map((f) => f.name);
    const esc = q.replace(/"/g, '\\"');
    const filter = q ? [`id ~ "${esc}"`, ...texts.map((n) => `${n} ~ "${esc}"`)].join(' || ') : '';
    pb.collection(target.name)
      .getList(1, 30, { filter, requestKey: null })
      .then((r) => setItems(r.items), (e) => toast(errMessage(e), 'err'));
  }, [open, q]);
  const pick = (id: string) => {
    if (multiple) onChange(value.includes(id) ? value.filter((x) => x !== id) : [...value, id]);
    else {
      onChange(value[0] === id ? [] : [id]);
      setOpen(false);
    }
  };
  return (
    <div class="relation" data-field={field.name}>
      <div class="chips">
        {value.map((id) => (
          <span class="chip" key={id}>
            {id}
            <button type="button" aria-label={`Remove ${id}`} onClick={() => onChange(value.filter((x) => x !== id))}>
              ×
            </button>
          </span>
        ))}
        <button type="button" class="btn small" onClick={() => setOpen(true)}>
          {target ? `Pick from ${target.name}` : 'Pick'}
        </button>
      </div>
      {open && (
        <Modal title={`Select ${target?.name || ''} record${multiple ? 's' : ''}`} onClose={() => setOpen(false)} small>
          <input type="search" placeholder="Search…" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
          <ul class="pick-list">
            {items.map((r) => (
              <li key={r.id}>
                <button type="button" class={`pick ${value.includes(r.id) ? 'on' : ''}`} onClick={() => pick(r.id)}>
                  {value.includes(r.id) ? '✓ ' : ''}
                  {label(r)}
                </button>
              </li>
            ))}
            {!items.length && <li class="muted">No records.</li>}
          </ul>
          {multiple && (
            <div class="actions">
              <button type="button" class="btn primary" onClick={() => setOpen(false)}>
                Done
              </button>
            </div>
          )}
        </Modal>
      )}
    </div>
  );
}

function FileInput({ field, rec, existing, removed, added, onRemove, onAdd }: any) {
  const [token, setToken] = useState('');
  useEffect(() => {
    if (field.protected && existing.length) pb.files.getToken().then(setToken, () => {});
  }, []);
  const max = field.maxSelect || 1;
  const url = (n: string, thumb?: string) => pb.files.getURL(rec, n, { thumb, token: token || undefined });
  return (
    <div class="files" data-field={field.name}>
      {existing.map((n: string) => (
        <div class={`file ${removed.includes(n) ? 'removed' : ''}`} key={n}>
          {/\.(png|jpe?g|gif|webp)$/i.test(n) && (!field.protected || token) ? <img src={url(n, '100x100')} alt={n} /> : <span class="fileicon">FILE</span>}
          <a href={url(n)} target="_blank" rel="noopener">
            {n}
          </a>
          <button type="button" class="btn small" onClick={() => onRemove(n)}>
            {removed.includes(n) ? 'Restore' : 'Remove'}
          </button>
        </div>
      ))}
      {added.map((f: File, i: number) => (
        <div class="file new" key={i}>
          {f.type.startsWith('image/') ? <img src={URL.createObjectURL(f)} alt={f.name} /> : <span class="fileicon">FILE</span>}
          <span>{f.name}</span>
          <button type="button" class="btn small" onClick={() => onAdd(added.filter((x: File) => x !== f))}>
            Remove
          </button>
        </div>
      ))}
      {existing.length - removed.length + added.length < max && (
        <input
          type="file"
          name={field.name}
          multiple={max > 1}
          accept={(field.mimeTypes || []).join(',') || undefined}
          onChange={(e) => {
            onAdd([...added, ...Array.from(e.currentTarget.files || [])].slice(0, max));
            e.currentTarget.value = '';
          }}
        />
      )}
    </div>
  );
}

function JsonInput({ value, onChange, name, setInvalid }: any) {
  const [text, setText] = useState(() => (value === undefined || value === null ? '' : JSON.stringify(value, null, 2)));
  const [err, setErr] = useState('');
  return (
    <>
      <textarea
        class="code"
        name={name}
        rows={5}
        value={text}
        onInput={(e) => {
          const t = e.currentTarget.value;
          setText(t);
          try {
            onChange(t.trim() ? JSON.parse(t) : null);
            setErr('');
            setInvalid(false);
          } catch (x: any) {
            setErr('Invalid JSON: ' + x.message);
            setInvalid(true);
          }
        }}
      />
      {err && <small class="error">{err}</small>}
    </>
  );
}

/** Impersonate: a non-refreshable token of this auth record for a chosen duration, shown with copy. */
function ImpersonateModal({ coll, id, onClose }: { coll: Collection; id: string; onClose: () => void }) {
  const [duration, setDuration] = useState('');
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const generate = async (e: Event) => {
    e.preventDefault();
    // this dialog renders inside the editor's form: its submit must not save the record
    e.stopPropagation();
    setBusy(true);
    setError('');
    try {
      const client = await pb.collection(coll.name).impersonate(id, Number(duration) || 0, { requestKey: null });
      setToken(client.authStore.token);
    } catch (err) {
      setError(errMessage(err));
    } finally {
      setBusy(false);
    }
  };
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(token);
      toast('Token copied.');
    } catch {
      toast('Copying is not allowed here: select the token and copy it.', 'err');
    }
  };
  return (
    <Modal title="Impersonate" onClose={onClose} class="impersonate">
      <form onSubmit={generate}>
        <p class="muted">A token that acts as this record. It cannot be refreshed; anyone holding it is this user until it expires.</p>
        <Labeled label="Token duration in seconds" hint={`Empty or 0: the collection's auth token duration (${coll.authToken?.duration ?? '?'} s).`}>
          <input name="impersonateDuration" type="number" min={0} placeholder="0" value={duration} onInput={(e) => setDuration(e.currentTarget.value)} />
        </Labeled>
        {error && <p class="error">{error}</p>}
        <div class="actions">
          <button class="btn primary" disabled={busy}>
            {token ? 'Generate a new token' : 'Generate token'}
          </button>
        </div>
      </form>
      {token && (
        <>
          <Labeled label="Token">
            <textarea class="code" readOnly rows={4} value={token} name="impersonateToken" onFocus={(e) => e.currentTarget.select()} />
          </Labeled>
          <div class="actions">
            <button type="button" class="btn" onClick={copy}>
              Copy
            </button>
          </div>
        </>
      )}
    </Modal>
  );
}

export function RecordEditor({ coll, id, onClose, onSaved }: { coll: Collection; id: string; onClose: () => void; onSaved: () => void }) {
  const [rec, setRec] = useState<any>(id ? null : {});
  const [data, setData] = useState<any>({});
  const [added, setAdded] = useState<Record<string, File[]>>({});
  const [removed, setRemoved] = useState<Record<string, string[]>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [invalid, setInvalid] = useState<Record<string, boolean>>({});
  const [dirty, setDirty] = useState(false);
  const [busy, setBusy] = useState(false);
  const [changePassword, setChangePassword] = useState(!id);
  const [impersonating, setImpersonating] = useState(false);
  const [externals, setExternals] = useState<any[]>([]);
  useDirtyGuard(dirty);
  const isAuth = coll.type === 'auth';

  useEffect(() => {
    if (!id) {
      const init: any = {};
      for (const f of coll.fields) {
        if (f.type === 'bool') init[f.name] = false;
        if (f.type === 'geoPoint') init[f.name] = { lon: 0, lat: 0 };
      }
      setData(init);
      return;
    }
    pb.collection(coll.name)
      .getOne(id, { requestKey: null })
      .then((r) => {
        setRec(r);
        setData(structuredClone(r));
      }, (e) => {
        toast(errMessage(e), 'err');
        onClose();
      });
    if (isAuth)
      pb.collection('_externalAuths')
        .getFullList({ filter: pb.filter('recordRef = {:r} && collectionRef = {:c}', { r: id, c: coll.id }), requestKey: null })
        .then(setExternals, () => {});
  }, [id]);

  const set = (name: string, v: any) => {
    setData((d: any) => ({ ...d, [name]: v }));
    setDirty(true);
  };
  const close = async () => {
    if (await confirmDiscard(dirty)) onClose();
  };

  const save = async (e?: Event) => {
    e?.preventDefault();
    if (Object.values(invalid).some(Boolean)) return toast('Fix the invalid JSON first.', 'err');
    setBusy(true);
    setErrors({});
    try {
      const body: any = {};
      for (const f of coll.fields) {
        if (f.type === 'autodate' || (f.name === 'id' && id)) continue;
        if (f.type === 'password') {
          if (changePassword && data.password) {
            body.password = data.password;
            body.passwordConfirm = data.passwordConfirm || '';
          }
          continue;
        }
        if (f.name === 'tokenKey') continue;
        if (f.type === 'file') {
          const newFiles = added[f.name] || [];
          const gone = removed[f.name] || [];
          if (id) {
            if (newFiles.length) body[(f.maxSelect || 1) > 1 ? f.name + '+' : f.name] = newFiles;
            if (gone.length) body[f.name + '-'] = gone;
          } else if (newFiles.length) body[f.name] = newFiles;
          continue;
        }
        if (f.name === 'id' && !data.id) continue;
        if (data[f.name] !== undefined) body[f.name] = data[f.name];
      }
      const saved = id ? await pb.collection(coll.name).update(id, body) : await pb.collection(coll.name).create(body);
      toast(id ? 'Record updated.' : 'Record created.');
      setDirty(false);
      onSaved();
      allowLeave();
      if (!id) onClose();
      else {
        setRec(saved);
        setData(structuredClone(saved));
        setAdded({});
        setRemoved({});
      }
    } catch (err) {
      setErrors(fieldErrors(err));
      toast(errMessage(err), 'err');
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key === 's') {
        e.preventDefault();
        save();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  const del = async () => {
    if (!(await confirmDialog('Delete this record?', 'Delete'))) return;
    try {
      await pb.collection(coll.name).delete(id);
      toast('Record deleted.');
      setDirty(false);
      allowLeave();
      onSaved();
      onClose();
    } catch (e) {
      toast(errMessage(e), 'err');
    }
  };
  const action = async (fn: () => Promise<any>, ok: string) => {
    try {
      await fn();
      toast(ok);
    } catch (e) {
      toast(errMessage(e), 'err');
    }
  };

  const input = (f: Field) => {
    const v = data[f.name];
    const common = { name: f.name, 'aria-label': f.name };
    switch (f.type) {
      case 'bool':
        return <Toggle name={f.name} label={f.name} checked={!!v} onChange={(x) => set(f.name, x)} />;
      case 'number':
        return <input {...common} type="number" step={f.onlyInt ? 1 : 'any'} value={v ?? ''} onInput={(e) => set(f.name, e.currentTarget.value === '' ? null : Number(e.currentTarget.value))} />;
      case 'email':
        return <input {...common} type="email" value={v ?? ''} onInput={(e) => set(f.name, e.currentTarget.value)} />;
      case 'url':
        return <input {...common} type="url" value={v ?? ''} onInput={(e) => set(f.name, e.currentTarget.value)} />;
      case 'editor':
        return <RichText name={f.name} value={v ?? ''} onChange={(x) => set(f.name, x)} />;
      case 'date':
        return (
          <div class="row">
            <input {...common} type="datetime-local" step="1" value={toLocalInput(v)} onInput={(e) => set(f.name, fromLocalInput(e.currentTarget.value))} />
            <span class="muted">UTC</span>
            {v && (
              <button type="button" class="btn small" onClick={() => set(f.name, '')}>
                Clear
              </button>
            )}
          </div>
        );
      case 'autodate':
        return <input {...common} disabled value={fmtDate(v || '')} placeholder="Auto" />;
      case 'select': {
        const values: string[] = f.values || [];
        if ((f.maxSelect || 1) > 1) {
          const cur: string[] = Array.isArray(v) ? v : [];
          return (
            <div class="checks" data-field={f.name}>
              {values.map((o) => (
                <Toggle key={o} label={o} checked={cur.includes(o)} onChange={(on) => set(f.name, on ? [...cur, o] : cur.filter((x) => x !== o))} />
              ))}
            </div>
          );
        }
        return (
          <select {...common} value={v ?? ''} onChange={(e) => set(f.name, e.currentTarget.value)}>
            <option value="">- none -</option>
            {values.map((o) => (
              <option key={o}>{o}</option>
            ))}
          </select>
        );
      }
      case 'json':
        return <JsonInput name={f.name} value={v} onChange={(x: any) => set(f.name, x)} setInvalid={(b: boolean) => setInvalid((s) => ({ ...s, [f.name]: b }))} />;
      case 'file': {
        const existing: string[] = rec ? (Array.isArray(rec[f.name]) ? rec[f.name] : rec[f.name] ? [rec[f.name]] : []) : [];
        return (
          <FileInput
            field={f}
            rec={rec}
            existing={existing}
            removed={removed[f.name] || []}
            added={added[f.name] || []}
            onRemove={(n: string) => {
              const cur = removed[f.name] || [];
              setRemoved({ ...removed, [f.name]: cur.includes(n) ? cur.filter((x) => x !== n) : [...cur, n] });
              setDirty(true);
            }}
            onAdd={(files: File[]) => {
              setAdded({ ...added, [f.name]: files });
              setDirty(true);
            }}
          />
        );
      }
      case 'relation': {
        const cur: string[] = Array.isArray(v) ? v : v ? [v] : [];
        return <RelationPicker field={f} value={cur} onChange={(ids) => set(f.name, (f.maxSelect || 1) > 1 ? ids : ids[0] || '')} />;
      }
      case 'geoPoint': {
        const p = v || { lon: 0, lat: 0 };
        return (
          <div class="row" data-field={f.name}>
            <label class="inline">
              Lon <input type="number" step="any" min={-180} max={180} name={`${f.name}.lon`} value={p.lon} onInput={(e) => set(f.name, { ...p, lon: Number(e.currentTarget.value) })} />
            </label>
            <label class="inline">
              Lat <input type="number" step="any" min={-90} max={90} name={`${f.name}.lat`} value={p.lat} onInput={(e) => set(f.name, { ...p, lat: Number(e.currentTarget.value) })} />
            </label>
          </div>
        );
      }
      default:
        return <input {...common} value={v ?? ''} placeholder={f.autogeneratePattern ? 'Leave empty to autogenerate' : ''} onInput={(e) => set(f.name, e.currentTarget.value)} />;
    }
  };

  const fields = coll.fields.filter((f) => !(isAuth && AUTH_SPECIAL.includes(f.name)) && !(f.name === 'id' && id));
  const footer = (
    <EditorFooter form="record-form" isNew={!id} busy={busy} onCancel={close}>
      {id && (
        <button class="btn danger" type="button" onClick={del}>
          Delete
        </button>
      )}
    </EditorFooter>
  );
  return (
    <Modal panel title={id ? `Edit ${coll.name} record` : `New ${coll.name} record`} onClose={close} footer={footer}>
      {!rec ? (
        <Spinner />
      ) : (
        <form id="record-form" onSubmit={save} class="form">
          {id && (
            <Labeled label="id">
              <input value={id} readOnly name="id" />
            </Labeled>
          )}
          {isAuth && (
            <fieldset class="auth-box">
              <Labeled label="email" error={errors.email}>
                <input name="email" type="email" value={data.email ?? ''} onInput={(e) => set('email', e.currentTarget.value)} />
              </Labeled>
              {coll.name !== '_superusers' && <Toggle name="emailVisibility" label="Public email" checked={!!data.emailVisibility} onChange={(x) => set('emailVisibility', x)} />}
              <Toggle name="verified" label="Verified" checked={!!data.verified} onChange={(x) => set('verified', x)} />
              {id && <Toggle label="Change password" checked={changePassword} onChange={setChangePassword} />}
              {changePassword && (
                <div class="row">
                  <Labeled label="password" error={errors.password}>
                    <input name="password" type="text" autoComplete="new-password" value={data.password ?? ''} onInput={(e) => set('password', e.currentTarget.value)} />
                  </Labeled>
                  <Labeled label="password confirm" error={errors.passwordConfirm}>
                    <input name="passwordConfirm" type="text" value={data.passwordConfirm ?? ''} onInput={(e) => set('passwordConfirm', e.currentTarget.value)} />
                  </Labeled>
                  <button
                    type="button"
                    class="btn small"
                    onClick={() => {
                      const p = randomString(16);
                      setData((d: any) => ({ ...d, password: p, passwordConfirm: p }));
                      setDirty(true);
                    }}
                  >
                    Random
                  </button>
                </div>
              )}
              {id && (
                <div class="row wrap">
                  {!data.verified && (
                    <button type="button" class="btn small" onClick={() => action(() => pb.collection(coll.name).requestVerification(data.email), 'Verification email sent.')}>
                      Send verification email
                    </button>
                  )}
                  <button type="button" class="btn small" onClick={() => action(() => pb.collection(coll.name).requestPasswordReset(data.email), 'Password reset email sent.')}>
                    Send password reset email
                  </button>
                  <button type="button" class="btn small" onClick={() => setImpersonating(true)}>
                    Impersonate
                  </button>
                </div>
              )}
              {impersonating && <ImpersonateModal coll={coll} id={id} onClose={() => setImpersonating(false)} />}
              {id && coll.name !== '_superusers' && (
                <div class="external-auths">
                  <span class="label">External auths</span>
                  {externals.length ? (
                    <ul class="plain">
                      {externals.map((x) => (
                        <li key={x.id}>
                          {x.provider}: {x.providerId}{' '}
                          <button
                            type="button"
                            class="btn small danger"
                            onClick={async () => {
                              if (await confirmDialog(`Unlink ${x.provider}?`, 'Unlink')) {
                                await action(() => pb.collection(coll.name).unlinkExternalAuth(id, x.provider), 'Unlinked.');
                                setExternals(externals.filter((y) => y.id !== x.id));
                              }
                            }}
                          >
                            Unlink
                          </button>
                        </li>
                      ))}
                    </ul>
                  ) : (
                    <p class="muted">No linked OAuth2 providers.</p>
                  )}
                </div>
              )}
            </fieldset>
          )}
          {fields.map((f) => (
            <Labeled
              key={f.name}
              label={
                <>
                  <span class={`ftype t-${f.type}`}>{f.type}</span> {f.name}
                  {f.required && <span class="req">*</span>}
                </>
              }
              error={errors[f.name]}
            >
              {input(f)}
            </Labeled>
          ))}
          {id && (
            <p class="muted small">
              <button type="button" class="btn link small" onClick={() => navigator.clipboard?.writeText(JSON.stringify(rec, null, 2)).then(() => toast('Copied JSON.'))}>
                Copy raw JSON
              </button>{' '}
              Ctrl+S saves.
            </p>
          )}
        </form>
      )}
      {linkDialog.value && <LinkDialog onInsert={linkDialog.value} onClose={() => (linkDialog.value = null)} />}
    </Modal>
  );
}
