// Small shared widgets: toasts, the confirmation dialog, modals/panels, labelled inputs, and the
// dirty-form guard used by every editor.
import { signal } from '@preact/signals';
import { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useRef } from 'preact/hooks';

type Toast = { id: number; kind: 'ok' | 'err'; text: string };
const toasts = signal<Toast[]>([]);
let toastSeq = 0;

export function toast(text: string, kind: 'ok' | 'err' = 'ok') {
  const id = ++toastSeq;
  toasts.value = [...toasts.value, { id, kind, text }];
  setTimeout(() => (toasts.value = toasts.value.filter((t) => t.id !== id)), kind === 'err' ? 6000 : 3000);
}

export function Toasts() {
  return (
    <div class="toasts" role="status" aria-live="polite">
      {toasts.value.map((t) => (
        <div key={t.id} class={`toast ${t.kind}`} onClick={() => (toasts.value = toasts.value.filter((x) => x.id !== t.id))}>
          {t.text}
        </div>
      ))}
    </div>
  );
}

type Ask = { text: string; yes: string; danger: boolean; resolve: (ok: boolean) => void };
const asking = signal<Ask | null>(null);

/** Asks before a destructive or lossy action; resolves true on confirmation. */
export function confirmDialog(text: string, yes = 'Yes', danger = true): Promise<boolean> {
  return new Promise((resolve) => (asking.value = { text, yes, danger, resolve }));
}

export function ConfirmHost() {
  const a = asking.value;
  const yesRef = useRef<HTMLButtonElement>(null);
  useEffect(() => yesRef.current?.focus(), [a]);
  if (!a) return null;
  const done = (ok: boolean) => {
    asking.value = null;
    a.resolve(ok);
  };
  return (
    <Modal title="Confirm" onClose={() => done(false)} small>
      <p class="confirm-text">{a.text}</p>
      <div class="actions">
        <button class="btn" onClick={() => done(false)}>
          No
        </button>
        <button ref={yesRef} class={`btn ${a.danger ? 'danger' : 'primary'}`} onClick={() => done(true)}>
          {a.yes}
        </button>
      </div>
    </Modal>
  );
}

/** A modal dialog (or, with `panel`, a side panel); Escape and the backdrop close it. */
export function Modal(props: {
  title: ComponentChildren;
  onClose: () => void;
  children: ComponentChildren;
  small?: boolean;
  panel?: boolean;
  footer?: ComponentChildren;
  class?: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  // the latest onClose (it closes over the form's current dirty state)
  const onClose = useRef(props.onClose);
  onClose.current = props.onClose;
  // a layout effect: Escape works from the first painted frame (a plain effect runs after
  // paint, and a key pressed in between was lost)
  useLayoutEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        // only the topmost dialog answers
        const all = document.querySelectorAll('.overlay');
        if (all[all.length - 1] === ref.current?.parentElement) {
          e.stopPropagation();
          onClose.current();
        }
      }
    };
    window.addEventListener('keydown', onKey);
    const first = ref.current?.querySelector<HTMLElement>('input,textarea,select,[contenteditable]');
    first?.focus();
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  return (
    <div class="overlay" onMouseDown={(e) => e.target === e.currentTarget && props.onClose()}>
      <div ref={ref} class={`modal ${props.small ? 'small' : ''} ${props.panel ? 'panel' : ''} ${props.class || ''}`} role="dialog" aria-modal="true">
        <header>
          <h2>{props.title}</h2>
          <button class="btn icon" aria-label="Close" onClick={props.onClose}>
            ×
          </button>
        </header>
        <div class="modal-body">{props.children}</div>
        {props.footer && <footer>{props.footer}</footer>}
      </div>
    </div>
  );
}

export function Labeled(props: { label: ComponentChildren; error?: string; children: ComponentChildren; hint?: ComponentChildren; class?: string }) {
  return (
    <label class={`field ${props.error ? 'has-error' : ''} ${props.class || ''}`}>
      <span class="label">{props.label}</span>
      {props.children}
      {props.hint && <small class="hint">{props.hint}</small>}
      {props.error && <small class="error">{props.error}</small>}
    </label>
  );
}

