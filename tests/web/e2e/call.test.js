// The room's call end to end: three headless Chromium participants (one browser, three
// isolated contexts, each with Chromium's fake camera and microphone) join one room and its
// call through the Jingle focus and the SFU. Each decodes the two others' video and audio
// (getStats: inbound-rtp framesDecoded / packetsReceived growing); one shares its screen
// (the real getDisplayMedia: headless Chromium captures its virtual screen when launched
// with --auto-select-desktop-capture-source, no canvas stand-in needed) and the others
// decode it; the moderator mutes one and its audio stops at the others; one leaves and its
// tile disappears at the others. Also: the Jingle⇄SDP mapping against Chrome itself, camera
// off/on, self mute, keyboard pinning, raise hand, an audio-only rejoin, a guest from an
// invitation link, an independent aiortc peer (lib/aiortc_peer.py), the phone layout, the
// XEP-0482 invite seen from the room's history, and the moderator ending the call for everyone.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAmphi } from '../lib/server.js';
import { launch, newPage, recordPeerConnections, shot } from '../lib/browser.js';

const ROOM = 'appel';
const USERS = /** @type {const} */ (['alice', 'bob', 'carol']);
const jid = (/** @type {string} */ u) => `${u}@localhost`;

/** @type {import('../lib/server.js').Amphi} */
let amphi;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Record<string, Awaited<ReturnType<typeof newPage>>>} */
const peers = {};
const started = Date.now();
const LIB = join(dirname(fileURLToPath(import.meta.url)), '..', 'lib');
// The aiortc venv of tests/media (scripts/test.sh makes it), or MEDIA_PYTHON.
const MEDIA_PYTHON = process.env.MEDIA_PYTHON ?? join(LIB, '..', '..', '..', '.test-work', 'venv-media', 'bin', 'python');

before(async () => {
  amphi = await startAmphi({ users: [...USERS, 'dave'].map((u) => [u, `${u} secret`]) });
  browser = await launch(['--auto-select-desktop-capture-source=Entire screen']);
});

after(async () => {
  await browser?.close();
  await amphi?.stop();
  console.log(`call test: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  for (const [name, p] of Object.entries(peers)) assert.deepEqual(p.errors, [], `${name}: no script errors or CSP violations`);
});

/** The call module's warnings (a refused Jingle action, a failed negotiation) fail the test too. @param {Awaited<ReturnType<typeof newPage>>} p */
function watchWarnings(p) {
  p.page.on('console', (m) => {
    if (m.type() === 'warning' && m.text().startsWith('call:')) p.errors.push(m.text());
  });
  return p;
}


/**
 * The page's receive counters by content name: decoded frames for video, packets for audio.
 * @param {import('playwright-core').Page} page @returns {Promise<Record<string, number>>}
 */
function counters(page) {
  return page.evaluate(async () => {
    /** @type {Record<string, number>} */
    const out = {};
    for (const pc of /** @type {any} */ (window).__pcs) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((/** @type {any} */ r) => {
        if (r.type === 'inbound-rtp' && r.mid) out[r.mid] = r.kind === 'video' ? r.framesDecoded ?? 0 : r.packetsReceived ?? 0;
      });
    }
    return out;
  });
}

/** Content names of `nick`'s camera, screen and audio as shown on `page`. @param {import('playwright-core').Page} page @param {string} nick */
function midsOf(page, nick) {
  return page.evaluate((o) => {
    const q = (/** @type {string} */ s) => document.querySelector(s)?.getAttribute('data-mid') ?? '';
    return { camera: q(`#call-grid .tile.camera[data-nick="${o}"]`), screen: q(`#call-grid .tile.screen[data-nick="${o}"]`),
      audio: q(`#stage audio[data-nick="${o}"]`) };
  }, nick);
}

/**
 * Wait until each of `mids` has grown by at least `by` on `page`.
 * @param {import('playwright-core').Page} page @param {string[]} mids @param {number} by @param {number} [ms]
 */
