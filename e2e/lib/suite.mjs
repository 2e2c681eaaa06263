// One demo server and one browser for a test file: started before its first test, stopped
// after its last.

import { after, before } from 'node:test';
import { launch } from './browser.mjs';
import { startDemoServer } from './server.mjs';

/** Registers the file's hooks; `server` and `browser` are set once its tests run. */
export function withDemoServer() {
  const suite = { server: undefined, browser: undefined };
  before(async () => {
    suite.server = await startDemoServer();
    suite.browser = await launch();
  });
  after(async () => {
    await suite.browser?.close();
    await suite.server?.stop();
  });
  return suite;
}
