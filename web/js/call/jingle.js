// Jingle (XEP-0166/0167/0176/0320/0293/0294/0338/0339) ⇄ SDP for the browser's
// RTCPeerConnection. A port of the reference mapping tests/media/jingle_sdp.py (the one the
// aiortc peers use against the focus), following xep/jingle-conferences.md.

import { x, child, children } from '../xmpp.js';

export const NSJ = {
  jingle: 'urn:xmpp:jingle:1',
  rtp: 'urn:xmpp:jingle:apps:rtp:1',
  info: 'urn:xmpp:jingle:apps:rtp:info:1',
  ice: 'urn:xmpp:jingle:transports:ice-udp:1',
  dtls: 'urn:xmpp:jingle:apps:dtls:0',
  fb: 'urn:xmpp:jingle:apps:rtp:rtcp-fb:0',
  hdrext: 'urn:xmpp:jingle:apps:rtp:rtp-hdrext:0',
  group: 'urn:xmpp:jingle:apps:grouping:0',
  ssma: 'urn:xmpp:jingle:apps:rtp:ssma:0',
  coin: 'urn:xmpp:coin:1',
};

/**
 * @typedef {{ id: number, name: string, clockrate: number, channels: number,
 *   params: [string, string][], fbs: [string, string|null][] }} PayloadType
 */
/**
 * One SDP m-section: the parts a Jingle content carries.
 * @typedef {{ mid: string, media: string, direction: string, payloadTypes: PayloadType[],
 *   extmaps: [number, string][], ssrcs: Map<number, Record<string, string>>,
 *   ssrcGroups: [string, number[]][], ufrag: string, pwd: string, fingerprint: [string, string],
 *   setup: string, candidates: string[], port: number, msid: string }} MediaSection
 */

/** @param {string} mid @param {string} media @returns {MediaSection} */
export function emptySection(mid, media) {
  return { mid, media, direction: 'sendrecv', payloadTypes: [], extmaps: [], ssrcs: new Map(), ssrcGroups: [],
    ufrag: '', pwd: '', fingerprint: ['', ''], setup: 'actpass', candidates: [], port: 9, msid: '' };
}

/** The m-sections of an SDP, in order. @param {string} sdp @returns {MediaSection[]} */
export function parseSdp(sdp) {
  /** @type {MediaSection[]} */
  const sections = [];
  /** @type {Record<string, string>} */
  const session = {};
  /** @type {MediaSection|null} */
  let cur = null;
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) {
      const [media, port, , ...pts] = line.slice(2).split(' ');
      cur = emptySection('', media);
      cur.port = Number(port);
      cur.payloadTypes = pts.map((p) => ({ id: Number(p), name: '', clockrate: 0, channels: 1, params: [], fbs: [] }));
      sections.push(cur);
      continue;
    }
    if (!line.startsWith('a=')) continue;
    const colon = line.indexOf(':');
    const key = colon < 0 ? line.slice(2) : line.slice(2, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1);
    if (!cur) {
      session[key] = value;
      continue;
    }
    const s = cur;
    const pt = (/** @type {string} */ i) => s.payloadTypes.find((p) => p.id === Number(i));
    const sp = value.indexOf(' ');
    const head = sp < 0 ? value : value.slice(0, sp);
    const rest = sp < 0 ? '' : value.slice(sp + 1);
    switch (key) {
      case 'mid': s.mid = value; break;
      case 'sendrecv': case 'sendonly': case 'recvonly': case 'inactive': s.direction = key; break;
      case 'rtpmap': {
        const p = pt(head);
        const parts = rest.split('/');
        if (p) {
          p.name = parts[0];
          p.clockrate = Number(parts[1]);
          p.channels = parts.length > 2 ? Number(parts[2]) : 1;
        }
        break;
      }
      case 'fmtp': {
        const p = pt(head);
        if (p) {
          for (const kv of rest.split(';')) {
            const eq = kv.indexOf('=');
            p.params.push(eq < 0 ? [kv.trim(), ''] : [kv.slice(0, eq).trim(), kv.slice(eq + 1).trim()]);
          }
        }
        break;
      }
      case 'rtcp-fb': {
        const [kind, ...sub] = rest.split(' ');
        const targets = head === '*' ? s.payloadTypes : [pt(head)];
        for (const p of targets) if (p) p.fbs.push([kind, sub.join(' ') || null]);
        break;
      }
      case 'extmap': s.extmaps.push([Number(head.split('/')[0]), rest.split(' ')[0]]); break;
      case 'ssrc': {
        const c = rest.indexOf(':');
        const ssrc = Number(head);
        const attrs = s.ssrcs.get(ssrc) ?? {};
        attrs[c < 0 ? rest : rest.slice(0, c)] = c < 0 ? '' : rest.slice(c + 1);
        s.ssrcs.set(ssrc, attrs);
        break;
      }
      case 'ssrc-group': {
        const [sem, ...ids] = value.split(' ');
        s.ssrcGroups.push([sem, ids.map(Number)]);
        break;
      }
      case 'msid': s.msid = value; break;
      case 'ice-ufrag': s.ufrag = value; break;
      case 'ice-pwd': s.pwd = value; break;
      case 'fingerprint': if (!s.fingerprint[0] || head === 'sha-256') s.fingerprint = [head, rest]; break;
      case 'setup': s.setup = value; break;
      case 'candidate': s.candidates.push(value); break;
      default: break;
    }
  }
  for (const s of sections) {
    s.ufrag ||= session['ice-ufrag'] ?? '';
    s.pwd ||= session['ice-pwd'] ?? '';
    if (!s.fingerprint[0] && session.fingerprint) {
      const i = session.fingerprint.indexOf(' ');
      s.fingerprint = [session.fingerprint.slice(0, i), session.fingerprint.slice(i + 1)];
    }
    // Chrome may put the stream/track ids only on the a=msid line: the focus wants them
    // on each <source/> (XEP-0339 msid parameter).
    if (s.msid) for (const attrs of s.ssrcs.values()) attrs.msid ??= s.msid;
  }
  return sections;
}

