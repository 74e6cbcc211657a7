// Browser test of the dashboard's schema side in headless Chromium against a running server:
// the sidebar (search, pins, the System group), truncate, field flags / help / rename / reorder /
// delete, the index editor, auth options (OAuth2 provider and mapped fields, token durations, a
// mail template), the collections export and import with its diff preview, a collection rename.
//   node tests/e2e-schema.mjs DASHBOARD_URL INSTALL_TOKEN
// DASHBOARD_URL is where the built dashboard is served (pocketbun: http://127.0.0.1:PORT/_/;
// PocketBase: its --publicDir at http://127.0.0.1:PORT/). INSTALL_TOKEN is the token of the
// install link the server printed on its first start. Every effect is checked through the Web
// API (with the superuser's token) or after a reload, not only on screen. Any console error,
// failed request or request to another host fails the step (steps that expect an API error
// declare it). Prints "N passed, M failed" and exits non-zero on any failure.
// Env: FAIL_SCREENSHOT_DIR (where a failing step's screenshot goes), SCREENSHOT_DIR (when set,
// screenshots of the screens this suite covers are written there).
import { dashboard, openPage, stepRunner, suiteArgs } from './steps.mjs';
import { readFileSync } from 'node:fs';

const { dashUrl, installToken, origin } = suiteArgs('e2e-schema.mjs');
const EMAIL = 'schema@example.com';
const PASSWORD = 'schema-pass-123';

const { page, close } = await openPage(origin, { clipboard: true });
const { step, expecting4xx, done } = stepRunner(page, [origin], { shotPrefix: 'pbun-schema-fail' });
const { go, toast, install, panel, confirm } = dashboard(page, dashUrl);
const shot = async (name, target = page) => {
  if (process.env.SCREENSHOT_DIR) await target.screenshot({ path: `${process.env.SCREENSHOT_DIR}/schema-${name}.png` });
};
/** Saves the open collection editor and waits until it has closed (it navigates on close). */
async function saveCollection() {
  await panel().locator('button:has-text("Save changes")').click();
  await toast('Collection updated.');
  await panel().waitFor({ state: 'detached' });
}
function check(ok, what) {
  if (!ok) throw new Error(what);
}

