// At the counter and in the consulting room: find a demo patient, record the sharing
// consent by access key, open a care episode, read the eHR summary (in both languages); a
// registration clerk sees demographics only.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shot } from '../lib/browser.mjs';
import { withDemoServer } from '../lib/suite.mjs';
import { findPatient, logIn } from '../lib/portal.mjs';

// The first demo adult: registered, under another provider's care, never at this clinic.
const HKID = 'A100000(7)';
const PHONE = '+85291000000';
const suite = withDemoServer();

test('a doctor records consent and an episode, then reads the summary', async () => {
  const context = await suite.browser.newContext();
  const page = await context.newPage();
  await logIn(page, suite.server, 'hvc.doctor');
  await findPatient(page, HKID);
  const patient = page.url();
  await shot(page, 'hcp-patient-en');

  // No consent with this clinic yet: the record is refused, and the page says why.
  await page.getByRole('link', { name: 'Read the eHR' }).click();
  assert.match(await page.getByRole('alert').innerText(), /not given your provider a sharing consent/);
  await page.goto(patient);

  // A wrong access key, then the one the patient was sent.
  await page.getByLabel("The patient's access key (8 digits)").fill('00000000');
  await page.getByRole('button', { name: 'Record the consent' }).click();
  assert.match(await page.getByRole('alert').innerText(), /access key is not right/);
  await page.getByLabel("The patient's access key (8 digits)").fill(suite.server.accessKey(PHONE));
  await page.getByRole('button', { name: 'Record the consent' }).click();
  await page.getByRole('status').waitFor();
  assert.match(await page.getByRole('status').innerText(), /sharing consent is recorded/);
  assert.match(await page.locator('#consent-here').innerText(), /Indefinite, given/);

  await page.getByLabel('Kind', { exact: true }).selectOption('attendance');
  await page.getByRole('button', { name: 'Open the care episode' }).click();
  assert.match(await page.getByRole('status').innerText(), /care episode is open/);
  assert.match(await page.locator('#episodes-here').innerText(), /Attendance/);

  await page.getByRole('link', { name: 'Read the eHR' }).click();
  await page.getByRole('heading', { name: /eHR summary/ }).waitFor();
  assert.match(await page.locator('#record-total').innerText(), /Records your role may see: \d+/);
  await page.getByRole('heading', { name: /Diagnoses and problems/ }).waitFor();
  await shot(page, 'hcp-record-en');
  await page.getByRole('link', { name: '繁體中文' }).click();
  await page.getByRole('heading', { name: /電子健康紀錄摘要/ }).waitFor();
  await shot(page, 'hcp-record-zh-HK');
  await context.close();
});

test('a registration clerk sees demographics only', async () => {
  const context = await suite.browser.newContext();
  const page = await context.newPage();
  await logIn(page, suite.server, 'hvc.registration-staff');
  await findPatient(page, HKID);
  await page.getByRole('link', { name: 'Read the eHR' }).click();
  await page.getByRole('heading', { name: /eHR summary/ }).waitFor();
  const domains = await page.locator('section.domain h2').allInnerTexts();
  assert.equal(domains.length, 1, domains.join(', '));
  assert.match(domains[0], /demographics/);
  assert.match(await page.locator('#domain-demographics').locator('..').innerText(), /Date of birth/);
  await shot(page, 'hcp-record-clerk-en');
  await context.close();
});