/** @type {Record<string, string>} SDP direction (of the offerer, us) → Jingle senders */
export const SENDERS_OF_DIRECTION = { sendrecv: 'both', sendonly: 'initiator', recvonly: 'responder', inactive: 'none' };
/** @type {Record<string, string>} Jingle senders → the SDP direction of the focus's side */
export const DIRECTION_OF_REMOTE = { initiator: 'recvonly', responder: 'sendonly', both: 'sendrecv', none: 'inactive' };

/**
 * A <content/> for an m-section of ours.
 * @param {MediaSection} s @param {string} creator @param {string} senders @param {boolean} [withTransport]
 */
export function contentElement(s, creator, senders, withTransport = true) {
  const d = x('description', { xmlns: NSJ.rtp, media: s.media });
  for (const p of s.payloadTypes) {
    if (!p.name) continue;
    const pe = x('payload-type', { xmlns: NSJ.rtp, id: p.id, name: p.name, clockrate: p.clockrate, channels: p.channels > 1 ? p.channels : null });
    for (const [k, v] of p.params) pe.append(x('parameter', { xmlns: NSJ.rtp, name: k, value: v }));
    for (const [kind, sub] of p.fbs) pe.append(x('rtcp-fb', { xmlns: NSJ.fb, type: kind, subtype: sub }));
    d.append(pe);
  }
  for (const [i, uri] of s.extmaps) d.append(x('rtp-hdrext', { xmlns: NSJ.hdrext, id: i, uri }));
  for (const [ssrc, attrs] of s.ssrcs) {
    d.append(x('source', { xmlns: NSJ.ssma, ssrc }, ...Object.entries(attrs).map(([k, v]) => x('parameter', { xmlns: NSJ.ssma, name: k, value: v }))));
  }
  for (const [sem, ids] of s.ssrcGroups) {
    d.append(x('ssrc-group', { xmlns: NSJ.ssma, semantics: sem }, ...ids.map((i) => x('source', { xmlns: NSJ.ssma, ssrc: i }))));
  }
  d.append(x('rtcp-mux', { xmlns: NSJ.rtp }));
  const c = x('content', { xmlns: NSJ.jingle, creator, name: s.mid, senders }, d);
  if (withTransport) {
    c.append(x('transport', { xmlns: NSJ.ice, ufrag: s.ufrag, pwd: s.pwd },
      x('fingerprint', { xmlns: NSJ.dtls, hash: s.fingerprint[0], setup: s.setup }, s.fingerprint[1]),
      ...s.candidates.map(candidateElement)));
  }
  return c;
}

/**
 * An SDP candidate line's value as XEP-0176 <candidate/>; a TCP candidate's RFC 6544 role
 * travels as a `tcptype` attribute (XEP-0176 has none; Jitsi's Jingle does the same).
 * @param {string} line @param {number} i
 */
export function candidateElement(line, i) {
  const f = line.split(' ');
  const at = (/** @type {string} */ k) => (f.indexOf(k) >= 0 ? f[f.indexOf(k) + 1] : null);
  return x('candidate', { xmlns: NSJ.ice, foundation: f[0], component: f[1], protocol: f[2].toLowerCase(), priority: f[3],
    ip: f[4], port: f[5], type: f[7], generation: '0', id: `c${i}`, 'rel-addr': at('raddr'), 'rel-port': at('rport'),
    tcptype: at('tcptype') });
}

