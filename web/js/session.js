// The signed-in session: one XMPP connection shared by every page.
//
// Credentials stay in this tab's sessionStorage so a reload signs in again; they are gone
// when the tab closes. Guests (from an invitation link) keep their one-room login the
// same way.

import { Client, bare, domainOf } from './xmpp.js';
import { findService } from './muc.js';

/**
 * @typedef {{ jid: string, password: string, guest: boolean, room?: string, nick?: string }} Credentials
 */

export const state = {
  /** @type {Client|null} */
  client: null,
  /** @type {Credentials|null} */
  creds: null,
  service: '',
  /** The server's domain: the page's host name unless told otherwise. */
  domain: location.hostname,
};

const KEY = 'amphi.session';

export function websocketUrl() {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/xmpp-websocket`;
}

/** @param {string} user "alice" or "alice@domain" */
export function toJid(user) {
  const u = user.trim();
  return u.includes('@') ? u : `${u}@${state.domain}`;
}

/**
 * Connect and authenticate (and register first when asked).
 * @param {Credentials} creds @param {{ register?: boolean }} [opts]
 */
export async function signIn(creds, opts = {}) {
  await signOut(false);
  const client = new Client();
  await client.connect({ url: websocketUrl(), jid: creds.jid, password: creds.password, register: opts.register });
  state.client = client;
  state.creds = { ...creds, jid: bare(creds.jid) };
  sessionStorage.setItem(KEY, JSON.stringify(state.creds));
  client.addEventListener('closed', (e) => {
    if (state.client === client) {
      state.client = null;
      document.dispatchEvent(new CustomEvent('amphi:disconnected', { detail: /** @type {CustomEvent} */ (e).detail }));
    }
  });
  if (!creds.guest) {
    try {
      state.service = await findService(client, domainOf(creds.jid));
    } catch {
      state.service = `conference.${domainOf(creds.jid)}`;
    }
  } else if (creds.room) {
    state.service = domainOf(creds.room);
  }
  document.dispatchEvent(new Event('amphi:session'));
  return client;
}

/** Reconnect with what this tab remembers; null when there is nothing. */
export async function restore() {
  if (state.client) return state.client;
  const saved = sessionStorage.getItem(KEY);
  if (!saved) return null;
  try {
    return await signIn(JSON.parse(saved));
  } catch (err) {
    // A refused sign-in (changed password, spent guest login) is forgotten; an unreachable
    // server is not, so a later attempt can succeed.
    if (err instanceof Error && /** @type {any} */ (err).condition) sessionStorage.removeItem(KEY);
    return null;
  }
}

/** Whether this tab has a session (connected or restorable). */
export function hasSession() {
  return !!state.client || !!sessionStorage.getItem(KEY);
}

/** @param {boolean} [forget] */
export async function signOut(forget = true) {
  const c = state.client;
  state.client = null;
  if (forget) {
    state.creds = null;
    sessionStorage.removeItem(KEY);
  }
  if (c) await c.disconnect();
  if (forget) document.dispatchEvent(new Event('amphi:session'));
}

/** `Authorization` header for the HTTP APIs that act for the signed-in account. */
export function basicAuth() {
  const c = state.creds;
  if (!c) return '';
  const bytes = new TextEncoder().encode(`${c.jid}:${c.password}`);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return `Basic ${btoa(s)}`;
}