test('a Chinese medicine practitioner deposits a prescription and sees it in the summary', async () => {
  const context = await suite.browser.newContext();
  const page = await context.newPage();
  await logIn(page, suite.server, 'tsc.chinese-medicine-practitioner');
  await findPatient(page, HKID);
  await page.getByLabel("The patient's access key (8 digits)").fill(suite.server.accessKey(PHONE));
  await page.getByRole('button', { name: 'Record the consent' }).click();
  await page.getByRole('status').waitFor();
  await page.getByLabel('Kind', { exact: true }).selectOption('attendance');
  await page.getByRole('button', { name: 'Open the care episode' }).click();
  await page.getByRole('status').waitFor();

  await page.getByRole('link', { name: 'Write a Chinese medicine prescription' }).click();
  await page.getByRole('heading', { name: 'Chinese medicine prescription' }).waitFor();
  // A mistake first: the message stands next to the field, and what was typed stays.
  await page.getByLabel('Herb 1', { exact: true }).fill('淮山');
  await page.getByLabel('Grams 1', { exact: true }).fill('fifteen');
  await page.getByRole('button', { name: 'Deposit the prescription' }).click();
  await page.locator('#row-problem-0').waitFor();
  assert.equal(await page.getByLabel('Herb 1', { exact: true }).inputValue(), '淮山');
  await shot(page, 'hcp-cm-prescription-problems-en');
  await page.getByLabel('Grams 1', { exact: true }).fill('15');
  await page.getByLabel('Herb 2').fill('北芪');
  await page.getByLabel('Grams 2').fill('9.5');
  await page.getByLabel('Number of doses').fill('5');
  await page.getByLabel('Granules').check();
  await page.getByLabel('Instructions').fill('每日一劑，沖服');
  await page.getByRole('button', { name: 'Deposit the prescription' }).click();
  await page.waitForURL(/\/record$/);
  const cm = await page.locator('#domain-cm-prescription').locator('..').innerText();
  assert.match(cm, /山藥 \(淮山\) 15 g, 黃芪 \(北芪\) 9\.5 g × 5/);
  await shot(page, 'hcp-record-cm-en');
  await context.close();
});

test('consent by smart ID card through the demo reader; the same reading sent again is refused', async () => {
  // The second demo adult, WONG Tai Man, has no consent with this clinic.
  const context = await suite.browser.newContext();
  const page = await context.newPage();
  await logIn(page, suite.server, 'hvc.nurse');
  await findPatient(page, 'C103571(A)');
  const patient = page.url();
  await page.getByRole('link', { name: 'Read the card' }).click();
  await page.getByRole('heading', { name: 'Demo card reader' }).waitFor();
  await shot(page, 'hcp-card-en');

  // Somebody else's card on this patient's page: refused, nothing recorded.
  await page.getByLabel('Number on the identity card').fill(HKID);
  await page.getByRole('button', { name: 'Read the card' }).click();
  await page.getByRole('heading', { name: 'The card is read' }).waitFor();
  await page.getByRole('button', { name: 'Record the consent' }).click();
  assert.match(await page.getByRole('alert').innerText(), /not this patient's/);

  // The patient's own card, as people type it.
  await page.getByLabel('Number on the identity card').fill('c103571 a');
  await page.getByRole('button', { name: 'Read the card' }).click();
  assert.equal(await page.locator('#card-read-number').innerText(), 'C103571(A)');
  await shot(page, 'hcp-card-read-en');
  const form = page.locator('form[action$="/consent/card"]');
  const fields = {};
  for (const input of await form.locator('input[type=hidden]').all()) {
    fields[await input.getAttribute('name')] = await input.inputValue();
  }
  await page.getByRole('button', { name: 'Record the consent' }).click();
  await page.getByRole('status').waitFor();
  assert.match(await page.getByRole('status').innerText(), /sharing consent is recorded/);
  assert.match(await page.locator('#consent-here').innerText(), /Indefinite, given/);

  // The same signed reading relayed again, in the same session: refused.
  const again = await context.request.post(`${patient}/consent/card`, {
    form: { ...fields, kind: 'indefinite' },
    headers: { Origin: suite.server.url },
    maxRedirects: 0,
  });
  assert.equal(again.status(), 422);
  assert.match(await again.text(), /could not be accepted/);

  await page.goto(`${patient}/card`);
  await page.getByRole('link', { name: '繁體中文' }).click();
  await page.getByRole('heading', { name: '示範讀卡器' }).waitFor();
  await shot(page, 'hcp-card-zh-HK');
  await context.close();
});
