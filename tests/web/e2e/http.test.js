// The HTTP side without a browser: headers, caching, discovery, health, metrics, APIs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAmphi } from '../lib/server.js';

/** @type {import('../lib/server.js').Amphi} */
let amphi;

before(async () => {
  amphi = await startAmphi({ capacity: 42, users: [['owner', 'owner-pass'], ['other', 'other-pass']] });
});
after(async () => {
  await amphi?.stop();
});

/** @param {string} user @param {string} pass */
const basic = (user, pass) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

test('pages are index.html with no-cache and a strict CSP', async () => {
  for (const path of ['/', '/rooms', '/room/x', '/meeting/signin/participant/x/hash/y', '/devices']) {
    const r = await fetch(amphi.base + path);
    assert.equal(r.status, 200, path);
    assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    const csp = r.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.match(await r.text(), /<script type="module" src="\/static\/[0-9a-f]{12}\/js\/app.js">/);
  }
});

test('versioned files are cached for a year with their content type', async () => {
  const html = await (await fetch(amphi.base)).text();
  const version = /\/static\/([0-9a-f]{12})\//.exec(html)?.[1];
  assert.ok(version);
  const js = await fetch(`${amphi.base}/static/${version}/js/xmpp.js`);
  assert.equal(js.status, 200);
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  const css = await fetch(`${amphi.base}/static/${version}/app.css`);
  assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
  const old = await fetch(`${amphi.base}/static/000000000000/app.css`);
  assert.equal(old.headers.get('cache-control'), 'no-cache', 'an unknown version is not cached');
  assert.equal((await fetch(`${amphi.base}/static/${version}/nope.js`)).status, 404);
  assert.equal((await fetch(`${amphi.base}/static/${version}/..%2F..%2FCargo.toml`)).status, 404, 'only embedded files');
  assert.equal((await fetch(`${amphi.base}/api/nothing`)).status, 404);
});

test('host-meta names the WebSocket endpoint (XEP-0156)', async () => {
  const xml = await fetch(`${amphi.base}/.well-known/host-meta`);
  assert.equal(xml.headers.get('content-type'), 'application/xrd+xml; charset=utf-8');
  assert.equal(xml.headers.get('access-control-allow-origin'), '*');
  const body = await xml.text();
  assert.match(body, /<XRD xmlns='http:\/\/docs.oasis-open.org\/ns\/xri\/xrd-1.0'>/);
  assert.match(body, new RegExp(`href='ws://127.0.0.1:${amphi.http}/xmpp-websocket'`));
  const json = await (await fetch(`${amphi.base}/.well-known/host-meta.json`)).json();
  assert.deepEqual(json.links, [{ rel: 'urn:xmpp:alt-connections:websocket', href: `ws://127.0.0.1:${amphi.http}/xmpp-websocket` }]);
});

test('HTTPS serves the same routes with the XMPP certificate and says wss', async () => {
  // Node's fetch verifies certificates; the server's is self-signed, so use https with no verification.
  const https = await import('node:https');
  const body = await new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: amphi.https, path: '/.well-known/host-meta.json', rejectUnauthorized: false, headers: { Host: 'localhost' } }, (res) => {
      let data = '';
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve(data));
    }).on('error', reject);
  });
  assert.equal(JSON.parse(String(body)).links[0].href, 'wss://localhost/xmpp-websocket');
});

test('health, metrics and stats', async () => {
  const h = await (await fetch(`${amphi.base}/health`)).json();
  assert.equal(h.status, 'ok');
  const m = await fetch(`${amphi.base}/metrics`);
  assert.match(m.headers.get('content-type') ?? '', /^text\/plain; version=0.0.4/);
  const text = await m.text();
  for (const name of ['amphi_sessions', 'amphi_muc_rooms', 'amphi_muc_occupants', 'amphi_capacity']) {
    assert.match(text, new RegExp(`^# TYPE ${name} gauge$`, 'm'), name);
  }
  assert.match(text, /^amphi_capacity 42$/m);
  assert.match(text, /^# TYPE amphi_http_requests_total counter$/m);
  assert.match(text, /^amphi_websocket_clients 0$/m);
  const s = await (await fetch(`${amphi.base}/api/stats`)).json();
  assert.deepEqual(Object.keys(s).sort(), ['capacity', 'meetings', 'participants']);
  assert.equal(s.capacity, 42);
});

test('the WebSocket endpoint requires the xmpp subprotocol', async () => {
  const http = await import('node:http');
  /** @param {Record<string, string>} extra @returns {Promise<number>} */
  const upgrade = (extra) => new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: amphi.http, path: '/xmpp-websocket',
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', ...extra },
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve(Number(res.statusCode)); });
    req.on('response', (res) => { res.resume(); resolve(Number(res.statusCode)); });
    req.on('error', reject);
    req.end();
  });
  assert.equal(await upgrade({}), 400);
  assert.equal(await upgrade({ 'Sec-WebSocket-Protocol': 'xmpp' }), 101);
});

test('invitation links are signed only for a room owner with the right password', async () => {
  const url = `${amphi.base}/api/rooms/nosuchroom/invites`;
  assert.equal((await fetch(url)).status, 401);
  assert.equal((await fetch(url, { headers: { Authorization: basic('owner', 'wrong') } })).status, 401);
  const r = await fetch(url, { headers: { Authorization: basic('owner@localhost', 'owner-pass') } });
  assert.equal(r.status, 403, 'not the owner of a room that does not exist');
  assert.equal((await r.json()).error, 'forbidden');
  const regen = await fetch(`${amphi.base}/api/rooms/nosuchroom/invites/regenerate`, { method: 'POST', headers: { Authorization: basic('other', 'other-pass') } });
  assert.equal(regen.status, 403);
});

test('forged links are refused', async () => {
  for (const link of [
    { role: 'participant', room: 'x', signature: 'AAAA' },
    { role: 'admin', room: 'x', signature: 'AAAA' },
    { role: 'participant', room: 'not a room', signature: 'AAAA' },
    { role: 'participant', room: 'x', signature: '' },
  ]) {
    const r = await fetch(`${amphi.base}/api/meeting/check`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(link) });
    assert.equal(r.status, 403, JSON.stringify(link));
    assert.equal((await r.json()).error, 'invalid-link');
    const j = await fetch(`${amphi.base}/api/meeting/join`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...link, name: 'Eve' }) });
    assert.equal(j.status, 403);
  }
});
