// The provider portal's login, language switch and logout, as a person does them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { withDemoServer } from '../lib/suite.mjs';
import { PASSWORD } from '../lib/portal.mjs';

const suite = withDemoServer();

test('the login page shows the reminders in English and in Chinese', async () => {
  const page = await (await suite.browser.newContext()).newPage();
  await page.goto(`${suite.server.url}/hcp/login?lang=en`);
  await assert.doesNotReject(page.getByRole('heading', { name: 'Important reminder' }).waitFor());
  assert.ok(await page.getByText('All access is logged.').isVisible());
  await shot(page, 'hcp-login-en');
  await page.getByRole('link', { name: '繁體中文' }).click();
  await page.getByRole('heading', { name: '重要提示' }).waitFor();
  assert.ok(await page.getByText('每次的取覽均會被記錄。').isVisible());
  assert.equal(await page.getAttribute('html', 'lang'), 'zh-HK');
  await shot(page, 'hcp-login-zh-HK');
  // The statements it links to are real pages.
  await page.getByRole('link', { name: '私隱政策聲明' }).click();
  await page.getByRole('heading', { name: '私隱政策聲明' }).waitFor();
  await page.close();
});

test('a doctor logs in with password and token, switches language, logs out and cannot go back', async () => {
  const context = await suite.browser.newContext();
  const page = await context.newPage();
  await page.goto(`${suite.server.url}/hcp/login?lang=en`);

  // A wrong password: one message, nothing else said.
  await page.getByLabel('User name').fill('hvc.doctor');
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByLabel('Security token code').fill('000000');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').innerText(), /not right/);
  assert.equal(await page.getByLabel('User name').inputValue(), 'hvc.doctor');
  assert.equal(await page.getByLabel('Password').inputValue(), '');

  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByLabel('Security token code').fill(suite.server.code('hvc.doctor'));
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${suite.server.url}/hcp`);
  await page.getByRole('heading', { name: 'Provider portal' }).waitFor();
  const english = await page.locator('main').innerText();
  assert.match(english, /Doctor/);
  await shot(page, 'hcp-home-en');

  // The same page in Chinese, and the choice remembered on the next page.
  await page.getByRole('link', { name: '繁體中文' }).click();
  await page.getByRole('heading', { name: '醫療服務提供者平台' }).waitFor();
  assert.match(await page.locator('main').innerText(), /醫生/);
  await shot(page, 'hcp-home-zh-HK');
  await page.goto(`${suite.server.url}/hcp`);
  await page.getByRole('heading', { name: '醫療服務提供者平台' }).waitFor();

  // Log out; back and a fresh visit both find the login page, not the portal.
  await page.getByRole('button', { name: '登出' }).click();
  await page.waitForURL(`${suite.server.url}/hcp/login`);
  await page.goBack();
  await page.waitForLoadState();
  assert.equal(new URL(page.url()).pathname, '/hcp/login');
  await page.goto(`${suite.server.url}/hcp`);
  assert.equal(new URL(page.url()).pathname, '/hcp/login');
  await context.close();
});
