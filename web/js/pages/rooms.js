// My rooms: the permanent rooms the signed-in account owns, as the MUC service lists them.

import { t } from '../i18n.js';
import { h, render, alertBox } from '../ui.js';
import { state } from '../session.js';
import { ownedRooms } from '../muc.js';

export async function roomsPage() {
  const list = h('ul', { class: 'rooms', id: 'my-rooms' });
  const body = h('div', {}, list);
  render(h('h1', {}, t('rooms.title')), body,
    h('p', { class: 'actions' },
      h('a', { class: 'button primary', href: '/rooms/new', 'data-link': true }, t('home.create')),
      h('a', { class: 'button', href: '/meeting/new', 'data-link': true }, t('home.new'))));
  const client = state.client;
  if (!client) return;
  try {
    const rooms = await ownedRooms(client, state.service);
    if (rooms.length === 0) list.replaceWith(h('p', { id: 'my-rooms-empty' }, t('rooms.empty')));
    for (const r of rooms) {
      const local = r.jid.split('@')[0];
      list.append(h('li', { 'data-room': local },
        h('span', { class: 'room-name' }, r.name),
        h('span', { class: 'muted' }, ` ${r.jid} `),
        h('a', { class: 'button', href: `/room/${encodeURIComponent(local)}`, 'data-link': true }, t('rooms.open'))));
    }
  } catch (err) {
    body.prepend(alertBox(t('rooms.failed', { reason: err instanceof Error ? err.message : String(err) })));
  }
}
