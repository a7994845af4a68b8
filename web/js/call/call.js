// One participant's Jingle session with the room's focus and its RTCPeerConnection,
// following xep/jingle-conferences.md: session-initiate with what we send, session-accept
// back, content-add/content-remove for the others' streams (answered with content-accept),
// content-add/content-remove for our screen share, content-modify for camera off/on,
// session-info for mute, session-terminate to leave.
//
// Offer/answer runs one negotiation at a time (`serial`): a content-add from the focus that
// arrives while our own content-add waits for its content-accept is applied afterwards.

import { x, child, children, newId, bare } from '../xmpp.js';
import { NSJ, parseSdp, sdpToJingle, contentElement, sectionFromContent, buildSdp, DIRECTION_OF_REMOTE, terminateReason } from './jingle.js';
import { preferCodecs, LAYERS, SIMULCAST, freshSsrc, withSimulcast, scaleLayers } from './media.js';

/** @typedef {import('../xmpp.js').Client} Client */
/** @typedef {import('./jingle.js').MediaSection} MediaSection */
/**
 * A stream the focus forwards to us: `mid` is its content name, `owner` the publisher (the
 * XEP-0298 user entity: occupant JID, or real bare JID where we may see it), `msid`
 * "stream-id publisher's-content-name".
 * @typedef {{ mid: string, owner: string, media: string, msid: string, track: MediaStreamTrack|null }} Remote
 */

const NS_LAYER = 'urn:amphi:jingle:layer:0';

/** The JID of an XEP-0298 entity URI (`xmpp:` + JID, percent-encoded per RFC 5122). @param {string} uri */
function entityJid(uri) {
  const j = uri.replace(/^xmpp:/, '');
  try { return decodeURIComponent(j); } catch { return j; }
}

/** @type {Record<string, string>} */
const REVERSE = { sendrecv: 'sendrecv', sendonly: 'recvonly', recvonly: 'sendonly', inactive: 'inactive' };

/** What both a local direction (reversed) and the focus's stated direction allow. @param {string} local @param {string} remote */
function intersect(local, remote) {
  const a = REVERSE[local] ?? 'inactive';
  const send = a.startsWith('send') && remote.startsWith('send');
  const recv = (a === 'sendrecv' || a === 'recvonly') && (remote === 'sendrecv' || remote === 'recvonly');
  return send && recv ? 'sendrecv' : send ? 'sendonly' : recv ? 'recvonly' : 'inactive';
}

/**
 * Events: `stream` (detail: Remote, a stream added, or its track arrived), `unstream` (detail:
 * mid), `info` (detail: { kind: 'mute'|'unmute'|..., mid, own: boolean }), `ended` (detail:
 * reason condition), `local` (our own publications changed).
 */
export class Call extends EventTarget {
  /**
   * @param {Client} client @param {string} focus the call's JID, room@focus.domain
   * @param {RTCIceServer[]} [iceServers] STUN/TURN from XEP-0215 (the focus itself needs none)
   */
  constructor(client, focus, iceServers = []) {
    super();
    this.client = client;
    this.focus = focus;
    this.sid = newId();
    this.pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require', iceServers });
    /** @type {Map<string, MediaSection>} the focus's side of every m-section, by mid */
    this.remote = new Map();
    /** @type {Map<string, Remote>} streams forwarded to us, by content name */
    this.streams = new Map();
    /** @type {{ audio: string, video: string, screen: string }} our own content names ('' = none) */
    this.own = { audio: '', video: '', screen: '' };
    /** @type {MediaStreamTrack|null} */
    this.screenTrack = null;
    /** The session-level transport of the focus (for contents that omit it). */
    this.transport = /** @type {MediaSection|null} */ (null);
    /** @type {Promise<unknown>} */
    this.chain = Promise.resolve();
    /** @type {Map<string, number>} the simulcast ceiling asked for each received stream */
    this.ceilings = new Map();
    /** The camera's content and its simulcast layers ('' / none: no simulcast). */
    this.simulcastMid = '';
    /** @type {[number, number][]} */
    this.layers = [];
    /** @type {Map<string, (j: Element) => void>} actions awaited outside the chain */
    this.waiters = new Map();
    this.ended = false;
    /** @type {ReturnType<typeof terminateReason>|null} why the focus ended the session, if it did */
    this.terminated = null;
    this.pc.addEventListener('track', (e) => {
      const mid = e.transceiver.mid ?? '';
      const s = this.streams.get(mid);
      if (s) {
        s.track = e.track;
        this.dispatchEvent(new CustomEvent('stream', { detail: s }));
      }
    });
    this.onIq = (/** @type {Element} */ iq) => this.incoming(iq);
    // ICE or DTLS gave up (the SFU unreachable): end the session rather than sit in silence.
    this.pc.addEventListener('connectionstatechange', () => {
      if (this.pc.connectionState === 'failed' && !this.ended) {
        const bye = x('jingle', { xmlns: NSJ.jingle, action: 'session-terminate', sid: this.sid },
          x('reason', { xmlns: NSJ.jingle }, x('connectivity-error', { xmlns: NSJ.jingle })));
        this.close('connectivity-error');
        this.send(bye).catch(() => {});
      }
    });
  }

