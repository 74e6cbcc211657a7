// Shared state: the collections list (sidebar and editors) and the hash route.
import { signal } from '@preact/signals';
import { pb, Collection } from './api';

export const collections = signal<Collection[]>([]);

export async function loadCollections() {
  collections.value = (await pb.collections.getFullList({ sort: 'name', batch: 500 })) as any;
  return collections.value;
}

export function byIdOrName(key: string): Collection | undefined {
  return collections.value.find((c) => c.id === key || c.name === key);
}

export const route = signal<string>(location.hash.slice(1) || '/');
window.addEventListener('hashchange', () => (route.value = location.hash.slice(1) || '/'));

export function navigate(path: string) {
  if (location.hash.slice(1) !== path) location.hash = path;
}
