// Single sign-on (OpenID Connect) end to end: two real providers (tests/oidc/, oidc-provider),
// amphi configured with both, headless Chromium. Choose an identity provider, log in there,
// land in My rooms, create a room, sign out (the token is then refused by SASL OAUTHBEARER
// and the API); tampered / expired / wrong-nonce ID tokens, a replayed state and a replayed
// code are refused with their message; the second issuer works too.
// The steps share one server and run in order; each saves a screenshot (sso-NN-…).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAmphi, freePort } from '../lib/server.js';
import { launch, newPage, shot } from '../lib/browser.js';
import { startProviders } from '../lib/oidc.js';
import { USERS } from '../../oidc/users.js';

/** @type {import('../lib/server.js').Amphi} */
let amphi;
/** @type {import('../lib/oidc.js').Providers} */
let providers;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof newPage>>} */
let first;
/** @type {Awaited<ReturnType<typeof newPage>>[]} */
const pages = [];
/** amphi's sign-in token for élodie, read from the tab after SSO. */
let token = '';
/** The first successful callback URL (code + state), replayed later. */
let firstCallback = '';
/** Whether the server side of SSO is there (`GET /api/sso/issuers`). */
let serverReady = false;

const [AGENT_ALICE, ELODIE, NAMELESS] = USERS.agents;
const [BRUNO, OTHER_ALICE] = USERS.partners;

before(async () => {
  const http = await freePort();
  const base = `http://127.0.0.1:${http}`;
  providers = await startProviders({ ports: [await freePort(), await freePort()], redirectUris: [`${base}/sso/callback`] });
  const issuers = providers.issuers.map((i) => `
[[oidc.issuers]]
id = "${i.id}"
name = "${i.name}"
issuer = "${i.issuer}"
client_id = "amphi"
client_secret = "secret"
scopes = ["openid", "profile", "email"]`).join('\n');
  amphi = await startAmphi({ http, extra: `[oidc]\ntoken_lifetime = "1h"\npublic_url = "${base}"\n${issuers}\n` });
  serverReady = (await fetch(`${base}/api/sso/issuers`)).status === 200;
  browser = await launch();
  first = await page('fr-FR');
});

after(async () => {
  for (const p of pages) assert.deepEqual(p.errors, [], 'no script errors or CSP violations');
  await browser?.close();
  await amphi?.stop();
  await providers?.stop();
});

/** A fresh browser context (no session at amphi nor at the providers). @param {string} locale */
async function page(locale) {
  const p = await newPage(browser, { locale });
  pages.push(p);
  return p;
}

/** Skip while the server side has not landed. @param {import('node:test').TestContext} t */
function needServer(t) {
  if (!serverReady) t.skip('GET /api/sso/issuers is not served yet (server side of SSO missing)');
  return serverReady;
}

/**
 * From `/sso`, choose `idp` with the keyboard, then at the provider log in as `user` and
 * give consent when asked. Resolves with the callback URL amphi received, once the client
 * shows My rooms or a sign-in error.
 * @param {import('playwright-core').Page} p @param {string} idp
 * @param {{ username: string, password: string }} user
 * @param {{ shots?: string }} [opts] shots: screenshot prefix for the provider's pages
 */
async function signInWith(p, idp, user, opts = {}) {
  const issuer = providers.byId(idp).issuer;
  const callback = `${amphi.base}/sso/callback`;
  let seen = '';
  const onRequest = (/** @type {import('playwright-core').Request} */ r) => { if (r.url().startsWith(callback) && !seen) seen = r.url(); };
  p.on('request', onRequest);
  await p.goto(`${amphi.base}/sso`);
  await p.locator(`[data-idp="${idp}"]`).focus();
  let before = p.url();
  await p.keyboard.press('Enter');
  const landed = () => p.locator('#my-rooms, #my-rooms-empty, #sso-error').first();
  for (let step = 0; step < 4; step++) {
    await p.waitForURL((u) => u.href !== before && (u.href.startsWith(`${issuer}/interaction/`)
      || (u.origin === amphi.base && ['/rooms', '/signin'].includes(u.pathname))));
    if (!p.url().startsWith(issuer)) break;
    before = p.url();
    if (await p.locator('#password').count()) {
      await p.fill('#username', user.username);
      await p.fill('#password', user.password);
      if (opts.shots) await shot(p, `${opts.shots}-provider-login`);
      await p.click('#login');
    } else {
      if (opts.shots) await shot(p, `${opts.shots}-provider-consent`);
      await p.click('#allow');
    }
  }
  await landed().waitFor();
  p.off('request', onRequest);
  return seen;
}

