// The call on the room page: a pre-join screen (the device test), then the grid with the
// active speaker highlighted, a speaker view, the participant list with microphone and
// camera state, and the controls (microphone, camera, screen share, raise hand, leave).
//
// Who a stream belongs to is the XEP-0298 user entity the focus puts on each content-add:
// the publisher's occupant JID (room@service/Nick), or its real JID for those who may see
// real JIDs (xep/jingle-conferences.md "Admission"); either leads to the room nick.
//
// Call state that is not media (raised hand, and states a late joiner could not learn from
// Jingle) travels in the occupant's MUC presence as an extension, relayed by the room like
// any presence payload and seen by late joiners:
//   <call xmlns="urn:amphi:call:0" muted="1" camera="0" screen="MID" hand="1"/>
// `screen` is the publisher's content name of its screen share (the focus's msid
// "amphi-N CONTENT" carries it to receivers), so they tell a screen share from a camera.
// The element is absent when not in the call.
//
// The room learns of its call from XEP-0482 invites: whoever starts the call (it has no
// participants yet) sends the room an <invite/> naming the focus, with a body for clients
// without XEP-0482; joiners send <accept/>, leavers <left/>, and whoever finds the call
// empty after leaving (or the moderator who ended it) <retract/>s the invite. An invite
// seen live or in the history on entering shows "a call is in progress"; the call's number
// of participants (disco#info on the call's JID) has the last word, so a stale invite shows
// nothing. Moderators end the call for everyone with the focus's XEP-0050 `end-call`.

import { t } from '../i18n.js';
import { h, toast, alertBox } from '../ui.js';
import { x, child, bare, localOf, domainOf, resourceOf, newId, StanzaError } from '../xmpp.js';
import { mountDeviceTest } from '../pages/devices.js';
import { Call } from './call.js';
import { iceServers } from './media.js';
import { NS_COMMANDS, NS_INVITES, inviteElement, readCallInvite } from './jingle.js';

const NS_CALL = 'urn:amphi:call:0';

/** @typedef {import('../muc.js').Room} Room */
/** @typedef {import('./call.js').Remote} Remote */
/**
 * Someone in the call (us included), keyed by bare JID.
 * @typedef {{ jid: string, audio: Remote|null, videos: Remote[], muted: boolean, level: number }} Person
 */
/** @typedef {{ muted: boolean, camera: boolean, screen: string, hand: boolean }} CallPresence */

/** @param {Element} p @returns {CallPresence|null} */
function readPresence(p) {
  const c = child(p, 'call', NS_CALL);
  if (!c || p.getAttribute('type') === 'unavailable') return null;
  return { muted: c.getAttribute('muted') === '1', camera: c.getAttribute('camera') !== '0',
    screen: c.getAttribute('screen') ?? '', hand: c.getAttribute('hand') === '1' };
}

/** The call's JID: `<room>@focus.<domain>`, or the focus service disco announces. @param {Room} room */
async function focusOf(room) {
  const domain = domainOf(room.client.jid);
  let service = `focus.${domain}`;
  try {
    for (const it of await room.client.discoItems(domain)) {
      const info = await room.client.discoInfo(it.jid).catch(() => null);
      if (info?.identities.some((i) => i.category === 'conference' && i.type === 'audio-video')) { service = it.jid; break; }
    }
  } catch { /* the default */ }
  return `${localOf(room.jid)}@${service}`;
}

export const callExtension = {
  /** @param {HTMLElement} stage @param {Room} room */
  mount(stage, room) {
    stage.hidden = false;
    const ui = new CallView(stage, room);
    return () => ui.destroy();
  },
};

