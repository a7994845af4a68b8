// ICE-TCP fallback (RFC 6544) end to end: with `[media] tcp_listen` set, the focus offers
// a `tcptype passive` TCP candidate beside its UDP one. One participant's browser cannot
// reach the SFU's UDP port (its page drops the focus's UDP candidate before Chrome sees
// it: the focus is ICE-lite and never checks towards the browser, so that candidate is as
// good as firewalled) and joins over TCP; it exchanges video and audio with a participant
// on UDP.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAmphi, freePort } from '../lib/server.js';
import { launch, newPage, recordPeerConnections, shot } from '../lib/browser.js';

const ROOM = 'tcp';
/** @type {import('../lib/server.js').Amphi} */
let amphi;
/** @type {import('playwright-core').Browser[]} */
const browsers = [];

before(async () => {
  const tcp = await freePort();
  amphi = await startAmphi({ users: [['alice', 'alice secret'], ['bob', 'bob secret']], extra: `[media]\ntcp_listen = "127.0.0.1:${tcp}"\n` });
});

after(async () => {
  for (const b of browsers) await b.close();
  await amphi?.stop();
});

/** Sign in as `u` and join the room's call (alice makes the room). @param {import('playwright-core').Browser} browser @param {string} u */
async function joinCall(browser, u) {
  const p = await newPage(browser, { locale: 'en-US' });
  await p.page.addInitScript(recordPeerConnections, u === 'bob');
  await p.page.goto(`${amphi.base}/signin?next=${u === 'alice' ? '/rooms/new' : `/room/${ROOM}`}`);
  await p.page.fill('#user', u);
  await p.page.fill('#password', `${u} secret`);
  await p.page.click('#signin-form button[type=submit]');
  if (u === 'alice') {
    await p.page.fill('#room-name', ROOM);
    await p.page.click('#create-form button[type=submit]');
    await p.page.waitForURL(`${amphi.base}/room/${ROOM}`);
  }
  await p.page.waitForSelector('#stage:not([hidden]) #call-join');
  await p.page.click('#call-join');
  await p.page.waitForSelector(`#call-grid .tile.camera[data-nick="${u}"] video`);
  return p;
}

/**
 * The page's receive counters (decoded frames, audio packets) and the protocol of the
 * selected ICE candidate pair's local candidate.
 * @param {import('playwright-core').Page} page
 */
function stats(page) {
  return page.evaluate(async () => {
    const pcs = /** @type {RTCPeerConnection[]} */ (/** @type {any} */ (window).__pcs).filter((pc) => pc.connectionState !== 'closed');
    let frames = 0;
    let audio = 0;
    let protocol = '';
    for (const pc of pcs) {
      const all = new Map();
      (await pc.getStats()).forEach((/** @type {any} */ r) => all.set(r.id, r));
      for (const r of all.values()) {
        if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded ?? 0;
        if (r.type === 'inbound-rtp' && r.kind === 'audio') audio += r.packetsReceived ?? 0;
        if (r.type === 'transport' && r.selectedCandidatePairId) {
          protocol = all.get(all.get(r.selectedCandidatePairId)?.localCandidateId)?.protocol ?? '';
        }
      }
    }
    return { frames, audio, protocol };
  });
}


test('a browser without UDP joins the call over ICE-TCP and exchanges media with a UDP one', async () => {
  browsers.push(await launch());
  const alice = await joinCall(browsers[0], 'alice');
  const bob = await joinCall(browsers[0], 'bob');
  await alice.page.waitForSelector('#call-grid .tile.camera[data-nick="bob"] video', { timeout: 15000 });
  await bob.page.waitForSelector('#call-grid .tile.camera[data-nick="alice"] video', { timeout: 15000 });
  const deadline = Date.now() + 20000;
  /** @type {any} */
  let a = {};
  /** @type {any} */
  let b = {};
  for (;;) {
    [a, b] = [await stats(alice.page), await stats(bob.page)];
    if (a.frames >= 20 && b.frames >= 20 && a.audio >= 50 && b.audio >= 50 && b.protocol) break;
    if (Date.now() > deadline) assert.fail(`no media both ways: alice ${JSON.stringify(a)}, bob ${JSON.stringify(b)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  assert.equal(b.protocol, 'tcp', 'the browser without UDP talks to the SFU over TCP');
  assert.equal(a.protocol, 'udp', 'the other one keeps UDP');
  await shot(bob.page, 'call-tcp-01-bob-over-tcp');
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});