async function grows(page, mids, by, ms = 15000) {
  const first = await counters(page);
  const deadline = Date.now() + ms;
  for (;;) {
    const now = await counters(page);
    if (mids.every((m) => (now[m] ?? 0) - (first[m] ?? 0) >= by)) return now;
    if (Date.now() > deadline) assert.fail(`no growth on ${mids.join(',')}: ${JSON.stringify(first)} → ${JSON.stringify(now)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

test('jingle.js: a Chrome offer becomes Jingle, and Jingle an SDP another Chrome answers', async () => {
  const { page, ctx } = await newPage(browser);
  await page.goto(amphi.base);
  const r = await page.evaluate(async () => {
    const src = /** @type {HTMLScriptElement} */ (document.querySelector('script[type="module"]')).src.replace(/js\/app\.js$/, 'js/call/jingle.js');
    const J = await import(src);
    const pc = new RTCPeerConnection();
    const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    for (const tr of media.getTracks()) pc.addTransceiver(tr, { streams: [media] });
    const offer = await pc.createOffer();
    const j = J.sdpToJingle(offer.sdp, 'session-initiate', 'sid1', 'alice@localhost/web');
    const contents = Array.from(j.getElementsByTagNameNS(J.NSJ.jingle, 'content'));
    /** @type {any[]} */
    const sections = contents.map((c) => Object.assign(J.sectionFromContent(c), { direction: 'sendonly' }));
    // Offered to another browser the way the focus forwards streams (sendonly, ICE-lite).
    const other = new RTCPeerConnection();
    await other.setRemoteDescription({ type: 'offer', sdp: J.buildSdp(sections) });
    const answer = J.parseSdp((await other.createAnswer()).sdp);
    media.getTracks().forEach((tr) => tr.stop());
    return {
      xml: new XMLSerializer().serializeToString(j),
      names: contents.map((c) => `${c.getAttribute('name')}:${c.getAttribute('senders')}`),
      media: sections.map((x) => x.media),
      sources: sections.map((x) => [...x.ssrcs.values()].every((a) => a.cname && a.msid)),
      fid: sections[1].ssrcGroups.map((/** @type {any} */ g) => g[0]),
      vp8: sections[1].payloadTypes.some((/** @type {any} */ p) => p.name === 'VP8' && p.fbs.some((/** @type {any} */ f) => f[0] === 'nack')),
      answered: answer.map((x) => `${x.mid}:${x.direction}`),
      msids: other.getTransceivers().map((t) => t.receiver.track.kind),
    };
  });
  await ctx.close();
  assert.deepEqual(r.names, ['0:both', '1:both']);
  assert.deepEqual(r.media, ['audio', 'video']);
  assert.deepEqual(r.sources, [true, true], 'every <source/> has cname and msid');
  assert.deepEqual(r.fid, ['FID']);
  assert.ok(r.vp8, 'VP8 with its rtcp-fb');
  assert.deepEqual(r.answered, ['0:recvonly', '1:recvonly']);
  assert.match(r.xml, /<group xmlns="urn:xmpp:jingle:apps:grouping:0" semantics="BUNDLE"><content name="0"\/><content name="1"\/><\/group>/);
  assert.match(r.xml, /<fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="actpass">[0-9A-F:]{95}<\/fingerprint>/);
});

test('three participants sign in, enter the room and join its call', async () => {
  for (const u of USERS) {
    const p = watchWarnings(await newPage(browser, { locale: u === 'bob' ? 'en-US' : 'fr-FR', viewport: { width: 1280, height: 900 } }));
    peers[u] = p;
    await p.page.addInitScript(recordPeerConnections);
    // Alice makes the room permanent (its owner can then hand out invitation links).
    await p.page.goto(`${amphi.base}/signin?next=${u === 'alice' ? '/rooms/new' : `/room/${ROOM}`}`);
    await p.page.fill('#user', u);
    await p.page.fill('#password', `${u} secret`);
    await p.page.click('#signin-form button[type=submit]');
    if (u === 'alice') {
      await p.page.fill('#room-name', ROOM);
      await p.page.click('#create-form button[type=submit]');
      await p.page.waitForURL(`${amphi.base}/room/${ROOM}`);
    }
    await p.page.waitForSelector(`#participants li[data-nick="${u}"]`);
    // The pre-join screen is the device test.
    await p.page.waitForSelector('#stage:not([hidden]) #call-join');
    if (u === 'bob') {
      // Alice started the call: her XEP-0482 invite, from the room's history, says so.
      await p.page.waitForSelector('#call-in-progress:not([hidden]):has-text("A call started by alice is in progress")');
      await p.page.waitForSelector('#chat-log li:has-text("a lancé un appel")');
      await shot(p.page, 'call-01b-call-in-progress');
    }
    if (u === 'alice') {
      await p.page.click('#start-test');
      await p.page.waitForFunction(() => (/** @type {HTMLVideoElement|null} */ (document.querySelector('#camera-preview'))?.videoWidth ?? 0) > 0);
      await shot(p.page, 'call-01-prejoin');
    }
    await p.page.click('#call-join');
    await p.page.waitForSelector(`#call-grid .tile.camera[data-nick="${u}"] video`);
  }
  for (const u of USERS) {
    for (const other of USERS.filter((o) => o !== u)) {
      await peers[u].page.waitForSelector(`#call-grid .tile.camera[data-nick="${other}"] video`, { timeout: 15000 });
      await peers[u].page.waitForSelector(`#stage audio[data-nick="${other}"]`, { state: 'attached', timeout: 15000 });
    }
  }
});

