// The page behind an invitation link: check the link, ask a guest for a display name,
// get a one-room guest login from the server, sign in with it and enter the room.

import { t } from '../i18n.js';
import { h, render, field, alertBox } from '../ui.js';
import { state, signIn, restore } from '../session.js';
import { navigate } from '../app.js';

/** @param {string} path @param {object} body */
async function post(path, body) {
  const res = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), cache: 'no-store' });
  const data = await res.json().catch(() => ({}));
  return { ok: res.ok, data };
}

/** @param {string} role @param {string} room @param {string} signature */
export async function joinPage(role, room, signature) {
  render(h('h1', {}, t('join.title')), h('p', { 'aria-busy': 'true' }, '…'));
  const link = { role, room, signature };
  const checked = await post('/api/meeting/check', link).catch(() => ({ ok: false, data: {} }));
  if (!checked.ok) {
    render(h('h1', {}, t('join.title')), h('p', { class: 'alert', role: 'alert', id: 'join-invalid' }, t('join.invalid')));
    return;
  }
  await restore();
  if (state.client && state.creds && !state.creds.guest) {
    const creds = state.creds;
    render(h('h1', {}, t('join.title')), h('p', {}, t('join.room', { room })),
      h('button', { type: 'button', class: 'primary', id: 'join-as-user', onclick: () => navigate(`/room/${encodeURIComponent(room)}`) },
        t('join.asUser', { jid: creds.jid })));
    return;
  }
  if (role === 'moderator' || checked.data.space) {
    // Moderator links, and rooms reserved to a space's members, are for people with an
    // account: sign in, then come back here.
    const why = checked.data.space ? t('join.spaceOnly') : t('common.needsignin');
    render(h('h1', {}, t('join.title')), h('p', {}, t('join.room', { room })), h('p', { id: 'join-needs-account' }, why),
      h('a', { class: 'button primary', href: `/signin?next=${encodeURIComponent(location.pathname)}`, 'data-link': true }, t('signin.title')));
    return;
  }
  const error = h('div', { id: 'join-error' });
  const submit = h('button', { type: 'submit', class: 'primary' }, t('join.submit'));
  const form = h('form', { class: 'card narrow', id: 'join-form' },
    field(t('join.name'), { name: 'name', id: 'display-name', required: true, maxlength: '64', autocomplete: 'name' }),
    error, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = String(new FormData(/** @type {HTMLFormElement} */ (form)).get('name')).trim();
    submit.setAttribute('disabled', '');
    error.replaceChildren();
    try {
      const res = await post('/api/meeting/join', { ...link, name });
      if (!res.ok) {
        const why = res.data.text || res.data.error || 'error';
        throw new Error(res.data.error === 'capacity' ? t('join.full', { reason: why }) : t('join.failed', { reason: why }));
      }
      const g = res.data;
      await signIn({ jid: g.jid, password: g.password, guest: true, room: g.room, nick: g.nick });
      sessionStorage.setItem('amphi.guestLink', location.pathname);
      navigate(`/room/${encodeURIComponent(room)}`);
    } catch (err) {
      error.replaceChildren(alertBox(err instanceof Error ? err.message : String(err)));
      submit.removeAttribute('disabled');
    }
  });
  render(h('h1', {}, t('join.title')), h('p', {}, t('join.room', { room })), form);
}