class CallView {
  /** @param {HTMLElement} stage @param {Room} room */
  constructor(stage, room) {
    this.stage = stage;
    this.room = room;
    /** @type {Call|null} */
    this.call = null;
    /** @type {MediaStreamTrack|null} */
    this.mic = null;
    /** @type {MediaStreamTrack|null} */
    this.cam = null;
    this.muted = false;
    this.hand = false;
    this.speakerView = false;
    /** Our own key among the people: never a JID, so another session of our account stays apart. */
    this.me = `self:${room.client.jid}`;
    /** @type {Map<string, CallPresence>} nick → call presence */
    this.presences = new Map();
    /** @type {Map<string, Person>} */
    this.people = new Map();
    /** @type {WeakMap<MediaStreamTrack, HTMLVideoElement|HTMLAudioElement>} by track (remote track ids repeat: they are publishers' content names) */
    this.media = new WeakMap();
    this.speaker = '';
    /** the tile (kind:owner) pinned large in the speaker view */
    this.pinned = '';
    /** @type {Map<string, HTMLElement>} tiles by kind:owner */
    this.tiles = new Map();
    /** @type {Map<string, HTMLElement>} participant rows by bare JID */
    this.rows = new Map();
    /** @type {WeakMap<MediaStreamTrack, string>} */
    this.trackIds = new WeakMap();
    this.nextTrackId = 0;
    this.speakerSince = 0;
    this.timer = 0;
    this.focus = focusOf(room);
    this.ice = iceServers(room.client, domainOf(room.client.jid));
    this.onPresence = (/** @type {Event} */ e) => {
      const p = /** @type {CustomEvent} */ (e).detail;
      if (bare(p.getAttribute('from') ?? '') !== room.jid) return;
      const nick = resourceOf(p.getAttribute('from') ?? '');
      const cp = readPresence(p);
      const before = this.presences.get(nick);
      if (cp) this.presences.set(nick, cp); else this.presences.delete(nick);
      if (this.call && cp?.hand && !before?.hand && nick !== room.nick) this.say(t('call.said.hand', { name: nick }));
      if (this.call) this.render(); else this.renderBanner();
    };
    this.onKey = (/** @type {KeyboardEvent} */ e) => this.shortcut(e);
    this.visitor = false;
    this.listener = false;
    /** @type {string|undefined} the camera chosen on the pre-join screen */
    this.camId = undefined;
    // Given (or losing) the floor while on the pre-join screen: show the right buttons.
    this.onOccupants = () => {
      if (!this.call && (this.room.self?.role === 'visitor') !== this.visitor) this.prejoin();
      else if (this.call) this.render();
    };
    /** @type {{ id: string, nick: string }|null} the room's current XEP-0482 call invite */
    this.invite = null;
    /** Whether the room's call has participants, as the focus last said. */
    this.inProgress = false;
    /** Whether our session is up (joined, not yet left). */
    this.live = false;
    this.banner = h('div', { id: 'call-in-progress', role: 'status', hidden: true });
    this.onMessage = (/** @type {Event} */ e) => this.message(/** @type {CustomEvent} */ (e).detail);
    room.addEventListener('occupants', this.onOccupants);
    room.client.addEventListener('presence', this.onPresence);
    room.client.addEventListener('message', this.onMessage);
    document.addEventListener('keydown', this.onKey);
    // A call that others start or end without a word (clients without XEP-0482) shows up
    // within half a minute.
    this.poll = window.setInterval(() => { if (!this.call) this.refresh(); }, 30000);
    this.prejoin();
    this.refresh();
  }

  destroy() {
    this.leave(true);
    this.device?.stop();
    clearInterval(this.poll);
    this.room.client.removeEventListener('message', this.onMessage);
    this.room.client.removeEventListener('presence', this.onPresence);
    this.room.removeEventListener('occupants', this.onOccupants);
    document.removeEventListener('keydown', this.onKey);
  }

  /**
   * The pre-join screen: the device test and the join buttons. A visitor of a moderated
   * room (waiting room) may only listen until a moderator gives the floor.
   */
  prejoin() {
    this.device?.stop();
    const box = h('div', { class: 'call-devices' });
    const error = h('div', { id: 'call-error' });
    this.visitor = this.room.self?.role === 'visitor';
    this.errorBox = error;
    this.stage.replaceChildren(h('h2', {}, t('call.title')), this.banner,
      h('p', { class: 'muted' }, t(this.visitor ? 'call.prejoin.visitor' : 'call.prejoin')), box, error,
      h('p', { class: 'actions', id: 'call-prejoin' }, ...(this.visitor
        ? [h('button', { type: 'button', class: 'primary', id: 'call-join-listen', onclick: () => this.join('listen', error) }, t('call.joinListen'))]
        : [h('button', { type: 'button', class: 'primary', id: 'call-join', onclick: () => this.join('camera', error) }, t('call.join')),
          h('button', { type: 'button', id: 'call-join-audio', onclick: () => this.join('audio', error) }, t('call.joinAudio'))])));
    this.device = mountDeviceTest(box);
    this.renderBanner();
  }