test('everyone decodes video and audio from the two others', async () => {
  await Promise.all(USERS.map(async (u) => {
    const { page } = peers[u];
    /** @type {string[]} */
    const mids = [];
    for (const other of USERS.filter((o) => o !== u)) {
      const m = await midsOf(page, other);
      assert.ok(m.camera && m.audio, `${u} shows ${other}'s camera and audio: ${JSON.stringify(m)}`);
      mids.push(m.camera, m.audio);
    }
    await grows(page, mids, 10);
  }));
  // The fake microphone beeps: someone is highlighted as the active speaker.
  await peers.alice.page.waitForSelector('#call-grid .tile.speaking', { timeout: 10000 });
  await peers.alice.page.waitForFunction(() => document.querySelectorAll('#call-grid video').length === 3
    && Array.from(document.querySelectorAll('#call-grid video')).every((v) => /** @type {HTMLVideoElement} */ (v).videoWidth > 0));
  await shot(peers.alice.page, 'call-02-grid-alice');
  await shot(peers.bob.page, 'call-03-grid-bob-en');
});

test('a screen share is decoded by the others and shown large', async () => {
  const { page } = peers.bob;
  await page.click('#call-screen');
  await page.waitForSelector('#call-screen[data-active="true"]');
  for (const u of ['alice', 'carol']) {
    const p = peers[u].page;
    await p.waitForSelector(`#call-grid .tile.screen[data-nick="bob"] video`, { timeout: 15000 });
    const m = await midsOf(p, 'bob');
    assert.ok(m.screen && m.screen !== m.camera, `${u} shows bob's screen apart from his camera: ${JSON.stringify(m)}`);
    await grows(p, [m.screen], 5);
  }
  await peers.carol.page.waitForFunction((o) => {
    const v = /** @type {HTMLVideoElement|null} */ (document.querySelector(`.tile.screen[data-nick="${o}"] video`));
    return !!v && v.videoWidth > 0;
  }, 'bob');
  // Shown across the whole grid: wider than a camera tile.
  const widths = await peers.carol.page.evaluate((o) => [`.tile.screen[data-nick="${o}"]`, `.tile.camera[data-nick="${o}"]`]
    .map((s) => document.querySelector(s)?.getBoundingClientRect().width ?? 0), 'bob');
  assert.ok(widths[0] > widths[1] * 1.5, `screen tile ${widths[0]}px vs camera ${widths[1]}px`);
  await shot(peers.carol.page, 'call-04-screen-at-carol');
  await page.click('#call-view');
  await peers.carol.page.click('#call-view');
  await peers.carol.page.waitForSelector('#call-grid.speaker-view .tile.main');
  await shot(peers.carol.page, 'call-05-speaker-view-carol');
  await peers.carol.page.click('#call-view');
});

test('the screen share stops: its tile goes away at the others', async () => {
  await peers.bob.page.click('#call-screen');
  await peers.bob.page.waitForSelector('#call-screen[data-active="false"]');
  for (const u of ['alice', 'carol']) {
    await peers[u].page.waitForSelector(`#call-grid .tile.screen[data-nick="bob"]`, { state: 'detached', timeout: 10000 });
  }
});

