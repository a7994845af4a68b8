// The test providers on their own (no amphi, no browser): a relying party written here
// with fetch runs the code flow with PKCE and checks what each tampering mode yields.
//   cd tests/oidc && npm ci && node --test

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, decodeJwt } from 'jose';
import { USERS } from './users.js';

const REDIRECT = 'http://127.0.0.1:1/sso/callback';
/** @type {import('node:child_process').ChildProcess} */
let child;
/** @type {{ id: string, name: string, issuer: string }[]} */
let issuers = [];

before(async () => {
  child = spawn(process.execPath, ['providers.js', '--ports', '0,0', '--redirect-uri', REDIRECT],
    { cwd: import.meta.dirname, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
      const m = /oidc-providers ready (.*)\n/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`providers exited with ${code}`)));
  });
  issuers = JSON.parse(line).issuers;
});

after(() => { child.kill('SIGTERM'); });

/** A minimal browser: a cookie jar and manual redirects. */
function browser() {
  /** @type {Map<string, string>} */
  const jar = new Map();
  /** @param {string} url @param {RequestInit} [init] */
  async function go(url, init = {}) {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers ?? {}), cookie } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return res;
  }
  return go;
}

/**
 * Authorization code flow up to the redirect back to the client.
 * @param {string} issuer @param {{ username: string, password: string }} user
 * @param {{ pkce?: boolean }} [opts]
 */
async function authorize(issuer, user, opts = {}) {
  const go = browser();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const nonce = randomBytes(8).toString('hex');
  const q = new URLSearchParams({ client_id: 'amphi', response_type: 'code', scope: 'openid profile email', redirect_uri: REDIRECT, state: 'st', nonce });
  if (opts.pkce !== false) { q.set('code_challenge', challenge); q.set('code_challenge_method', 'S256'); }
  let res = await go(`${issuer}/auth?${q}`);
  /** @type {string[]} */
  const pages = [];
  for (let i = 0; i < 10; i++) {
    const loc = res.headers.get('location');
    if (!loc) throw new Error(`no redirect (${res.status}): ${await res.text()}`);
    const url = new URL(loc, issuer);
    if (url.href.startsWith(REDIRECT)) return { params: url.searchParams, verifier, nonce, pages };
    res = await go(url.href);
    if (res.status === 200) {
      const html = await res.text();
      pages.push(html);
      const uid = /\/interaction\/([^/"]+)\//.exec(html)?.[1];
      if (html.includes('name="password"')) {
        res = await go(`${issuer}/interaction/${uid}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ username: user.username, password: user.password }).toString() });
        if (res.status === 200) return { params: null, verifier, nonce, pages: [...pages, await res.text()] };
      } else {
        res = await go(`${issuer}/interaction/${uid}/confirm`, { method: 'POST' });
      }
    }
  }
  throw new Error('too many redirects');
}

/** @param {string} issuer @param {string} code @param {string} verifier */
async function exchange(issuer, code, verifier) {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from('amphi:secret').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT }).toString(),
  });
  return { status: res.status, body: await res.json() };
}

/** @param {string} issuer @param {string} mode */
async function setMode(issuer, mode) {
  const res = await fetch(`${issuer}/__test/mode`, { method: 'POST', body: JSON.stringify({ mode }) });
  assert.equal(res.status, 200);
}

/** @param {string} issuer @param {string} idToken */
function verify(issuer, idToken) {
  return jwtVerify(idToken, createRemoteJWKSet(new URL(`${issuer}/jwks`)), { issuer, audience: 'amphi' });
}

test('discovery names the issuer and a token endpoint on it', async () => {
  for (const i of issuers) {
    const d = await (await fetch(`${i.issuer}/.well-known/openid-configuration`)).json();
    assert.equal(d.issuer, i.issuer);
    assert.equal(d.token_endpoint, `${i.issuer}/token`);
    assert.ok(d.code_challenge_methods_supported.includes('S256'));
  }
});

test('code flow with PKCE: the ID token carries the claims, signed by the provider key', async () => {
  const [agents] = issuers;
  const elodie = USERS.agents[1];
  const a = await authorize(agents.issuer, elodie);
  assert.ok(a.params?.get('code'), 'a code comes back');
  assert.equal(a.params?.get('state'), 'st');
  assert.ok(a.pages.some((p) => p.includes('id="allow"')), 'a consent page was shown');
  const { status, body } = await exchange(agents.issuer, String(a.params?.get('code')), a.verifier);
  assert.equal(status, 200, JSON.stringify(body));
  const { payload } = await verify(agents.issuer, body.id_token);
  assert.equal(payload.nonce, a.nonce);
  assert.equal(payload.preferred_username, 'élodie.obrien');
  assert.equal(payload.name, 'Élodie O’Brien-Nguyễn');
  assert.equal(payload.email, 'elodie.obrien@agents.example');
  assert.deepEqual(payload.groups, ['agents']);
  const replay = await exchange(agents.issuer, String(a.params?.get('code')), a.verifier);
  assert.equal(replay.status, 400);
  assert.equal(replay.body.error, 'invalid_grant', 'a code is single use');
});

test('PKCE is required and passwords are checked', async () => {
  const [agents] = issuers;
  const noPkce = await authorize(agents.issuer, USERS.agents[0], { pkce: false });
  assert.equal(noPkce.params?.get('error'), 'invalid_request');
  const wrong = await authorize(agents.issuer, { username: 'alice', password: 'nope' });
  assert.equal(wrong.params, null);
  assert.match(wrong.pages.at(-1) ?? '', /Wrong username or password/);
});

test('tampering modes: each is caught by exactly its own check', async () => {
  const [, partners] = issuers;
  const bruno = USERS.partners[0];
  const run = async (/** @type {string} */ mode) => {
    await setMode(partners.issuer, mode);
    const a = await authorize(partners.issuer, bruno);
    const { body } = await exchange(partners.issuer, String(a.params?.get('code')), a.verifier);
    await setMode(partners.issuer, 'pass');
    return { idToken: String(body.id_token), nonce: a.nonce };
  };
  const forged = await run('tamper-signature');
  assert.equal(decodeJwt(forged.idToken).preferred_username, 'admin');
  await assert.rejects(verify(partners.issuer, forged.idToken), /signature verification failed/);
  const expired = await run('expired');
  await assert.rejects(verify(partners.issuer, expired.idToken), /"exp" claim timestamp check failed/);
  const nonce = await run('wrong-nonce');
  const { payload } = await verify(partners.issuer, nonce.idToken);
  assert.notEqual(payload.nonce, nonce.nonce, 'valid signature, other nonce');
  const aud = await run('wrong-audience');
  await assert.rejects(verify(partners.issuer, aud.idToken), /"aud" claim/);
  const state = await (await fetch(`${partners.issuer}/__test/mode`)).json();
  assert.deepEqual(state, { mode: 'pass', rewritten: 4 });
  const bad = await fetch(`${partners.issuer}/__test/mode`, { method: 'POST', body: JSON.stringify({ mode: 'nope' }) });
  assert.equal(bad.status, 400);
});

test('/__test/id-token gives a genuine token for API tests', async () => {
  const [agents] = issuers;
  const res = await fetch(`${agents.issuer}/__test/id-token`, { method: 'POST', body: JSON.stringify({ username: 'alice' }) });
  const { id_token: idToken } = await res.json();
  const { payload } = await verify(agents.issuer, idToken);
  assert.equal(payload.preferred_username, 'alice');
  assert.deepEqual(payload.groups, ['agents', 'rh']);
});