/** The sign-in error the page shows: its code and text. @param {import('playwright-core').Page} p */
async function ssoError(p) {
  const box = p.locator('#sso-error');
  await box.waitFor();
  return { code: await box.getAttribute('data-code'), text: await box.textContent(), url: p.url() };
}

/** What this tab remembers. @param {import('playwright-core').Page} p */
function saved(p) {
  return p.evaluate(() => JSON.parse(sessionStorage.getItem('amphi.session') ?? 'null'));
}

/**
 * SASL OAUTHBEARER over the WebSocket endpoint with `tok`, as any XMPP client would.
 * @param {string} jid @param {string} tok
 * @returns {Promise<{ result: 'success'|'failure', challenge?: any, condition?: string, offered: string[] }>}
 */
async function oauthbearer(jid, tok) {
  const ws = new WebSocket(amphi.ws, 'xmpp');
  /** @type {string[]} */
  const frames = [];
  /** @type {(() => void)|null} */
  let wake = null;
  ws.onmessage = (e) => { frames.push(String(e.data)); wake?.(); };
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  const next = async (/** @type {RegExp} */ re) => {
    const deadline = Date.now() + 10000;
    for (;;) {
      const i = frames.findIndex((f) => re.test(f));
      if (i >= 0) return frames.splice(i, 1)[0];
      if (Date.now() > deadline) throw new Error(`no ${re} in ${frames.join('\n')}`);
      await new Promise((r) => { wake = () => r(undefined); setTimeout(r, 200); });
    }
  };
  try {
    ws.send('<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="localhost" version="1.0"/>');
    const features = await next(/features/);
    const offered = [...features.matchAll(/<mechanism>([^<]+)<\/mechanism>/g)].map((m) => m[1]);
    const initial = Buffer.from(`n,a=${jid},\x01auth=Bearer ${tok}\x01\x01`).toString('base64');
    ws.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="OAUTHBEARER">${initial}</auth>`);
    let reply = await next(/<(success|failure|challenge)[\s>/]/);
    /** @type {any} */
    let challenge;
    if (/<challenge/.test(reply)) {
      const body = /<challenge[^>]*>([^<]*)</.exec(reply)?.[1] ?? '';
      challenge = JSON.parse(Buffer.from(body, 'base64').toString('utf8'));
      ws.send('<response xmlns="urn:ietf:params:xml:ns:xmpp-sasl">AQ==</response>');
      reply = await next(/<(success|failure)[\s>/]/);
    }
    if (/<success/.test(reply)) return { result: 'success', offered };
    const condition = /<failure[^>]*>\s*<([a-z-]+)/.exec(reply)?.[1];
    return { result: 'failure', challenge, condition, offered };
  } finally {
    ws.close();
  }
}

test('OAUTHBEARER initial response (RFC 7628 §3.1)', async () => {
  const { oauthBearer } = await import('../../../web/js/sasl.js');
  const m = oauthBearer('élodie.obrien@localhost', 'tok-123');
  assert.equal(m.name, 'OAUTHBEARER');
  assert.equal(Buffer.from(await m.initial(), 'base64').toString('utf8'), 'n,a=élodie.obrien@localhost,\x01auth=Bearer tok-123\x01\x01');
  const odd = oauthBearer('a,b=c@localhost', 't');
  assert.match(Buffer.from(await odd.initial(), 'base64').toString('utf8'), /^n,a=a=2Cb=3Dc@localhost,\x01/, 'saslname escaping');
  assert.equal(Buffer.from(await m.step('eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0='), 'base64').toString(), '\x01', 'the error challenge is answered with %x01');
});

test('the sign-in page offers the organisation; /sso lists both identity providers', async (t) => {
  if (!needServer(t)) return;
  const { page: p } = first;
  await p.goto(`${amphi.base}/signin`);
  await p.waitForSelector('#sso-signin');
  assert.equal(await p.textContent('#sso-signin'), 'Se connecter avec mon organisation');
  assert.equal(await p.locator('#signin-form').count(), 1, 'the password form stays');
  await shot(p, 'sso-01-signin');
  // Keyboard: the heading has focus after render; the organisation's button comes first.
  await p.keyboard.press('Tab');
  assert.equal(await p.evaluate(() => document.activeElement?.id), 'sso-signin');
  await p.keyboard.press('Enter');
  await p.waitForURL(`${amphi.base}/sso`);
  await p.waitForSelector('#idp-list');
  const names = await p.locator('#idp-list a').allTextContents();
  assert.deepEqual(names, providers.issuers.map((i) => i.name));
  assert.deepEqual(await p.locator('#idp-list a').evaluateAll((as) => as.map((a) => a.getAttribute('href'))),
    ['/sso/agents/start', '/sso/partners/start']);
  await shot(p, 'sso-02-choose');
});

test('first issuer: log in at the provider, land in My rooms; the token never shows in a URL', async (t) => {
  if (!needServer(t)) return;
  const { page: p } = first;
  /** @type {string[]} */
  const urls = [];
  p.on('request', (r) => urls.push(r.url()));
  p.on('framenavigated', (f) => { if (f === p.mainFrame()) urls.push(f.url()); });
  firstCallback = await signInWith(p, 'agents', ELODIE, { shots: 'sso-03' });
  await p.waitForURL(`${amphi.base}/rooms`);
  await p.waitForSelector('#my-rooms-empty, #my-rooms');
  assert.equal(await p.textContent('h1'), 'Mes salles');
  await shot(p, 'sso-04-my-rooms');
  assert.match(firstCallback, /[?&]code=[^&]+/);
  assert.match(firstCallback, /[?&]state=[^&]+/);

  const creds = await saved(p);
  token = creds?.token ?? '';
  assert.match(token, /^[A-Za-z0-9_-]{43}$/, 'an opaque 32-byte base64url token');
  assert.equal(creds.jid, 'élodie.obrien@localhost');
  assert.equal(creds.password, undefined, 'no password kept');
  assert.equal(await p.evaluate(() => location.hash), '');
  // The fragment reaches no server and no later page: no request nor address holds the token
  // except the one redirect to /sso/done that delivered it.
  const leaks = urls.filter((u) => u.includes(token) && !new URL(u).pathname.startsWith('/sso/done'));
  assert.deepEqual(leaks, [], 'token in a URL');
  assert.ok(urls.every((u) => !new URL(u).search.includes(token)), 'token in a query string');

  const me = await (await fetch(`${amphi.base}/api/me`, { headers: { Authorization: `Bearer ${token}` } })).json();
  assert.equal(me.jid, 'élodie.obrien@localhost');
  assert.equal(me.name, ELODIE.claims.name);
  assert.equal(me.email, ELODIE.claims.email);
  assert.deepEqual(me.groups, ELODIE.claims.groups);
  await p.click('#nav a[href="/"]');
  await p.waitForSelector('#signed-in-as');
  assert.equal(await p.textContent('#signed-in-as'), `Connecté en tant que ${ELODIE.claims.name} (élodie.obrien@localhost)`);

  const sasl = await oauthbearer('élodie.obrien@localhost', token);
  assert.ok(sasl.offered.includes('OAUTHBEARER'), `offered: ${sasl.offered}`);
  assert.equal(sasl.result, 'success', 'the token signs in an independent XMPP client');
});

test('create a permanent room as the single sign-on account', async (t) => {
  if (!needServer(t)) return;
  const { page: p } = first;
  await p.click('a[href="/rooms/new"]');
  await p.fill('#room-name', 'salle-sso');
  await p.fill('#room-description', 'Créée après une connexion par l’organisation');
  await p.click('#create-form button[type=submit]');
  await p.waitForURL(`${amphi.base}/room/salle-sso`);
  await p.waitForSelector('#participants li[data-nick="élodie.obrien"]');
  assert.match(await p.textContent('#participants li[data-nick="élodie.obrien"]') ?? '', /propriétaire/);
  await shot(p, 'sso-05-room');
  // The invitation links come from the API with the token as a bearer (no password here).
  await p.click('#invite');
  await p.waitForSelector('#participant-link');
  assert.match(await p.inputValue('#participant-link'), /\/meeting\/signin\/participant\/salle-sso\/hash\//);
  await p.keyboard.press('Escape');
  await p.click('#nav a[href="/rooms"]');
  await p.waitForSelector('#my-rooms li[data-room="salle-sso"]');
  // A reload signs in again with the token this tab keeps.
  await p.reload();
  await p.waitForSelector('#my-rooms li[data-room="salle-sso"]', { timeout: 15000 });
});

test('sign out revokes the token: SASL and the API refuse it afterwards', async (t) => {
  if (!needServer(t)) return;
  const { page: p } = first;
  const signout = p.waitForResponse((r) => r.url() === `${amphi.base}/api/sso/signout`);
  await p.click('#nav button.link');
  assert.equal((await signout).status(), 204);
  await p.waitForSelector('#nav a[href="/signin"]');
  assert.equal(await saved(p), null, 'the tab forgot the token');
  await shot(p, 'sso-06-signed-out');
  const me = await fetch(`${amphi.base}/api/me`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(me.status, 401);
  const sasl = await oauthbearer('élodie.obrien@localhost', token);
  assert.equal(sasl.result, 'failure');
  assert.equal(sasl.condition, 'not-authorized');
  assert.deepEqual(sasl.challenge, { status: 'invalid_token' }, 'RFC 7628 error challenge');
  const again = await fetch(`${amphi.base}/api/sso/signout`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  assert.equal(again.status, 401);
  assert.equal((await again.json()).error, 'unauthorized');
});

test('a replayed state (the callback URL loaded again) is refused', async (t) => {
  if (!needServer(t)) return;
  const { page: p } = first;
  await p.goto(firstCallback);
  const e = await ssoError(p);
  assert.equal(e.code, 'state');
  assert.equal(e.text, 'Cette demande de connexion a expiré ou a déjà servi. Recommencez depuis le début.');
  assert.equal(new URL(e.url).search, '', 'the error code is taken out of the address');
  assert.equal(await saved(p), null);
  await shot(p, 'sso-07-replayed-state');
});

test('a replayed code (fresh state, code already spent) is refused', async (t) => {
  if (!needServer(t)) return;
  const { page: p } = first;
  const oldCode = new URL(firstCallback).searchParams.get('code') ?? '';
  // A fresh sign-in up to the provider's answer (this browser's cookies: amphi's binding
  // cookie, the provider's session), then the callback with the spent code in its place.
  const start = await p.request.get(`${amphi.base}/sso/agents/start`, { maxRedirects: 0 });
  assert.equal(start.status(), 302);
  const answer = await p.request.get(start.headers().location, { maxRedirects: 0 });
  const callback = new URL(answer.headers().location ?? '');
  assert.equal(`${callback.origin}${callback.pathname}`, `${amphi.base}/sso/callback`);
  assert.notEqual(callback.searchParams.get('code'), oldCode);
  callback.searchParams.set('code', oldCode);
  await p.goto(callback.href);
  const e = await ssoError(p);
  assert.equal(e.code, 'exchange');
  assert.match(e.text ?? '', /code refusé ou déjà utilisé/);
  assert.equal(await saved(p), null);
  await shot(p, 'sso-08-replayed-code');
});

for (const [mode, n] of /** @type {const} */ ([['tamper-signature', '09'], ['expired', '10'], ['wrong-nonce', '11'], ['wrong-audience', '12']])) {
  test(`an ID token with ${mode} is refused`, async (t) => {
    if (!needServer(t)) return;
    const { page: p } = first;
    const was = (await providers.mode('agents')).rewritten;
    await providers.setMode('agents', mode);
    try {
      await signInWith(p, 'agents', ELODIE);
    } finally {
      await providers.setMode('agents', 'pass');
    }
    assert.equal((await providers.mode('agents')).rewritten, was + 1, 'the provider did rewrite the token');
    const e = await ssoError(p);
    assert.equal(e.code, 'id_token');
    assert.match(e.text ?? '', /n’a pas pu être vérifiée/);
    assert.equal(await saved(p), null, 'nothing signed in');
    await shot(p, `sso-${n}-${mode}`);
  });
}

test('the same browser signs in again once the provider is honest again', async (t) => {
  if (!needServer(t)) return;
  const { page: p } = first;
  await signInWith(p, 'agents', ELODIE);
  await p.waitForURL(`${amphi.base}/rooms`);
  await p.waitForSelector('#my-rooms li[data-room="salle-sso"]');
});

test('second issuer, in English: bruno signs in and lands in My rooms', async (t) => {
  if (!needServer(t)) return;
  const { page: p } = await page('en-US');
  await p.goto(`${amphi.base}/signin`);
  await p.waitForSelector('#sso-signin');
  assert.equal(await p.textContent('#sso-signin'), 'Sign in with your organisation');
  await p.click('#sso-signin');
  await p.waitForSelector('#idp-list');
  assert.equal(await p.textContent('h1'), 'Choose your identity provider');
  await shot(p, 'sso-13-choose-en');
  await signInWith(p, 'partners', BRUNO, { shots: 'sso-14' });
  await p.waitForURL(`${amphi.base}/rooms`);
  assert.equal(await p.textContent('h1'), 'My rooms');
  const creds = await saved(p);
  assert.equal(creds.jid, 'bruno@localhost');
  await shot(p, 'sso-15-partners-my-rooms');
  // Revoked elsewhere (another tab signed out): the next sign-in from this tab is refused
  // and the page says why.
  const out = await fetch(`${amphi.base}/api/sso/signout`, { method: 'POST', headers: { Authorization: `Bearer ${creds.token}` } });
  assert.equal(out.status, 204);
  await p.reload();
  const e = await ssoError(p);
  assert.equal(e.code, 'session');
  assert.equal(e.text, 'Your session has expired or was closed. Please sign in again.');
  assert.equal(new URL(e.url).pathname, '/signin');
  assert.equal(await saved(p), null);
  await shot(p, 'sso-16-session-ended-en');
});

test('cancelling at the provider, a missing username claim, a username of another person', async (t) => {
  if (!needServer(t)) return;
  const { page: p } = await page('fr-FR');
  await p.goto(`${amphi.base}/sso`);
  await p.click('[data-idp="agents"]');
  await p.waitForSelector('#cancel');
  await p.click('#cancel');
  let e = await ssoError(p);
  assert.equal(e.code, 'provider');
  assert.equal(e.text, 'Votre organisation a refusé ou annulé la connexion.');
  await shot(p, 'sso-17-cancelled');

  const nameless = await page('fr-FR');
  await signInWith(nameless.page, 'agents', NAMELESS);
  e = await ssoError(nameless.page);
  assert.equal(e.code, 'claims');
  await shot(nameless.page, 'sso-18-no-username');

  // alice of the first issuer owns alice@localhost; alice of the second is someone else.
  const a1 = await page('fr-FR');
  await signInWith(a1.page, 'agents', AGENT_ALICE);
  await a1.page.waitForURL(`${amphi.base}/rooms`);
  const a2 = await page('en-US');
  await signInWith(a2.page, 'partners', OTHER_ALICE);
  e = await ssoError(a2.page);
  assert.equal(e.code, 'account');
  assert.equal(e.text, 'This user name already belongs to someone else on this server. Please contact your IT support.');
  await shot(a2.page, 'sso-19-account-taken');
});

test('an unknown identity provider gets a 404 page leading back to sign-in', async (t) => {
  if (!needServer(t)) return;
  const res = await fetch(`${amphi.base}/sso/nope/start`, { redirect: 'manual' });
  assert.equal(res.status, 404);
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  assert.match(await res.text(), /href="\/signin"/);
});

test('a provider that goes down before the code is exchanged: the sign-in page says so', async (t) => {
  if (!needServer(t)) return;
  const { page: p } = first;
  // Up to the provider's answer (this browser already has a session there), then the
  // provider stops: amphi cannot reach its token endpoint.
  const start = await p.request.get(`${amphi.base}/sso/agents/start`, { maxRedirects: 0 });
  const answer = await p.request.get(start.headers().location, { maxRedirects: 0 });
  const callback = answer.headers().location ?? '';
  assert.match(callback, /\/sso\/callback\?/);
  await providers.stop();
  await p.goto(callback);
  const e = await ssoError(p);
  assert.equal(e.code, 'unavailable');
  assert.equal(e.text, 'Le service de connexion de votre organisation ne répond pas. Réessayez dans un moment.');
  await shot(p, 'sso-20-provider-down');
});
