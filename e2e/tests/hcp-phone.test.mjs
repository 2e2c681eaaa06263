// The provider portal on a phone: every main page fits a 375-pixel-wide screen in both
// languages (wide tables scroll inside their own box, never the page), and every control on
// it has a name a screen reader can say.

import { test } from 'node:test';
import { PHONE, fits as fitsOn } from '../lib/phone.mjs';
import { withDemoServer } from '../lib/suite.mjs';
import { findPatient, logIn } from '../lib/portal.mjs';

const suite = withDemoServer();
const fits = (page, path, name) => fitsOn(page, suite.server, path, name);

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
