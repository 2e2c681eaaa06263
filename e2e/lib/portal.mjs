// Steps through the provider portal that several tests take.

export const PASSWORD = 'Demo-2026-ehrshare';

/** Logs a demo account in through the login form (English), landing on the portal. */
export async function logIn(page, server, user) {
  await page.goto(`${server.url}/hcp/login?lang=en`);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByLabel('Security token code').fill(server.code(user));
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${server.url}/hcp`);
}

/** Finds a patient by HKID from the portal's start page, landing on the patient's page. */
export async function findPatient(page, hkid) {
  await page.getByRole('link', { name: 'Find a patient' }).click();
  await page.getByLabel('Identity document').selectOption('hkid');
  await page.getByLabel('Document number').fill(hkid);
  await page.getByRole('button', { name: 'Find' }).click();
  await page.waitForURL(/\/hcp\/patients\/[0-9a-f-]{36}$/);
}
