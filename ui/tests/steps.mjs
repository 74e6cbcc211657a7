// The step runner of a browser suite: every step must pass with no console error, no failed
// request, no HTTP error answer and no request to another host than `origins` (a step that
// expects 4xx answers wraps them in `expecting4xx`). A failed step leaves a screenshot in
// FAIL_SCREENSHOT_DIR (named `<shotPrefix>-N.png`). `done()` prints "N passed, M failed" and
// returns the exit code. A step sets `state.leaving` while it leaves a page on purpose (its
// in-flight loads are cancelled), and `state.restarting` while the server restarts (after a
// backup restore: the realtime stream is cut and the page polls /api/health until it answers).
import { launch } from './browser.mjs';

/** The `DASHBOARD_URL INSTALL_TOKEN` arguments of suite `script` (its usage and exit 2 without
 * them), and the dashboard's origin. */
export function suiteArgs(script) {
  const [dashUrl, installToken] = process.argv.slice(2);
  if (!dashUrl || !installToken) {
    console.error(`usage: node tests/${script} DASHBOARD_URL INSTALL_TOKEN`);
    process.exit(2);
  }
  return { dashUrl, installToken, origin: new URL(dashUrl).origin };
}

/** A fresh Chromium (`launch` options) and its page, whose actions time out after 15 s;
 * `clipboard` lets `origin` read and write the clipboard. */
export async function openPage(origin, { clipboard = false, ...options } = {}) {
  const { ctx, close } = await launch(options);
  if (clipboard) await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.setDefaultTimeout(15000);
  return { ctx, page, close };
}

export function stepRunner(page, origins, { shotPrefix = 'pbun-dash-fail' } = {}) {
  const state = { problems: [], expectErrors: 0, leaving: false, restarting: false, passed: 0, failed: 0 };
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (state.expectErrors && /status of 4\d\d/.test(m.text())) return;
    if (state.restarting && /ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|ERR_INCOMPLETE_CHUNKED_ENCODING/.test(m.text())) return;
    state.problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => state.problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!['data:', 'blob:'].includes(u.protocol) && !origins.includes(u.origin)) state.problems.push(`request to another host: ${r.url()}`);
  });
  page.on('requestfailed', (r) => {
    const err = r.failure()?.errorText || '';
    // the realtime stream and in-flight loads are cancelled by navigation and reloads: not failures
    if (err.includes('ERR_ABORTED') && (state.leaving || r.url().includes('/api/realtime') || r.resourceType() !== 'fetch')) return;
    if (state.restarting) return;
    state.problems.push(`request failed: ${r.method()} ${r.url()} ${err}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !state.expectErrors && !state.restarting) state.problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
  });

  async function step(name, fn) {
    state.problems = [];
    const t0 = Date.now();
    try {
      await fn();
      await page.waitForTimeout(50);
      if (state.problems.length) throw new Error(state.problems.join('\n'));
      state.passed++;
      console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      state.failed++;
      const why = [String(e.message || e).split('\n').slice(0, 6).join('\n     '), ...state.problems].join('\n     ');
      console.log(`FAIL ${name} (at ${page.url()})\n     ${why}`);
      const n = state.passed + state.failed;
      await page.screenshot({ path: `${process.env.FAIL_SCREENSHOT_DIR || '/tmp'}/${shotPrefix}-${n}.png` }).catch(() => {});
    }
  }
  async function expecting4xx(fn) {
    state.expectErrors++;
    try {
      return await fn();
    } finally {
      await page.waitForTimeout(100);
      state.expectErrors--;
    }
  }
  function done() {
    console.log(`${state.passed} passed, ${state.failed} failed`);
    return state.failed ? 1 : 0;
  }
  return { step, expecting4xx, done, state };
}

/** The dashboard's page helpers for a suite whose dashboard is at `dashUrl`. */
export function dashboard(page, dashUrl) {
  /** Opens route `hash` and waits until the app has taken it: its hashchange handler first puts
   * the old hash back while it asks whether a dirty form may be left, then the new one. */
  async function go(hash) {
    await page.goto(`${dashUrl}#${hash}`);
    await page.evaluate(() => new Promise((r) => setTimeout(r, 0)));
    await page.waitForFunction((h) => location.hash === h, `#${hash}`);
  }
  /** Waits for a toast and dismisses it (a click), so a later wait for the same text cannot be
   * answered by this one (toasts stay 3 s). */
  async function toast(text) {
    const t = page.locator('.toast', { hasText: text }).first();
    await t.waitFor();
    await t.click().catch(() => {});
  }
  /** Fills in the installer of the install link `token` for a first superuser and submits it. */
  async function install(token, email, password) {
    await go(`/pbinstall/${token}`);
    await page.fill('input[name=email]', email);
    await page.fill('input[name=password]', password);
    await page.fill('input[name=passwordConfirm]', password);
    await page.click('button:has-text("Create superuser")');
  }
  /** Turns SMTP on in the mail settings, to the sink on 127.0.0.1:`port`, and saves. */
  async function enableSmtp(port) {
    await go('/settings/mail');
    await page.locator('input[name="smtp.enabled"]').check();
    await page.fill('input[name="smtp.host"]', '127.0.0.1');
    await page.fill('input[name="smtp.port"]', port);
    await page.click('button:has-text("Save changes")');
    await toast('Settings saved.');
  }
  return {
    go,
    toast,
    install,
    enableSmtp,
    /** The open side panel (an editor). */
    panel: () => page.locator('.modal.panel'),
    /** Answers the open confirmation with its `yes` button. */
    confirm: (yes) => page.click(`.modal.small button:has-text("${yes}")`),
  };
}

/** Polls `fn` every 100 ms until it returns a truthy value (returned) or `ms` pass (throws `what`). */
export async function until(fn, what, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
