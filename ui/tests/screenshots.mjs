// Screenshots of the main pages (and the SQL console and Explain), light and dark, desktop
// (1280x800) and phone (390x844):
//   node tests/screenshots.mjs DASHBOARD_URL EMAIL PASSWORD OUTDIR
// Expects the data the e2e suite leaves (collections tags/posts) and a PocketBun server (Explain);
// adds one posts record.
import { launch, PNG } from './browser.mjs';
import { mkdirSync } from 'node:fs';

const [dash, email, password, out] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const { ctx, close } = await launch();
const page = ctx.pages()[0] || (await ctx.newPage());
page.setDefaultTimeout(15000);
await page.goto(`${dash}#/login`);
await page.fill('input[name=email]', email);
await page.fill('input[name=password]', password);
await page.click('button:has-text("Sign in")');
await page.locator('.sidebar').waitFor();

// a record to show
await page.goto(`${dash}#/collections/posts/records/new`);
await page.fill('.modal.panel input[name=f_text]', 'Hello from the dashboard');
await page.fill('.modal.panel input[name=f_number]', '7');
await page.fill('.modal.panel input[name=f_email]', 'ada@example.com');
await page.locator('.modal.panel input[type=file][name=f_file]').setInputFiles({ name: 'red.png', mimeType: 'image/png', buffer: PNG });
await page.click('.modal.panel button:has-text("Create")');
await page.locator('.table td', { hasText: 'Hello from the dashboard' }).first().waitFor();
await page.locator('.toast').first().waitFor({ state: 'detached' });

const shots = [
  ['records', '/collections/posts', '.table td'],
  ['collection-editor', '/collections/posts/edit', '.frow'],
  ['logs', '/logs', '.table.logs tr[data-id]'],
  ['settings', '/settings', 'input[name="meta.appName"]'],
];
for (const scheme of ['light', 'dark']) {
  await page.emulateMedia({ colorScheme: scheme });
  await page.setViewportSize({ width: 1280, height: 800 });
  for (const [name, hash, sel] of shots) {
    await page.goto(`${dash}#${hash}`);
    await page.locator(sel).first().waitFor();
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${out}/${name}-${scheme}.png` });
  }
  // the SQL console with a result, and Explain on a filter (PocketBun only)
  await page.goto(`${dash}#/settings/sql`);
  await page.fill('textarea[name=query]', 'SELECT name, type, system FROM _collections ORDER BY system, name');
  await page.click('button:has-text("Execute")');
  await page.locator('.sql-result td').first().waitFor();
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${out}/sql-${scheme}.png` });
  await page.goto(`${dash}#/collections/posts`);
  await page.fill('input[name=search]', 'f_number > 5');
  await page.press('input[name=search]', 'Enter');
  await page.click('button:has-text("Explain")');
  await page.locator('.modal.explain .plan li').first().waitFor();
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${out}/explain-${scheme}.png` });
  await page.keyboard.press('Escape');
  await page.fill('input[name=search]', '');
  await page.press('input[name=search]', 'Enter');
  await page.locator('input[name=search]').blur();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${dash}#/collections/posts`);
  await page.locator('.table td').first().waitFor();
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${out}/phone-records-${scheme}.png` });
}
await close();
console.log('screenshots written to', out);
