// A small XMPP client over WebSocket (RFC 7395): framing, SASL (SCRAM-SHA-256 or PLAIN
// with a password, OAUTHBEARER with a single sign-on token),
// in-band registration (XEP-0077), resource binding, iq tracking, and events for
// messages and presences. Stanzas are DOM elements built with `x()`.

import { plain, scramSha256, oauthBearer } from './sasl.js';

export const NS = {
  client: 'jabber:client',
  framing: 'urn:ietf:params:xml:ns:xmpp-framing',
  streams: 'http://etherx.jabber.org/streams',
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  bind: 'urn:ietf:params:xml:ns:xmpp-bind',
  stanzas: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  register: 'jabber:iq:register',
  discoInfo: 'http://jabber.org/protocol/disco#info',
  discoItems: 'http://jabber.org/protocol/disco#items',
  ping: 'urn:xmpp:ping',
  delay: 'urn:xmpp:delay',
  data: 'jabber:x:data',
};

const doc = document.implementation.createDocument(null, null, null);

/**
 * Build an element (in jabber:client unless `xmlns` says otherwise: children of a payload
 * must name its namespace too). Children may be elements, strings (text) or null (skipped).
 * @param {string} name @param {Record<string, string|number|undefined|null>} [attrs]
 * @param {...(Element|string|null|undefined|false)} children
 * @returns {Element}
 */
export function x(name, attrs = {}, ...children) {
  const ns = attrs.xmlns != null ? String(attrs.xmlns) : NS.client;
  const el = doc.createElementNS(ns, name);
  for (const [k, v] of Object.entries(attrs)) {
    if (k !== 'xmlns' && v != null) el.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c == null || c === false) continue;
    el.appendChild(typeof c === 'string' ? doc.createTextNode(c) : c);
  }
  return el;
}

/** First child element with this name (and namespace, if given). @param {Element} el @param {string} name @param {string} [ns] */
export function child(el, name, ns) {
  for (const c of Array.from(el.children)) {
    if (c.localName === name && (ns === undefined || c.namespaceURI === ns)) return c;
  }
  return null;
}

/** @param {Element} el @param {string} name @param {string} [ns] */
export function children(el, name, ns) {
  return Array.from(el.children).filter((c) => c.localName === name && (ns === undefined || c.namespaceURI === ns));
}

/** An error stanza as a JS error: `condition` is the RFC 6120 condition, `text` the server's text. */
export class StanzaError extends Error {
  /** @param {Element} stanza */
  constructor(stanza) {
    const err = child(stanza, 'error');
    const cond = err ? Array.from(err.children).find((c) => c.namespaceURI === NS.stanzas && c.localName !== 'text') : null;
    const text = err ? child(err, 'text', NS.stanzas)?.textContent ?? '' : '';
    super(text || cond?.localName || 'error');
    this.condition = cond?.localName ?? 'undefined-condition';
    this.text = text;
    this.stanza = stanza;
  }
}

/** @param {string} jid */
export function bare(jid) {
  const i = jid.indexOf('/');
  return i < 0 ? jid : jid.slice(0, i);
}

/** @param {string} jid */
export function resourceOf(jid) {
  const i = jid.indexOf('/');
  return i < 0 ? '' : jid.slice(i + 1);
}

/** @param {string} jid */
export function localOf(jid) {
  const b = bare(jid);
  const i = b.indexOf('@');
  return i < 0 ? '' : b.slice(0, i);
}

/** @param {string} jid */
export function domainOf(jid) {
  const b = bare(jid);
  return b.slice(b.indexOf('@') + 1);
}

let counter = 0;
export function newId() {
  counter += 1;
  return `a${Date.now().toString(36)}${counter}`;
}

/**
 * A password, or `token`: the token amphi issued after single sign-on (OAUTHBEARER).
 * @typedef {{ url: string, jid: string, password?: string, token?: string, register?: boolean, resource?: string }} ConnectOptions
 */

/**
 * One connection. Events (CustomEvent detail = the stanza element): `message`,
 * `presence`, `iq` (get/set requests not answered by a handler); `closed` when the
 * connection ends (detail: reason string).
 */