export function Toggle(props: { label: ComponentChildren; checked: boolean; onChange: (v: boolean) => void; name?: string }) {
  return (
    <label class="toggle">
      <input type="checkbox" name={props.name} checked={!!props.checked} onChange={(e) => props.onChange((e.target as HTMLInputElement).checked)} />
      <span>{props.label}</span>
    </label>
  );
}

/** Deep path get/set on plain objects ("a.b.c"). */
export function getPath(obj: any, path: string) {
  return path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
}
export function setPath<T>(obj: T, path: string, value: any): T {
  const copy: any = structuredClone(obj);
  const keys = path.split('.');
  let o = copy;
  for (const k of keys.slice(0, -1)) o = o[k] ??= {};
  o[keys[keys.length - 1]] = value;
  return copy;
}

// the mounted forms with unsaved changes; kept during render (not in an effect, which runs
// after paint) so that a route change right after a keystroke already sees the form dirty
const dirtyForms = new Set<object>();
/** Marks a form dirty while `dirty` is true: leaving the page asks first. */
export function useDirtyGuard(dirty: boolean) {
  const key = useRef({}).current;
  if (dirty) dirtyForms.add(key);
  else dirtyForms.delete(key);
  useEffect(() => () => void dirtyForms.delete(key), []);
}
window.addEventListener('beforeunload', (e) => {
  if (dirtyForms.size > 0) e.preventDefault();
});
let leaveOnce = false;
/** The next route change may leave a dirty form without asking (it was saved or discarded). */
export function allowLeave() {
  leaveOnce = true;
}
/** Called on a route change: whether it may go on (asks when a form is dirty). */
export async function mayLeave(): Promise<boolean> {
  const ok = leaveOnce || dirtyForms.size === 0 || (await confirmDialog('You have unsaved changes. Leave and discard them?', 'Leave'));
  leaveOnce = false;
  return ok;
}
export async function confirmDiscard(dirty: boolean): Promise<boolean> {
  const ok = !dirty || (await confirmDialog('You have unsaved changes. Discard them?', 'Discard'));
  if (ok) allowLeave();
  return ok;
}

export function fmtDate(s: string) {
  if (!s) return '';
  return s.replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
}

/** The footer of a paged list: total, Prev/Next, and optionally "Page n / m". */
export function Pager(props: { total: number; page: number; pages: number; setPage: (p: number) => void; showPage?: boolean }) {
  const { total, page, pages, setPage } = props;
  return (
    <footer class="pager">
      <span class="muted">Total found: {total}</span>
      <span class="grow" />
      <button class="btn" disabled={page <= 1} onClick={() => setPage(page - 1)}>
        ‹ Prev
      </button>
      {props.showPage && (
        <span>
          Page {page} / {pages}
        </span>
      )}
      <button class="btn" disabled={page >= pages} onClick={() => setPage(page + 1)}>
        Next ›
      </button>
    </footer>
  );
}

/** A list page's search bar: submitting goes back to page 1 and applies what was typed. */
export function SearchBar(props: { onSearch: () => void; setPage: (p: number) => void; children: ComponentChildren }) {
  return (
    <form
      class="searchbar"
      onSubmit={(e) => {
        e.preventDefault();
        props.setPage(1);
        props.onSearch();
      }}
    >
      {props.children}
    </form>
  );
}

/** An editor panel's footer: the page's own buttons (e.g. Delete), then Cancel and the
 *  submit button of the form `form` ("Create" for a new item, else "Save changes"). */
export function EditorFooter(props: { form: string; isNew: boolean; busy: boolean; onCancel: () => void; children?: ComponentChildren }) {
  return (
    <>
      {props.children}
      <span class="grow" />
      <button type="button" class="btn" onClick={props.onCancel}>
        Cancel
      </button>
      <button type="submit" form={props.form} class="btn primary" disabled={props.busy}>
        {props.isNew ? 'Create' : 'Save changes'}
      </button>
    </>
  );
}

export function Spinner() {
  return <span class="spinner" aria-label="Loading" />;
}
