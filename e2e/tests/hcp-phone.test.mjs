// The provider portal on a phone: every main page fits a 375-pixel-wide screen in both
// languages (wide tables scroll inside their own box, never the page), and every control on
// it has a name a screen reader can say.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { withDemoServer } from '../lib/suite.mjs';
import { findPatient, logIn } from '../lib/portal.mjs';

const suite = withDemoServer();
const PHONE = { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true };

/** Asserts that the page at `path` fits the screen in both languages; screenshots it. */
async function fits(page, path, name) {
  for (const lang of ['en', 'zh-HK']) {
    const sep = path.includes('?') ? '&' : '?';
    const r = await page.goto(`${suite.server.url}${path}${sep}lang=${lang}`);
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

test('the login page fits a phone screen in both languages', async () => {
  const context = await suite.browser.newContext(PHONE);
  const page = await context.newPage();
  await fits(page, '/hcp/login', 'login');
  await fits(page, '/pics', 'pics');
  await context.close();
});

test("a doctor's pages fit a phone screen", async () => {
  const context = await suite.browser.newContext(PHONE);
  const page = await context.newPage();
  // The demo hospital has the first demo adult under its care, with records.
  await logIn(page, suite.server, 'sth.doctor');
  await fits(page, '/hcp', 'home');
  await fits(page, '/hcp/patients', 'find');
  await page.goto(`${suite.server.url}/hcp?lang=en`);
  await findPatient(page, 'A100000(7)');
  const patient = new URL(page.url()).pathname;
  await fits(page, patient, 'patient');
  await fits(page, `${patient}/record`, 'record');
  const detail = await page.locator('a[href*="/records/"]').first().getAttribute('href');
  await fits(page, detail, 'record-detail');
  await fits(page, `${patient}/card`, 'card');
  await fits(page, `${patient}/cm-prescription`, 'cm-prescription');
  await fits(page, `${patient}/deposit/allergy`, 'deposit');
  await context.close();
});

test("a user administrator's pages fit a phone screen", async () => {
  const context = await suite.browser.newContext(PHONE);
  const page = await context.newPage();
  await logIn(page, suite.server, 'sth.user-administrator');
  await fits(page, '/hcp/users', 'users');
  await fits(page, '/hcp/access-log', 'access-log');
  await fits(page, '/hcp/alerts', 'alerts');
  await context.close();
});