  /** Run `fn` after every negotiation before it. @template T @param {() => Promise<T>} fn @returns {Promise<T>} */
  serial(fn) {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => {});
    return p;
  }

  /** @param {Element} jingle */
  send(jingle) {
    return this.client.iq('set', this.focus, jingle, 10000);
  }

  /** @param {string} action @param {number} ms @returns {Promise<Element>} */
  waitFor(action, ms = 15000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.waiters.delete(action); reject(new Error(`no ${action} from the focus`)); }, ms);
      this.waiters.set(action, (j) => { clearTimeout(timer); resolve(j); });
    });
  }

  /** Incoming Jingle iq (the client answers it with a result). @param {Element} iq */
  incoming(iq) {
    const j = child(iq, 'jingle', NSJ.jingle);
    if (!j || this.ended || j.getAttribute('sid') !== this.sid || bare(iq.getAttribute('from') ?? '') !== this.focus) return null;
    const action = j.getAttribute('action') ?? '';
    const w = this.waiters.get(action);
    if (w) {
      this.waiters.delete(action);
      w(j);
      return null;
    }
    if (action === 'content-add') this.serial(() => this.onContentAdd(j)).catch((e) => this.fail(e));
    else if (action === 'content-remove') this.serial(() => this.onContentRemove(j)).catch((e) => this.fail(e));
    else if (action === 'session-info') this.onSessionInfo(j);
    else if (action === 'session-terminate') {
      this.terminated = terminateReason(j);
      this.close(this.terminated.condition);
    }
    return null;
  }

  /** @param {unknown} e */
  fail(e) {
    console.warn('call:', e);
  }

  /**
   * Join: one sending audio content and one video content (sending the camera, or receive
   * only for audio-only so the others' video can still be added).
   * @param {MediaStreamTrack|null} audio @param {MediaStreamTrack|null} video
   */
  join(audio, video) {
    this.client.handlers.set(NSJ.jingle, this.onIq);
    return this.serial(async () => {
      const stream = new MediaStream([audio, video].filter((t) => t != null));
      const a = this.pc.addTransceiver(audio ?? 'audio', { direction: audio ? 'sendrecv' : 'recvonly', streams: [stream] });
      const v = this.pc.addTransceiver(video ?? 'video', { direction: video ? 'sendrecv' : 'recvonly', streams: [stream] });
      preferCodecs(a, 'audio');
      preferCodecs(v, 'video');
      const offer = await this.pc.createOffer();
      // The browser names the m-sections (mids) only now: the camera's is the video one.
      this.simulcastMid = video && SIMULCAST ? parseSdp(offer.sdp ?? '').find((x) => x.media === 'video')?.mid ?? '' : '';
      await this.setLocal(offer);
      if (this.simulcastMid) await scaleLayers(v.sender);
      const sdp = this.pc.localDescription?.sdp ?? '';
      this.own.audio = a.mid ?? '';
      this.own.video = video ? v.mid ?? '' : '';
      const accepted = this.waitFor('session-accept');
      accepted.catch(() => {});
      try {
        await this.send(sdpToJingle(sdp, 'session-initiate', this.sid, this.client.jid));
      } catch (e) {
        this.waiters.delete('session-accept');
        throw e;
      }
      const j = await accepted;
      this.takeRemote(j);
      await this.pc.setRemoteDescription({ type: 'answer', sdp: this.remoteSdp(parseSdp(sdp)) });
      this.dispatchEvent(new Event('local'));
    });
  }

  /**
   * setLocalDescription with the camera's simulcast layers, the same SSRCs every time (made
   * from the browser's own SSRC and RTX as the lowest layer). A browser that refuses the
   * layers gets its own description back and sends one layer.
   * @param {RTCSessionDescriptionInit} desc
   */
  async setLocal(desc) {
    const mid = this.simulcastMid;
    if (mid && desc.sdp) {
      if (!this.layers.length) {
        const s = parseSdp(desc.sdp).find((x) => x.mid === mid);
        const fid = s?.ssrcGroups.find(([sem]) => sem === 'FID')?.[1];
        if (s && fid?.length === 2) {
          const used = new Set(parseSdp(desc.sdp).flatMap((x) => [...x.ssrcs.keys()]));
          this.layers = [[fid[0], fid[1]]];
          while (this.layers.length < LAYERS) this.layers.push([freshSsrc(used), freshSsrc(used)]);
        }
      }
      const munged = this.layers.length ? withSimulcast(desc.sdp, mid, this.layers) : desc.sdp;
      if (munged !== desc.sdp) {
        try {
          await this.pc.setLocalDescription({ type: desc.type, sdp: munged });
          return;
        } catch (e) {
          console.warn('call: no simulcast', e);
          this.simulcastMid = '';
        }
      }
    }
    await this.pc.setLocalDescription(desc);
  }

  /** Remember the focus's answer for our own contents. @param {Element} j */
  takeRemote(j) {
    const local = new Map(parseSdp(this.pc.localDescription?.sdp ?? '').map((s) => [s.mid, s]));
    for (const c of children(j, 'content', NSJ.jingle)) {
      const s = this.withTransport(sectionFromContent(c));
      const mine = local.get(s.mid);
      s.direction = intersect(mine?.direction ?? 'sendrecv', DIRECTION_OF_REMOTE[c.getAttribute('senders') ?? 'both'] ?? 'inactive');
      // The focus sends nothing on our contents: sources it might echo are ours, not its.
      s.ssrcs.clear();
      s.ssrcGroups = [];
      s.msid = '';
      this.remote.set(s.mid, s);
    }
  }

  /** Fill a section's transport from the focus's session transport when a content omits it. @param {MediaSection} s */
  withTransport(s) {
    if (s.ufrag) {
      this.transport ??= s;
      return s;
    }
    const t = this.transport;
    if (t) Object.assign(s, { ufrag: t.ufrag, pwd: t.pwd, fingerprint: t.fingerprint, setup: t.setup, candidates: t.candidates });
    return s;
  }

  /** The focus's side for the m-sections `order`, in that order. @param {MediaSection[]} order */
  remoteSdp(order) {
    return buildSdp(order.map((l) => {
      const r = this.remote.get(l.mid);
      if (!r) throw new Error(`the focus did not describe content ${l.mid}`);
      return l.port === 0 ? { ...r, port: 0 } : r;
    }));
  }

  /** Others' streams: apply the focus's offer (our m-lines, then the new ones) and accept. @param {Element} j */
  async onContentAdd(j) {
    const owner = entityJid(children(j, 'conference-info', NSJ.coin)
      .flatMap((ci) => Array.from(ci.getElementsByTagNameNS(NSJ.coin, 'user')))[0]?.getAttribute('entity') ?? '');
    const current = parseSdp(this.pc.localDescription?.sdp ?? '');
    /** @type {MediaSection[]} */
    const added = [];
    for (const c of children(j, 'content', NSJ.jingle)) {
      const s = this.withTransport(sectionFromContent(c));
      s.direction = DIRECTION_OF_REMOTE[c.getAttribute('senders') ?? 'responder'] ?? 'sendonly';
      this.remote.set(s.mid, s);
      added.push(s);
      this.streams.set(s.mid, { mid: s.mid, owner, media: s.media, msid: s.msid, track: null });
    }
    await this.pc.setRemoteDescription({ type: 'offer', sdp: this.remoteSdp([...current, ...added]) });
    await this.setLocal(await this.pc.createAnswer());
    const names = new Set(added.map((s) => s.mid));
    const accept = x('jingle', { xmlns: NSJ.jingle, action: 'content-accept', sid: this.sid },
      ...parseSdp(this.pc.localDescription?.sdp ?? '').filter((s) => names.has(s.mid)).map((s) => contentElement(s, 'responder', 'responder', false)));
    await this.send(accept);
    for (const s of added) {
      const st = this.streams.get(s.mid);
      const tr = this.pc.getTransceivers().find((t) => t.mid === s.mid);
      if (st && tr) st.track = tr.receiver.track;
      if (st) this.dispatchEvent(new CustomEvent('stream', { detail: st }));
    }
  }

  /**
   * Streams that ended: gone from the grid at once; the m-sections become inactive (no
   * sources) in a renegotiation of our own, so a later stream may reuse their SSRCs.
   * @param {Element} j
   */
  async onContentRemove(j) {
    for (const c of children(j, 'content', NSJ.jingle)) {
      const name = c.getAttribute('name') ?? '';
      const r = this.remote.get(name);
      if (r && this.streams.has(name)) {
        Object.assign(r, { direction: 'inactive', ssrcs: new Map(), ssrcGroups: [], msid: '' });
        this.streams.delete(name);
        this.dispatchEvent(new CustomEvent('unstream', { detail: name }));
      }
    }
    if (this.pc.signalingState !== 'stable' || !this.pc.localDescription) return;
    await this.pc.setRemoteDescription({ type: 'offer', sdp: this.remoteSdp(parseSdp(this.pc.localDescription.sdp)) });
    await this.setLocal(await this.pc.createAnswer());
  }

  /** XEP-0167 session-info: mute/unmute (relayed, or a moderator's on our own content). @param {Element} j */
  onSessionInfo(j) {
    for (const el of Array.from(j.children)) {
      if (el.namespaceURI !== NSJ.info) continue;
      const mid = el.getAttribute('name') ?? '';
      const own = mid !== '' && Object.values(this.own).includes(mid);
      this.dispatchEvent(new CustomEvent('info', { detail: { kind: el.localName, mid, own } }));
    }
  }

  /** XEP-0167 mute/unmute of one of our contents, told to the focus. @param {string} mid @param {boolean} muted */
  async tellMute(mid, muted) {
    if (!mid) return;
    await this.send(x('jingle', { xmlns: NSJ.jingle, action: 'session-info', sid: this.sid },
      x(muted ? 'mute' : 'unmute', { xmlns: NSJ.info, creator: 'initiator', name: mid })));
  }

  /**
   * The highest simulcast layer wanted for received streams (0 = lowest): amphi's
   * session-info `<layer xmlns="urn:amphi:jingle:layer:0" name max/>`, sent for changes only.
   * @param {Map<string, number>} ceilings content name → layer
   */
  preferLayers(ceilings) {
    const changed = [...ceilings].filter(([mid, max]) => this.ceilings.get(mid) !== max && this.streams.has(mid));
    if (!changed.length || this.ended) return;
    for (const [mid, max] of changed) this.ceilings.set(mid, max);
    this.send(x('jingle', { xmlns: NSJ.jingle, action: 'session-info', sid: this.sid },
      ...changed.map(([name, max]) => x('layer', { xmlns: NS_LAYER, name, max })))).catch((e) => this.fail(e));
  }

  /**
   * Moderator mute: `<mute/>` naming a stream we receive (its p…r… name); the focus stops
   * forwarding it to everyone. Rejects with `forbidden` for non-moderators.
   * @param {string} mid @param {boolean} muted
   */
  async moderate(mid, muted) {
    await this.send(x('jingle', { xmlns: NSJ.jingle, action: 'session-info', sid: this.sid },
      x(muted ? 'mute' : 'unmute', { xmlns: NSJ.info, creator: 'responder', name: mid })));
  }

  /**
   * Camera off/on: content-modify senders none/initiator; the track is dropped (camera light
   * off) and a new one given to the same sender (same SSRC) when it comes back. An audio-only
   * participant's first camera is a new content (content-add), like a screen share.
   * @param {MediaStreamTrack|null} track
   */
  setCamera(track) {
    return this.serial(async () => {
      if (!this.own.video) {
        if (!track) return;
        this.own.video = await this.addOwn(track);
        this.dispatchEvent(new Event('local'));
        return;
      }
      const sender = this.pc.getTransceivers().find((t) => t.mid === this.own.video)?.sender;
      const old = sender?.track;
      await sender?.replaceTrack(track);
      old?.stop();
      await this.send(x('jingle', { xmlns: NSJ.jingle, action: 'content-modify', sid: this.sid },
        x('content', { xmlns: NSJ.jingle, creator: 'initiator', name: this.own.video, senders: track ? 'initiator' : 'none' })));
    });
  }

  /** A new sending content (screen share, late camera): content-add, answered by content-accept. @param {MediaStreamTrack} track */
  async addOwn(track) {
    const known = new Set(parseSdp(this.pc.localDescription?.sdp ?? '').map((s) => s.mid));
    const tr = this.pc.addTransceiver(track, { direction: 'sendonly', streams: [new MediaStream([track])] });
    preferCodecs(tr, 'video');
    await this.setLocal(await this.pc.createOffer());
    const sections = parseSdp(this.pc.localDescription?.sdp ?? '');
    const added = sections.filter((s) => !known.has(s.mid) || s.mid === tr.mid);
    const accepted = this.waitFor('content-accept');
    accepted.catch(() => {});
    try {
      await this.send(x('jingle', { xmlns: NSJ.jingle, action: 'content-add', sid: this.sid },
        ...added.map((s) => contentElement(s, 'initiator', 'initiator'))));
    } catch (e) {
      this.waiters.delete('content-accept');
      await this.pc.setLocalDescription({ type: 'rollback' });
      tr.stop();
      throw e;
    }
    this.takeRemote(await accepted);
    await this.pc.setRemoteDescription({ type: 'answer', sdp: this.remoteSdp(sections) });
    return tr.mid ?? '';
  }

  /** Start a screen share as its own content. @param {MediaStreamTrack} track */
  startScreen(track) {
    return this.serial(async () => {
      this.screenTrack = track;
      this.own.screen = await this.addOwn(track);
      this.dispatchEvent(new Event('local'));
    });
  }

  /** Stop the screen share: content-remove, and its m-line is closed (port 0). */
  stopScreen() {
    return this.serial(async () => {
      const mid = this.own.screen;
      if (!mid) return;
      this.own.screen = '';
      this.screenTrack?.stop();
      this.screenTrack = null;
      this.pc.getTransceivers().find((t) => t.mid === mid)?.stop();
      this.dispatchEvent(new Event('local'));
      await this.send(x('jingle', { xmlns: NSJ.jingle, action: 'content-remove', sid: this.sid },
        x('content', { xmlns: NSJ.jingle, creator: 'initiator', name: mid })));
    });
  }

  /** Leave: session-terminate, then close everything. */
  async leave() {
    if (this.ended) return;
    const bye = x('jingle', { xmlns: NSJ.jingle, action: 'session-terminate', sid: this.sid },
      x('reason', { xmlns: NSJ.jingle }, x('success', { xmlns: NSJ.jingle })));
    this.close('success');
    await this.send(bye).catch(() => {});
  }

  /** @param {string} reason */
  close(reason) {
    if (this.ended) return;
    this.ended = true;
    if (this.client.handlers.get(NSJ.jingle) === this.onIq) this.client.handlers.delete(NSJ.jingle);
    for (const s of this.pc.getSenders()) s.track?.stop();
    this.pc.close();
    this.dispatchEvent(new CustomEvent('ended', { detail: reason }));
  }
}