export class Client extends EventTarget {
  constructor() {
    super();
    /** @type {WebSocket|null} */
    this.ws = null;
    this.jid = '';
    /** @type {Map<string, {resolve: (el: Element) => void, reject: (e: Error) => void, timer: number}>} */
    this.pending = new Map();
    /** @type {((el: Element) => void)|null} */
    this.waiter = null;
    /** @type {Element[]} */
    this.queue = [];
    /** @type {Map<string, (iq: Element) => Element|null>} namespace → handler for incoming get/set */
    this.handlers = new Map();
    this.handlers.set(NS.ping, () => null);
    this.online = false;
  }

  /**
   * Open the WebSocket, optionally register, authenticate and bind.
   * @param {ConnectOptions} o
   */
  async connect(o) {
    const domain = domainOf(o.jid);
    const username = localOf(o.jid);
    const ws = new WebSocket(o.url, 'xmpp');
    this.ws = ws;
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error('cannot connect to the server'));
    });
    if (ws.protocol !== 'xmpp') throw new Error('the server does not speak XMPP over WebSocket');
    ws.onmessage = (ev) => this.receive(String(ev.data));
    ws.onclose = () => this.closed('connection closed');
    let features = await this.open(domain);
    if (o.register) {
      await this.register(username, o.password ?? '');
    }
    await this.authenticate(features, o.token ? { token: o.token, jid: bare(o.jid) } : { username, password: o.password ?? '' });
    features = await this.open(domain);
    if (!child(features, 'bind', NS.bind)) throw new Error('the server offers no resource binding');
    const res = await this.iq('set', null, x('bind', { xmlns: NS.bind }, o.resource ? x('resource', { xmlns: NS.bind }, o.resource) : null));
    this.jid = child(child(res, 'bind', NS.bind) ?? res, 'jid')?.textContent ?? '';
    this.online = true;
    this.send(x('presence'));
  }

  /** Send `<open/>` and wait for the server's `<open/>` and features. @param {string} domain */
  async open(domain) {
    this.send(x('open', { xmlns: NS.framing, to: domain, version: '1.0' }));
    const opened = await this.next();
    if (opened.localName === 'failure') throw new Error(child(opened, 'text')?.textContent || 'connection closed');
    if (opened.localName !== 'open') throw new Error(`unexpected ${opened.localName}`);
    const features = await this.next();
    if (features.localName !== 'features') throw new Error(`expected features, got ${features.localName}`);
    return features;
  }

  /** XEP-0077 registration before authentication. @param {string} username @param {string} password */
  async register(username, password) {
    const q = x('query', { xmlns: NS.register }, x('username', { xmlns: NS.register }, username), x('password', { xmlns: NS.register }, password));
    await this.iq('set', null, q);
  }

  /**
   * @param {Element} features
   * @param {{ username: string, password: string } | { token: string, jid: string }} secret
   */
  async authenticate(features, secret) {
    const mechs = child(features, 'mechanisms', NS.sasl);
    const offered = mechs ? children(mechs, 'mechanism').map((m) => m.textContent) : [];
    let m;
    if ('token' in secret) {
      // A token is only ever offered to the mechanism made for it, never sent as a password.
      if (!offered.includes('OAUTHBEARER')) throw new Error('the server does not offer single sign-on (OAUTHBEARER)');
      m = oauthBearer(secret.jid, secret.token);
    } else if (offered.includes('SCRAM-SHA-256')) m = scramSha256(secret.username, secret.password);
    else if (offered.includes('PLAIN')) m = plain(secret.username, secret.password);
    else throw new Error('no usable sign-in method offered');
    this.send(x('auth', { xmlns: NS.sasl, mechanism: m.name }, await m.initial()));
    for (;;) {
      const el = await this.next();
      if (el.localName === 'challenge') {
        this.send(x('response', { xmlns: NS.sasl }, await m.step(el.textContent ?? '')));
      } else if (el.localName === 'success') {
        if (!(await m.verify(el.textContent ?? ''))) throw new Error('the server could not prove it knows the password');
        return;
      } else if (el.localName === 'failure') {
        const cond = Array.from(el.children).find((c) => c.localName !== 'text')?.localName ?? 'not-authorized';
        const text = child(el, 'text')?.textContent;
        const err = new Error(text || cond);
        /** @type {any} */ (err).condition = cond;
        throw err;
      } else {
        throw new Error(`unexpected ${el.localName} during sign-in`);
      }
    }
  }

  /** Next top-level element during negotiation. @returns {Promise<Element>} */
  next() {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the server did not answer')), 20000);
      this.waiter = (el) => { clearTimeout(t); resolve(el); };
    });
  }

  /** @param {string} text */
  receive(text) {
    const parsed = new DOMParser().parseFromString(text, 'text/xml');
    const el = parsed.documentElement;
    if (!el || el.getElementsByTagName('parsererror').length) return;
    if (el.localName === 'close' && el.namespaceURI === NS.framing) {
      this.closed('the server closed the stream');
      return;
    }
    if (el.localName === 'error' && el.namespaceURI === NS.streams) {
      const text2 = child(el, 'text')?.textContent;
      this.closed(text2 || Array.from(el.children)[0]?.localName || 'stream error');
      return;
    }
    if (!this.online) {
      if (this.waiter && el.localName !== 'iq') {
        const w = this.waiter;
        this.waiter = null;
        w(el);
        return;
      }
      if (el.localName !== 'iq') {
        this.queue.push(el);
        return;
      }
    }
    this.dispatch(el);
  }

  /** @param {Element} el */
  dispatch(el) {
    const name = el.localName;
    if (name === 'iq') {
      const type = el.getAttribute('type');
      const id = el.getAttribute('id') ?? '';
      if (type === 'result' || type === 'error') {
        const p = this.pending.get(id);
        if (p) {
          this.pending.delete(id);
          clearTimeout(p.timer);
          if (type === 'result') p.resolve(el);
          else p.reject(new StanzaError(el));
        }
        return;
      }
      const payload = el.firstElementChild;
      const handler = payload ? this.handlers.get(payload.namespaceURI ?? '') : undefined;
      if (handler) {
        const answer = handler(el);
        this.send(x('iq', { type: 'result', id, to: el.getAttribute('from') }, answer));
      } else {
        this.send(x('iq', { type: 'error', id, to: el.getAttribute('from') },
          x('error', { type: 'cancel' }, x('service-unavailable', { xmlns: NS.stanzas }))));
      }
      return;
    }
    if (name === 'message' || name === 'presence') {
      this.dispatchEvent(new CustomEvent(name, { detail: el }));
    }
  }

  /** @param {Element} el */
  send(el) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(new XMLSerializer().serializeToString(el));
    }
  }

  /**
   * Send an iq and wait for its result (rejects with StanzaError on an error reply).
   * @param {'get'|'set'} type @param {string|null} to @param {Element} payload
   * @returns {Promise<Element>}
   */
  iq(type, to, payload, timeoutMs = 20000) {
    const id = newId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('the server did not answer'));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.send(x('iq', { type, id, to }, payload));
    });
  }

  /** XEP-0030 disco#info. @param {string} to @param {string} [node] */
  async discoInfo(to, node) {
    const res = await this.iq('get', to, x('query', { xmlns: NS.discoInfo, node }));
    const q = child(res, 'query', NS.discoInfo);
    return {
      features: q ? children(q, 'feature').map((f) => f.getAttribute('var') ?? '') : [],
      identities: q ? children(q, 'identity').map((i) => ({ category: i.getAttribute('category'), type: i.getAttribute('type'), name: i.getAttribute('name') })) : [],
      forms: q ? children(q, 'x', NS.data) : [],
    };
  }

  /** XEP-0030 disco#items. @param {string} to @param {string} [node] */
  async discoItems(to, node) {
    const res = await this.iq('get', to, x('query', { xmlns: NS.discoItems, node }));
    const q = child(res, 'query', NS.discoItems);
    return q ? children(q, 'item').map((i) => ({ jid: i.getAttribute('jid') ?? '', name: i.getAttribute('name') ?? '', node: i.getAttribute('node') ?? '' })) : [];
  }

  /** @param {string} reason */
  closed(reason) {
    if (!this.ws) return;
    const ws = this.ws;
    this.ws = null;
    this.online = false;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(reason));
    }
    this.pending.clear();
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(x('failure', { xmlns: NS.sasl }, x('text', { xmlns: NS.sasl }, reason)));
    }
    try { ws.close(1000); } catch { /* already closed */ }
    this.dispatchEvent(new CustomEvent('closed', { detail: reason }));
  }

  /** Close the stream politely (RFC 7395 §3.6). */
  async disconnect() {
    if (!this.ws) return;
    this.send(x('presence', { type: 'unavailable' }));
    this.send(x('close', { xmlns: NS.framing }));
    const ws = this.ws;
    await new Promise((resolve) => {
      const t = setTimeout(resolve, 1000);
      ws.addEventListener('close', () => { clearTimeout(t); resolve(undefined); });
    });
    this.closed('signed out');
  }
}