// The Web API as the superuser, from outside the browser: what the dashboard did must be there.
let token = '';
async function api(method, path, body) {
  const r = await fetch(`${origin}${path}`, {
    method,
    headers: { Authorization: token, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null };
}
async function apiOk(method, path, body) {
  const r = await api(method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}
const collection = (name) => apiOk('GET', `/api/collections/${name}`);
const fieldsOf = async (name) => (await collection(name)).fields.filter((f) => !f.system).map((f) => f.name);
/** The editor's row of field `name` with its options open. */
async function fieldOptions(name) {
  const row = panel().locator(`.frow[data-field-row="${name}"]`);
  if ((await row.locator('button:has-text("Options")').getAttribute('aria-expanded')) !== 'true') await row.locator('button:has-text("Options")').click();
  return row;
}

await step('first run: the install link creates the first superuser', async () => {
  await install(installToken, EMAIL, PASSWORD);
  await page.waitForURL(/#\/collections/);
  await page.locator('.sidebar').waitFor();
  const r = await fetch(`${origin}/api/collections/_superusers/auth-with-password`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ identity: EMAIL, password: PASSWORD }),
  });
  token = (await r.json()).token;
  check(token, `no superuser token (${r.status})`);
  // the collections of this suite: notes (with records) and a second one to search for
  await apiOk('POST', '/api/collections', {
    name: 'notes',
    type: 'base',
    fields: [
      { name: 'title', type: 'text' },
      { name: 'body', type: 'text' },
      { name: 'score', type: 'number' },
      { name: 'extra', type: 'text' },
    ],
  });
  await apiOk('POST', '/api/collections', { name: 'projects', type: 'base', fields: [{ name: 'label', type: 'text' }] });
  for (const [title, score] of [
    ['alpha', 1],
    ['beta', 2],
    ['gamma', 3],
  ])
    await apiOk('POST', '/api/collections/notes/records', { title, body: `${title} body`, score, extra: `${title} extra` });
});

await step('sidebar: search, the collapsible System group, pinning (kept over a reload)', async () => {
  await go('/collections/notes');
  await page.reload();
  const sb = page.locator('.sidebar');
  const link = (n) => sb.locator(`a[data-collection="${n}"]`);
  await link('notes').waitFor();
  await link('projects').waitFor();
  // System starts collapsed; it opens, stays open over a reload, and closes again
  check(!(await link('_superusers').isVisible()), 'the System group is open on a fresh profile');
  const toggle = sb.locator('button.group-toggle', { hasText: 'System' });
  check((await toggle.getAttribute('aria-expanded')) === 'false', 'System toggle not collapsed');
  await toggle.click();
  await link('_superusers').waitFor();
  await shot('sidebar-system-open', sb);
  await page.reload();
  await link('_superusers').waitFor();
  await sb.locator('button.group-toggle', { hasText: 'System' }).click();
  await link('_superusers').waitFor({ state: 'detached' });
  // search narrows the list; a system collection matches too, even while its group is closed
  await sb.locator('input[type=search]').fill('proj');
  await link('notes').waitFor({ state: 'detached' });
  await link('projects').waitFor();
  await sb.locator('input[type=search]').fill('superu');
  await link('_superusers').waitFor();
  check((await sb.locator('a[data-collection]').count()) === 1, 'search "superu" shows more than _superusers');
  await sb.locator('input[type=search]').fill('zzz');
  await sb.locator('text=No collections found.').waitFor();
  await sb.locator('input[type=search]').fill('');
  await link('notes').waitFor();
  // pin projects: it moves to the Pinned group at the top and stays there after a reload
  await sb.locator('li:has(a[data-collection="projects"])').hover();
  await sb.getByRole('button', { name: 'Pin projects' }).click();
  await sb.locator('h4', { hasText: 'Pinned' }).waitFor();
  const first = async () => (await sb.locator('a[data-collection]').first().getAttribute('data-collection'));
  check((await first()) === 'projects', `first link after pinning: ${await first()}`);
  await shot('sidebar-pinned', sb);
  await page.reload();
  await sb.locator('h4', { hasText: 'Pinned' }).waitFor();
  check((await first()) === 'projects', 'the pin did not survive a reload');
  await sb.getByRole('button', { name: 'Pin projects' }).click();
  await sb.locator('h4', { hasText: 'Pinned' }).waitFor({ state: 'detached' });
  check((await first()) === 'notes', `first link after unpinning: ${await first()}`);
});

await step('fields: hidden / presentable / required flags, rename, reorder, delete after a confirmation', async () => {
  await go('/collections/notes/edit');
  const p = panel();
  await p.locator('.frow[data-field-row="title"]').waitFor();
  await (await fieldOptions('title')).locator('input[name$=".presentable"]').check();
  await (await fieldOptions('title')).locator('input[name$=".help"]').fill('The headline of the note');
  await (await fieldOptions('score')).locator('input[name$=".required"]').check();
  // rename body -> content; move score above it; remove extra
  await p.locator('.frow[data-field-row="body"] input.fname').fill('content');
  await p.locator('.frow[data-field-row="score"] button[aria-label="Move up"]').click();
  await p.locator('.frow[data-field-row="extra"]').getByRole('button', { name: 'Remove field extra' }).click();
  await p.locator('.frow.removed[data-field-row="extra"]').waitFor();
  await shot('fields-edited', p);
  await p.locator('button:has-text("Save changes")').click();
  // the rename and the removal are listed first; "No" keeps the form as it is
  const ask = page.locator('.modal.small', { hasText: 'Save these changes?' });
  await ask.waitFor();
  const asked = await ask.locator('.confirm-text').textContent();
  check(asked.includes('Rename field body to content.') && asked.includes('Delete field extra and all its data.'), `confirmation: ${asked}`);
  await confirm('No');
  check((await fieldsOf('notes')).join() === 'title,body,score,extra', 'saved although the deletion was declined');
  await p.locator('button:has-text("Save changes")').click();
  await confirm('Confirm');
  await toast('Collection updated.');
  await panel().waitFor({ state: 'detached' });
  const c = await collection('notes');
  const names = c.fields.filter((f) => !f.system).map((f) => f.name);
  check(names.join() === 'title,score,content', `fields after save: ${names}`);
  const f = Object.fromEntries(c.fields.map((x) => [x.name, x]));
  check(f.title.presentable && !f.title.hidden && !f.title.required && f.title.help === 'The headline of the note', `title flags: ${JSON.stringify(f.title)}`);
  check(f.score.required && !f.score.presentable, `score flags: ${JSON.stringify(f.score)}`);
  // required: a record without a score is refused now
  const noScore = await api('POST', '/api/collections/notes/records', { title: 'no score' });
  check(noScore.status === 400 && noScore.json?.data?.score?.code === 'validation_required', `insert without the required score: ${noScore.status} ${JSON.stringify(noScore.json)}`);
  // the renamed field kept its values, the deleted one is gone
  const recs = await apiOk('GET', '/api/collections/notes/records?sort=score');
  check(recs.items.map((r) => r.content).join() === 'alpha body,beta body,gamma body', `content values: ${recs.items.map((r) => r.content)}`);
  check(recs.items.every((r) => !('extra' in r) && !('body' in r)), `old keys still there: ${JSON.stringify(recs.items[0])}`);
  // hidden: add a field, hide it, and the API leaves it out for a guest while the superuser sees it
  await go('/collections/notes/edit');
  await p.locator('[data-add-field=text]').click();
  const added = p.locator('.frow').last();
  await added.locator('input.fname').fill('secret');
  await added.locator('input[name$=".hidden"]').check();
  await saveCollection();
  await apiOk('PATCH', '/api/collections/notes', { listRule: '' });
  const id = recs.items[0].id;
  await apiOk('PATCH', `/api/collections/notes/records/${id}`, { secret: 's3' });
  const guest = await (await fetch(`${origin}/api/collections/notes/records`)).json();
  check(guest.items.length === 3 && guest.items.every((r) => !('secret' in r)), `a guest sees the hidden field: ${JSON.stringify(guest.items[0])}`);
  check((await apiOk('GET', `/api/collections/notes/records/${id}`)).secret === 's3', 'the superuser does not see the hidden field');
  // the editor shows the saved order and flags after a reload
  await go('/collections/notes/edit');
  await page.reload();
  await p.locator('.frow[data-field-row="secret"]').waitFor();
  const rows = await p.locator('.frow').evaluateAll((els) => els.map((e) => e.getAttribute('data-field-row')));
  check(rows.filter((n) => ['title', 'score', 'content', 'secret'].includes(n)).join() === 'title,score,content,secret', `rows after reload: ${rows}`);
  check(await (await fieldOptions('secret')).locator('input[name$=".hidden"]').isChecked(), 'hidden flag not shown after reload');
  await page.keyboard.press('Escape');
  await panel().waitFor({ state: 'detached' });
});

await step('index editor: a unique and a plain multi-column index; a duplicate then fails; renamed and deleted columns', async () => {
  await go('/collections/notes/edit');
  const p = panel();
  const addIndex = async (unique, cols) => {
    await p.locator('.indexes button:has-text("New index")').click();
    const form = p.locator('.indexes .new-index');
    if (unique) await form.locator('input[name="newIndex.unique"]').check();
    for (const col of cols) await form.locator(`input[name="newIndex.columns.${col}"]`).check();
    await form.locator('button:has-text("Add index")').click();
    await form.waitFor({ state: 'detached' });
  };
  const shown = () => p.locator('.indexes input[name^="indexes."]').evaluateAll((els) => els.map((e) => e.value));
  await addIndex(true, ['title', 'score']);
  await addIndex(false, ['score', 'content']);
  // a third one, removed again before saving
  await addIndex(false, ['title']);
  check((await shown()).length === 3, `the editor shows ${(await shown()).length} indexes`);
  await p.locator('.indexes .index:has(input[name="indexes.2"]) button:has-text("Remove")').click();
  await shot('indexes', p.locator('.indexes'));
  await saveCollection();
  const idx = (await collection('notes')).indexes;
  check(idx.length === 2, `indexes: ${JSON.stringify(idx)}`);
  const unique = idx.find((s) => /^CREATE UNIQUE INDEX `\w+` ON `notes` \(\s*`title`,\s*`score`\s*\)$/.test(s));
  check(unique, `no unique (title, score): ${idx}`);
  check(idx.some((s) => /^CREATE INDEX `\w+` ON `notes` \(\s*`score`,\s*`content`\s*\)$/.test(s)), `no plain (score, content): ${idx}`);
  // the unique index holds: the same (title, score) again is refused, another score is fine
  const dup = await api('POST', '/api/collections/notes/records', { title: 'alpha', score: 1 });
  check(dup.status === 400 && dup.json?.data?.title?.code === 'validation_not_unique', `duplicate insert: ${dup.status} ${JSON.stringify(dup.json)}`);
  await apiOk('POST', '/api/collections/notes/records', { title: 'alpha', score: 4 });
  // and the dashboard shows the same error on a duplicate from its record form
  await go('/collections/notes/records/new');
  await panel().locator('input[name=title]').fill('beta');
  await panel().locator('input[name=score]').fill('2');
  await expecting4xx(async () => {
    await panel().locator('button:has-text("Create")').click();
    await panel().locator('.error', { hasText: /unique/i }).first().waitFor();
  });
  await page.keyboard.press('Escape');
  await confirm('Discard');
  await panel().waitFor({ state: 'detached' });
  // a broken index is refused, and the error shows at its row
  await go('/collections/notes/edit');
  await p.locator('input[name="indexes.1"]').fill('CREATE INDEX `idx_broken` ON `notes` (`no_such_column`)');
  await expecting4xx(async () => {
    await p.locator('button:has-text("Save changes")').click();
    await p.locator('.indexes .index:has(input[name="indexes.1"]) .error').waitFor();
    await shot('index-error', p.locator('.indexes'));
  });
  await page.keyboard.press('Escape');
  await confirm('Discard');
  await panel().waitFor({ state: 'detached' });
  check(JSON.stringify((await collection('notes')).indexes) === JSON.stringify(idx), 'the broken index changed the collection');
  // renaming an indexed field renames it in the index (the server refuses an index on a
  // column that is gone), and its values stay
  await go('/collections/notes/edit');
  await p.locator('.frow[data-field-row="content"] input.fname').fill('summary');
  await p.locator('button:has-text("Save changes")').click();
  await page.locator('.modal.small', { hasText: 'Rename field content to summary.' }).waitFor();
  await confirm('Confirm');
  await toast('Collection updated.');
  await panel().waitFor({ state: 'detached' });
  const renamed = (await collection('notes')).indexes;
  check(renamed.length === 2 && renamed.some((s) => /^CREATE INDEX `\w+` ON `notes` \(\s*`score`,\s*`summary`\s*\)$/.test(s)), `indexes after the rename: ${renamed}`);
  const bySummary = await apiOk('GET', `/api/collections/notes/records?filter=${encodeURIComponent('summary = "beta body"')}`);
  check(bySummary.totalItems === 1, `records with the renamed field's value: ${bySummary.totalItems}`);
  // deleting an indexed field drops its index with it, after saying so
  await go('/collections/notes/edit');
  await p.locator('.frow[data-field-row="summary"]').getByRole('button', { name: 'Remove field summary' }).click();
  await p.locator('button:has-text("Save changes")').click();
  await page.locator('.modal.small', { hasText: /Delete field summary and all its data\.\s*• Drop index idx_notes_score_content / }).waitFor();
  await confirm('Confirm');
  await toast('Collection updated.');
  await panel().waitFor({ state: 'detached' });
  const left = await collection('notes');
  check(left.indexes.length === 1 && left.indexes[0] === unique, `indexes after deleting summary: ${left.indexes}`);
  check(!left.fields.some((f) => f.name === 'summary'), 'summary still there');
});

await step('truncate a collection after a confirmation', async () => {
  await go('/collections/notes');
  await page.getByRole('cell', { name: 'gamma', exact: true }).waitFor();
  await page.click('button[title="Edit collection"]');
  await panel().locator('button:has-text("Truncate")').click();
  await page.locator('.modal.small', { hasText: 'Delete ALL records of notes' }).waitFor();
  // "No" keeps the records
  await confirm('No');
  check((await apiOk('GET', '/api/collections/notes/records')).totalItems === 4, 'records gone after "No"');
  await panel().locator('button:has-text("Truncate")').click();
  await confirm('Truncate');
  await toast('Collection truncated.');
  await panel().waitFor({ state: 'detached' });
  await page.locator('text=No records found.').waitFor();
  check((await apiOk('GET', '/api/collections/notes/records')).totalItems === 0, 'records left after truncate');
  // the collection itself stays
  check((await fieldsOf('notes')).join() === 'title,score,secret', `fields after truncate: ${await fieldsOf('notes')}`);
});

await step('auth options: an OAuth2 provider, token durations, a mail template', async () => {
  await go('/collections/users/edit');
  await panel().locator('h2', { hasText: 'Edit collection users' }).waitFor();
  const p = panel();
  await p.locator('[role=tab]:has-text("Options")').click();
  await p.locator('input[name="oauth2.enabled"]').check();
  await p.locator('select[aria-label="OAuth2 provider"]').selectOption('gitlab');
  await p.locator('.auth-options button:has-text("Add")').click();
  await p.locator('input[name="oauth2.providers.0.clientId"]').fill('e2e-client-id');
  await p.locator('input[name="oauth2.providers.0.clientSecret"]').fill('e2e-client-secret');
  await p.locator('.auth-options summary', { hasText: 'Display name, endpoints' }).click();
  await p.locator('input[name="oauth2.providers.0.displayName"]').fill('Company GitLab');
  await p.locator('input[name="oauth2.providers.0.authURL"]').fill('https://gitlab.example.com/oauth/authorize');
  await p.locator('select[name="oauth2.providers.0.pkce"]').selectOption('true');
  await p.locator('select[name="oauth2.mappedFields.username"]').selectOption('name');
  await p.locator('input[name="authToken.duration"]').fill('7200');
  await p.locator('input[name="passwordResetToken.duration"]').fill('900');
  await p.locator('details', { hasText: 'Verification email' }).locator('summary').click();
  await p.locator('input[name="verificationTemplate.subject"]').fill('Verify your {APP_NAME} account, please');
  await p.locator('textarea[name="verificationTemplate.body"]').fill('<p>Click <a href="{APP_URL}/verify/{TOKEN}">here</a>.</p>');
  await shot('auth-options', p);
  await saveCollection();
  // public: the provider is offered to sign-in forms
  const methods = await (await fetch(`${origin}/api/collections/users/auth-methods`)).json();
  check(methods.oauth2?.enabled === true, `auth-methods oauth2: ${JSON.stringify(methods.oauth2)}`);
  const offered = methods.oauth2.providers.find((x) => x.name === 'gitlab');
  check(offered, `providers: ${methods.oauth2.providers.map((x) => x.name)}`);
  check(offered.displayName === 'Company GitLab', `displayName: ${offered.displayName}`);
  // the sign-in link goes to the configured endpoint with the client id and a PKCE challenge
  const link = new URL(offered.authURL);
  check(link.origin + link.pathname === 'https://gitlab.example.com/oauth/authorize', `authURL: ${offered.authURL}`);
  check(link.searchParams.get('client_id') === 'e2e-client-id' && link.searchParams.get('code_challenge') === offered.codeChallenge && offered.codeChallenge, `authURL params: ${offered.authURL}`);
  const c = await collection('users');
  const gl = c.oauth2.providers.find((x) => x.name === 'gitlab');
  check(gl?.clientId === 'e2e-client-id' && gl.pkce === true && !('clientSecret' in gl), `provider: ${JSON.stringify(gl)}`);
  check(c.oauth2.mappedFields.username === 'name' && c.oauth2.mappedFields.avatarURL === 'avatar', `mappedFields: ${JSON.stringify(c.oauth2.mappedFields)}`);
  check(c.authToken.duration === 7200 && c.passwordResetToken.duration === 900, `durations: ${c.authToken.duration} ${c.passwordResetToken.duration}`);
  check(c.verificationTemplate.subject === 'Verify your {APP_NAME} account, please', `subject: ${c.verificationTemplate.subject}`);
  check(c.verificationTemplate.body.includes('/verify/{TOKEN}'), `body: ${c.verificationTemplate.body}`);
  // after a reload the editor shows what was saved; saving again keeps the (never shown) secret
  await go('/collections/users/edit');
  await page.reload();
  await panel().locator('h2', { hasText: 'Edit collection users' }).waitFor();
  await p.locator('[role=tab]:has-text("Options")').click();
  check((await p.locator('input[name="oauth2.providers.0.clientId"]').inputValue()) === 'e2e-client-id', 'client id after reload');
  check((await p.locator('input[name="authToken.duration"]').inputValue()) === '7200', 'auth token duration after reload');
  await p.locator('details', { hasText: 'Verification email' }).locator('summary').click();
  check((await p.locator('input[name="verificationTemplate.subject"]').inputValue()).startsWith('Verify your'), 'subject after reload');
  await p.locator('input[name="fileToken.duration"]').fill('600');
  await saveCollection();
  const again = await collection('users');
  check(again.fileToken.duration === 600 && again.oauth2.providers.some((x) => x.name === 'gitlab' && x.clientId === 'e2e-client-id'), 'second save lost the provider');
});

await step('collections export, then an import with its diff preview', async () => {
  await go('/settings/export');
  const pre = page.locator('pre.export');
  await pre.waitFor();
  // a collection left out of the export, then all of them again
  const exportedNames = async () => JSON.parse(await pre.textContent()).map((c) => c.name);
  await page.locator('input[name="export.projects"]').uncheck();
  check(!(await exportedNames()).includes('projects') && (await exportedNames()).includes('notes'), `export without projects: ${await exportedNames()}`);
  check(!(await page.locator('input[name="export.all"]').isChecked()), '"All" still checked');
  await page.locator('input[name="export.all"]').check();
  check((await exportedNames()).includes('projects'), 'projects not back in the export');
  await page.locator('input[name="export.all"]').uncheck();
  await page.locator('button:has-text("Download JSON")[disabled]').waitFor();
  await page.locator('input[name="export.all"]').check();
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('button:has-text("Download JSON")')]);
  const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
  check(JSON.stringify(exported) === JSON.stringify(JSON.parse(await pre.textContent())), 'the download differs from the shown JSON');
  const names = exported.map((c) => c.name);
  for (const n of ['notes', 'projects', 'users', '_superusers']) check(names.includes(n), `export lacks ${n}: ${names}`);
  const original = structuredClone(exported);
  // the same schema with one collection changed and one added
  const notes = exported.find((c) => c.name === 'notes');
  notes.listRule = 'title != ""';
  notes.fields.push({ name: 'imported_note', type: 'text' });
  exported.push({ name: 'imported', type: 'base', fields: [{ name: 'label', type: 'text' }] });
  await go('/settings/import');
  await page.fill('textarea[name=importJson]', '[not json');
  await page.click('button:has-text("Review")');
  await page.locator('.error', { hasText: 'Invalid JSON' }).waitFor();
  await page.fill('textarea[name=importJson]', JSON.stringify(exported, null, 2));
  await page.click('button:has-text("Review")');
  const diff = page.locator('.diff');
  await diff.locator('> .diff-add', { hasText: 'imported (new base collection)' }).waitFor();
  await diff.locator('.diff-change', { hasText: 'notes' }).waitFor();
  const change = await diff.locator('.diff-change', { hasText: 'notes' }).textContent();
  check(change.includes('imported_note') && change.includes('listRule'), `diff of notes: ${change}`);
  await diff.locator('.diff-change li.diff-add', { hasText: '+ field imported_note (text)' }).waitFor();
  await diff.locator('.diff-change li', { hasText: '~ listRule: "" → "title != \\"\\""' }).waitFor();
  check((await diff.locator('.diff-change').count()) === 1, `unchanged collections in the diff: ${await diff.locator('.diff-change').allTextContents()}`);
  check((await diff.locator('> .diff-del').count()) === 0, 'deletions without "delete missing"');
  await shot('import-diff');
  // nothing is applied before the confirmation
  check((await api('GET', '/api/collections/imported')).status === 404, 'imported before the confirmation');
  await page.click('button:has-text("Confirm and import")');
  await toast('Collections imported.');
  await go('/collections/imported');
  await page.locator('.sidebar a[data-collection=imported]').waitFor();
  await page.locator('.table th', { hasText: 'label' }).waitFor();
  const n = await collection('notes');
  check(n.listRule === 'title != ""', `listRule after import: ${n.listRule}`);
  check(n.fields.some((f) => f.name === 'imported_note'), 'imported field missing');
  check((await collection('imported')).fields.some((f) => f.name === 'label'), 'imported collection missing its field');
  // the imported change shows in the dashboard: the new column in notes' table
  await go('/collections/notes');
  await page.locator('.table th', { hasText: 'imported_note' }).waitFor();
  // back to the exported schema without projects, deleting what the import lacks: the preview
  // lists the deletions, and they happen only after one more confirmation
  await go('/settings/import');
  await page.fill('textarea[name=importJson]', JSON.stringify(original.filter((c) => c.name !== 'projects')));
  await page.locator('input[name=deleteMissing]').check();
  await page.click('button:has-text("Review")');
  for (const gone of ['projects', 'imported']) await diff.locator('> .diff-del', { hasText: `${gone} (deleted)` }).waitFor();
  await diff.locator('.diff-change li.diff-del', { hasText: 'field imported_note (text) and its data' }).waitFor();
  await shot('import-delete-missing');
  await page.click('button:has-text("Confirm and import")');
  await page.locator('.modal.small', { hasText: 'Import will DELETE' }).waitFor();
  await confirm('No');
  check((await api('GET', '/api/collections/projects')).status === 200, 'projects deleted although the import was declined');
  await page.click('button:has-text("Confirm and import")');
  await confirm('Import');
  await toast('Collections imported.');
  for (const gone of ['projects', 'imported']) {
    const r = await api('GET', `/api/collections/${gone}`);
    check(r.status === 404, `${gone} not deleted: ${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
  }
  const back = await collection('notes');
  check(back.listRule === '' && !back.fields.some((f) => f.name === 'imported_note'), `notes after the second import: ${back.listRule} ${back.fields.map((f) => f.name)}`);
  check((await collection('users')).oauth2.providers.some((x) => x.name === 'gitlab'), 'the import lost users\' provider');
});

await step('rename a collection after a confirmation: its link, API path and indexes follow', async () => {
  await go('/collections/notes/edit');
  const p = panel();
  await p.locator('input[name=name]').fill('journal');
  await p.locator('button:has-text("Save changes")').click();
  await page.locator('.modal.small', { hasText: 'Rename collection notes to journal' }).waitFor();
  await confirm('Confirm');
  await toast('Collection updated.');
  await page.waitForURL(/#\/collections\/journal$/);
  await page.locator('.sidebar a[data-collection=journal]').waitFor();
  await page.locator('.sidebar a[data-collection=notes]').waitFor({ state: 'detached' });
  check((await api('GET', '/api/collections/notes')).status === 404, 'notes still answers');
  const j = await collection('journal');
  check(j.indexes.length === 1 && /^CREATE UNIQUE INDEX `\w+` ON `journal`/.test(j.indexes[0]), `indexes after the rename: ${j.indexes}`);
  check((await apiOk('GET', '/api/collections/journal/records')).totalItems === 0, 'journal records');
});

await step('edit a view query: the live preview follows, the change is confirmed and saved', async () => {
  await apiOk('POST', '/api/collections', { name: 'journal_view', type: 'view', viewQuery: 'SELECT id, title FROM journal' });
  // made outside the dashboard: a reload loads it
  await go('/collections/journal_view/edit');
  await page.reload();
  const p = panel();
  await p.locator('.preview .chip', { hasText: 'title' }).waitFor();
  await p.locator('textarea[name=viewQuery]').fill('SELECT id, title, score FROM journal');
  await p.locator('.preview .chip', { hasText: 'score' }).waitFor();
  await p.locator('button:has-text("Save changes")').click();
  await page.locator('.modal.small', { hasText: 'Change the view query' }).waitFor();
  await confirm('Confirm');
  await toast('Collection updated.');
  await panel().waitFor({ state: 'detached' });
  const v = await collection('journal_view');
  check(v.viewQuery === 'SELECT id, title, score FROM journal' && v.fields.some((f) => f.name === 'score'), `view after save: ${v.viewQuery} ${v.fields.map((f) => f.name)}`);
  await page.locator('.table th', { hasText: 'score' }).waitFor();
});

await close();
process.exit(done());
