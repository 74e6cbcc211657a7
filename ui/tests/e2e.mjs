// End-to-end test of the dashboard in headless Chromium against a running server.
//   node tests/e2e.mjs DASHBOARD_URL INSTALL_TOKEN
// DASHBOARD_URL is where the built dashboard is served (pocketbun: http://127.0.0.1:PORT/_/;
// PocketBase: its --publicDir at http://127.0.0.1:PORT/). INSTALL_TOKEN is the token of the
// install link the server printed on its first start. Every step must pass, with no console
// error, no failed request and no request to another host (steps that expect an API error
// declare it). Prints "N passed, M failed" and exits non-zero on any failure.
// Env (set by tests/tests/dashboard.rs): SERVER_KIND (pocketbun | pocketbase), SMTP_PORT and
// MAIL_DIR (a real SMTP sink that writes each mail to MAIL_DIR/mail-N.eml: the OTP codes),
// INSTALL2_URL and INSTALL2_TOKEN (a second, never-installed server of the same kind, for the
// installer's "initialize from a backup").
import { PNG } from './browser.mjs';
import { dashboard, openPage, stepRunner, suiteArgs, until } from './steps.mjs';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const { dashUrl, installToken, origin } = suiteArgs('e2e.mjs');
const KIND = process.env.SERVER_KIND || 'pocketbun';
const { SMTP_PORT, MAIL_DIR, INSTALL2_URL, INSTALL2_TOKEN } = process.env;
const origins = [origin, ...(INSTALL2_URL ? [new URL(INSTALL2_URL).origin] : [])];
const EMAIL = 'admin@example.com';
const PASSWORD = 'dashboard-pass-123';

const { page, close } = await openPage(origin, { clipboard: true });
const { step, expecting4xx, done, state } = stepRunner(page, origins);
const { go, toast, install, enableSmtp, panel } = dashboard(page, dashUrl);