  /** "A call is in progress — join", when it is and we are not in it. */
  renderBanner() {
    const others = [...this.presences.keys()].some((nick) => nick !== this.room.nick);
    const on = !this.call && (this.inProgress || others);
    this.banner.hidden = !on;
    if (!on) return;
    const by = this.invite?.nick;
    this.banner.replaceChildren(h('p', { class: 'notice' }, by ? t('call.inProgressBy', { name: by }) : t('call.inProgress'), ' ',
      h('button', { type: 'button', class: 'primary small', id: 'call-join-banner',
        onclick: () => this.join(this.visitor ? 'listen' : 'camera', this.errorBox ?? this.banner) }, t('call.joinNow'))));
  }

  /**
   * Ask the focus whether the room's call is in progress: disco#info on the call's JID
   * (guests may ask it) has its number of participants. null when the focus did not say.
   * @returns {Promise<boolean|null>}
   */
  async refresh() {
    const info = await this.room.client.discoInfo(await this.focus).catch(() => null);
    const field = info?.forms.flatMap((f) => Array.from(f.children)).find((f) => f.getAttribute('var') === 'participants');
    if (!field) {
      this.renderBanner();
      return null;
    }
    this.inProgress = Number(field.textContent) > 0;
    this.renderBanner();
    return this.inProgress;
  }

  /** XEP-0482 messages in the room (live, or its history on entering). @param {Element} m */
  message(m) {
    const from = m.getAttribute('from') ?? '';
    if (bare(from) !== this.room.jid || m.getAttribute('type') !== 'groupchat') return;
    const ci = readCallInvite(m, this.room.jid);
    if (!ci) return;
    if (ci.kind === 'invite' && ci.id) this.invite = { id: ci.id, nick: resourceOf(from) };
    else if (ci.kind === 'retract' && ci.id === this.invite?.id) this.invite = null;
    if (!this.call) this.refresh();
  }

  /**
   * A XEP-0482 message about the room's call invite; `body` for clients that do not know it.
   * @param {string} kind @param {Element|null} [payload] @param {string} [body]
   */
  tellRoom(kind, payload = null, body = '') {
    const invite = this.invite;
    if (!invite || !this.room.joined || this.room.self?.role === 'visitor') return;
    this.room.client.send(x('message', { to: this.room.jid, type: 'groupchat', id: newId() },
      x(kind, { xmlns: NS_INVITES, id: invite.id }, payload), body ? x('body', {}, body) : null));
  }

  /** @param {'camera'|'audio'|'listen'} mode @param {HTMLElement} error */
  async join(mode, error) {
    const micId = /** @type {HTMLSelectElement|null} */ (this.stage.querySelector('#mic-select'))?.value;
    const camId = /** @type {HTMLSelectElement|null} */ (this.stage.querySelector('#camera-select'))?.value;
    this.device?.stop();
    this.device = undefined;
    error.replaceChildren(h('p', { 'aria-busy': 'true' }, t('call.joining')));
    for (const b of this.stage.querySelectorAll('#call-prejoin button')) b.setAttribute('disabled', '');
    let call;
    let starting = false;
    try {
      this.listener = mode === 'listen';
      this.camId = camId;
      const audio = micId ? { deviceId: { exact: micId } } : true;
      const stream = this.listener ? new MediaStream()
        : await navigator.mediaDevices.getUserMedia({ audio, video: mode === 'camera' ? cameraConstraints(camId) : false })
          .catch((err) => {
            // No usable camera: join with the microphone rather than not at all.
            if (mode !== 'camera') throw err;
            toast(t('call.noCamera'));
            return navigator.mediaDevices.getUserMedia({ audio });
          });
      this.mic = stream.getAudioTracks()[0] ?? null;
      this.cam = stream.getVideoTracks()[0] ?? null;
      // Nobody in the call yet: we start it, and invite the room (XEP-0482).
      const others = [...this.presences.keys()].some((nick) => nick !== this.room.nick);
      starting = !others && (await this.refresh()) === false;
      call = new Call(this.room.client, await this.focus, await this.ice);
      this.call = call;
      this.wire(call);
      await call.join(this.mic, this.cam);
    } catch (err) {
      this.leave(false);
      this.prejoin();
      const reason = err instanceof StanzaError ? err.text || err.condition : err instanceof Error ? err.message : String(err);
      this.stage.querySelector('#call-error')?.replaceChildren(alertBox(t('call.failed', { reason })));
      return;
    }
    this.muted = false;
    this.hand = false;
    this.live = true;
    this.inCall();
    this.announce();
    this.timer = window.setInterval(() => this.levels(), 500);
    const focus = await this.focus;
    const jingle = x('jingle', { xmlns: NS_INVITES, sid: call.sid, jid: focus });
    if (starting && this.room.self?.role !== 'visitor') {
      const uri = `${location.origin}/room/${encodeURIComponent(localOf(this.room.jid))}`;
      this.room.client.send(x('message', { to: this.room.jid, type: 'groupchat', id: newId() },
        inviteElement(focus, call.sid, !!this.cam, uri), x('body', {}, t('call.invite.body'))));
    } else {
      this.tellRoom('accept', jingle);
    }
  }

