// XEP-0045 multi-user chat for the web client: join, occupants with roles, groupchat,
// moderator and owner actions, the owner configuration form, and listing owned rooms.

import { x, child, children, NS, StanzaError, bare, resourceOf, newId } from './xmpp.js';

export const MAM = 'urn:xmpp:mam:2';
const RSM = 'http://jabber.org/protocol/rsm';
const SID = 'urn:xmpp:sid:0';
const FORWARD = 'urn:xmpp:forward:0';

export const MUC = {
  base: 'http://jabber.org/protocol/muc',
  user: 'http://jabber.org/protocol/muc#user',
  admin: 'http://jabber.org/protocol/muc#admin',
  owner: 'http://jabber.org/protocol/muc#owner',
};

/** @typedef {import('./xmpp.js').Client} Client */
/** @typedef {{ nick: string, role: string, affiliation: string, jid: string }} Occupant */
/**
 * A chat line; `archiveId` is the room's stanza-id (XEP-0359), the key for paging its archive.
 * @typedef {{ id: string, archiveId: string, nick: string, body: string, time: Date, delayed: boolean, mine: boolean }} ChatLine
 */

/**
 * One joined room. Events: `occupants` (the list changed), `message` (detail: ChatLine),
 * `subject`, `left` (detail: { reason: 'kicked'|'banned'|'destroyed'|'left'|..., text }),
 * `error` (detail: StanzaError).
 */
export class Room extends EventTarget {
  /** @param {Client} client @param {string} jid room bare JID @param {string} nick */
  constructor(client, jid, nick) {
    super();
    this.client = client;
    this.jid = jid;
    this.nick = nick;
    /** @type {Map<string, Occupant>} */
    this.occupants = new Map();
    this.subject = '';
    this.joined = false;
    /** Set when our join created the room (status 201): it waits for configuration. */
    this.created = false;
    /** @type {Occupant|null} */
    this.self = null;
    this.onPresence = (/** @type {Event} */ e) => this.presence(/** @type {CustomEvent} */ (e).detail);
    this.onMessage = (/** @type {Event} */ e) => this.message(/** @type {CustomEvent} */ (e).detail);
    client.addEventListener('presence', this.onPresence);
    client.addEventListener('message', this.onMessage);
  }

  /**
   * Join; resolves on our own presence (status 110), rejects with StanzaError.
   * @param {{ password?: string, history?: number }} [opts]
   */
  join(opts = {}) {
    return new Promise((resolve, reject) => {
      this.pendingJoin = { resolve, reject };
      const mucX = x('x', { xmlns: MUC.base },
        x('history', { xmlns: MUC.base, maxstanzas: opts.history ?? 50 }),
        opts.password ? x('password', { xmlns: MUC.base }, opts.password) : null);
      this.client.send(x('presence', { to: `${this.jid}/${this.nick}` }, mucX));
    });
  }

  /** @param {Element} p */
  presence(p) {
    const from = p.getAttribute('from') ?? '';
    if (bare(from) !== this.jid) return;
    const nick = resourceOf(from);
    const type = p.getAttribute('type');
    if (type === 'error') {
      const err = new StanzaError(p);
      if (this.pendingJoin) {
        this.pendingJoin.reject(err);
        this.pendingJoin = undefined;
      } else {
        this.dispatchEvent(new CustomEvent('error', { detail: err }));
      }
      return;
    }
    const ux = child(p, 'x', MUC.user);
    const item = ux ? child(ux, 'item', MUC.user) : null;
    const codes = ux ? children(ux, 'status', MUC.user).map((s) => s.getAttribute('code')) : [];
    const isSelf = codes.includes('110') || nick === this.nick;
    if (type === 'unavailable') {
      const newNick = item?.getAttribute('nick');
      this.occupants.delete(nick);
      const destroy = ux ? child(ux, 'destroy', MUC.user) : null;
      if (isSelf && !(codes.includes('303') && newNick)) {
        const reason = destroy ? 'destroyed' : codes.includes('301') ? 'banned' : codes.includes('307') ? 'kicked'
          : codes.includes('321') ? 'affiliation' : codes.includes('332') ? 'shutdown' : 'left';
        const text = (destroy ? child(destroy, 'reason', MUC.user) : item ? child(item, 'reason', MUC.user) : null)?.textContent ?? '';
        this.joined = false;
        this.detach();
        this.dispatchEvent(new CustomEvent('left', { detail: { reason, text } }));
        return;
      }
      if (isSelf && newNick) this.nick = newNick;
      this.dispatchEvent(new Event('occupants'));
      return;
    }
    /** @type {Occupant} */
    const occ = {
      nick,
      role: item?.getAttribute('role') ?? 'participant',
      affiliation: item?.getAttribute('affiliation') ?? 'none',
      jid: item?.getAttribute('jid') ?? '',
    };
    this.occupants.set(nick, occ);
    if (isSelf) {
      this.self = occ;
      if (codes.includes('201')) this.created = true;
      if (!this.joined) {
        this.joined = true;
        this.pendingJoin?.resolve(this);
        this.pendingJoin = undefined;
      }
    }
    this.dispatchEvent(new Event('occupants'));
  }

