// An API rule input: locked (null, superusers only) or an expression, with autocomplete of the
// collection's fields and the @request/@collection macros.
import { useMemo, useRef, useState } from 'preact/hooks';
import { Collection } from '../api';
import { collections } from '../store';

const MACROS = ['@now', '@second', '@minute', '@hour', '@weekday', '@day', '@month', '@year', '@yesterday', '@tomorrow', '@todayStart', '@todayEnd', '@monthStart', '@monthEnd', '@yearStart', '@yearEnd'];

export function ruleSuggestions(coll: Collection): string[] {
  const names = coll.fields.map((f) => f.name);
  const out = [...names, ...MACROS, '@request.method', '@request.context', '@request.auth.id', '@request.auth.collectionName', '@request.auth.collectionId'];
  const auth = collections.value.find((c) => c.name === 'users') || collections.value.find((c) => c.type === 'auth' && !c.system);
  for (const f of auth?.fields || []) if (!f.hidden) out.push(`@request.auth.${f.name}`);
  for (const n of names) out.push(`@request.body.${n}`, `@request.body.${n}:isset`, `@request.body.${n}:changed`);
  out.push('@request.query.', '@request.headers.');
  for (const c of collections.value) {
    if (c.system) continue;
    for (const f of c.fields) out.push(`@collection.${c.name}.${f.name}`);
  }
  for (const f of coll.fields) if (f.type === 'relation' || f.type === 'select' || f.type === 'file') out.push(`${f.name}:length`, `${f.name}:each`);
  return Array.from(new Set(out));
}

export function RuleInput(props: { label: string; name: string; value: string | null; onChange: (v: string | null) => void; coll: Collection; error?: string; hint?: string }) {
  const [open, setOpen] = useState(false);
  const [word, setWord] = useState('');
  const [active, setActive] = useState(0);
  const ref = useRef<HTMLTextAreaElement>(null);
  const all = useMemo(() => ruleSuggestions(props.coll), [props.coll, collections.value]);
  const matches = word ? all.filter((s) => s.toLowerCase().startsWith(word.toLowerCase()) && s !== word).slice(0, 8) : [];
  const locked = props.value === null;

  const updateWord = () => {
    const el = ref.current!;
    const before = el.value.slice(0, el.selectionStart ?? el.value.length);
    const m = before.match(/[@\w.:]+$/);
    setWord(m ? m[0] : '');
    setActive(0);
    setOpen(true);
  };
  const accept = (s: string) => {
    const el = ref.current!;
    const pos = el.selectionStart ?? el.value.length;
    const start = pos - word.length;
    const next = el.value.slice(0, start) + s + el.value.slice(pos);
    props.onChange(next);
    setOpen(false);
    requestAnimationFrame(() => {
      el.focus();
      el.selectionStart = el.selectionEnd = start + s.length;
    });
  };
  return (
    <div class={`rule field ${props.error ? 'has-error' : ''}`}>
      <div class="rule-head">
        <span class="label">{props.label}</span>
        <button type="button" class="btn small" onClick={() => props.onChange(locked ? '' : null)}>
          {locked ? 'Unlock (superusers only now)' : 'Set superusers only'}
        </button>
      </div>
      {locked ? (
        <div class="locked muted">Only superusers can perform this action.</div>
      ) : (
        <div class="ac-wrap">
          <textarea
            ref={ref}
            class="code"
            rows={1}
            name={props.name}
            placeholder='Leave empty to grant everyone access; e.g. @request.auth.id != ""'
            value={props.value ?? ''}
            onInput={(e) => {
              props.onChange(e.currentTarget.value);
              updateWord();
            }}
            onBlur={() => setTimeout(() => setOpen(false), 150)}
            onKeyDown={(e) => {
              if (!open || !matches.length) return;
              if (e.key === 'ArrowDown') {
                e.preventDefault();
                setActive((active + 1) % matches.length);
              } else if (e.key === 'ArrowUp') {
                e.preventDefault();
                setActive((active - 1 + matches.length) % matches.length);
              } else if (e.key === 'Enter' || e.key === 'Tab') {
                e.preventDefault();
                accept(matches[active]);
              } else if (e.key === 'Escape') {
                e.stopPropagation();
                setOpen(false);
              }
            }}
          />
          {open && matches.length > 0 && (
            <ul class="ac" role="listbox">
              {matches.map((m, i) => (
                <li key={m} role="option" aria-selected={i === active} class={i === active ? 'on' : ''} onMouseDown={(e) => (e.preventDefault(), accept(m))}>
                  {m}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      {props.hint && <small class="hint">{props.hint}</small>}
      {props.error && <small class="error">{props.error}</small>}
    </div>
  );
}
