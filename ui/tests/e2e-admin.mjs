// The admin side of the dashboard in headless Chromium against a running, never-installed server.
//   node tests/e2e-admin.mjs DASHBOARD_URL INSTALL_TOKEN
// DASHBOARD_URL is where the built dashboard is served (pocketbun: http://127.0.0.1:PORT/_/;
// PocketBase: its --publicDir at http://127.0.0.1:PORT/), INSTALL_TOKEN the token of the install
// link the server printed. Each step checks its effect through the API, the SMTP sink, S3 or a
// reload, not only what the page shows. Prints "N passed, M failed"; exits non-zero on a failure.
// Env (set by tests/tests/dashboard_admin.rs): SERVER_KIND, SMTP_PORT and MAIL_DIR (a real SMTP
// sink writing each mail to MAIL_DIR/mail-N.eml), S3_ENDPOINT, S3_BUCKET, S3_KEY, S3_SECRET (a
// real S3 server that checks signatures); SCREENSHOT_DIR (optional): phone-width and dark
// screenshots of the pages these steps visit.
import { launch } from './browser.mjs';
import { dashboard, openPage, stepRunner, suiteArgs, until } from './steps.mjs';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const { dashUrl, installToken, origin } = suiteArgs('e2e-admin.mjs');
const { SMTP_PORT, MAIL_DIR, S3_ENDPOINT, S3_BUCKET, S3_KEY, S3_SECRET, SCREENSHOT_DIR } = process.env;
const EMAIL = 'admin@example.com';
const PASSWORD = 'dashboard-pass-123';

// with SCREENSHOT_DIR the whole run is at phone width in dark mode, and leaves screenshots
const { page, close } = await openPage(origin, SCREENSHOT_DIR ? { viewport: { width: 390, height: 844 }, colorScheme: 'dark' } : {});
const { step, expecting4xx, done, state } = stepRunner(page, [origin]);

const { go, toast, install, enableSmtp, panel, confirm } = dashboard(page, dashUrl);

