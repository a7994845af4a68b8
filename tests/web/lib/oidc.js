// The two test OpenID providers of tests/oidc/ (oidc-provider), as a child process.

import { spawn } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const OIDC_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'oidc');

/**
 * @typedef {{ id: string, name: string, issuer: string }} Issuer
 * @typedef {{ issuers: Issuer[], byId(id: string): Issuer, setMode(id: string, mode: string): Promise<{ mode: string, rewritten: number }>,
 *   mode(id: string): Promise<{ mode: string, rewritten: number }>, stop(): Promise<void>, log: () => string }} Providers
 */

/**
 * Start both providers on the given ports, accepting amphi's callback as redirect URI.
 * @param {{ ports: [number, number], redirectUris: string[] }} o
 * @returns {Promise<Providers>}
 */
export async function startProviders(o) {
  const child = spawn(process.execPath, [join(OIDC_DIR, 'providers.js'), '--ports', o.ports.join(','),
    ...o.redirectUris.flatMap((u) => ['--redirect-uri', u]), '--verbose'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d) => { log += d; });
  /** @type {string} */
  const ready = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the OpenID providers did not start:\n${log}`)), 15000);
    child.stdout?.on('data', (d) => {
      out += d;
      const m = /oidc-providers ready (.*)\n/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the OpenID providers exited (${code}):\n${log}`)); });
  });
  /** @type {Issuer[]} */
  const issuers = JSON.parse(ready).issuers;
  const byId = (/** @type {string} */ id) => {
    const i = issuers.find((x) => x.id === id);
    if (!i) throw new Error(`no issuer ${id}`);
    return i;
  };
  return {
    issuers,
    byId,
    log: () => log,
    async setMode(id, mode) {
      const res = await fetch(`${byId(id).issuer}/__test/mode`, { method: 'POST', body: JSON.stringify({ mode }) });
      if (!res.ok) throw new Error(`mode ${mode}: ${res.status} ${await res.text()}`);
      return res.json();
    },
    async mode(id) {
      return (await fetch(`${byId(id).issuer}/__test/mode`)).json();
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
