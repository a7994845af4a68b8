// An independent WebSocket client (@xmpp/client) signs in over /xmpp-websocket and
// chats in a room with a slixmpp client connected over TCP.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { client, xml } from '@xmpp/client';
import { startAmphi } from '../lib/server.js';

const PYTHON = process.env.PYTHON ?? 'python3';
const ROOM = 'lobby@conference.localhost';

/** @type {import('../lib/server.js').Amphi} */
let amphi;
/** @type {import('node:child_process').ChildProcess|undefined} */
let peer;

before(async () => {
  amphi = await startAmphi({ users: [['webuser', 'web-pass'], ['tcpuser', 'tcp-pass']] });
});

after(async () => {
  peer?.stdin?.end();
  peer?.kill();
  await amphi?.stop();
});

/**
 * Start the slixmpp peer; resolves with a function that waits for an event.
 * @returns {Promise<(pred: (e: any) => boolean, ms?: number) => Promise<any>>}
 */
async function startPeer() {
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'lib', 'tcp_peer.py');
  peer = spawn(PYTHON, [script, String(amphi.c2s), 'tcpuser@localhost', 'tcp-pass', ROOM, 'tcp'], { stdio: ['pipe', 'pipe', 'inherit'] });
  /** @type {any[]} */
  const events = [];
  /** @type {(() => void)[]} */
  const wakers = [];
  createInterface({ input: /** @type {import('node:stream').Readable} */ (peer.stdout) }).on('line', (line) => {
    try { events.push(JSON.parse(line)); } catch { return; }
    wakers.splice(0).forEach((w) => w());
  });
  return async (pred, ms = 20000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = events.find(pred);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`slixmpp peer: no matching event in ${JSON.stringify(events)}`);
      await new Promise((r) => { wakers.push(() => r(undefined)); setTimeout(r, 200); });
    }
  };
}

test('@xmpp/client over /xmpp-websocket chats with a slixmpp TCP client in a room', async () => {
  const waitPeer = await startPeer();
  await waitPeer((e) => e.event === 'ready');

  const xmpp = client({ service: amphi.ws, domain: 'localhost', username: 'webuser', password: 'web-pass', resource: 'ws' });
  xmpp.on('error', () => {});
  /** @type {any[]} */
  const stanzas = [];
  xmpp.on('stanza', (s) => stanzas.push(s));
  /** @param {(s: any) => boolean} pred */
  const waitStanza = async (pred, ms = 15000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const s = stanzas.find(pred);
      if (s) return s;
      if (Date.now() > deadline) throw new Error(`no matching stanza among ${stanzas.map(String).join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const address = await xmpp.start();
  assert.equal(address.bare().toString(), 'webuser@localhost');
  const metrics = await (await fetch(`${amphi.base}/metrics`)).text();
  assert.match(metrics, /^amphi_websocket_clients 1$/m);
  assert.match(metrics, /^amphi_sessions 2$/m, 'the WebSocket and the TCP client');

  await xmpp.send(xml('presence', { to: `${ROOM}/web` }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' }, xml('history', { maxstanzas: '0' }))));
  const self = await waitStanza((s) => s.is('presence') && s.attrs.from === `${ROOM}/web`);
  assert.ok(self.getChild('x', 'http://jabber.org/protocol/muc#user')?.getChildren('status').some((/** @type {any} */ st) => st.attrs.code === '110'));
  await waitStanza((s) => s.is('presence') && s.attrs.from === `${ROOM}/tcp`);

  await xmpp.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('body', {}, 'hello from websocket')));
  await waitPeer((e) => e.event === 'message' && e.nick === 'web' && e.body === 'hello from websocket');
  const reply = await waitStanza((s) => s.is('message') && s.attrs.from === `${ROOM}/tcp` && s.getChildText('body') === 'hello from tcp');
  assert.equal(reply.attrs.type, 'groupchat');

  await xmpp.stop();
});
