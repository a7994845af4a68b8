// The web client's entry point: header, language switch, and a router on the URL path
// (the server answers every page path with index.html).

import { t, setLang, currentLang } from './i18n.js';
import { h, render, toast, nodes } from './ui.js';
import { state, restore, signOut, hasSession, takeSsoFragment } from './session.js';
import { homePage } from './pages/home.js';
import { signinPage, ssoPage, ssoDonePage } from './pages/signin.js';
import { roomsPage } from './pages/rooms.js';
import { createPage, temporaryMeeting } from './pages/create.js';
import { roomPage, leaveCurrentRoom } from './pages/room.js';
import { joinPage } from './pages/join.js';
import { devicesPage, stopDeviceTest } from './pages/devices.js';

// A single sign-on token arrives in the fragment of /sso/done: out of the address bar
// and the history before anything else runs.
takeSsoFragment();

/** Server facts from /api/config: XMPP domain, MUC service, capacity. */
export const server = { domain: location.hostname, muc: '', registration: true };

/** @param {string} path */
export function navigate(path) {
  history.pushState(null, '', path);
  route();
}

function nav() {
  const n = /** @type {HTMLElement} */ (document.getElementById('nav'));
  const signedIn = hasSession() && !state.creds?.guest;
  n.replaceChildren(...nodes(
    h('a', { href: '/', 'data-link': true }, t('nav.home')),
    signedIn ? h('a', { href: '/rooms', 'data-link': true }, t('nav.rooms')) : null,
    h('a', { href: '/devices', 'data-link': true }, t('nav.devices')),
    signedIn
      ? h('button', { type: 'button', class: 'link', onclick: async () => { leaveCurrentRoom(); await signOut(); navigate('/'); } }, t('nav.signout'))
      : hasSession() ? null : h('a', { href: '/signin', 'data-link': true }, t('nav.signin')),
  ));
  const lang = /** @type {HTMLButtonElement} */ (document.getElementById('lang'));
  lang.textContent = t('lang.switch');
  lang.setAttribute('aria-label', t('lang.switch.label'));
}

/** Pages that need an account: sign in again from this tab's memory, else ask. */
async function needAccount() {
  const c = await restore();
  if (c && !state.creds?.guest) return true;
  navigate(`/signin?next=${encodeURIComponent(location.pathname)}`);
  return false;
}

export async function route() {
  stopDeviceTest();
  const path = location.pathname;
  let m;
  if (!path.startsWith('/room/')) leaveCurrentRoom();
  nav();
  if (path === '/') return homePage();
  if (path === '/signin') return signinPage(false);
  if (path === '/signup') return signinPage(true);
  if (path === '/sso') return ssoPage();
  if (path === '/sso/done') return ssoDonePage();
  if (path === '/devices') return devicesPage();
  if (path === '/rooms') return (await needAccount()) && roomsPage();
  if (path === '/rooms/new') return (await needAccount()) && createPage();
  if (path === '/meeting/new') return (await needAccount()) && temporaryMeeting();
  if ((m = /^\/room\/([^/]+)$/.exec(path))) {
    const c = await restore();
    // A guest's login is single-use: after a reload, go back through the invitation link.
    const guestLink = sessionStorage.getItem('amphi.guestLink');
    if (!c) return navigate(guestLink ?? `/signin?next=${encodeURIComponent(location.pathname)}`);
    return roomPage(decodeURIComponent(m[1]));
  }
  if ((m = /^\/meeting\/signin\/([^/]+)\/([^/]+)\/hash\/([^/]+)$/.exec(location.pathname))) {
    return joinPage(m[1], decodeURIComponent(m[2]), m[3]);
  }
  render(h('h1', {}, t('common.notfound')), h('p', {}, h('a', { href: '/', 'data-link': true }, t('common.back'))));
}

/**
 * Sign in again after a lost connection (a server restart, a network change), backing
 * off up to 30 s, then show the current page again (which rejoins its room).
 * @param {number} attempt
 */
function reconnect(attempt) {
  setTimeout(async () => {
    if (state.client || !hasSession()) return;
    if (await restore()) {
      toast(t('common.reconnected'));
      await route();
    } else if (attempt < 8) {
      reconnect(attempt + 1);
    }
  }, Math.min(30000, 1000 * 2 ** attempt));
}

async function boot() {
  document.documentElement.lang = currentLang();
  try {
    const res = await fetch('/api/config');
    if (res.ok) Object.assign(server, await res.json());
  } catch { /* keep the defaults */ }
  state.domain = server.domain;
  document.addEventListener('click', (e) => {
    const a = /** @type {HTMLElement} */ (e.target).closest?.('a[data-link]');
    if (a instanceof HTMLAnchorElement && !e.ctrlKey && !e.metaKey && !e.shiftKey && e.button === 0) {
      e.preventDefault();
      navigate(a.pathname + a.search);
    }
  });
  window.addEventListener('popstate', () => route());
  document.getElementById('lang')?.addEventListener('click', () => {
    setLang(currentLang() === 'fr' ? 'en' : 'fr');
    route();
  });
  document.addEventListener('amphi:session', () => nav());
  document.addEventListener('amphi:disconnected', (e) => {
    toast(t('common.disconnected', { reason: String(/** @type {CustomEvent} */ (e).detail) }));
    if (!state.creds?.guest) reconnect(0);
  });
  await route();
}

boot();
