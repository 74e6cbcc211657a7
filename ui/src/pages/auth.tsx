// Sign-in (password, OTP, MFA's second step) and the first-run installer page.
import { useEffect, useState } from 'preact/hooks';
import { pb, errMessage, untilRestarted } from '../api';
import { navigate } from '../store';
import { Labeled, toast, confirmDialog } from '../ui';

export function Login() {
  const [methods, setMethods] = useState<any>(null);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [otpId, setOtpId] = useState('');
  const [otp, setOtp] = useState('');
  const [mfaId, setMfaId] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [mode, setMode] = useState<'password' | 'otp'>('password');
  const sup = pb.collection('_superusers');

  useEffect(() => {
    sup.listAuthMethods().then(setMethods, () => setMethods({ password: { enabled: true } }));
  }, []);

  const fail = (e: any) => {
    // MFA: the first factor passed; the server wants a second one
    const id = e?.response?.mfaId;
    if (id) {
      setMfaId(id);
      setError('');
      toast('First factor accepted; confirm with a one-time code.');
      return;
    }
    setError(errMessage(e));
  };
  const run = async (fn: () => Promise<any>) => {
    setBusy(true);
    setError('');
    try {
      await fn();
    } catch (e) {
      fail(e);
    } finally {
      setBusy(false);
    }
  };
  const opts = () => (mfaId ? { mfaId } : {});
  const submitPassword = (e: Event) => {
    e.preventDefault();
    run(async () => {
      await sup.authWithPassword(email, password, opts());
      navigate('/collections');
    });
  };
  const requestOtp = () =>
    run(async () => {
      const r = await sup.requestOTP(email);
      setOtpId(r.otpId);
      toast('A one-time code was sent to ' + email);
    });
  const submitOtp = (e: Event) => {
    e.preventDefault();
    if (!otpId) return requestOtp();
    run(async () => {
      await sup.authWithOTP(otpId, otp, opts());
      navigate('/collections');
    });
  };
  const passwordOn = methods?.password?.enabled !== false;
  const otpOn = !!methods?.otp?.enabled;
  const m = mfaId ? (mode === 'password' ? 'otp' : 'password') : mode;
  const useOtp = (m === 'otp' && otpOn) || !passwordOn;

  return (
    <main class="center-page">
      <div class="card login">
        <h1>Superuser sign-in</h1>
        {mfaId && <p class="notice">Multi-factor authentication: confirm with your {useOtp ? 'one-time code' : 'password'}.</p>}
        {!useOtp ? (
          <form onSubmit={submitPassword}>
            <Labeled label="Email">
              <input name="email" type="email" autoComplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
            </Labeled>
            <Labeled label="Password">
              <input name="password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
            </Labeled>
            {error && <p class="error">{error}</p>}
            <button class="btn primary block" disabled={busy}>
              {mfaId ? 'Confirm' : 'Sign in'}
            </button>
          </form>
        ) : (
          <form onSubmit={submitOtp}>
            <Labeled label="Email">
              <input name="email" type="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
            </Labeled>
            {otpId && (
              <Labeled label="One-time code">
                <input name="otp" autoComplete="one-time-code" required value={otp} onInput={(e) => setOtp(e.currentTarget.value)} />
              </Labeled>
            )}
            {error && <p class="error">{error}</p>}
            <button class="btn primary block" disabled={busy}>
              {otpId ? 'Sign in' : 'Send code'}
            </button>
          </form>
        )}
        {otpOn && passwordOn && !mfaId && (
          <button class="btn link" onClick={() => setMode(mode === 'otp' ? 'password' : 'otp')}>
            {mode === 'otp' ? 'Sign in with password' : 'Sign in with a one-time code'}
          </button>
        )}
        {!mfaId && !localStorage.getItem('pbun_signed_in') && (
          // the public API cannot tell whether a superuser exists: the hint shows until a
          // superuser has signed in from this browser
          <p class="install-hint muted small">
            No superuser yet? On its first start the server printed a one-time install link (<code>…/_/#/pbinstall/…</code>) in its output: open it to
            create the first one, or run <code>superuser upsert EMAIL PASSWORD</code> beside the data directory.
          </p>
        )}
      </div>
    </main>
  );
}

/**
 * `#/pbinstall/{token}`: the installer token (printed in the server's console) creates the first
 * superuser, or uploads a backup and restores it (the superusers are then those of the backup).
 */
export function Install({ token }: { token: string }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [restoring, setRestoring] = useState('');
  const restoreBackup = async (input: HTMLInputElement) => {
    const file = input.files?.[0];
    input.value = '';
    if (!file) return;
    const ok = await confirmDialog(
      `Backups are not validated. Upload "${file.name}" and initialize this server from it only if you trust where it comes from. The server restarts.`,
      'Upload and restore',
    );
    if (!ok) return;
    setBusy(true);
    setError('');
    setRestoring(file.name);
    const headers = { Authorization: token };
    try {
      await pb.backups.upload({ file }, { headers, requestKey: null });
      await untilRestarted(() => pb.backups.restore(file.name, { headers, requestKey: null }));
      await pb.realtime.unsubscribe();
      toast('Backup restored: sign in with a superuser of the backup.');
      navigate('/login');
    } catch (err) {
      setError(errMessage(err));
      setRestoring('');
    } finally {
      setBusy(false);
    }
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      pb.authStore.save(token, null);
      await pb.collection('_superusers').create({ email, password, passwordConfirm: confirm });
      pb.authStore.clear();
      await pb.collection('_superusers').authWithPassword(email, password);
      toast('Superuser created. Welcome!');
      navigate('/collections');
    } catch (err) {
      pb.authStore.clear();
      setError(errMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="center-page">
      <div class="card login">
        <h1>Create your first superuser</h1>
        <p class="muted">This link was printed by the server on its first start and works once.</p>
        <form onSubmit={submit}>
          <Labeled label="Email">
            <input name="email" type="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
          </Labeled>
          <Labeled label="Password" hint="At least 10 characters.">
            <input name="password" type="password" minLength={10} required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          </Labeled>
          <Labeled label="Password confirm">
            <input name="passwordConfirm" type="password" required value={confirm} onInput={(e) => setConfirm(e.currentTarget.value)} />
          </Labeled>
          {error && <p class="error">{error}</p>}
          <button class="btn primary block" disabled={busy}>
            Create superuser and sign in
          </button>
        </form>
        <hr />
        {restoring ? (
          <p class="notice">Restoring {restoring}… the server restarts; this page continues when it is back.</p>
        ) : (
          <label class={`btn block ${busy ? 'disabled' : ''}`}>
            Or initialize from a backup
            <input type="file" accept=".zip" hidden name="installBackup" disabled={busy} onChange={(e) => restoreBackup(e.currentTarget)} />
          </label>
        )}
      </div>
    </main>
  );
}