// the API as a superuser, from outside the browser (to seed data and to check effects)
let suToken = '';
async function api(method, path, body, token = suToken) {
  const r = await fetch(`${origin}${path}`, {
    method,
    headers: { ...(token ? { Authorization: token } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: r.status, json };
}
async function ok(method, path, body, token) {
  const r = await api(method, path, body, token);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}
const storedAuth = () => page.evaluate(() => JSON.parse(localStorage.getItem('pbun_superuser_auth') || '{}'));
const claims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

// mails that arrived since `since` (a set of file names seen before), addressed to `to`
const mailFiles = () => readdirSync(MAIL_DIR).filter((f) => f.endsWith('.eml'));
async function mailTo(to, since) {
  return until(() => {
    for (const f of mailFiles().filter((f) => !since.has(f))) {
      const m = readFileSync(join(MAIL_DIR, f), 'utf8');
      if (m.includes(`<${to}>`) || m.includes(`To: ${to}`)) return m;
    }
    return '';
  }, `a mail to ${to}`);
}

async function shoot(name) {
  if (!SCREENSHOT_DIR) return;
  await page.waitForTimeout(250);
  await page.screenshot({ path: `${SCREENSHOT_DIR}/${name}.png` });
}

await step('before any superuser: /_/ says where the install link is', async () => {
  await page.goto(dashUrl);
  await page.waitForURL(/#\/login/);
  await page.locator('.install-hint', { hasText: 'install link' }).waitFor();
  await shoot('login-hint-phone-dark');
});

await step('the install link creates the first superuser', async () => {
  await install(installToken, EMAIL, PASSWORD);
  await page.locator('.sidebar').waitFor();
  suToken = (await ok('POST', '/api/collections/_superusers/auth-with-password', { identity: EMAIL, password: PASSWORD }, '')).token;
});

await step('token refresh: on load, and before the token expires', async () => {
  const before = (await storedAuth()).token;
  // a token issued in the same second would be the same token
  await page.waitForTimeout(1100);
  const [refresh] = await Promise.all([page.waitForResponse((r) => r.url().includes('/api/collections/_superusers/auth-refresh')), page.reload()]);
  if (refresh.status() !== 200) throw new Error(`auth-refresh on load: ${refresh.status()}`);
  await page.locator('.sidebar').waitFor();
  const after = (await storedAuth()).token;
  if (!after || after === before || claims(after).exp <= claims(before).exp) throw new Error('the token was not replaced on load');
  // an open dashboard refreshes its token when it nears expiry: a browser whose clock jumps to
  // 15 minutes before the token's exp (the token itself stays valid). Its own browser, signed in
  // with the same session: a page's clock is its whole context's, and would stay off in this one
  const auth = JSON.stringify(await storedAuth());
  const other = await launch();
  try {
    const p2 = other.ctx.pages()[0] || (await other.ctx.newPage());
    await p2.addInitScript((a) => localStorage.getItem('pbun_superuser_auth') || localStorage.setItem('pbun_superuser_auth', a), auth);
    await p2.clock.install();
    await p2.goto(`${dashUrl}#/settings/crons`);
    await p2.locator('.sidebar').waitFor();
    await p2.waitForTimeout(1100);
    const t2 = await p2.evaluate(() => JSON.parse(localStorage.getItem('pbun_superuser_auth')).token);
    const ahead = claims(t2).exp * 1000 - 15 * 60 * 1000 - (await p2.evaluate(() => Date.now()));
    const [r2] = await Promise.all([p2.waitForResponse((r) => r.url().includes('/auth-refresh')), p2.clock.fastForward(ahead)]);
    if (r2.status() !== 200) throw new Error(`auth-refresh before expiry: ${r2.status()}`);
    const t3 = await until(() => p2.evaluate((old) => {
      const t = JSON.parse(localStorage.getItem('pbun_superuser_auth')).token;
      return t !== old && t;
    }, t2), 'the refreshed token stored');
    const r = await api('GET', '/api/collections/_superusers/records', null, t3);
    if (r.status !== 200) throw new Error(`the refreshed token: ${r.status}`);
  } finally {
    await other.close();
  }
});

let user = null;
const USER_EMAIL = 'member@example.com';
const USER_PASSWORD = 'member-pass-123';
await step('token secrets: "invalidate all" ends the sessions of an auth collection', async () => {
  user = await ok('POST', '/api/collections/users/records', { email: USER_EMAIL, password: USER_PASSWORD, passwordConfirm: USER_PASSWORD, name: 'Member' });
  const userToken = (await ok('POST', '/api/collections/users/auth-with-password', { identity: USER_EMAIL, password: USER_PASSWORD }, '')).token;
  await ok('POST', '/api/collections/users/auth-refresh', null, userToken);
  await go('/settings/tokens');
  await page.locator('li.row').filter({ has: page.locator('span.grow', { hasText: /^users$/ }) }).locator('button:has-text("Invalidate all")').click();
  await confirm('Invalidate');
  await toast('Tokens invalidated.');
  await shoot('tokens-phone-dark');
  const r = await api('POST', '/api/collections/users/auth-refresh', null, userToken);
  if (r.status !== 401) throw new Error(`the old user token after "invalidate all": ${r.status}`);
  // the superuser's own session (another collection) goes on
  const me = await api('GET', '/api/collections/_superusers/records', null, (await storedAuth()).token);
  if (me.status !== 200) throw new Error(`the dashboard's token: ${me.status}`);
});

await step('mail settings: SMTP saved, a test email arrives in the SMTP sink', async () => {
  if (!SMTP_PORT || !MAIL_DIR) throw new Error('SMTP_PORT and MAIL_DIR are not set');
  await enableSmtp(SMTP_PORT);
  // the users collection's own password-reset template, told apart by its subject
  const users = await ok('GET', '/api/collections/users');
  await ok('PATCH', '/api/collections/users', { resetPasswordTemplate: { ...users.resetPasswordTemplate, subject: 'Users-only reset subject' } });
  await page.reload();
  await page.locator('select[aria-label="Auth collection"] option', { hasText: 'users' }).first().waitFor({ state: 'attached' });
  const seen = new Set(mailFiles());
  await page.fill('input[name=testEmail]', 'test-to@example.com');
  await page.selectOption('select[aria-label=Template]', 'password-reset');
  await page.selectOption('select[aria-label="Auth collection"]', 'users');
  await page.click('button:has-text("Send")');
  await toast('Test email sent.');
  const mail = await mailTo('test-to@example.com', seen);
  if (!mail.includes('Subject: Users-only reset subject')) throw new Error(`not the users' password-reset template:\n${mail.slice(0, 400)}`);
  await shoot('mail-settings-phone-dark');
});

await step('auth record: send verification, change email and password', async () => {
  await go(`/collections/users/records/${user.id}`);
  const p = panel();
  await p.locator('input[name=email]').waitFor();
  let seen = new Set(mailFiles());
  await p.locator('button:has-text("Send verification email")').click();
  await toast('Verification email sent.');
  const mail = await mailTo(USER_EMAIL, seen);
  if (!/verif/i.test(mail)) throw new Error(`not a verification mail:\n${mail.slice(0, 400)}`);
  const NEW_EMAIL = 'member-new@example.com';
  const NEW_PASSWORD = 'member-pass-456';
  await p.locator('input[name=email]').fill(NEW_EMAIL);
  await p.locator('label.toggle', { hasText: 'Change password' }).locator('input').check();
  await p.locator('input[name=password]').fill(NEW_PASSWORD);
  await p.locator('input[name=passwordConfirm]').fill(NEW_PASSWORD);
  await p.locator('button:has-text("Save changes")').click();
  await toast('Record updated.');
  const rec = await ok('GET', `/api/collections/users/records/${user.id}`);
  if (rec.email !== NEW_EMAIL) throw new Error(`email after save: ${rec.email}`);
  await ok('POST', '/api/collections/users/auth-with-password', { identity: NEW_EMAIL, password: NEW_PASSWORD }, '');
  await expecting4xx(async () => {
    const old = await api('POST', '/api/collections/users/auth-with-password', { identity: NEW_EMAIL, password: USER_PASSWORD }, '');
    if (old.status !== 400) throw new Error(`the old password still signs in: ${old.status}`);
  });
  await page.keyboard.press('Escape');
  await panel().waitFor({ state: 'detached' });
});

await step('auth record: external auths listed, one unlinked', async () => {
  const users = await ok('GET', '/api/collections/users');
  const ext = await ok('POST', '/api/collections/_externalAuths/records', { collectionRef: users.id, recordRef: user.id, provider: 'github', providerId: 'gh-4242' });
  await go(`/collections/users/records/${user.id}`);
  const item = panel().locator('.external-auths li', { hasText: 'github' });
  await item.locator('text=gh-4242').waitFor();
  await shoot('auth-record-phone-dark');
  await item.locator('button:has-text("Unlink")').click();
  await confirm('Unlink');
  await toast('Unlinked.');
  await item.waitFor({ state: 'detached' });
  const left = await ok('GET', `/api/collections/_externalAuths/records?filter=${encodeURIComponent(`recordRef="${user.id}"`)}`);
  if (left.totalItems !== 0) throw new Error(`external auths left: ${JSON.stringify(left.items)} (seeded ${ext.id})`);
  await page.keyboard.press('Escape');
  await panel().waitFor({ state: 'detached' });
});

await step('logs: the level filter and the superuser-requests toggle change the list', async () => {
  // a guest's failed request (level WARN or above) next to the superuser's own requests
  await expecting4xx(() => api('GET', '/api/collections/no_such_collection/records', null, ''));
  await go('/logs');
  const rows = page.locator('.table.logs tbody tr[data-id]');
  const guest = rows.filter({ hasText: 'no_such_collection' });
  const superuserRow = rows.filter({ has: page.locator('.chip', { hasText: '_superusers' }) });
  // servers write request logs in batches: refresh until the guest's request is in
  await until(async () => (await guest.count()) > 0 || (await page.click('button[title=Refresh]'), await page.waitForTimeout(400), false), 'the guest request in the logs', 20000);
  await superuserRow.first().waitFor();
  await page.selectOption('select[name=level]', '4');
  await until(async () => (await rows.count()) > 0 && (await page.locator('.table.logs tbody .badge').allTextContents()).every((l) => l === 'WARN' || l === 'ERROR'), 'only WARN+ rows');
  await guest.first().waitFor();
  await page.selectOption('select[name=level]', '');
  await superuserRow.first().waitFor();
  await page.locator('label.toggle', { hasText: 'requests by superusers' }).locator('input').uncheck();
  await superuserRow.first().waitFor({ state: 'detached' });
  await guest.first().waitFor();
  // the list asked the API for that filter: the count agrees with the API's own answer
  const api1 = await ok('GET', `/api/logs?perPage=1&filter=${encodeURIComponent('data.auth != "_superusers"')}`);
  const shown = Number((await page.locator('.pager .muted').textContent()).replace(/\D+/g, ''));
  if (Math.abs(shown - api1.totalItems) > 2) throw new Error(`shown ${shown}, API ${api1.totalItems}`);
  await shoot('logs-phone-dark');
  await page.locator('label.toggle', { hasText: 'requests by superusers' }).locator('input').check();
  await superuserRow.first().waitFor();
});

await step('storage settings: S3 "test connection" succeeds, a wrong secret gives a clear error', async () => {
  if (!S3_ENDPOINT) throw new Error('S3_ENDPOINT is not set');
  await go('/settings/storage');
  await page.locator('input[name="s3.enabled"]').check();
  await page.fill('input[name="s3.bucket"]', S3_BUCKET);
  await page.fill('input[name="s3.region"]', 'us-east-1');
  await page.fill('input[name="s3.endpoint"]', S3_ENDPOINT);
  await page.fill('input[name="s3.accessKey"]', S3_KEY);
  await page.fill('input[name="s3.secret"]', S3_SECRET);
  await page.locator('input[name="s3.forcePathStyle"]').check();
  await page.click('button:has-text("Save changes")');
  await toast('Settings saved.');
  await page.click('button:has-text("Test connection")');
  await toast('S3 connection successful.');
  await shoot('storage-phone-dark');
  await page.fill('input[name="s3.secret"]', 'not-the-secret');
  await page.click('button:has-text("Save changes")');
  await toast('Settings saved.');
  await expecting4xx(async () => {
    await page.click('button:has-text("Test connection")');
    await page.locator('.toast.err', { hasText: 'Failed to test the S3 filesystem' }).waitFor();
  });
  // files back to the local disk
  await page.locator('input[name="s3.enabled"]').uncheck();
  await page.click('button:has-text("Save changes")');
  await toast('Settings saved.');
  const s = await ok('GET', '/api/settings');
  if (s.s3.enabled !== false || s.s3.bucket !== S3_BUCKET) throw new Error(`s3 settings: ${JSON.stringify(s.s3)}`);
});

await step('backups: upload a backup, delete one, set the auto-backup cron', async () => {
  await ok('POST', '/api/backups', { name: 'seed_backup.zip' });
  const fileToken = (await ok('POST', '/api/files/token')).token;
  const zip = Buffer.from(await (await fetch(`${origin}/api/backups/seed_backup.zip?token=${fileToken}`)).arrayBuffer());
  if (zip.subarray(0, 2).toString() !== 'PK') throw new Error('the seed backup is not a zip');
  await go('/settings/backups');
  const seed = page.locator('tr[data-key="seed_backup.zip"]');
  await seed.locator('button:has-text("Delete")').click();
  await confirm('Delete');
  await toast('Backup deleted.');
  await seed.waitFor({ state: 'detached' });
  await page.locator('input[name=backupUpload]').setInputFiles({ name: 'uploaded_backup.zip', mimeType: 'application/zip', buffer: zip });
  await toast('Backup uploaded.');
  await page.locator('tr[data-key="uploaded_backup.zip"]').waitFor();
  const keys = (await ok('GET', '/api/backups')).map((b) => `${b.key}:${b.size}`);
  if (keys.join() !== `uploaded_backup.zip:${zip.length}`) throw new Error(`backups: ${keys}`);
  await page.fill('input[name="backups.cron"]', '30 3 * * *');
  await page.fill('input[name="backups.cronMaxKeep"]', '4');
  await page.click('button:has-text("Save changes")');
  await toast('Settings saved.');
  await page.reload();
  await page.locator('input[name="backups.cron"]').waitFor();
  const cron = await page.inputValue('input[name="backups.cron"]');
  const s = await ok('GET', '/api/settings');
  if (cron !== '30 3 * * *' || s.backups.cron !== '30 3 * * *' || s.backups.cronMaxKeep !== 4) throw new Error(`cron after reload: ${cron}, API ${JSON.stringify(s.backups)}`);
  await shoot('backups-phone-dark');
});

await step('superusers page: create a superuser', async () => {
  await go('/settings');
  await page.click('.sidebar a:has-text("Superusers")');
  await page.waitForURL(/#\/collections\/_superusers$/);
  await page.locator('.table td', { hasText: EMAIL }).waitFor();
  await page.click('button:has-text("New record")');
  const p = panel();
  await p.locator('input[name=email]').fill('second-admin@example.com');
  await p.locator('input[name=password]').fill('second-pass-123');
  await p.locator('input[name=passwordConfirm]').fill('second-pass-123');
  await p.locator('button:has-text("Create")').click();
  await toast('Record created.');
  await page.locator('.table td', { hasText: 'second-admin@example.com' }).waitFor();
  await shoot('superusers-phone-dark');
  const list = await ok('GET', `/api/collections/_superusers/records?filter=${encodeURIComponent('email="second-admin@example.com"')}`);
  if (list.totalItems !== 1) throw new Error(`the new superuser through the API: ${list.totalItems}`);
  await ok('POST', '/api/collections/_superusers/auth-with-password', { identity: 'second-admin@example.com', password: 'second-pass-123' }, '');
});

await step('realtime: records created, changed and deleted through the API show up without a reload', async () => {
  await ok('POST', '/api/collections', { name: 'notes', type: 'base', fields: [{ name: 'title', type: 'text' }, { name: 'body', type: 'editor' }] });
  await go('/collections/notes');
  // the dashboard loaded its collections list before this one existed: it says so, and a reload
  // (only once the route has changed, else it reloads the page left) loads it; the table then
  // subscribes to the collection
  await page.locator('main', { hasText: /notes.{0,3} not found/ }).waitFor();
  const subscribed = page
    .waitForResponse((r) => r.url().includes('/api/realtime') && r.request().method() === 'POST' && (r.request().postData() || '').includes('notes/*'))
    .catch(() => null);
  await page.reload();
  await page.locator('.table th', { hasText: 'title' }).waitFor();
  const sub = await subscribed;
  if (sub?.status() !== 204) throw new Error(`the table's realtime subscription: ${sub ? sub.status() : 'never sent'}`);
  const rec = await ok('POST', '/api/collections/notes/records', { title: 'pushed by the API' });
  const row = page.locator(`.table tr[data-id="${rec.id}"]`);
  await row.locator('td', { hasText: 'pushed by the API' }).waitFor();
  await ok('PATCH', `/api/collections/notes/records/${rec.id}`, { title: 'changed by the API' });
  await row.locator('td', { hasText: 'changed by the API' }).waitFor();
  await shoot('realtime-phone-dark');
  await ok('DELETE', `/api/collections/notes/records/${rec.id}`);
  await row.waitFor({ state: 'detached' });
});

await step('rich text: the link button opens a dialog (no prompt), the link is saved', async () => {
  page.once('dialog', (d) => {
    state.problems.push(`a native ${d.type()} dialog opened`);
    d.dismiss();
  });
  await go('/collections/notes/records/new');
  const p = panel();
  await p.locator('input[name=title]').fill('with a link');
  await p.locator('.rte-body').click();
  await page.keyboard.type('read the docs');
  await page.keyboard.press('Control+A');
  await p.locator('.rte-bar button:has-text("Link")').click();
  const d = page.locator('.modal.link-dialog');
  await d.locator('input[name=linkUrl]').fill('https://example.com/docs');
  await shoot('link-dialog-phone-dark');
  await d.locator('button:has-text("Insert link")').click();
  await d.waitFor({ state: 'detached' });
  await p.locator('.rte-body a[href="https://example.com/docs"]').waitFor();
  await p.locator('button:has-text("Create")').click();
  await toast('Record created.');
  const list = await ok('GET', `/api/collections/notes/records?filter=${encodeURIComponent('title="with a link"')}`);
  const body = list.items[0]?.body || '';
  if (!body.includes('<a href="https://example.com/docs">read the docs</a>')) throw new Error(`saved body: ${body}`);
});

await step('sign out: no first-run hint once a superuser has signed in from this browser', async () => {
  await page.click('button:has-text("Sign out")');
  await page.waitForURL(/#\/login/);
  await page.locator('input[name=email]').waitFor();
  if (await page.locator('.install-hint').count()) throw new Error('the install hint is still shown');
});

await close();
process.exit(done());