  /** @param {Element} m */
  message(m) {
    const from = m.getAttribute('from') ?? '';
    if (bare(from) !== this.jid) return;
    const type = m.getAttribute('type');
    if (type === 'error') {
      this.dispatchEvent(new CustomEvent('error', { detail: new StanzaError(m) }));
      return;
    }
    const subject = child(m, 'subject');
    if (subject && !child(m, 'body')) {
      this.subject = subject.textContent ?? '';
      this.dispatchEvent(new Event('subject'));
      return;
    }
    const body = child(m, 'body')?.textContent;
    if (type !== 'groupchat' || body == null) return;
    this.dispatchEvent(new CustomEvent('message', { detail: this.line(m, child(m, 'delay', NS.delay)) }));
  }

  /** @param {Element} m a groupchat message from the room @param {Element|null} delay */
  line(m, delay) {
    const nick = resourceOf(m.getAttribute('from') ?? '');
    const sid = children(m, 'stanza-id', SID).find((e) => e.getAttribute('by') === this.jid);
    return {
      id: m.getAttribute('id') ?? newId(),
      archiveId: sid?.getAttribute('id') ?? '',
      nick,
      body: child(m, 'body')?.textContent ?? '',
      time: delay ? new Date(delay.getAttribute('stamp') ?? Date.now()) : new Date(),
      delayed: !!delay,
      mine: nick === this.nick,
    };
  }

  /**
   * XEP-0313: up to `max` archived messages older than archive id `before`, oldest first;
   * `complete` says there are no more.
   * @param {string} before @param {number} [max]
   * @returns {Promise<{ lines: ChatLine[], complete: boolean }>}
   */
  async history(before, max = 50) {
    const queryid = newId();
    /** @type {ChatLine[]} */
    const lines = [];
    const collect = (/** @type {Event} */ e) => {
      const m = /** @type {CustomEvent} */ (e).detail;
      if (bare(m.getAttribute('from') ?? this.jid) !== this.jid) return;
      const result = child(m, 'result', MAM);
      if (!result || result.getAttribute('queryid') !== queryid) return;
      const fwd = child(result, 'forwarded', FORWARD);
      const inner = fwd ? child(fwd, 'message') : null;
      if (!fwd || !inner || !child(inner, 'body')) return;
      const line = this.line(inner, child(fwd, 'delay', NS.delay));
      line.archiveId = result.getAttribute('id') ?? line.archiveId;
      lines.push(line);
    };
    this.client.addEventListener('message', collect);
    try {
      const res = await this.client.iq('set', this.jid, x('query', { xmlns: MAM, queryid },
        x('set', { xmlns: RSM }, x('max', { xmlns: RSM }, String(max)), x('before', { xmlns: RSM }, before))));
      const fin = child(res, 'fin', MAM);
      // A short page is the last one too, whatever the server says of completeness.
      return { lines, complete: fin?.getAttribute('complete') === 'true' || lines.length < max };
    } finally {
      this.client.removeEventListener('message', collect);
    }
  }

  /** @param {string} body */
  say(body) {
    this.client.send(x('message', { to: this.jid, type: 'groupchat', id: newId() }, x('body', {}, body)));
  }

  get isModerator() {
    return this.self?.role === 'moderator';
  }