test('self mute and camera off/on show at the others; the camera comes back decoded', async () => {
  const carol = peers.carol.page;
  const alice = peers.alice.page;
  const row = (/** @type {string} */ u) => `#call-people li[data-nick="${u}"]`;
  await carol.click('#call-mic');
  await carol.waitForSelector('#call-mic[data-active="true"]');
  await alice.waitForSelector(`${row('carol')}[data-muted="true"]`);
  await alice.waitForSelector(`#call-grid .tile.camera[data-nick="carol"] figcaption svg.icon`);
  await carol.locator('#call-mic').focus();
  await carol.keyboard.press('Enter');
  await alice.waitForSelector(`${row('carol')}[data-muted="false"]`);

  const bob = peers.bob.page;
  const before = (await midsOf(alice, 'bob')).camera;
  await bob.click('#call-camera');
  await bob.waitForSelector('#call-camera[data-active="true"]');
  await alice.waitForSelector(`${row('bob')}[data-camera="false"]`, { timeout: 10000 });
  await alice.waitForSelector(`#call-grid .tile.camera[data-nick="bob"] .avatar`);
  await shot(alice, 'call-06-bob-camera-off');
  await bob.click('#call-camera');
  await alice.waitForSelector(`#call-grid .tile.camera[data-nick="bob"] video`, { timeout: 10000 });
  const after = (await midsOf(alice, 'bob')).camera;
  assert.ok(after && after !== before, `bob's camera is a new stream at alice (${before} → ${after})`);
  await grows(alice, [after], 5);
});

test('a tile pinned from the keyboard is the large one of the speaker view', async () => {
  const alice = peers.alice.page;
  await alice.locator(`#call-grid .tile.camera[data-nick="carol"]`).focus();
  await alice.keyboard.press('Enter');
  await alice.waitForSelector(`#call-grid.speaker-view .tile.main[data-nick="carol"][aria-pressed="true"]`);
  assert.equal(await alice.evaluate(() => document.activeElement?.getAttribute('data-nick')), 'carol', 'focus stays on the tile');
  await shot(alice, 'call-07-pinned-carol');
  await alice.keyboard.press('Enter');
  await alice.click('#call-view');
  await alice.waitForSelector('#call-grid:not(.speaker-view)');
});

test('raise hand shows at the others', async () => {
  await peers.carol.page.keyboard.press('h');
  await peers.carol.page.waitForSelector('#call-hand[data-active="true"]');
  await peers.alice.page.waitForSelector(`#call-people li[data-nick="carol"][data-hand="true"]`);
  await peers.alice.page.waitForSelector(`#call-grid .tile[data-nick="carol"] .hand-flag`);
  await peers.alice.page.waitForSelector('#call-announce:has-text("carol lève la main")', { state: 'attached' });
  await shot(peers.alice.page, 'call-07b-carol-hand-raised');
  await peers.carol.page.keyboard.press('h');
  await peers.alice.page.waitForSelector(`#call-people li[data-nick="carol"][data-hand="false"]`);
});

test('the moderator mutes bob: his audio stops at the others, and comes back on unmute', async () => {
  const alice = peers.alice.page;
  const carol = peers.carol.page;
  const bobAudio = (await midsOf(carol, 'bob')).audio;
  await grows(carol, [bobAudio], 10);
  // Only moderators see the button; the focus checks the room role (xep/jingle-conferences.md "Admission").
  assert.equal(await carol.locator('#call-people button[data-action="call-mute"]').count(), 0);
  await alice.click(`#call-people li[data-nick="bob"] button[data-action="call-mute"]`);
  const outcome = await Promise.race([
    peers.bob.page.waitForSelector('#call-mic[data-active="true"]', { timeout: 10000 }).then(() => 'muted'),
    alice.waitForSelector('#toast.show', { timeout: 10000 }).then(async () => `refused: ${await alice.textContent('#toast')}`),
  ]);
  assert.equal(outcome, 'muted', 'bob is told a moderator muted him');
  await carol.waitForSelector(`#call-people li[data-nick="bob"][data-muted="true"]`);
  // Forwarding stops: after in-flight packets, bob's audio counter stands still at carol and alice.
  await new Promise((r) => setTimeout(r, 1000));
  const aliceBob = (await midsOf(alice, 'bob')).audio;
  const before = [(await counters(carol))[bobAudio], (await counters(alice))[aliceBob]];
  await new Promise((r) => setTimeout(r, 2000));
  const afterwards = [(await counters(carol))[bobAudio], (await counters(alice))[aliceBob]];
  assert.deepEqual(afterwards, before, 'no audio packets from bob after the moderator mute');
  // Alice's audio still flows to carol.
  await grows(carol, [(await midsOf(carol, 'alice')).audio], 10);
  await shot(peers.bob.page, 'call-08-bob-muted-by-moderator');
  await shot(carol, 'call-09-carol-sees-bob-muted');
  // The moderator's unmute resumes forwarding.
  await alice.click(`#call-people li[data-nick="bob"] button[data-action="call-mute"]`);
  await peers.bob.page.waitForSelector('#call-mic[data-active="false"]');
  await carol.waitForSelector(`#call-people li[data-nick="bob"][data-muted="false"]`);
  await grows(carol, [bobAudio], 10);
});

