// The step runner of a browser suite: every step must pass with no console error, no failed
// request, no HTTP error answer and no request to another host than `origins` (a step that
// expects 4xx answers wraps them in `expecting4xx`). A failed step leaves a screenshot in
// FAIL_SCREENSHOT_DIR. `done()` prints "N passed, M failed" and exits non-zero on a failure.
export function stepRunner(page, origins) {
  const state = { problems: [], expectErrors: 0, leaving: false, passed: 0, failed: 0 };
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (state.expectErrors && /status of 4\d\d/.test(m.text())) return;
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
    state.problems.push(`request failed: ${r.method()} ${r.url()} ${err}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !state.expectErrors) state.problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
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
      await page.screenshot({ path: `${process.env.FAIL_SCREENSHOT_DIR || '/tmp'}/pbun-dash-fail-${n}.png` }).catch(() => {});
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