  get isOwner() {
    return this.self?.affiliation === 'owner';
  }

  /** §8.2/8.4/8.5: change a role (kick = 'none'). @param {string} nick @param {string} role @param {string} [reason] */
  setRole(nick, role, reason) {
    return this.client.iq('set', this.jid, x('query', { xmlns: MUC.admin },
      x('item', { xmlns: MUC.admin, nick, role }, reason ? x('reason', { xmlns: MUC.admin }, reason) : null)));
  }

  /** §9: change an affiliation (ban = 'outcast'). @param {string} jid @param {string} affiliation */
  setAffiliation(jid, affiliation) {
    return this.client.iq('set', this.jid, x('query', { xmlns: MUC.admin },
      x('item', { xmlns: MUC.admin, jid: bare(jid), affiliation })));
  }

  /** §10.9: end the meeting for everyone. @param {string} [reason] */
  destroy(reason) {
    return this.client.iq('set', this.jid, x('query', { xmlns: MUC.owner },
      x('destroy', { xmlns: MUC.owner }, reason ? x('reason', { xmlns: MUC.owner }, reason) : null)));
  }

  /**
   * Submit the owner configuration form (§10.1.3) with these values; other fields keep
   * the server's defaults. @param {Record<string, string|string[]>} values
   */
  async configure(values) {
    const fields = [x('field', { xmlns: NS.data, var: 'FORM_TYPE', type: 'hidden' },
      x('value', { xmlns: NS.data }, 'http://jabber.org/protocol/muc#roomconfig'))];
    for (const [k, v] of Object.entries(values)) {
      const vals = Array.isArray(v) ? v : [v];
      fields.push(x('field', { xmlns: NS.data, var: k }, ...vals.map((s) => x('value', { xmlns: NS.data }, s))));
    }
    await this.client.iq('set', this.jid, x('query', { xmlns: MUC.owner }, x('x', { xmlns: NS.data, type: 'submit' }, ...fields)));
    this.created = false;
  }

  leave() {
    if (this.joined) this.client.send(x('presence', { to: `${this.jid}/${this.nick}`, type: 'unavailable' }));
    this.joined = false;
    this.detach();
  }

  detach() {
    this.client.removeEventListener('presence', this.onPresence);
    this.client.removeEventListener('message', this.onMessage);
  }
}

/** The client's MUC service: the first disco item of the server that is a conference service. @param {Client} client @param {string} domain */
export async function findService(client, domain) {
  const items = await client.discoItems(domain);
  for (const it of items) {
    try {
      const info = await client.discoInfo(it.jid);
      if (info.identities.some((i) => i.category === 'conference') || info.features.includes(MUC.base)) return it.jid;
    } catch { /* not a service we can use */ }
  }
  return `conference.${domain}`;
}

/**
 * The permanent rooms the signed-in user owns: disco#items of the service on the node
 * amphi's MUC service documents for it, keeping the rooms whose disco#info says
 * `muc_persistent` (a running temporary meeting is not "my room").
 * @param {Client} client @param {string} service
 * @returns {Promise<{jid: string, name: string}[]>}
 */
export async function ownedRooms(client, service) {
  const items = await client.discoItems(service, OWNED_NODE);
  const persistent = await Promise.all(items.map((i) => client.discoInfo(i.jid)
    .then((info) => info.features.includes('muc_persistent'), () => false)));
  return items.filter((_, n) => persistent[n]).map((i) => ({ jid: i.jid, name: i.name || i.jid.split('@')[0] }));
}

/** amphi's MUC service lists a requester's own rooms on this disco#items node (src/muc/mod.rs). */
export const OWNED_NODE = 'x-amphi:my-rooms';

/** A room name for a one-click meeting: readable and hard to guess. */
export function randomRoomName() {
  const words = ['amber', 'birch', 'cedar', 'delta', 'ember', 'fjord', 'grove', 'harbor', 'iris', 'juniper', 'kelp', 'lumen', 'maple', 'nova', 'olive', 'pearl'];
  const r = crypto.getRandomValues(new Uint32Array(3));
  return `${words[r[0] % words.length]}-${words[r[1] % words.length]}-${(r[2] % 1000000).toString().padStart(6, '0')}`;
}