  /** @param {Call} call */
  wire(call) {
    call.addEventListener('stream', (e) => {
      const s = /** @type {Remote} */ (/** @type {CustomEvent} */ (e).detail);
      if (!this.people.has(s.owner)) this.say(t('call.said.joined', { name: this.nameOf(s.owner) }));
      const p = this.person(s.owner);
      if (s.media === 'audio') p.audio = s;
      else if (!p.videos.includes(s)) p.videos.push(s);
      this.render();
    });
    call.addEventListener('unstream', (e) => {
      const mid = String(/** @type {CustomEvent} */ (e).detail);
      for (const [jid, p] of this.people) {
        if (p.audio?.mid === mid) p.audio = null;
        p.videos = p.videos.filter((v) => v.mid !== mid);
        if (!p.audio && !p.videos.length && jid !== this.me) {
          this.people.delete(jid);
          this.say(t('call.said.left', { name: this.nameOf(jid) }));
        }
      }
      this.render();
    });
    call.addEventListener('info', (e) => {
      const d = /** @type {{kind: string, mid: string, own: boolean}} */ (/** @type {CustomEvent} */ (e).detail);
      if (d.kind !== 'mute' && d.kind !== 'unmute') return;
      if (d.own) {
        // A moderator's mute of our microphone (the focus names our own content).
        if (d.mid === call.own.audio) {
          this.setMuted(d.kind === 'mute', false);
          toast(t(d.kind === 'mute' ? 'call.mutedByModerator' : 'call.unmutedByModerator'));
        }
        return;
      }
      for (const p of this.people.values()) if (p.audio?.mid === d.mid) p.muted = d.kind === 'mute';
      this.render();
    });
    call.addEventListener('local', () => this.render());
    call.addEventListener('ended', (e) => {
      const reason = String(/** @type {CustomEvent} */ (e).detail);
      if (this.call !== call) return;
      const by = call.terminated?.endedBy ?? '';
      this.leave(false, !!by);
      this.prejoin();
      const box = this.stage.querySelector('#call-error');
      if (by) box?.replaceChildren(alertBox(resourceOf(by) === this.room.nick ? t('call.youEndedForAll') : t('call.endedByModerator', { name: resourceOf(by) })));
      else if (reason !== 'success') box?.replaceChildren(alertBox(t('call.ended', { reason })));
    });
  }

  /** Tell screen readers (not the eyes: the grid shows it) who came, went or raised a hand. @param {string} text */
  say(text) {
    if (this.announcer) this.announcer.textContent = text;
  }

  /** @param {string} jid */
  person(jid) {
    let p = this.people.get(jid);
    if (!p) {
      p = { jid, audio: null, videos: [], muted: false, level: 0 };
      this.people.set(jid, p);
    }
    return p;
  }

  /** Our call state in the room presence (see the top of this file). @param {boolean} [present] */
  announce(present = true) {
    const c = this.call;
    const el = present && c ? x('call', { xmlns: NS_CALL, muted: this.muted || !this.mic ? '1' : '0', camera: this.cam ? '1' : '0',
      screen: c.own.screen || null, hand: this.hand ? '1' : null }) : null;
    if (this.room.joined) this.room.client.send(x('presence', { to: `${this.room.jid}/${this.room.nick}` }, el));
  }

  /** @param {string} key a person's key @returns {CallPresence|undefined} */
  presenceOf(key) {
    return this.presences.get(this.nameOf(key));
  }

  /** The room nick of a stream owner (occupant JID or real JID), else a readable stand-in. @param {string} key */
  nameOf(key) {
    if (key === this.me) return this.room.nick;
    if (bare(key) === this.room.jid && resourceOf(key)) return resourceOf(key);
    for (const o of this.room.occupants.values()) if (o.jid && bare(o.jid) === bare(key)) return o.nick;
    return localOf(key) || key;
  }

