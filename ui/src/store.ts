// Shared state: the collections list (sidebar and editors) and the hash route.
import { signal } from '@preact/signals';
import { pb, Collection } from './api';
import { mayLeave } from './ui';

export const collections = signal<Collection[]>([]);

export async function loadCollections() {
  collections.value = (await pb.collections.getFullList({ sort: 'name', batch: 500 })) as any;
  return collections.value;
}

export function byIdOrName(key: string): Collection | undefined {
  return collections.value.find((c) => c.id === key || c.name === key);
}

export const route = signal<string>(location.hash.slice(1) || '/');
let current = location.hash;
window.addEventListener('hashchange', async () => {
  const target = location.hash;
  if (target === current) return;
  // a link or Back while a form has unsaved changes: stay until the user agrees to leave
  history.replaceState(null, '', current || '#/');
  if (!(await mayLeave())) return;
  current = target;
  history.replaceState(null, '', target);
  route.value = target.slice(1) || '/';
});

export function navigate(path: string) {
  if (location.hash.slice(1) !== path) location.hash = path;
}

/** `meta.hideControls` of the settings: hides the collection create/edit controls. */
export const hideControls = signal(false);
export async function loadMeta() {
  const s: any = await pb.settings.getAll({ fields: 'meta', requestKey: null });
  hideControls.value = !!s?.meta?.hideControls;
  if (s?.meta?.appName) document.title = `${s.meta.appName} - PocketBun`;
}
