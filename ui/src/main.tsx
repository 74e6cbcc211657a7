// Entry: hash routing (every page has its own deep link), the sign-in gate, and the app shell.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { pb, isSuperuser, keepTokenFresh } from './api';
import { route, navigate, loadCollections, loadMeta } from './store';
import { Toasts, ConfirmHost, toast } from './ui';
import { Login, Install } from './pages/auth';
import { CollectionsPage } from './pages/collections';
import { LogsPage } from './pages/logs';
import { SettingsPage } from './pages/settings';
import './style.css';

function Shell() {
  const r = route.value;
  const [authed, setAuthed] = useState(isSuperuser());
  useEffect(() => pb.authStore.onChange(() => setAuthed(isSuperuser())), []);
  useEffect(() => {
    if (authed) {
      // this browser has seen a superuser: the sign-in page drops its first-run hint
      localStorage.setItem('pbun_signed_in', '1');
      loadCollections().catch((e) => toast(String(e?.message || e), 'err'));
      loadMeta().catch(() => {});
    }
  }, [authed]);

  if (r.startsWith('/pbinstall/')) return <Install token={r.slice('/pbinstall/'.length)} />;
  if (!authed) {
    if (r !== '/login') setTimeout(() => navigate('/login'));
    return <Login />;
  }
  if (r === '/login' || r === '/') {
    setTimeout(() => navigate('/collections'));
    return null;
  }
  const section = r.split('/')[1];
  const user = pb.authStore.record;
  return (
    <div class="shell">
      <nav class="rail" aria-label="Main">
        <a class="logo" href="#/collections" title="PocketBun">
          PB
        </a>
        <a href="#/collections" class={section === 'collections' ? 'active' : ''}>
          Collections
        </a>
        <a href="#/logs" class={section === 'logs' ? 'active' : ''}>
          Logs
        </a>
        <a href="#/settings" class={section === 'settings' ? 'active' : ''}>
          Settings
        </a>
        <span class="grow" />
        <button
          class="btn link"
          title={user?.email}
          onClick={() => {
            pb.authStore.clear();
            navigate('/login');
          }}
        >
          Sign out
        </button>
      </nav>
      {section === 'logs' ? <LogsPage path={r} /> : section === 'settings' ? <SettingsPage path={r} /> : <CollectionsPage path={r} />}
    </div>
  );
}

function App() {
  return (
    <>
      <Shell />
      <ConfirmHost />
      <Toasts />
    </>
  );
}

async function boot() {
  if (pb.authStore.isValid) {
    try {
      // bounded: a server that is restarting must not keep the page blank
      await pb.collection('_superusers').authRefresh({ signal: AbortSignal.timeout(8000) } as any);
    } catch (e: any) {
      // a non-refreshable token (installer) or a rejected one: start over at sign-in
      if (e?.status === 401 || e?.status === 403 || e?.status === 404) pb.authStore.clear();
    }
  } else pb.authStore.clear();
  keepTokenFresh();
  render(<App />, document.getElementById('app')!);
}
boot();
