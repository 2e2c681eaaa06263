// Starts `ehrshare serve --demo` on a free port with a fresh data folder, and reads demo
// accounts' security codes with `ehrshare demo code`. The binary is EHRSHARE_BIN, or the
// debug build under CARGO_TARGET_DIR (default ../target).

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const here = resolve(import.meta.dirname, '..');

export function binary() {
  if (process.env.EHRSHARE_BIN) return process.env.EHRSHARE_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(here, '..', 'target');
  return join(target, 'debug', 'ehrshare');
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** A running demo server: `url`, `code(user)`, `stop()`. */
export async function startDemoServer() {
  const dataDir = mkdtempSync(join(tmpdir(), 'ehrshare-e2e-'));
  const port = await freePort();
  const env = {
    ...process.env,
    EHRSHARE_DATA_DIR: dataDir,
    EHRSHARE_LISTEN: `127.0.0.1:${port}`,
    EHRSHARE_LOG_LEVEL: 'warn',
  };
  delete env.EHRSHARE_DATABASE_URL;
  const child = spawn(binary(), ['serve', '--demo'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const url = `http://127.0.0.1:${port}`;
  const usedCodes = new Map();
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server stopped:\n${output}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`the server did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    /**
     * The demo account's current security code (`ehrshare demo code`). A code is accepted
     * once, so when the code of the current 30-second step was handed out already, this waits
     * for the next step's.
     */
    code(user) {
      for (;;) {
        const code = execFileSync(binary(), ['demo', 'code', user], { env, encoding: 'utf8' }).trim();
        if (usedCodes.get(user) !== code) {
          usedCodes.set(user, code);
          return code;
        }
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
      }
    },
    /**
     * The first access key "sent" to `phone` (+852...) in the demo's outbox log: the
     * recipient's own (the keys of children a parent represents go to the parent's phone later).
     */
    accessKey(phone) {
      const log = readFileSync(join(dataDir, 'outbox', 'messages.log'), 'utf8');
      const keys = log
        .split('\n')
        .filter((line) => line.trim())
        .map((line) => JSON.parse(line))
        .filter((m) => m.to === phone)
        .map((m) => /(\d{8})/.exec(m.body)?.[1])
        .filter(Boolean);
      if (keys.length === 0) throw new Error(`no access key sent to ${phone}`);
      return keys[0];
    },
    /**
     * The newest patient-portal one-time code sent to a phone ending in `phone` not handed out
     * before, waiting (up to 20 s) for the outbox worker to deliver it: a login code, or with
     * `kind` `password-code` the code to set a new password.
     */
    loginCode(phone, kind = 'login-code') {
      const subjects = kind === 'password-code' ? /password code|密碼編碼/ : /login code|登入編碼/;
      const deadline = Date.now() + 20_000;
      for (;;) {
        let log = '';
        try {
          log = readFileSync(join(dataDir, 'outbox', 'messages.log'), 'utf8');
        } catch { /* nothing delivered yet */ }
        const codes = log
          .split('\n')
          .filter((line) => line.trim())
          .map((line) => JSON.parse(line))
          .filter((m) => m.to.endsWith(phone) && subjects.test(m.subject))
          .map((m) => /(\d{6})/.exec(m.body)?.[1])
          .filter(Boolean);
        const code = codes.at(-1);
        if (code && usedCodes.get(`${kind}:${phone}`) !== code) {
          usedCodes.set(`${kind}:${phone}`, code);
          return code;
        }
        if (Date.now() > deadline) throw new Error(`no ${kind} sent to ${phone}`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
      }
    },
    /** Logs a demo account in through the JSON API; returns `post(path, body)`. */
    async apiSession(user, password) {
      const r = await fetch(`${url}/api/v1/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user_name: user, password, totp: this.code(user) }),
      });
      if (r.status !== 201) throw new Error(`API login of ${user}: ${r.status} ${await r.text()}`);
      const cookie = r.headers.get('set-cookie').split(';')[0];
      const { csrf_token: csrf } = await r.json();
      return {
        async post(path, body) {
          const res = await fetch(`${url}${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrf },
            body: JSON.stringify(body),
          });
          return { status: res.status, body: await res.json().catch(() => null) };
        },
      };
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
