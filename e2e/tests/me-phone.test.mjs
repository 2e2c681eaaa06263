// The patient portal (/me) on a phone: a demo patient logs in with their identity card, a
// password and the one-time code sent to their phone; every page fits a 375-pixel screen in
// both languages and every control has a name a screen reader can say.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PHONE, fits as fitsOn } from '../lib/phone.mjs';
import { withDemoServer } from '../lib/suite.mjs';
import { PASSWORD } from '../lib/portal.mjs';

const suite = withDemoServer();
const fits = (page, path, name) => fitsOn(page, suite.server, path, name);

test("a patient logs in and the patient portal's pages fit a phone screen", async () => {
  const context = await suite.browser.newContext(PHONE);
  const page = await context.newPage();
  const url = suite.server.url;
  await fits(page, '/me/login', 'me-login');
  await fits(page, '/me/register', 'me-register');
  await fits(page, '/me/activate', 'me-activate');
  await fits(page, '/me/forgot', 'me-forgot');
  await page.goto(`${url}/me/login?lang=en`);
  await page.getByLabel('Identity document', { exact: true }).selectOption('hkid');
  await page.getByLabel('Document number').fill('A100000(7)');
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByLabel('One-time code').fill(suite.server.loginCode('91000000'));
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${url}/me`);
  await fits(page, '/me', 'me-home');
  const record = await page.locator('a[href$="/record"]').first().getAttribute('href');
  assert.match(record, /^\/me\/[0-9a-f-]{36}\/record$/);
  await fits(page, record, 'me-record');
  await fits(page, record.replace(/record$/, 'sharing'), 'me-sharing');
  await fits(page, `${record.replace(/record$/, 'sharing')}?q=clinic`, 'me-sharing-find');
  await fits(page, record.replace(/record$/, 'access-log'), 'me-access-log');
  await fits(page, record.replace(/record$/, 'scan'), 'me-scan');
  await fits(page, record.replace(/record$/, 'access-key'), 'me-access-key');
  await fits(page, record.replace(/record$/, 'settings'), 'me-settings');
  await fits(page, record.replace(/record$/, 'inbox'), 'me-inbox');
  await fits(page, record.replace(/record$/, 'restrictions'), 'me-restrictions');
  // Report an access from the log: the report is listed with its state.
  await page.goto(`${url}${record.replace(/record$/, 'access-log')}?lang=en`);
  await page.getByText('Report this access as suspicious').first().click();
  await page.getByLabel('What looks wrong?').first().fill('I do not know this clinic.');
  await page.getByRole('button', { name: 'Send the report' }).first().click();
  await page.getByText('Your report was sent').waitFor();
  await page.getByText('Being looked into').waitFor();
  // Restrict one record from the record page.
  await page.goto(`${url}${record}?lang=en`);
  const restrict = page.getByRole('button', { name: /^Restrict this record/ }).first();
  if (await restrict.count()) {
    await restrict.click();
    await page.getByText('Restricted').first().waitFor();
  }
  // A new password from the settings, by a code sent to the phone.
  await page.goto(`${url}${record.replace(/record$/, 'settings')}?lang=en`);
  await page.getByRole('button', { name: 'Send me a code to set a new password' }).click();
  await page.getByLabel('One-time code').fill(suite.server.loginCode('91000000', 'password-code'));
  await page.getByLabel('New password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Set the password' }).click();
  await page.waitForURL(/\/me\?done=password$/);
  // A staff page is not the patient's.
  await page.goto(`${url}/hcp`);
  assert.match(page.url(), /\/hcp\/login/);
  await context.close();
});
