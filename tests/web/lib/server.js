// Start the real amphi binary on free loopback ports with a throwaway data folder.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BIN = process.env.AMPHI_BIN ?? join(ROOT, 'target', 'debug', 'amphi');

/** A free TCP port on 127.0.0.1 (bound, then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * @typedef {{ dir: string, http: number, https: number, c2s: number, tls: number,
 *   base: string, ws: string, stop(): Promise<void>, restart(): Promise<void>, log: string }} Amphi
 */

/**
 * @param {{ capacity?: number, extra?: string, users?: [string, string][], http?: number }} [opts]
 *   users: accounts made with `amphi user add` before the server starts;
 *   http: the plain HTTP port, when the config must name it first (SSO redirect URIs)
 * @returns {Promise<Amphi>}
 */
export async function startAmphi(opts = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'amphi-web-'));
  const [http, https, c2s, tls] = [opts.http ?? await freePort(), await freePort(), await freePort(), await freePort()];
  const config = join(dir, 'config.toml');
  writeFileSync(config, `[server]
domain = "localhost"
data_dir = "${join(dir, 'data')}"
log_level = "info"
[c2s]
starttls_listen = ["127.0.0.1:${c2s}"]
direct_tls_listen = ["127.0.0.1:${tls}"]
[auth]
registration = true
[http]
listen = ["127.0.0.1:${http}"]
tls_listen = ["127.0.0.1:${https}"]
capacity = ${opts.capacity ?? 100}
${opts.extra ?? ''}
`);
  const log = join(dir, 'amphi.log');
  /** @type {import('node:child_process').ChildProcess|null} */
  let child = null;
  const base = `http://127.0.0.1:${http}`;
  const launch = async () => {
    const out = createWriteStream(log, { flags: 'a' });
    child = spawn(BIN, ['--config', config, 'serve'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    const deadline = Date.now() + 15000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`amphi exited with ${child.exitCode}; see ${log}`);
      try {
        const r = await fetch(`${base}/health`);
        if (r.ok) return;
      } catch { /* not up yet */ }
      if (Date.now() > deadline) throw new Error(`amphi did not start; see ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stopChild = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  for (const [user, password] of opts.users ?? []) {
    await addUser(config, user, password);
  }
  await launch();
  return {
    dir, http, https, c2s, tls, base, log,
    ws: `ws://127.0.0.1:${http}/xmpp-websocket`,
    async stop() {
      await stopChild();
      if (!process.env.KEEP_DATA) rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await stopChild();
      await launch();
    },
  };
}

/** `amphi user add`, password on stdin. @param {string} config @param {string} user @param {string} password */
function addUser(config, user, password) {
  return new Promise((resolve, reject) => {
    const c = spawn(BIN, ['--config', config, 'user', 'add', `${user}@localhost`], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => { err += d; });
    c.on('exit', (code) => (code === 0 ? resolve(undefined) : reject(new Error(`user add ${user}: ${err}`))));
    c.stdin.end(`${password}\n`);
  });
}
