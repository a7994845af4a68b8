// The signed-in session: one XMPP connection shared by every page.
//
// Credentials stay in this tab's sessionStorage so a reload signs in again; they are gone
// when the tab closes. Guests (from an invitation link) keep their one-room login the
// same way. After single sign-on the tab keeps amphi's token instead of a password: the
// server binds it to one account, it expires, and signing out revokes it.

import { Client, bare, domainOf } from './xmpp.js';
import { findService } from './muc.js';

/**
 * `password` for accounts of this server or the directory; `token` (and the person's
 * `name`, from /api/me) after single sign-on.
 * @typedef {{ jid: string, password?: string, token?: string, name?: string, guest: boolean, room?: string, nick?: string }} Credentials
 */

export const state = {
  /** @type {Client|null} */
  client: null,
  /** @type {Credentials|null} */
  creds: null,
  service: '',
  /** The server's domain: the page's host name unless told otherwise. */
  domain: location.hostname,
  /** Set when a single sign-on token was refused (expired, revoked): the sign-in page says so. */
  tokenRefused: false,
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
  await client.connect({ url: websocketUrl(), jid: creds.jid, password: creds.password, token: creds.token, register: opts.register });
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
    if (err instanceof Error && /** @type {any} */ (err).condition) {
      sessionStorage.removeItem(KEY);
      if (JSON.parse(saved).token) state.tokenRefused = true;
    }
    return null;
  }
}

/** What this tab remembers, without connecting. @returns {Credentials|null} */
export function savedCredentials() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) ?? 'null');
  } catch {
    return null;
  }
}

/** Drop what this tab remembers (a refused token). */
export function forgetCredentials() {
  state.creds = null;
  sessionStorage.removeItem(KEY);
}

/** Whether this tab has a session (connected or restorable). */
export function hasSession() {
  return !!state.client || !!sessionStorage.getItem(KEY);
}

/**
 * Close the connection; with `forget`, also drop the credentials and revoke a single
 * sign-on token at the server, so a copy of it signs in nobody afterwards.
 * @param {boolean} [forget]
 */
export async function signOut(forget = true) {
  const c = state.client;
  const token = forget ? state.creds?.token : undefined;
  state.client = null;
  if (forget) {
    state.creds = null;
    sessionStorage.removeItem(KEY);
  }
  await Promise.all([
    c ? c.disconnect() : null,
    token ? revoke(token) : null,
  ]);
  if (forget) document.dispatchEvent(new Event('amphi:session'));
}

/** `POST /api/sso/signout`; a failure is not fatal (the token expires anyway). @param {string} token */
async function revoke(token) {
  try {
    await fetch('/api/sso/signout', { method: 'POST', headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
  } catch { /* offline: the token runs out at its expiry */ }
}

/**
 * Take a single sign-on result from the URL fragment (`/sso/done#token=…&jid=…`) and
 * remove it from the address bar and history at once, before anything else runs, so the
 * token is not left for the next person at this screen. Kept in this tab's storage for
 * `restore()` to sign in with. Returns whether there was one.
 */
export function takeSsoFragment() {
  if (location.pathname !== '/sso/done' || !location.hash) return false;
  const p = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, '', location.pathname);
  const token = p.get('token'), jid = p.get('jid');
  if (!token || !jid) return false;
  /** @type {Credentials} */
  const creds = { jid: bare(jid), token, guest: false };
  sessionStorage.setItem(KEY, JSON.stringify(creds));
  return true;
}

/** The signed-in person as amphi knows them from their organisation (`GET /api/me`). */
export async function whoAmI() {
  const token = state.creds?.token;
  if (!token) return null;
  try {
    const res = await fetch('/api/me', { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
    if (!res.ok) return null;
    return /** @type {{ jid: string, name?: string, email?: string, groups?: string[] }} */ (await res.json());
  } catch {
    return null;
  }
}

/** Keep the person's display name beside the credentials (shown on the home page). @param {string} name */
export function rememberName(name) {
  if (!state.creds) return;
  state.creds.name = name;
  sessionStorage.setItem(KEY, JSON.stringify(state.creds));
}

/**
 * `Authorization` header for the HTTP APIs that act for the signed-in account: the single
 * sign-on token as a bearer token, else the account's password (HTTP Basic).
 */
export function authorization() {
  const c = state.creds;
  if (!c) return '';
  if (c.token) return `Bearer ${c.token}`;
  const bytes = new TextEncoder().encode(`${c.jid}:${c.password ?? ''}`);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return `Basic ${btoa(s)}`;
}
