// What the browser sends and with whom it talks, apart from Jingle: STUN/TURN from XEP-0215,
// the codecs offered (those the SFU forwards), and SSRC simulcast written into Chrome's SDP.

import { x, child, children } from '../xmpp.js';

/** @typedef {import('../xmpp.js').Client} Client */

const EXTDISCO = 'urn:xmpp:extdisco:2';

/**
 * STUN/TURN servers the server announces (XEP-0215), as RTCIceServers; none when it
 * announces nothing or refuses (a guest). TURN relays clients whose network blocks UDP to
 * the SFU; the focus is ICE-lite on a public address and needs none itself.
 * @param {Client} client @param {string} domain @returns {Promise<RTCIceServer[]>}
 */
export async function iceServers(client, domain) {
  try {
    const res = await client.iq('get', domain, x('services', { xmlns: EXTDISCO }), 3000);
    const list = child(res, 'services', EXTDISCO);
    return (list ? children(list, 'service', EXTDISCO) : []).flatMap((sv) => {
      const type = sv.getAttribute('type') ?? '';
      if (!['stun', 'turn', 'turns'].includes(type)) return [];
      const host = sv.getAttribute('host') ?? '';
      const port = sv.getAttribute('port');
      const transport = sv.getAttribute('transport');
      const url = `${type}:${host.includes(':') ? `[${host}]` : host}${port ? `:${port}` : ''}${type !== 'stun' && transport ? `?transport=${transport}` : ''}`;
      const username = sv.getAttribute('username');
      const credential = sv.getAttribute('password');
      return [type === 'stun' ? { urls: url } : { urls: url, username: username ?? undefined, credential: credential ?? undefined }];
    });
  } catch {
    return [];
  }
}

/** What the SFU forwards (xep/jingle-conferences.md step 2), in our order of preference. */
const WANTED = { audio: ['audio/opus'], video: ['video/VP8', 'video/VP9', 'video/H264', 'video/AV1'] };

/**
 * Offer only the codecs the SFU forwards, with their RTX: Chrome's full list (over 32
 * payload types for a receive-only video content) is longer than the focus accepts, and
 * each extra H.264 profile or VP9 profile 2 would be dead weight in every Jingle content.
 * @param {RTCRtpTransceiver} tr @param {'audio'|'video'} kind
 */
export function preferCodecs(tr, kind) {
  const caps = RTCRtpReceiver.getCapabilities(kind)?.codecs ?? [];
  const rank = (/** @type {RTCRtpCodec} */ c) => WANTED[kind].findIndex((w) => w.toLowerCase() === c.mimeType.toLowerCase());
  const keep = caps.filter((c) => {
    const f = c.sdpFmtpLine ?? '';
    if (c.mimeType.toLowerCase() === 'video/rtx') return true;
    if (rank(c) < 0) return false;
    if (c.mimeType === 'video/VP9') return !/profile-id=[1-9]/.test(f);
    if (c.mimeType === 'video/H264') return /packetization-mode=1/.test(f) && /profile-level-id=42(e0|00)1f/.test(f);
    return true;
  });
  keep.sort((a, b) => (rank(a) < 0 ? 99 : rank(a)) - (rank(b) < 0 ? 99 : rank(b)));
  try {
    if (keep.some((c) => rank(c) >= 0)) tr.setCodecPreferences(keep);
  } catch { /* the browser's defaults */ }
}

/**
 * The camera's SSRC-based simulcast (XEP-0339 `SIM` group, lowest layer first, each layer's
 * RTX in its FID group: what the SFU reads, xep/jingle-conferences.md "Simulcast") written
 * into Chrome's SDP. rid-based simulcast has no Jingle mapping. Two layers (full and half
 * resolution) suit the 640×360 camera; a layer the browser does not send is never chosen.
 *
 * On unless `localStorage['amphi.simulcast'] = '0'`. The SFU forwards nothing of a layer
 * before its keyframe and repeats its keyframe request until one arrives (Chrome ignores
 * requests that follow its last one within 300 ms), so a new receiver is never left waiting.
 */
export const LAYERS = 2;
export const SIMULCAST = (() => {
  try { return localStorage.getItem('amphi.simulcast') !== '0'; } catch { return true; }
})();

/** Lowest layer at half resolution, the top one at full. @param {RTCRtpSender} sender */
export async function scaleLayers(sender) {
  try {
    const params = sender.getParameters();
    if (params.encodings.length !== LAYERS) return;
    params.encodings.forEach((e, i) => { e.scaleResolutionDownBy = 2 ** (LAYERS - 1 - i); });
    await sender.setParameters(params);
  } catch { /* the browser's own scaling */ }
}

/** @param {Set<number>} used */
export function freshSsrc(used) {
  const a = new Uint32Array(1);
  do crypto.getRandomValues(a); while (a[0] === 0 || used.has(a[0]));
  used.add(a[0]);
  return a[0];
}

/**
 * `sdp` with the m-section `mid` sending `layers` (one [ssrc, rtx] pair each, low to high).
 * Unchanged when the section already has a SIM group or no FID group to start from.
 * @param {string} sdp @param {string} mid @param {[number, number][]} layers
 */
export function withSimulcast(sdp, mid, layers) {
  const parts = sdp.split(/(?=\r\nm=)/);
  return parts.map((part) => {
    if (!part.includes(`\r\na=mid:${mid}\r\n`) || part.includes('a=ssrc-group:SIM') || !part.includes('a=ssrc-group:FID')) return part;
    const lines = part.split('\r\n');
    const attrs = lines.filter((l) => l.startsWith('a=ssrc:')).map((l) => l.slice(l.indexOf(' ') + 1));
    const cname = attrs.find((a) => a.startsWith('cname:'));
    const msid = attrs.find((a) => a.startsWith('msid:'));
    const kept = lines.filter((l) => !l.startsWith('a=ssrc:') && !l.startsWith('a=ssrc-group:'));
    const tail = kept[kept.length - 1] === '' ? kept.pop() : undefined;
    kept.push(`a=ssrc-group:SIM ${layers.map(([m]) => m).join(' ')}`);
    for (const [m, r] of layers) kept.push(`a=ssrc-group:FID ${m} ${r}`);
    for (const ssrc of layers.flat()) for (const a of [cname, msid]) if (a) kept.push(`a=ssrc:${ssrc} ${a}`);
    if (tail !== undefined) kept.push(tail);
    return kept.join('\r\n');
  }).join('');
}
