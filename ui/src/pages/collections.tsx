// The collections section: sidebar (search, pins, collapsible System group) and the routes
// #/collections/{name}[/edit|/api|/records/{id}|/records/new], #/collections/new.
import { useState } from 'preact/hooks';
import { collections, byIdOrName, navigate, hideControls } from '../store';
import { RecordsView } from './records';
import { CollectionEditor } from './collection-editor';

function usePins() {
  const [pins, setPins] = useState<string[]>(() => JSON.parse(localStorage.getItem('pbun_pins') || '[]'));
  const toggle = (id: string) => {
    const next = pins.includes(id) ? pins.filter((p) => p !== id) : [...pins, id];
    localStorage.setItem('pbun_pins', JSON.stringify(next));
    setPins(next);
  };
  return [pins, toggle] as const;
}

function Sidebar({ active }: { active?: string }) {
  const [q, setQ] = useState('');
  const [pins, togglePin] = usePins();
  const [systemOpen, setSystemOpen] = useState(() => localStorage.getItem('pbun_system_open') === '1');
  const all = collections.value.filter((c) => !q || c.name.toLowerCase().includes(q.toLowerCase()));
  const pinned = all.filter((c) => pins.includes(c.id));
  const rest = all.filter((c) => !pins.includes(c.id) && !c.system);
  const system = all.filter((c) => !pins.includes(c.id) && c.system);
  const item = (c: any) => (
    <li key={c.id} class={active === c.name ? 'active' : ''}>
      <a href={`#/collections/${c.name}`} data-collection={c.name}>
        <span class={`ctype ${c.type}`}>{c.type[0].toUpperCase()}</span>
        {c.name}
      </a>
      <button class={`pin ${pins.includes(c.id) ? 'on' : ''}`} title={pins.includes(c.id) ? 'Unpin' : 'Pin'} aria-label={`Pin ${c.name}`} onClick={() => togglePin(c.id)}>
        ★
      </button>
    </li>
  );
  return (
    <aside class="sidebar">
      <input class="search" type="search" placeholder="Search collections…" value={q} onInput={(e) => setQ(e.currentTarget.value)} aria-label="Search collections" />
      {pinned.length > 0 && (
        <>
          <h4>Pinned</h4>
          <ul>{pinned.map(item)}</ul>
        </>
      )}
      <ul>{rest.map(item)}</ul>
      {q && !all.length && <p class="muted empty-search">No collections found.</p>}
      {system.length > 0 && (
        <>
          <button
            class="btn link group-toggle"
            aria-expanded={systemOpen || !!q}
            onClick={() => {
              localStorage.setItem('pbun_system_open', systemOpen ? '0' : '1');
              setSystemOpen(!systemOpen);
            }}
          >
            {systemOpen || q ? '▾' : '▸'} System
          </button>
          {(systemOpen || q) && <ul>{system.map(item)}</ul>}
        </>
      )}
      {!hideControls.value && (
        <button class="btn block" onClick={() => navigate('/collections/new')}>
          + New collection
        </button>
      )}
    </aside>
  );
}

export function CollectionsPage({ path }: { path: string }) {
  const parts = path.split('/').slice(2); // after "/collections"
  const name = parts[0] && parts[0] !== 'new' ? decodeURIComponent(parts[0]) : '';
  const coll = name ? byIdOrName(name) : undefined;
  if (!name && parts[0] !== 'new' && collections.value.length) {
    const last = localStorage.getItem('pbun_last_collection');
    const pick = byIdOrName(last || '') || collections.value.find((c) => !c.system);
    if (pick) setTimeout(() => navigate(`/collections/${pick.name}`));
  }
  return (
    <>
      <Sidebar active={coll?.name} />
      <main class="main">
        {coll ? (
          <RecordsView key={coll.id} coll={coll} sub={parts.slice(1)} />
        ) : name && collections.value.length ? (
          <div class="empty">
            Collection “{name}” not found. <a href="#/collections">Back</a>
          </div>
        ) : (
          <div class="empty">
            <h2>Collections</h2>
            <p>Create a collection to start storing data.</p>
            <button class="btn primary" onClick={() => navigate('/collections/new')}>
              + New collection
            </button>
          </div>
        )}
      </main>
      {parts[0] === 'new' && <CollectionEditor onClose={() => history.back()} />}
    </>
  );
}
