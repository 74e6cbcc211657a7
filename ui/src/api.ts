// The one PocketBase client of the dashboard. It talks only to the public Web API of the server
// that served the page, or of `?api=http://127.0.0.1:PORT` (kept for the session) so the same
// build can administer a PocketBase started elsewhere on this machine.
import PocketBase, { LocalAuthStore, ClientResponseError } from 'pocketbase';

function apiBase(): string {
  const q = new URLSearchParams(location.search).get('api');
  if (q) sessionStorage.setItem('pbun_api', q);
  return q || sessionStorage.getItem('pbun_api') || location.origin;
}

export const pb = new PocketBase(apiBase(), new LocalAuthStore('pbun_superuser_auth'));
pb.autoCancellation(false);

export type Field = Record<string, any> & { id?: string; name: string; type: string };
export type Collection = Record<string, any> & {
  id: string;
  name: string;
  type: 'base' | 'auth' | 'view';
  fields: Field[];
  system?: boolean;
};

/** The message of an API error, with the first field error when there is one. */
export function errMessage(e: any): string {
  if (e instanceof ClientResponseError || e?.response) {
    const data = e.response?.data || {};
    const first = Object.entries(data)[0] as [string, any] | undefined;
    const base = e.response?.message || e.message || 'Request failed.';
    if (first && first[1]?.message) return `${base} ${first[0]}: ${first[1].message}`;
    return base;
  }
  return String(e?.message || e);
}

/** Field errors of an API error as `{name: message}` (nested keys joined with dots). */
export function fieldErrors(e: any): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (obj: any, prefix: string) => {
    for (const [k, v] of Object.entries(obj || {})) {
      const key = prefix ? `${prefix}.${k}` : k;
      if (v && typeof v === 'object' && 'message' in (v as any) && 'code' in (v as any)) out[key] = (v as any).message;
      else if (v && typeof v === 'object') walk(v, key);
    }
  };
  walk(e?.response?.data, '');
  return out;
}

export function isSuperuser(): boolean {
  return pb.authStore.isValid && pb.authStore.record?.collectionName === '_superusers';
}

/** Refreshes the superuser token when it expires within 30 minutes (checked every minute). */
export function keepTokenFresh() {
  const tick = async () => {
    if (!pb.authStore.isValid) return;
    try {
      const payload = JSON.parse(atob(pb.authStore.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
      if (payload.refreshable === false) return;
      if (payload.exp * 1000 - Date.now() < 30 * 60 * 1000) await pb.collection('_superusers').authRefresh();
    } catch {
      /* a failed refresh leaves the token to expire; the next request will send the user to sign-in */
    }
  };
  setInterval(tick, 60_000);
  return tick();
}

export function randomString(n: number): string {
  const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const buf = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(buf, (b) => chars[b % chars.length]).join('');
}

/**
 * Runs `start` (a backup restore) and resolves once the restarted server answers again. The
 * realtime stream drops when the server process restarts and comes back with a new client id:
 * that, not a timer, tells when the restored server is up; `/api/health` then confirms it.
 */
export async function untilRestarted(start: () => Promise<any>) {
  await pb.realtime.subscribe('PB_CONNECT', () => {});
  const before = pb.realtime.clientId;
  const restarted = new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      if (pb.realtime.clientId && pb.realtime.clientId !== before) {
        clearInterval(tick);
        resolve();
      }
    }, 100);
    setTimeout(() => (clearInterval(tick), resolve()), 60_000);
  });
  await start();
  await restarted;
  for (let i = 0; i < 60; i++) {
    try {
      const r = await fetch(pb.buildURL('/api/health'), { cache: 'no-store' });
      if (r.ok) return;
    } catch {
      /* still restarting */
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
