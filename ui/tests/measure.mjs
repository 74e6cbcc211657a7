// Time to interactive of the records page on a big collection:
//   node tests/measure.mjs DASHBOARD_URL EMAIL PASSWORD COLLECTION
// Loads the dashboard cold (fresh profile, empty cache) at #/collections/COLLECTION already
// signed in, and reports the time from navigation start until the first page of rows is shown
// and the table answers a click (the record editor opens), plus the bytes transferred.
import { launch } from './browser.mjs';

const [dash, email, password, coll] = process.argv.slice(2);
const { ctx, close } = await launch();
const page = ctx.pages()[0] || (await ctx.newPage());
await page.goto(`${dash}#/login`);
await page.fill('input[name=email]', email);
await page.fill('input[name=password]', password);
await page.click('button:has-text("Sign in")');
await page.locator('.sidebar').waitFor();
const runs = [];
for (let i = 0; i < 5; i++) {
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Network.clearBrowserCache');
  let bytes = 0;
  const onResp = async (r) => {
    const h = await r.allHeaders().catch(() => ({}));
    bytes += Number(h['content-length'] || 0);
  };
  page.on('response', onResp);
  await page.goto('about:blank');
  const t0 = Date.now();
  await page.goto(`${dash}#/collections/${coll}`);
  await page.locator('.table tbody tr[data-id]').first().waitFor();
  const rows = Date.now() - t0;
  await page.locator('.table tbody tr[data-id]').first().click();
  await page.locator('.modal.panel input[name=id]').waitFor();
  const interactive = Date.now() - t0;
  const total = await page.locator('.pager .muted').textContent();
  page.off('response', onResp);
  runs.push({ rows, interactive, bytes, total });
}
await close();
console.log(JSON.stringify(runs));
const med = (k) => runs.map((r) => r[k]).sort((a, b) => a - b)[2];
console.log(`median: first rows ${med('rows')} ms, interactive ${med('interactive')} ms (${runs[0].total})`);