test('carol leaves: her tile disappears at the others', async () => {
  await peers.carol.page.click('#call-leave');
  await peers.carol.page.waitForSelector('#call-join');
  // The others are still in the call: she is told so.
  await peers.carol.page.waitForSelector('#call-in-progress:not([hidden]) #call-join-banner');
  for (const u of ['alice', 'bob']) {
    await peers[u].page.waitForSelector(`#call-grid .tile[data-nick="carol"]`, { state: 'detached', timeout: 15000 });
    await peers[u].page.waitForSelector(`#call-people li[data-nick="carol"]`, { state: 'detached' });
  }
  // Screen readers hear it (French at alice, English at bob).
  await peers.alice.page.waitForSelector('#call-announce:has-text("carol a quitté l’appel")', { state: 'attached' });
  await peers.bob.page.waitForSelector('#call-announce:has-text("carol left the call")', { state: 'attached' });
  await shot(peers.alice.page, 'call-10-after-carol-left');
  assert.ok(Date.now() - started < 90000, `the call test takes under 90 s (${Date.now() - started} ms)`);
});

test('carol comes back audio only, then turns her camera on', async () => {
  const carol = peers.carol.page;
  const alice = peers.alice.page;
  await carol.click('#call-join-audio');
  await carol.waitForSelector('#call-camera[data-active="true"], #call-error .alert');
  assert.deepEqual(await carol.locator('#call-error .alert').allTextContents(), [], 'joined without an error');
  await alice.waitForSelector(`#call-grid .tile.camera[data-nick="carol"] .avatar`, { timeout: 15000 });
  await alice.waitForSelector(`#stage audio[data-nick="carol"]`, { state: 'attached' });
  await grows(alice, [(await midsOf(alice, 'carol')).audio], 10);
  // She still receives the others' video on her receive-only video content.
  await grows(carol, [(await midsOf(carol, 'alice')).camera], 5);
  await shot(alice, 'call-11-carol-audio-only');
  await carol.click('#call-camera');
  await alice.waitForSelector(`#call-grid .tile.camera[data-nick="carol"] video`, { timeout: 15000 });
  await grows(alice, [(await midsOf(alice, 'carol')).camera], 5);
});

test('a guest from an invitation link joins the call', async () => {
  const alice = peers.alice.page;
  const res = await fetch(`${amphi.base}/api/rooms/${ROOM}/invites`,
    { headers: { Authorization: `Basic ${Buffer.from('alice@localhost:alice secret').toString('base64')}` } });
  assert.equal(res.status, 200);
  const links = /** @type {{participant: string}} */ (await res.json());
  const guest = watchWarnings(await newPage(browser, { locale: 'en-US' }));
  peers.guest = guest;
  const g = guest.page;
  await g.addInitScript(recordPeerConnections);
  await g.goto(amphi.base + links.participant);
  await g.fill('#display-name', 'Zoé Invitée');
  await g.click('#join-form button[type=submit]');
  await g.waitForURL(`${amphi.base}/room/${ROOM}`);
  await g.click('#call-join');
  await g.waitForSelector('#call-camera[data-active="false"], #call-error .alert');
  assert.deepEqual(await g.locator('#call-error .alert').allTextContents(), [], 'the guest joined the call');
  await alice.waitForSelector('#call-grid .tile.camera[data-nick="Zoé Invitée"] video', { timeout: 15000 });
  const m = await midsOf(alice, 'Zoé Invitée');
  await grows(alice, [m.camera, m.audio], 10);
  await g.waitForSelector('#call-grid .tile.camera[data-nick="alice"] video', { timeout: 15000 });
  await grows(g, [(await midsOf(g, 'alice')).camera, (await midsOf(g, 'alice')).audio], 10);
  await shot(g, 'call-12-guest-in-call');
  await g.click('#call-leave');
  await alice.waitForSelector('#call-grid .tile[data-nick="Zoé Invitée"]', { state: 'detached', timeout: 15000 });
});

