// A user administrator's account work, and what the pages do with hostile data.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { withDemoServer } from '../lib/suite.mjs';
import { PASSWORD, findPatient, logIn } from '../lib/portal.mjs';

const suite = withDemoServer();

test('a user administrator opens, suspends and terminates an account', async () => {
  const context = await suite.browser.newContext();
  const page = await context.newPage();
  await logIn(page, suite.server, 'hvc.user-administrator');
  await page.getByRole('link', { name: 'User accounts' }).click();
  await page.getByRole('heading', { name: 'User accounts' }).waitFor();

  await page.getByLabel('User name').fill('hvc.new-nurse');
  await page.getByLabel('Name in English').fill('LAM Mei Ling');
  await page.getByLabel('Name in Chinese (optional)').fill('林美玲');
  await page.getByLabel('Role', { exact: true }).selectOption('nurse');
  await page.getByLabel('Professional registration number (professionals)').fill('RN654321');
  await page.getByLabel('Identity document').selectOption('passport');
  await page.getByLabel('Issuing country or region').fill('GB');
  await page.getByLabel('Document number').fill('N1234567');
  await page.getByLabel('Mobile number (the first password is sent here)').fill('6123 4567');
  await page.getByRole('button', { name: 'Open the account' }).click();
  assert.match(await page.getByRole('status').innerText(), /The account is open/);
  const row = page.locator('#user-hvc\\.new-nurse');
  assert.match(await row.locator('.status').innerText(), /Pending first login/);
  await shot(page, 'hcp-users-en');

  for (const [action, status] of [['suspend', 'Suspended'], ['terminate', 'Terminated']]) {
    await row.getByRole('combobox').selectOption(action);
    await row.getByRole('textbox').fill('left the clinic');
    await row.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('status').waitFor();
    assert.equal(await row.locator('.status').innerText(), status);
  }
  assert.equal(await row.locator('form').count(), 0, 'nothing more to do to a terminated account');
  await page.getByRole('link', { name: '繁體中文' }).click();
  await page.getByRole('heading', { name: '用戶帳戶' }).waitFor();
  assert.equal(await row.locator('.status').innerText(), '已終止');
  await shot(page, 'hcp-users-zh-HK');
  await context.close();
});

test('a recipient whose name is markup is shown as text', async () => {
  const name = '<img src=x onerror=alert(1)>';
  const office = await suite.server.apiSession('office.registration', PASSWORD);
  const r = await office.post('/api/v1/recipients', {
    channel: 'in-person', name_en: name, name_zh: '<script>alert(2)</script>',
    date_of_birth: '1975-04-03', sex: 'female',
    document: { type: 'passport', issuer: 'GB', number: 'XSS123456' },
    phone: '9123 0000', language: 'en', notify_channel: 'sms',
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));

  const context = await suite.browser.newContext();
  const page = await context.newPage();
  const dialogs = [];
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  await logIn(page, suite.server, 'hvc.doctor');
  await page.getByRole('link', { name: 'Find a patient' }).click();
  await page.getByLabel('Identity document').selectOption('passport');
  await page.getByLabel('Issuing country or region').fill('GB');
  await page.getByLabel('Document number').fill('XSS123456');
  await page.getByRole('button', { name: 'Find' }).click();
  await page.waitForURL(/\/hcp\/patients\/[0-9a-f-]{36}$/);
  const heading = await page.locator('#patient-name').innerText();
  assert.ok(heading.includes(name), heading);
  assert.ok(heading.includes('<script>alert(2)</script>'), heading);
  assert.equal(await page.locator('main img').count(), 0);
  assert.equal(await page.locator('main script').count(), 0);
  await shot(page, 'hcp-patient-markup-en');
  assert.deepEqual(dialogs, []);
  await context.close();
});
