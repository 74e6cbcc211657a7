// End-to-end test of the dashboard in headless Chromium against a running server.
//   node tests/e2e.mjs DASHBOARD_URL INSTALL_TOKEN
// DASHBOARD_URL is where the built dashboard is served (pocketbun: http://127.0.0.1:PORT/_/;
// PocketBase: its --publicDir at http://127.0.0.1:PORT/). INSTALL_TOKEN is the token of the
// install link the server printed on its first start. Every step must pass, with no console
// error, no failed request and no request to another host (steps that expect an API error
// declare it). Prints "N passed, M failed" and exits non-zero on any failure.
import { launch, PNG } from './browser.mjs';

const [dashUrl, installToken] = process.argv.slice(2);
if (!dashUrl || !installToken) {
  console.error('usage: node tests/e2e.mjs DASHBOARD_URL INSTALL_TOKEN');
  process.exit(2);
}
const origin = new URL(dashUrl).origin;
const EMAIL = 'admin@example.com';
const PASSWORD = 'dashboard-pass-123';
const TIMEOUT = 15000;

const { ctx, close } = await launch();
const page = ctx.pages()[0] || (await ctx.newPage());
page.setDefaultTimeout(TIMEOUT);

let problems = [];
let expectErrors = 0; // > 0 while a step expects 4xx answers (console errors of those are fine)
page.on('console', (m) => {
  if (m.type() !== 'error') return;
  if (expectErrors && /status of 4\d\d/.test(m.text())) return;
  // while the server restarts after a restore its realtime stream is cut and the page polls
  // /api/health until it answers
  if (restarting && /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|ERR_INCOMPLETE_CHUNKED_ENCODING/.test(m.text())) return;
  problems.push(`console error: ${m.text()}`);
});
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('request', (r) => {
  const u = new URL(r.url());
  if (!['data:', 'blob:'].includes(u.protocol) && u.origin !== origin) problems.push(`request to another host: ${r.url()}`);
});
page.on('requestfailed', (r) => {
  const err = r.failure()?.errorText || '';
  // the realtime stream and in-flight loads are cancelled by navigation and reloads: not failures
  if (err.includes('ERR_ABORTED') && (r.url().includes('/api/realtime') || r.resourceType() !== 'fetch')) return;
  if (restarting) return;
  problems.push(`request failed: ${r.method()} ${r.url()} ${err}`);
});
page.on('response', (r) => {
  if (r.status() >= 400 && !expectErrors && !restarting) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
});
let restarting = false;

let passed = 0;
let failed = 0;
async function step(name, fn) {
  problems = [];
  const t0 = Date.now();
  try {
    await fn();
    await page.waitForTimeout(50);
    if (problems.length) throw new Error(problems.join('\n'));
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    const why = [String(e.message || e).split('\n').slice(0, 6).join('\n     '), ...problems].join('\n     ');
    console.log(`FAIL ${name}\n     ${why}`);
    await page.screenshot({ path: `${process.env.FAIL_SCREENSHOT_DIR || '/tmp'}/pbun-dash-fail-${passed + failed}.png` }).catch(() => {});
  }
}
async function expecting4xx(fn) {
  expectErrors++;
  try {
    return await fn();
  } finally {
    await page.waitForTimeout(100);
    expectErrors--;
  }
}
const go = (hash) => page.goto(`${dashUrl}#${hash}`);
const toast = (text) => page.locator('.toast', { hasText: text }).first().waitFor();
const panel = () => page.locator('.modal.panel');

await step('first run: the install link creates the first superuser', async () => {
  await go(`/pbinstall/${installToken}`);
  await page.fill('input[name=email]', EMAIL);
  await page.fill('input[name=password]', PASSWORD);
  await page.fill('input[name=passwordConfirm]', PASSWORD);
  await page.click('button:has-text("Create superuser")');
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
  await toast('Record updated.');
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
  restarting = true;
  await page.locator('.modal.small button:has-text("Restore")').click();
  await page.waitForEvent('load', { timeout: 60000 });
  await page.locator('tr[data-key="e2e_backup.zip"]').waitFor({ timeout: 30000 });
  restarting = false;
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

await close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