  inCall() {
    this.person(this.me);
    /** @param {string} id @param {() => void} onclick */
    const btn = (id, onclick) => h('button', { type: 'button', id, onclick });
    this.controls = {
      mic: btn('call-mic', () => this.setMuted(!this.muted, true)),
      cam: btn('call-camera', () => this.toggleCamera()),
      screen: btn('call-screen', () => this.toggleScreen()),
      hand: btn('call-hand', () => { this.hand = !this.hand; this.announce(); this.render(); }),
      view: btn('call-view', () => { this.speakerView = !this.speakerView; this.render(); }),
      leave: h('button', { type: 'button', id: 'call-leave', class: 'danger', onclick: () => { this.leave(true); this.prejoin(); } }, t('call.leave')),
      endAll: h('button', { type: 'button', id: 'call-end-all', class: 'danger', onclick: () => this.endForEveryone() }, t('call.endAll')),
    };
    this.grid = h('div', { class: 'call-grid', id: 'call-grid' });
    this.announcer = h('p', { class: 'sr-only', id: 'call-announce', 'aria-live': 'polite' });
    this.list = h('ul', { class: 'call-people', id: 'call-people' });
    this.listTitle = h('h3', { id: 'call-people-title' });
    this.audios = h('div', { hidden: true });
    const c = this.controls;
    // A listener (waiting room) has nothing to send.
    for (const b of [c.mic, c.cam, c.screen]) b.hidden = this.listener;
    this.stage.replaceChildren(h('h2', {}, t('call.title')),
      h('div', { class: 'call' }, this.grid,
        h('aside', { class: 'card call-side', 'aria-labelledby': 'call-people-title' }, this.listTitle, this.list)),
      h('div', { class: 'call-controls', role: 'toolbar', 'aria-label': t('call.controls') }, c.mic, c.cam, c.screen, c.hand, c.view, c.leave, c.endAll),
      h('p', { class: 'muted small' }, t('call.shortcuts')), this.audios, this.announcer);
    this.render();
    c.mic.focus();
  }

  /** Shortcuts outside text fields: M microphone, V camera, H hand. @param {KeyboardEvent} e */
  shortcut(e) {
    const tgt = /** @type {HTMLElement} */ (e.target);
    if (!this.call || e.ctrlKey || e.metaKey || e.altKey || /^(INPUT|TEXTAREA|SELECT)$/.test(tgt.tagName) || tgt.isContentEditable) return;
    const k = e.key.toLowerCase();
    if (k === 'm') this.controls?.mic.click();
    else if (k === 'v') this.controls?.cam.click();
    else if (k === 'h') this.controls?.hand.click();
  }

  /** @param {boolean} muted @param {boolean} tell whether to send session-info (not when a moderator did it) */
  setMuted(muted, tell) {
    this.muted = muted;
    if (this.mic) this.mic.enabled = !muted;
    if (tell) this.call?.tellMute(this.call.own.audio, muted).catch((e) => toast(String(e)));
    this.announce();
    this.render();
  }

  async toggleCamera() {
    const call = this.call;
    if (!call) return;
    try {
      if (this.cam) {
        this.cam = null;
        await call.setCamera(null);
      } else {
        const s = await navigator.mediaDevices.getUserMedia({ video: cameraConstraints(this.camId) });
        this.cam = s.getVideoTracks()[0];
        await call.setCamera(this.cam);
      }
    } catch (err) {
      toast(err instanceof Error ? err.message : String(err));
    }
    this.announce();
    this.render();
  }