/**
 * A <jingle/> with one content per m-section of `sdp` and a BUNDLE group.
 * @param {string} sdp @param {string} action @param {string} sid @param {string} [initiator]
 */
export function sdpToJingle(sdp, action, sid, initiator) {
  const sections = parseSdp(sdp);
  return x('jingle', { xmlns: NSJ.jingle, action, sid, initiator },
    ...sections.map((s) => contentElement(s, 'initiator', SENDERS_OF_DIRECTION[s.direction])),
    x('group', { xmlns: NSJ.group, semantics: 'BUNDLE' }, ...sections.map((s) => x('content', { xmlns: NSJ.group, name: s.mid }))));
}

/** The m-section the focus describes in a Jingle content. @param {Element} c */
export function sectionFromContent(c) {
  const d = child(c, 'description', NSJ.rtp);
  const s = emptySection(c.getAttribute('name') ?? '', d?.getAttribute('media') ?? 'audio');
  if (d) {
    for (const pe of children(d, 'payload-type', NSJ.rtp)) {
      s.payloadTypes.push({
        id: Number(pe.getAttribute('id')), name: pe.getAttribute('name') ?? '',
        clockrate: Number(pe.getAttribute('clockrate') ?? 0), channels: Number(pe.getAttribute('channels') ?? 1),
        params: children(pe, 'parameter', NSJ.rtp).map((p) => [p.getAttribute('name') ?? '', p.getAttribute('value') ?? '']),
        fbs: children(pe, 'rtcp-fb', NSJ.fb).map((f) => [f.getAttribute('type') ?? '', f.getAttribute('subtype')]),
      });
    }
    s.extmaps = children(d, 'rtp-hdrext', NSJ.hdrext).map((e) => [Number(e.getAttribute('id')), e.getAttribute('uri') ?? '']);
    for (const se of children(d, 'source', NSJ.ssma)) {
      /** @type {Record<string, string>} */
      const attrs = {};
      for (const p of children(se, 'parameter', NSJ.ssma)) attrs[p.getAttribute('name') ?? ''] = p.getAttribute('value') ?? '';
      s.ssrcs.set(Number(se.getAttribute('ssrc')), attrs);
      if (attrs.msid && !s.msid) s.msid = attrs.msid;
    }
    for (const g of children(d, 'ssrc-group', NSJ.ssma)) {
      s.ssrcGroups.push([g.getAttribute('semantics') ?? '', children(g, 'source', NSJ.ssma).map((e) => Number(e.getAttribute('ssrc')))]);
    }
  }
  const tr = child(c, 'transport', NSJ.ice);
  if (tr) {
    s.ufrag = tr.getAttribute('ufrag') ?? '';
    s.pwd = tr.getAttribute('pwd') ?? '';
    const fp = child(tr, 'fingerprint', NSJ.dtls);
    if (fp) {
      s.fingerprint = [fp.getAttribute('hash') ?? 'sha-256', (fp.textContent ?? '').trim()];
      s.setup = fp.getAttribute('setup') ?? 'actpass';
    }
    for (const ce of children(tr, 'candidate', NSJ.ice)) {
      const a = (/** @type {string} */ k) => ce.getAttribute(k) ?? '';
      // The focus's ICE-TCP candidate is `tcptype passive` (RFC 6544): the browser connects to it.
      const tcp = a('protocol').toLowerCase() === 'tcp' && a('tcptype') ? ` tcptype ${a('tcptype')}` : '';
      s.candidates.push(`${a('foundation')} ${a('component')} ${a('protocol')} ${a('priority')} ${a('ip')} ${a('port')} typ ${a('type')}${tcp}`);
    }
  }
  return s;
}

/**
 * The focus's side as an SDP for setRemoteDescription: every section BUNDLEd, in order,
 * with a=ice-lite (the focus is ICE-lite, xep/jingle-conferences.md step 3).
 * @param {MediaSection[]} sections
 */
