// The landing page: what amphi is, the live figures, and the ways in.

import { t } from '../i18n.js';
import { h, render } from '../ui.js';
import { state, hasSession } from '../session.js';

/** How often the landing page refreshes its figures. */
const REFRESH_MS = 15000;

/** @param {HTMLElement} p */
async function fillStats(p) {
  try {
    const res = await fetch('/api/stats', { cache: 'no-store' });
    const s = await res.json();
    p.textContent = s.capacity > 0 ? t('home.stats', s) : t('home.stats.unlimited', s);
    p.hidden = false;
  } catch {
    p.hidden = true;
  }
}

/** Live figures from /api/stats, as one sentence, refreshed while the page shows them. */
async function statsLine() {
  const p = h('p', { class: 'stats', id: 'stats' });
  await fillStats(p);
  const timer = setInterval(() => (p.isConnected ? fillStats(p) : clearInterval(timer)), REFRESH_MS);
  return p;
}

export async function homePage() {
  const signedIn = hasSession() && !state.creds?.guest;
  const actions = signedIn
    ? h('div', { class: 'actions' },
      h('a', { class: 'button primary', href: '/meeting/new', 'data-link': true, id: 'new-meeting' }, t('home.new')),
      h('a', { class: 'button', href: '/rooms/new', 'data-link': true }, t('home.create')),
      h('a', { class: 'button', href: '/rooms', 'data-link': true }, t('nav.rooms')))
    : h('div', { class: 'actions' },
      h('a', { class: 'button primary', href: '/signin', 'data-link': true }, t('signin.title')),
      h('a', { class: 'button', href: '/signup', 'data-link': true }, t('signup.title')));
  render(
    h('section', { class: 'hero' },
      h('h1', {}, t('home.title')),
      h('p', { class: 'lead' }, t('home.lead')),
      await statsLine(),
      signedIn && state.creds
        ? h('p', { class: 'muted', id: 'signed-in-as' }, state.creds.name
          ? t('home.signedinAs', { name: state.creds.name, jid: state.creds.jid })
          : t('home.signedin', { jid: state.creds.jid }))
        : null,
      actions,
      h('p', {}, h('a', { href: '/devices', 'data-link': true }, t('nav.devices')))),
  );
}