test('an independent aiortc peer joins the same call and exchanges media with the browsers', async (t) => {
  if (!existsSync(MEDIA_PYTHON)) {
    // scripts/test.sh runs the media phase (which makes this venv) before the web phase.
    assert.ok(!process.env.CI, `no Python with aiortc at ${MEDIA_PYTHON}: run scripts/test.sh media first`);
    t.skip(`no Python with aiortc at ${MEDIA_PYTHON} (set MEDIA_PYTHON)`);
    return;
  }
  const alice = peers.alice.page;
  const peer = spawn(MEDIA_PYTHON, [join(LIB, 'aiortc_peer.py'), String(amphi.c2s), 'dave@localhost', 'dave secret',
    `${ROOM}@conference.localhost`, 'dave', `${ROOM}@focus.localhost`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  peer.stderr?.on('data', (d) => { stderr += d; });
  /** @type {any} */
  let last = null;
  createInterface({ input: /** @type {import('node:stream').Readable} */ (peer.stdout) }).on('line', (line) => {
    try { last = JSON.parse(line); } catch { /* not ours */ }
  });
  try {
    const deadline = Date.now() + 30000;
    // Streams are named by occupant JID (dave is no moderator: xep/jingle-conferences.md "Admission").
    const from = (/** @type {string} */ u) => last?.from?.[`${ROOM}@conference.localhost/${u}`] ?? last?.from?.[jid(u)] ?? {};
    const decodes = (/** @type {string} */ u) => (from(u).video ?? 0) >= 20 && (from(u).audio ?? 0) >= 20;
    while (!(decodes('alice') && decodes('bob') && decodes('carol'))) {
      if (Date.now() > deadline || peer.exitCode !== null) assert.fail(`aiortc peer: ${JSON.stringify(last)} ${stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    await alice.waitForSelector(`#call-grid .tile.camera[data-nick="dave"] video`, { timeout: 15000 });
    const m = await midsOf(alice, 'dave');
    await grows(alice, [m.camera, m.audio], 10);
    await grows(peers.bob.page, [(await midsOf(peers.bob.page, 'dave')).camera], 10);
    await shot(alice, 'call-13-aiortc-peer-at-alice');
    peer.stdin?.end();
    await alice.waitForSelector(`#call-grid .tile[data-nick="dave"]`, { state: 'detached', timeout: 15000 });
  } finally {
    if (peer.exitCode === null) peer.kill();
  }
  assert.ok(Date.now() - started < 90000, `the call test takes under 90 s (${Date.now() - started} ms)`);
});

test('the call fits a phone screen', async () => {
  const { page } = peers.alice;
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForSelector('#call-grid .tile.camera[data-nick="bob"] video');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling (${overflow}px too wide)`);
  await shot(page, 'call-14-phone');
});

test('the moderator ends the call for everyone; the room and its chat stay', async () => {
  const [alice, bob, carol] = [peers.alice.page, peers.bob.page, peers.carol.page];
  await alice.setViewportSize({ width: 1280, height: 900 });
  // Only moderators have the button; the focus checks the room role too (tests/call_access.rs).
  assert.equal(await bob.locator('#call-end-all:visible').count(), 0);
  alice.once('dialog', (d) => d.accept());
  await alice.click('#call-end-all');
  await bob.waitForSelector('#call-error .alert:has-text("The moderator (alice) ended the call for everyone")');
  await carol.waitForSelector('#call-error .alert:has-text("Le modérateur (alice) a terminé l’appel pour tous")');
  await alice.waitForSelector('#call-error .alert:has-text("Vous avez terminé l’appel pour tous")');
  for (const p of [alice, bob, carol]) {
    await p.waitForSelector('#call-join');
    await p.waitForSelector('#call-in-progress', { state: 'hidden' });
  }
  // The invite is retracted in the chat, and the chat goes on.
  await bob.waitForSelector('#chat-log li:has-text("a terminé l’appel pour tous")');
  await bob.fill('#chat-input', 'still here');
  await bob.press('#chat-input', 'Enter');
  await carol.waitForSelector('#chat-log li:has-text("still here")');
  await shot(bob, 'call-15-ended-by-moderator');
});