await step('first run: the install link creates the first superuser', async () => {
  await install(installToken, EMAIL, PASSWORD);
  await page.waitForURL(/#\/collections/);
  await page.locator('.sidebar').waitFor();
});

await step('sign out and sign in with password', async () => {
  await page.click('button:has-text("Sign out")');
  await page.waitForURL(/#\/login/);
  await expecting4xx(async () => {
    await page.fill('input[name=email]', EMAIL);
    await page.fill('input[name=password]', 'wrong-password');
    await page.click('button:has-text("Sign in")');
    await page.locator('.login .error').waitFor();
  });
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button:has-text("Sign in")');
  await page.locator('.sidebar').waitFor();
  await page.locator('.sidebar a[data-collection=users]').waitFor();
});

await step('create a base collection (tags)', async () => {
  await go('/collections/new');
  await panel().locator('input[name=name]').fill('tags');
  await panel().locator('[data-add-field=text]').click();
  await panel().locator('input[name="fields.1.name"]').fill('title');
  await panel().locator('button:has-text("Create")').click();
  await toast('Collection created.');
  await page.locator('.sidebar a[data-collection=tags]').waitFor();
  await page.waitForURL(/#\/collections\/tags/);
});

const TYPES = ['text', 'editor', 'number', 'bool', 'email', 'url', 'date', 'autodate', 'select', 'file', 'relation', 'json', 'geoPoint', 'password'];
await step('create a collection with every field type (posts)', async () => {
  await go('/collections/new');
  const p = panel();
  await p.locator('input[name=name]').fill('posts');
  const before = await p.locator('.frow').count();
  for (const t of TYPES) {
    await p.locator(`[data-add-field=${t}]`).click();
    const i = before + TYPES.indexOf(t);
    await p.locator(`input[name="fields.${i}.name"]`).fill(`f_${t}`);
  }
  const rel = before + TYPES.indexOf('relation');
  await p.locator(`select[name="fields.${rel}.collectionId"]`).selectOption({ label: 'tags' });
  const file = before + TYPES.indexOf('file');
  await p.locator(`input[name="fields.${file}.thumbs"]`).fill('100x100');
  const sel = before + TYPES.indexOf('select');
  await p.locator(`input[name="fields.${sel}.values"]`).fill('red, green, blue');
  await p.locator('button:has-text("Create")').click();
  await toast('Collection created.');
  await page.waitForURL(/#\/collections\/posts/);
  for (const t of TYPES.filter((t) => t !== 'password')) await page.locator('.table th', { hasText: `f_${t}` }).first().waitFor();
});

await step('add a tags record', async () => {
  await go('/collections/tags/records/new');
  await panel().locator('input[name=title]').fill('hello tag');
  await panel().locator('button:has-text("Create")').click();
  await toast('Record created.');
  await page.locator('.table td', { hasText: 'hello tag' }).waitFor();
});

await step('add a record with every input, a file upload and a relation pick', async () => {
  await go('/collections/posts/records/new');
  const p = panel();
  await p.locator('input[name=f_text]').fill('first post');
  await p.locator('.rte-body').click();
  await page.keyboard.type('Rich text body');
  await p.locator('input[name=f_number]').fill('42');
  await p.locator('input[name=f_bool]').check();
  await p.locator('input[name=f_email]').fill('someone@example.com');
  await p.locator('input[name=f_url]').fill('https://example.com/page');
  await p.locator('input[name=f_date]').fill('2024-05-06T07:08:09');
  await p.locator('select[name=f_select]').selectOption('green');
  await p.locator('input[type=file][name=f_file]').setInputFiles({ name: 'pixel.png', mimeType: 'image/png', buffer: PNG });
  await p.locator('.file.new img').waitFor();
  await p.locator('[data-field=f_relation] button:has-text("Pick")').click();
  await page.locator('.pick', { hasText: 'hello tag' }).click();
  await p.locator('[data-field=f_relation] .chip').waitFor();
  await p.locator('textarea[name=f_json]').fill('{"answer": 42}');
  await p.locator('input[name="f_geoPoint.lon"]').fill('23.32');
  await p.locator('input[name="f_geoPoint.lat"]').fill('42.69');
  await p.locator('input[name=f_password]').fill('secret-value-1');
  await p.locator('button:has-text("Create")').click();
  await toast('Record created.');
  const row = page.locator('.table tr', { hasText: 'first post' });
  await row.waitFor();
  await row.locator('.thumbs img').waitFor();
  await row.locator('td', { hasText: 'someone@example.com' }).waitFor();
});

await step('edit the record: file preview, invalid JSON refused, change a value', async () => {
  await page.locator('.table tr', { hasText: 'first post' }).click();
  const p = panel();
  await p.locator('.files .file img').waitFor();
  await p.locator('[data-field=f_relation] .chip').waitFor();
  await p.locator('textarea[name=f_json]').fill('{broken');
  await p.locator('text=Invalid JSON').waitFor();
  await p.locator('textarea[name=f_json]').fill('{"answer": 43}');
  await p.locator('input[name=f_text]').fill('edited post');
  await p.locator('button:has-text("Save changes")').click();
  // the toast stays clear of the open editor (title bar and all) and of the rail's Sign out
  // (measured while it shows, so waited for here rather than with the dismissing `toast`)
  const shown = page.locator('.toast', { hasText: 'Record updated.' }).first();
  await shown.waitFor();
  const t = await shown.boundingBox();
  const boxes = { panel: await p.boundingBox(), 'Sign out': await page.locator('button:has-text("Sign out")').boundingBox() };
  for (const [what, b] of Object.entries(boxes)) {
    if (!t || !b) throw new Error(`no box for the toast or ${what}`);
    if (t.x < b.x + b.width && b.x < t.x + t.width && t.y < b.y + b.height && b.y < t.y + t.height) throw new Error(`toast ${JSON.stringify(t)} overlaps ${what} ${JSON.stringify(b)}`);
  }
  await page.keyboard.press('Escape');
  await page.locator('.table td', { hasText: 'edited post' }).waitFor();
});

await step('delete the record after a confirmation', async () => {
  await page.locator('.table tr', { hasText: 'edited post' }).click();
  await panel().locator('button:has-text("Delete")').click();
  await page.locator('.modal.small button:has-text("Delete")').click();
  await toast('Record deleted.');
  await page.locator('.table td', { hasText: 'edited post' }).waitFor({ state: 'detached' });
});

await step('edit an API rule: a bad rule is rejected, a good one saved', async () => {
  await go('/collections/posts/edit');
  const p = panel();
  await p.locator('[role=tab]:has-text("API rules")').click();
  await p.locator('.rule', { hasText: 'List/Search rule' }).locator('button:has-text("Unlock")').click();
  const rule = p.locator('textarea[name=listRule]');
  await rule.fill('f_tex');
  await p.locator('.ac li', { hasText: 'f_text' }).first().waitFor();
  await rule.fill('nosuchfield = 1');
  await expecting4xx(async () => {
    await p.locator('button:has-text("Save changes")').click();
    await p.locator('.rule .error').waitFor();
  });
  await rule.fill('f_text != ""');
  await p.locator('button:has-text("Save changes")').click();
  await toast('Collection updated.');
});

await step('create a view collection with a live preview of its fields', async () => {
  await go('/collections/new');
  const p = panel();
  await p.locator('input[name=name]').fill('post_view');
  await p.locator('select[name=type]').selectOption('view');
  await p.locator('textarea[name=viewQuery]').fill('SELECT id, f_text, f_number FROM posts');
  await p.locator('.preview .chip', { hasText: 'f_number' }).waitFor();
  await p.locator('button:has-text("Create")').click();
  await toast('Collection created.');
  await page.waitForURL(/#\/collections\/post_view/);
  await page.locator('.table th', { hasText: 'f_text' }).waitFor();
});

await step('create an auth collection with OTP on, then duplicate and delete a collection', async () => {
  await go('/collections/new');
  const p = panel();
  await p.locator('input[name=name]').fill('members');
  await p.locator('select[name=type]').selectOption('auth');
  await p.locator('[role=tab]:has-text("Options")').click();
  await p.locator('input[name="otp.enabled"]').check();
  await p.locator('button:has-text("Create")').click();
  await toast('Collection created.');
  await page.locator('.sidebar a[data-collection=members]').waitFor();
  await go('/collections/tags/edit');
  await panel().locator('button:has-text("Duplicate")').click();
  await panel().locator('button:has-text("Create")').click();
  await page.locator('.sidebar a[data-collection=tags_duplicate]').waitFor();
  await go('/collections/tags_duplicate/edit');
  await panel().locator('button:has-text("Delete")').click();
  await page.locator('.modal.small button:has-text("Delete")').click();
  await toast('Collection deleted.');
  await page.locator('.sidebar a[data-collection=tags_duplicate]').waitFor({ state: 'detached' });
});

await step('read the logs: chart, list and detail', async () => {
  await go('/logs');
  await page.locator('svg.chart, .chart').first().waitFor();
  const first = page.locator('.table.logs tbody tr[data-id]').first();
  // servers write request logs in batches: refresh until they are in
  for (let i = 0; i < 20 && !(await first.isVisible()); i++) {
    await page.waitForTimeout(500);
    await page.click('button[title=Refresh]');
  }
  await first.waitFor();
  await first.click();
  await panel().locator('dt', { hasText: 'data.' }).first().waitFor();
  await page.keyboard.press('Escape');
  await page.waitForURL(/#\/logs$/);
});

await step('change a setting and see it persisted', async () => {
  await go('/settings');
  await page.locator('input[name="meta.appName"]').fill('Dashboard Test App');
  await page.click('button:has-text("Save changes")');
  await toast('Settings saved.');
  await page.reload();
  await page.locator('input[name="meta.appName"]').waitFor();
  const v = await page.inputValue('input[name="meta.appName"]');
  if (v !== 'Dashboard Test App') throw new Error(`appName after reload: ${v}`);
});

await step('create a backup and restore it', async () => {
  await go('/settings/backups');
  await page.fill('input[name=backupName]', 'e2e_backup.zip');
  await page.click('button:has-text("Create backup")');
  await toast('Backup created.');
  const row = page.locator('tr[data-key="e2e_backup.zip"]');
  await row.waitFor();
  // something to be undone by the restore
  await go('/settings');
  await page.locator('input[name="meta.appName"]').fill('Changed After Backup');
  await page.click('button:has-text("Save changes")');
  await toast('Settings saved.');
  await go('/settings/backups');
  await row.locator('button:has-text("Restore")').click();
  state.restarting = true;
  await page.locator('.modal.small button:has-text("Restore")').click();
  await page.waitForEvent('load', { timeout: 60000 });
  await page.locator('tr[data-key="e2e_backup.zip"]').waitFor({ timeout: 30000 });
  state.restarting = false;
  await go('/settings');
  await page.locator('input[name="meta.appName"]').waitFor();
  const v = await page.inputValue('input[name="meta.appName"]');
  if (v !== 'Dashboard Test App') throw new Error(`appName after restore: ${v}`);
});

await step('CSV export of the list, CSV import with a dry run', async () => {
  await go('/collections/tags');
  await page.locator('.table td', { hasText: 'hello tag' }).waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('button:has-text("Export CSV")')]);
  const { readFileSync } = await import('node:fs');
  const csv = readFileSync(await download.path(), 'utf8');
  if (!csv.startsWith('id,title') || !csv.includes('hello tag')) throw new Error(`exported: ${csv}`);
  await page.click('button:has-text("Import CSV")');
  await page.fill('textarea[name=csv]', 'title,nosuch\nx,y\n');
  await page.click('button:has-text("Dry run")');
  await page.locator('.errors li', { hasText: 'Unknown column(s): nosuch' }).waitFor();
  await page.fill('textarea[name=csv]', 'title\ncsv one\n"csv, two"\n');
  await page.click('button:has-text("Dry run")');
  await page.locator('text=2 row(s) look valid').waitFor();
  await page.click('button:has-text("Import 2 row(s)")');
  await toast('Imported 2 of 2 row(s).');
  await page.locator('.table td', { hasText: 'csv, two' }).waitFor();
});

await step('a dirty form asks before it is left', async () => {
  await go('/collections/tags/records/new');
  await panel().locator('input[name=title]').fill('unsaved');
  // a typed URL, Back or a bookmark while the form is dirty
  await page.evaluate(() => (location.hash = '#/logs'));
  await page.locator('.modal.small', { hasText: 'unsaved changes' }).waitFor();
  await page.click('.modal.small button:has-text("No")');
  if (!(await panel().locator('input[name=title]').isVisible())) throw new Error('left the dirty form');
  await page.keyboard.press('Escape');
  await page.click('.modal.small button:has-text("Discard")');
  await panel().waitFor({ state: 'detached' });
  await page.click('.rail a:has-text("Logs")');
  await page.waitForURL(/#\/logs/);
});

await step('deep links, keyboard and the records search', async () => {
  await go('/collections/tags');
  await page.locator('.table td', { hasText: 'hello tag' }).waitFor();
  await page.keyboard.press('/');
  if (!(await page.evaluate(() => document.activeElement?.getAttribute('name') === 'search'))) throw new Error('"/" does not focus the search');
  await go('/collections/tags');
  await page.fill('input[name=search]', 'hello');
  await page.press('input[name=search]', 'Enter');
  await page.locator('.table td', { hasText: 'hello tag' }).waitFor();
  await page.fill('input[name=search]', 'title = "nothing"');
  await page.press('input[name=search]', 'Enter');
  await page.locator('text=No records found.').waitFor();
  // the filter builder writes the expression
  await page.fill('input[name=search]', '');
  await page.click('button:has-text("Filter builder")');
  await page.selectOption('select[aria-label=Field]', 'title');
  await page.fill('input[aria-label=Value]', 'hello tag');
  await page.click('button:has-text("+ AND")');
  const expr = await page.inputValue('input[name=search]');
  if (expr !== 'title = "hello tag"') throw new Error(`builder wrote ${expr}`);
  await page.press('input[name=search]', 'Enter');
  await page.locator('.table td', { hasText: 'hello tag' }).waitFor();
});

await step('SQL console: rows sorted in the browser, an error, a confirmed write', async () => {
  await go('/settings/sql');
  const editor = page.locator('textarea[name=query]');
  await editor.fill("SELECT name, type FROM _collections WHERE name IN ('tags', 'posts', 'users') ORDER BY name");
  await editor.press('Control+Enter');
  const names = () => page.locator('.sql-result tbody td[data-name=name]').allTextContents();
  await page.locator('.sql-result td', { hasText: 'users' }).waitFor();
  if ((await names()).join() !== 'posts,tags,users') throw new Error(`rows: ${await names()}`);
  await page.click('.sql-result th button:has-text("name")');
  await page.click('.sql-result th button:has-text("name")');
  if ((await names()).join() !== 'users,tags,posts') throw new Error(`sorted descending: ${await names()}`);
  await expecting4xx(async () => {
    await editor.fill('SELECT * FROM no_such_table');
    await page.click('button:has-text("Execute")');
    await page.locator('.alert.err', { hasText: 'no such table: no_such_table' }).waitFor();
  });
  await editor.fill("DELETE FROM tags WHERE title = 'no such title'");
  await page.click('button:has-text("Execute")');
  await page.locator('.modal.small', { hasText: 'may change data' }).waitFor();
  await page.click('.modal.small button:has-text("Execute")');
  await page.locator('.alert.ok', { hasText: 'Query executed successfully.' }).waitFor();
  // the history keeps what ran, newest first
  const recent = await page.locator('select[name=history] option').allTextContents();
  if (!recent[1]?.startsWith('DELETE FROM tags')) throw new Error(`history: ${recent}`);
});

await step('explain: the plan of a filter, the suggested index added in one click', async () => {
  await go('/collections/tags');
  await page.locator('.table td', { hasText: 'hello tag' }).waitFor();
  await page.fill('input[name=search]', 'title = "hello tag"');
  await page.press('input[name=search]', 'Enter');
  if (KIND === 'pocketbase') {
    // PocketBase has no explain endpoint (a 404, or index.html from its --publicDir fallback):
    // the button turns off
    await expecting4xx(async () => {
      await page.click('button:has-text("Explain")');
      await page.locator('.explain-error', { hasText: 'no explain endpoint' }).waitFor();
    });
    await page.keyboard.press('Escape');
    await page.locator('.searchbar button:has-text("Explain")').waitFor({ state: 'detached' });
    return;
  }
  await page.click('button:has-text("Explain")');
  const m = page.locator('.modal.explain');
  await m.locator('.plan li.scan', { hasText: 'SCAN tags' }).first().waitFor();
  const suggested = await m.locator('.suggested-index').textContent();
  if (!/^CREATE INDEX `idx_tags_title\w*` ON `tags` \(`title`/.test(suggested)) throw new Error(`suggested: ${suggested}`);
  await m.locator('button:has-text("Add index")').click();
  await toast('Index added.');
  await m.locator('.plan li.search', { hasText: /SEARCH tags USING INDEX idx_tags_title\w* \(title=\?\)/ }).first().waitFor();
  await m.locator('.note', { hasText: 'already leads with these columns' }).waitFor();
  await page.keyboard.press('Escape');
  // the index is the collection's own, as the index editor shows it
  await go('/collections/tags/edit');
  await panel().locator('input[name^="indexes."]').first().waitFor();
  const indexes = await panel().locator('input[name^="indexes."]').evaluateAll((els) => els.map((e) => e.value));
  if (!indexes.includes(suggested)) throw new Error(`indexes: ${indexes}`);
  await page.keyboard.press('Escape');
});

await step('impersonate an auth record: a token for the chosen duration, copied', async () => {
  await go('/collections/users/records/new');
  const p = panel();
  await p.locator('input[name=email]').fill('someone@example.com');
  await p.locator('input[name=password]').fill('user-pass-12345');
  await p.locator('input[name=passwordConfirm]').fill('user-pass-12345');
  await p.locator('button:has-text("Create")').click();
  await toast('Record created.');
  const row = page.locator('.table tr', { hasText: 'someone@example.com' });
  await row.waitFor();
  const id = await row.getAttribute('data-id');
  await row.click();
  await panel().locator('button:has-text("Impersonate")').click();
  const m = page.locator('.modal.impersonate');
  await m.locator('input[name=impersonateDuration]').fill('3600');
  await m.locator('button:has-text("Generate token")').click();
  const token = await m.locator('textarea[name=impersonateToken]').inputValue();
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
  const left = claims.exp - Date.now() / 1000;
  if (claims.id !== id || left < 3300 || left > 3700) throw new Error(`claims ${JSON.stringify(claims)}, ${left} s left`);
  await m.locator('button:has-text("Copy")').click();
  await toast('Token copied.');
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  if (copied !== token) throw new Error('the clipboard does not hold the token');
  // the token acts as the user (users' view rule: id = @request.auth.id)
  const r = await fetch(`${origin}/api/collections/users/records/${id}`, { headers: { Authorization: token } });
  if (r.status !== 200) throw new Error(`view as the impersonated user: ${r.status}`);
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');
  await panel().waitFor({ state: 'detached' });
});

await step('installer: a fresh server initialized from a backup', async () => {
  if (!INSTALL2_URL || !INSTALL2_TOKEN) throw new Error('INSTALL2_URL and INSTALL2_TOKEN are not set');
  await go('/settings/backups');
  const row = page.locator('tr[data-key="e2e_backup.zip"]');
  const [download] = await Promise.all([page.waitForEvent('download'), row.locator('button:has-text("Download")').click()]);
  const zip = readFileSync(await download.path());
  if (zip.subarray(0, 2).toString() !== 'PK') throw new Error('the download is not a zip');
  await page.goto(`${INSTALL2_URL}#/pbinstall/${INSTALL2_TOKEN}`);
  await page.locator('h1', { hasText: 'Create your first superuser' }).waitFor();
  await page.locator('input[name=installBackup]').setInputFiles({ name: 'e2e_backup.zip', mimeType: 'application/zip', buffer: zip });
  await page.locator('.modal.small', { hasText: 'e2e_backup.zip' }).waitFor();
  state.restarting = true;
  try {
    await page.click('.modal.small button:has-text("Upload and restore")');
    await page.waitForURL(/#\/login/, { timeout: 60000 });
    await toast('Backup restored');
  } finally {
    state.restarting = false;
  }
  // the superuser of the backup signs in and finds the backup's collections
  await page.fill('input[name=email]', EMAIL);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button:has-text("Sign in")');
  await page.locator('.sidebar a[data-collection=posts]').waitFor();
  // back to the first server: the loads still running on this one are cancelled, not failed
  state.leaving = true;
  try {
    await page.goto(`${dashUrl}#/collections`);
  } finally {
    state.leaving = false;
  }
  await page.locator('.sidebar').waitFor();
});

await step('OTP and MFA on _superusers: password, then the emailed code', async () => {
  if (!SMTP_PORT || !MAIL_DIR) throw new Error('SMTP_PORT and MAIL_DIR are not set');
  await enableSmtp(SMTP_PORT);
  await go('/collections/_superusers/edit');
  const p = panel();
  await p.locator('[role=tab]:has-text("Options")').click();
  await p.locator('input[name="otp.enabled"]').check();
  await p.locator('input[name="mfa.enabled"]').check();
  await p.locator('button:has-text("Save changes")').click();
  await toast('Collection updated.');
  await page.keyboard.press('Escape');
  await page.click('button:has-text("Sign out")');
  await page.waitForURL(/#\/login/);
  await expecting4xx(async () => {
    await page.fill('input[name=email]', EMAIL);
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button:has-text("Sign in")');
    await page.locator('.notice', { hasText: 'Multi-factor' }).waitFor();
  });
  const before = new Set(readdirSync(MAIL_DIR));
  await page.click('button:has-text("Send code")');
  await toast('A one-time code was sent');
  let code = '';
  for (let i = 0; i < 100 && !code; i++) {
    const fresh = readdirSync(MAIL_DIR).filter((f) => f.endsWith('.eml') && !before.has(f));
    for (const f of fresh) {
      const mail = readFileSync(join(MAIL_DIR, f), 'utf8');
      if (mail.includes(`To: ${EMAIL}`) || mail.includes(`<${EMAIL}>`)) code = mail.match(/<strong>(\d+)<\/strong>/)?.[1] || '';
    }
    if (!code) await page.waitForTimeout(100);
  }
  if (!code) throw new Error(`no OTP mail for ${EMAIL} in ${MAIL_DIR}`);
  await page.fill('input[name=otp]', code);
  await page.click('button:has-text("Sign in")');
  await page.locator('.sidebar').waitFor();
  await page.locator('.sidebar a[data-collection=users]').waitFor();
});

await step('records: column toggle, header sort, bulk delete; API preview; crons "run now"', async () => {
  await go('/collections/tags');
  await page.locator('.table td', { hasText: 'csv, two' }).waitFor();
  await page.click('button:has-text("Columns")');
  await page.locator('.columns-picker label', { hasText: 'title' }).locator('input').uncheck();
  await page.locator('.table th', { hasText: 'title' }).waitFor({ state: 'detached' });
  await page.locator('.columns-picker label', { hasText: 'title' }).locator('input').check();
  await page.click('button:has-text("Columns")');
  const titles = () => page.locator('.table tbody tr').evaluateAll((rows) => rows.map((r) => r.textContent));
  await page.click('.table th button:has-text("title")');
  await page.waitForFunction(() => /title ↑/.test(document.querySelector('.table thead')?.textContent || ''));
  // the header shows the sort at once, the rows when the sorted page has loaded
  let asc = [];
  const sorted = () => asc.length >= 3 && asc[0].includes('csv one') && asc[1].includes('csv, two') && asc[2].includes('hello tag');
  await until(async () => {
    asc = await titles();
    return sorted();
  }, 'the sorted rows').catch(() => {
    throw new Error(`ascending: ${asc}`);
  });
  for (const t of ['csv one', 'csv, two']) await page.locator('.table tr', { hasText: t }).locator('.check input').check();
  await page.locator('.bulkbar', { hasText: 'Selected 2' }).waitFor();
  await page.click('.bulkbar button:has-text("Delete selected")');
  await page.click('.modal.small button:has-text("Delete")');
  await toast('Deleted 2 record(s).');
  await page.locator('.table td', { hasText: 'csv one' }).waitFor({ state: 'detached' });
  await page.locator('.table td', { hasText: 'hello tag' }).waitFor();
  await go('/collections/tags/api');
  await panel().locator('code', { hasText: '/api/collections/tags/records' }).first().waitFor();
  await panel().locator('[role=tab]:has-text("create")').click();
  await panel().locator('pre', { hasText: '"title"' }).first().waitFor();
  await page.keyboard.press('Escape');
  await go('/settings/crons');
  const first = page.locator('.main table tbody tr:has(button:has-text("Run now"))').first();
  await first.waitFor();
  const id = (await first.locator('td').first().textContent()).trim();
  await first.locator('button:has-text("Run now")').click();
  await toast(`Cron ${id} started.`);
});

await close();
process.exit(done());
