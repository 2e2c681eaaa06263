// A phone's screen, and the check every portal page must pass on it.

import assert from 'node:assert/strict';
import { shot } from './browser.mjs';

export const PHONE = { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true };

/**
 * Asserts that the page at `path` fits a 375-pixel screen in both languages (wide tables
 * scroll inside their own box, never the page) and that every control on it has a name a
 * screen reader can say; screenshots it as `phone-<name>-<lang>`.
 */
export async function fits(page, server, path, name) {
  for (const lang of ['en', 'zh-HK']) {
    const sep = path.includes('?') ? '&' : '?';
    const r = await page.goto(`${server.url}${path}${sep}lang=${lang}`);
    assert.equal(r.status(), 200, `${path}: ${r.status()}`);
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    assert.ok(overflow <= 0, `${path} (${lang}): ${overflow}px wider than the screen`);
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href]')]
        .filter((el) => !(el.labels?.length || el.getAttribute('aria-label')
          || el.getAttribute('aria-labelledby') || el.textContent.trim()))
        .map((el) => el.outerHTML.slice(0, 80)));
    assert.deepEqual(unnamed, [], `${path} (${lang}): controls without a name`);
    await shot(page, `phone-${name}-${lang}`);
  }
}