export function buildSdp(sections) {
  const lines = ['v=0', 'o=- 1 1 IN IP4 0.0.0.0', 's=-', 't=0 0'];
  lines.push(`a=group:BUNDLE ${sections.filter((s) => s.port !== 0).map((s) => s.mid).join(' ')}`);
  lines.push('a=ice-lite', 'a=msid-semantic:WMS *');
  for (const s of sections) {
    const pts = s.payloadTypes.filter((p) => p.name);
    lines.push(`m=${s.media} ${s.port} UDP/TLS/RTP/SAVPF ${pts.map((p) => p.id).join(' ')}`);
    lines.push('c=IN IP4 0.0.0.0', `a=mid:${s.mid}`, `a=${s.direction}`, `a=ice-ufrag:${s.ufrag}`, `a=ice-pwd:${s.pwd}`,
      `a=fingerprint:${s.fingerprint[0]} ${s.fingerprint[1]}`, `a=setup:${s.setup}`, 'a=rtcp-mux');
    for (const p of pts) {
      lines.push(`a=rtpmap:${p.id} ${p.name}/${p.clockrate}${p.channels > 1 ? `/${p.channels}` : ''}`);
      if (p.params.length) lines.push(`a=fmtp:${p.id} ${p.params.map(([k, v]) => (v === '' ? k : `${k}=${v}`)).join(';')}`);
      for (const [kind, sub] of p.fbs) lines.push(`a=rtcp-fb:${p.id} ${kind}${sub ? ` ${sub}` : ''}`);
    }
    for (const [i, uri] of s.extmaps) lines.push(`a=extmap:${i} ${uri}`);
    if (s.msid && s.ssrcs.size && (s.direction === 'sendonly' || s.direction === 'sendrecv')) lines.push(`a=msid:${s.msid}`);
    for (const [sem, ids] of s.ssrcGroups) lines.push(`a=ssrc-group:${sem} ${ids.join(' ')}`);
    for (const [ssrc, attrs] of s.ssrcs) for (const [k, v] of Object.entries(attrs)) lines.push(`a=ssrc:${ssrc} ${k}:${v}`);
    for (const cand of s.candidates) lines.push(`a=candidate:${cand}`);
    lines.push('a=end-of-candidates');
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** amphi's call namespace: call state in presence, and who ended a call for everyone. */
export const NS_CALL = 'urn:amphi:call:0';
/** XEP-0050 ad-hoc commands: the focus's `end-call` (xep/jingle-conferences.md). */
export const NS_COMMANDS = 'http://jabber.org/protocol/commands';
/** XEP-0482 call invites. */
export const NS_INVITES = 'urn:xmpp:call-invites:0';

/**
 * Why a session-terminate ended our session: the XEP-0166 condition, the focus's text, and
 * `endedBy`, the occupant JID of the moderator who ended the call for everyone ('' if none).
 * @param {Element} j the <jingle/> @returns {{ condition: string, text: string, endedBy: string }}
 */
export function terminateReason(j) {
  const r = child(j, 'reason', NSJ.jingle);
  const cond = r ? Array.from(r.children).find((e) => e.namespaceURI === NSJ.jingle && e.localName !== 'text') : null;
  return {
    condition: cond?.localName ?? 'gone',
    text: (r && child(r, 'text', NSJ.jingle)?.textContent) ?? '',
    endedBy: (r && child(r, 'ended-by-moderator', NS_CALL)?.getAttribute('by')) ?? '',
  };
}

/**
 * A XEP-0482 invite to the room's call: join it with Jingle at the focus (the `jid` is the
 * call's JID, a client sends its own session-initiate there; `sid` is the inviter's
 * session), or open the web client at `uri`.
 * @param {string} focus @param {string} sid @param {boolean} video @param {string} uri
 */
export function inviteElement(focus, sid, video, uri) {
  return x('invite', { xmlns: NS_INVITES, audio: 'true', video: video ? 'true' : 'false' },
    x('jingle', { xmlns: NS_INVITES, sid, jid: focus }), x('external', { xmlns: NS_INVITES, uri }));
}

/**
 * What a room's groupchat message says about its call (XEP-0482): an invite (its id is
 * the room's XEP-0359 stanza-id, §"Using the correct ID"), or an accept, reject, left or
 * retract naming one; null otherwise.
 * @param {Element} m @param {string} room the room's bare JID
 * @returns {{ kind: string, id: string, jid: string }|null}
 */
export function readCallInvite(m, room) {
  const el = Array.from(m.children).find((c) => c.namespaceURI === NS_INVITES);
  if (!el) return null;
  if (el.localName === 'invite') {
    const sid = children(m, 'stanza-id', 'urn:xmpp:sid:0').find((e) => e.getAttribute('by') === room);
    return { kind: 'invite', id: sid?.getAttribute('id') ?? '', jid: child(el, 'jingle', NS_INVITES)?.getAttribute('jid') ?? '' };
  }
  return { kind: el.localName, id: el.getAttribute('id') ?? '', jid: '' };
}