  async toggleScreen() {
    const call = this.call;
    if (!call) return;
    if (call.own.screen) {
      await call.stopScreen().catch((e) => toast(String(e)));
    } else {
      try {
        const s = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 10 } }, audio: false });
        const track = s.getVideoTracks()[0];
        track.addEventListener('ended', () => { if (call.screenTrack === track) call.stopScreen().then(() => { this.announce(); this.render(); }); });
        await call.startScreen(track);
      } catch (err) {
        toast(t('call.screenUnavailable', { reason: err instanceof Error ? err.message : String(err) }));
      }
    }
    this.announce();
    this.render();
  }

  /**
   * @param {boolean} tell whether to send session-terminate
   * @param {boolean} [endedForAll] a moderator ended the call: the room hears it from them
   */
  leave(tell, endedForAll = false) {
    clearInterval(this.timer);
    const call = this.call;
    const wasLive = this.live;
    this.live = false;
    this.call = null;
    if (call && tell) call.leave(); else call?.close('success');
    for (const tr of [this.mic, this.cam]) tr?.stop();
    this.mic = null;
    this.cam = null;
    this.people.clear();
    this.tiles.clear();
    this.rows.clear();
    this.pinned = '';
    this.media = new WeakMap();
    if (call) this.announce(false);
    if (call && wasLive && !endedForAll) this.left(call).catch(() => {});
    if (endedForAll) {
      this.inProgress = false;
      this.refresh();
    }
  }

  /** XEP-0482 after leaving: <left/>, and the invite retracted if nobody is left in the call. @param {Call} call */
  async left(call) {
    const invite = this.invite;
    this.tellRoom('left', x('jingle', { xmlns: NS_INVITES, sid: call.sid, jid: await this.focus }));
    // Asked after our session-terminate, which the focus handles first.
    if ((await this.refresh()) === false && invite && this.invite === invite) this.tellRoom('retract', null, t('call.over.body'));
  }

  /** A moderator ends the call for everyone (the focus's XEP-0050 `end-call`), after confirming. */
  async endForEveryone() {
    if (!confirm(t('call.endAll.confirm'))) return;
    const focus = await this.focus;
    const command = (/** @type {Record<string, string>} */ attrs) => this.room.client.iq('set', focus,
      x('command', { xmlns: NS_COMMANDS, node: 'end-call', ...attrs }));
    try {
      // Stage one is the focus's confirmation form; we asked already.
      const form = await command({ action: 'execute' });
      const sessionid = child(form, 'command', NS_COMMANDS)?.getAttribute('sessionid') ?? '';
      await command({ action: 'complete', sessionid });
    } catch (err) {
      toast(err instanceof StanzaError ? err.text || err.condition : String(err));
      return;
    }
    this.tellRoom('retract', null, t('call.endedForAll.body'));
  }

  /** Audio levels from the receivers' stats (and our microphone's), for the active speaker. */
  async levels() {
    const call = this.call;
    if (!call) return;
    const stats = await call.pc.getStats().catch(() => null);
    if (!stats || this.call !== call) return;
    /** @type {Map<string, number>} */
    const byMid = new Map();
    let mine = 0;
    stats.forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio' && r.mid) byMid.set(r.mid, r.audioLevel ?? 0);
      if (r.type === 'media-source' && r.kind === 'audio') mine = r.audioLevel ?? 0;
    });
    let best = '';
    let top = 0.02;
    for (const p of this.people.values()) {
      p.level = p.jid === this.me ? (this.muted ? 0 : mine) : p.audio && !p.muted ? byMid.get(p.audio.mid) ?? 0 : 0;
      if (p.level > top) { top = p.level; best = p.jid; }
    }
    // Keep a speaker at least 1.5 s so the highlight does not flicker between voices.
    const now = Date.now();
    if (best && best !== this.speaker && now - this.speakerSince > 1500) {
      this.speaker = best;
      this.speakerSince = now;
      this.render();
    }
  }

  /** @param {MediaStreamTrack} track @param {boolean} mirror */
  videoFor(track, mirror) {
    let el = this.media.get(track);
    if (!el) {
      el = /** @type {HTMLVideoElement} */ (h('video', { autoplay: true, playsinline: true, muted: true, class: mirror ? 'mirror' : null }));
      el.muted = true;
      el.srcObject = new MediaStream([track]);
      this.media.set(track, el);
    }
    return el;
  }

  render() {
    const call = this.call;
    if (!call || !this.grid || !this.list || !this.listTitle || !this.controls || !this.audios) return;
    const c = this.controls;
    // The label says what a press does ("Unmute microphone"); `data-active` styles the state.
    const label = (/** @type {HTMLElement} */ b, /** @type {string} */ key, /** @type {boolean} */ active) => {
      b.textContent = t(key);
      b.dataset.active = String(active);
    };
    label(c.mic, this.muted ? 'call.mic.on' : 'call.mic.off', this.muted);
    label(c.cam, this.cam ? 'call.cam.off' : 'call.cam.on', !this.cam);
    label(c.screen, call.own.screen ? 'call.screen.stop' : 'call.screen.start', !!call.own.screen);
    label(c.hand, this.hand ? 'call.hand.lower' : 'call.hand.raise', this.hand);
    label(c.view, this.speakerView ? 'call.view.grid' : 'call.view.speaker', this.speakerView);
    c.endAll.hidden = !this.room.isModerator;

    /** @type {HTMLElement[]} */
    const tiles = [];
    /** @type {HTMLElement[]} */
    const screens = [];
    /** @type {HTMLElement[]} */
    const rows = [];
    const audios = [];
    const people = [...this.people.values()].sort((a, b) => (a.jid === this.me ? -1 : b.jid === this.me ? 1 : this.nameOf(a.jid).localeCompare(this.nameOf(b.jid))));
    for (const p of people) {
      const me = p.jid === this.me;
      const cp = this.presenceOf(p.jid);
      const name = this.nameOf(p.jid);
      const muted = me ? this.muted || !this.mic : p.muted || !!cp?.muted;
      const hand = me ? this.hand : !!cp?.hand;
      /** @type {MediaStreamTrack|null} */
      let camera = me ? this.cam : null;
      let cameraMid = me ? call.own.video : '';
      if (!me) {
        // The screen share is the video whose publisher content the presence names; without
        // a presence yet, the first video is the camera.
        const screenMid = cp?.screen ?? '';
        const isScreen = (/** @type {Remote} */ v) => (screenMid ? v.msid.split(' ')[1] === screenMid : p.videos.indexOf(v) > 0);
        for (const v of p.videos) {
          if (!v.track) continue;
          if (isScreen(v)) screens.push(this.tile(p.jid, 'screen', v.mid, t('call.screenOf', { name }), v.track, false, false, false));
          else { camera = v.track; cameraMid = v.mid; }
        }
        if (p.audio?.track) {
          let a = this.media.get(p.audio.track);
          if (!a) {
            a = /** @type {HTMLAudioElement} */ (h('audio', { autoplay: true, 'data-mid': p.audio.mid, 'data-owner': p.jid }));
            a.srcObject = new MediaStream([p.audio.track]);
            this.media.set(p.audio.track, a);
          }
          a.dataset.nick = name;
          audios.push(a);
        }
      } else if (call.screenTrack) {
        screens.push(this.tile(p.jid, 'screen', call.own.screen, t('call.screenOf', { name: t('call.you', { name }) }), call.screenTrack, false, false, false));
      }
      const tile = this.tile(p.jid, 'camera', camera ? cameraMid : '', me ? t('call.you', { name }) : name, camera, muted, hand, me);
      tile.classList.toggle('speaking', this.speaker === p.jid);
      tiles.push(tile);
      rows.push(this.row(p, name, muted, !!camera, hand, me));
    }
    setChildren(this.audios, audios);
    // Speaker view: the pinned tile, else a screen share, else the active speaker large;
    // the others in a strip.
    this.grid.classList.toggle('speaker-view', this.speakerView);
    const all = [...screens, ...tiles];
    const main = this.speakerView
      ? all.find((el) => `${el.dataset.kind}:${el.dataset.owner}` === this.pinned) ?? screens[0]
        ?? tiles.find((el) => el.dataset.owner === this.speaker) ?? tiles[0]
      : undefined;
    for (const el of all) el.classList.toggle('main', el === main);
    setChildren(this.grid, main ? [main, ...all.filter((el) => el !== main)] : all);
    for (const [key, el] of this.tiles) if (!all.includes(el)) this.tiles.delete(key);
    this.listTitle.textContent = t('call.people', { n: people.length });
    setChildren(this.list, rows);
    for (const k of this.rows.keys()) if (!this.people.has(k)) this.rows.delete(k);
    // Simulcast ceilings: thumbnails (speaker view strip, or a grid of more than four) ask
    // for the lowest layer; large tiles and screen shares for the best.
    /** @type {Map<string, number>} */
    const ceilings = new Map();
    for (const el of all) {
      const mid = el.dataset.mid;
      if (!mid || el.dataset.owner === this.me) continue;
      const large = el === main || el.dataset.kind === 'screen' || (!this.speakerView && tiles.length <= 4);
      ceilings.set(mid, large ? 9 : 0);
    }
    call.preferLayers(ceilings);
  }

  /**
   * A tile, kept from one render to the next (keyboard focus stays on it): `data-owner` the
   * publisher's key (occupant or real JID), `data-nick` its nick, `data-kind` camera or screen, `data-mid` the content shown. Enter, Space or a
   * click pins it as the large tile of the speaker view.
   * @param {string} owner @param {string} kind @param {string} mid @param {string} caption
   * @param {MediaStreamTrack|null} track @param {boolean} muted @param {boolean} hand @param {boolean} mirror
   */
  tile(owner, kind, mid, caption, track, muted, hand, mirror) {
    const key = `${kind}:${owner}`;
    let el = this.tiles.get(key);
    if (!el) {
      const fig = h('figure', { class: `tile ${kind}`, 'data-owner': owner, 'data-kind': kind, tabindex: '0', role: 'button' });
      const pin = () => {
        this.pinned = this.pinned === key ? '' : key;
        if (this.pinned) this.speakerView = true;
        this.render();
      };
      fig.addEventListener('click', pin);
      fig.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pin(); }
      });
      this.tiles.set(key, fig);
      el = fig;
    }
    el.dataset.nick = this.nameOf(owner);
    el.setAttribute('aria-pressed', String(this.pinned === key));
    el.setAttribute('aria-label', `${caption}${muted ? `, ${t('call.micMuted')}` : ''}${hand ? `, ${t('call.handRaised')}` : ''}`);
    if (mid) el.dataset.mid = mid; else delete el.dataset.mid;
    const sig = [mid, caption, muted, hand, track ? this.idOf(track) : ''].join('|');
    if (el.dataset.sig !== sig) {
      el.dataset.sig = sig;
      const video = track ? this.videoFor(track, mirror) : h('div', { class: 'avatar', 'aria-hidden': 'true' }, caption.slice(0, 1).toUpperCase());
      el.replaceChildren(video, h('figcaption', { 'aria-hidden': 'true' }, caption, muted ? micOffIcon() : null,
        hand ? h('span', { class: 'hand-flag' }, t('call.handRaised')) : null));
    }
    return el;
  }

  /** A stable identity for a track (remote track ids repeat across publishers). @param {MediaStreamTrack} track */
  idOf(track) {
    let id = this.trackIds.get(track);
    if (!id) {
      this.nextTrackId += 1;
      id = String(this.nextTrackId);
      this.trackIds.set(track, id);
    }
    return id;
  }

  /**
   * @param {Person} p @param {string} name @param {boolean} muted @param {boolean} camera
   * @param {boolean} hand @param {boolean} me
   */
  row(p, name, muted, camera, hand, me) {
    const call = this.call;
    const audio = p.audio;
    const canModerate = !me && this.room.isModerator && !!call && !!audio;
    const sig = [name, muted, camera, hand, this.speaker === p.jid, canModerate, p.muted, audio?.mid, me].join('|');
    const old = this.rows.get(p.jid);
    if (old && old.dataset.sig === sig) return old;
    const moderate = canModerate && call && audio
      ? h('button', { type: 'button', class: 'small', 'data-action': 'call-mute', onclick: async () => {
        try {
          await call.moderate(audio.mid, !p.muted);
          p.muted = !p.muted;
          this.render();
        } catch (err) {
          toast(err instanceof StanzaError ? err.text || err.condition : String(err));
        }
      } }, t(p.muted ? 'call.unmuteOther' : 'call.muteOther'))
      : null;
    const li = h('li', { 'data-jid': p.jid, 'data-nick': name, 'data-muted': String(muted), 'data-camera': String(camera), 'data-hand': String(hand),
      'data-sig': sig, class: this.speaker === p.jid ? 'speaking' : null },
      h('span', { class: 'nick' }, me ? t('call.you', { name }) : name),
      h('span', { class: 'badge' }, t(muted ? 'call.micMuted' : 'call.micOn')),
      h('span', { class: 'badge' }, t(camera ? 'call.camOn' : 'call.camOff')),
      hand ? h('span', { class: 'badge hand' }, t('call.handRaised')) : null,
      this.speaker === p.jid ? h('span', { class: 'badge speaking' }, t('call.speaking')) : null,
      moderate);
    // A rebuilt row keeps the keyboard focus of the one it replaces.
    if (old?.contains(document.activeElement)) queueMicrotask(() => /** @type {HTMLElement|null} */ (li.querySelector('button'))?.focus());
    this.rows.set(p.jid, li);
    return li;
  }
}

/** A crossed-out microphone (drawn: emoji fonts are not everywhere). */
function micOffIcon() {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  for (const d of ['M12 3a3 3 0 0 0-3 3v5a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z', 'M6 11a6 6 0 0 0 12 0M12 17v4M9 21h6', 'M4 4l16 16']) {
    const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  return svg;
}

/** Replace `parent`'s children only when they differ (moving a focused element loses focus). @param {Element} parent @param {Element[]} kids */
function setChildren(parent, kids) {
  const now = Array.from(parent.children);
  if (now.length === kids.length && now.every((el, i) => el === kids[i])) return;
  const focused = document.activeElement;
  parent.replaceChildren(...kids);
  if (focused instanceof HTMLElement && focused !== document.activeElement && focused.isConnected) focused.focus();
}

/** Camera constraints: modest resolution and frame rate keep encoding cheap. @param {string} [deviceId] */
function cameraConstraints(deviceId) {
  return { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15 }, ...(deviceId ? { deviceId: { exact: deviceId } } : {}) };
}
