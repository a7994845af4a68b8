// Create a permanent room (XEP-0045 §10.1.3: reserved room, owner's configuration form)
// and open a one-click temporary meeting (an instant room that ends with its last occupant).

import { t } from '../i18n.js';
import { h, render, field, alertBox } from '../ui.js';
import { state } from '../session.js';
import { Room, randomRoomName } from '../muc.js';
import { localOf } from '../xmpp.js';
import { navigate, route } from '../app.js';
import { handOver } from './room.js';

/** Join `name` as its creator. Resolves to the joined Room, or throws 'exists'. @param {string} name */
async function createRoom(name) {
  const client = state.client;
  if (!client || !state.creds) throw new Error('not signed in');
  const room = new Room(client, `${name}@${state.service}`, localOf(state.creds.jid));
  await room.join({ history: 0 });
  if (!room.created) {
    room.leave();
    throw new Error('exists');
  }
  return room;
}

export function createPage() {
  const error = h('div', {});
  const submit = h('button', { type: 'submit', class: 'primary' }, t('create.submit'));
  const form = h('form', { class: 'card', id: 'create-form' },
    field(t('create.name'), { name: 'name', id: 'room-name', required: true, pattern: '[a-z0-9][a-z0-9._\\-]{0,63}', autocapitalize: 'none', spellcheck: 'false' }, t('create.name.hint')),
    field(t('create.description'), { name: 'description', id: 'room-description' }),
    field(t('create.password'), { name: 'password', id: 'room-password', type: 'password', autocomplete: 'new-password' }),
    field(t('create.membersonly'), { name: 'membersonly', id: 'room-membersonly', type: 'checkbox' }),
    field(t('create.moderated'), { name: 'moderated', id: 'room-moderated', type: 'checkbox' }),
    field(t('create.maxusers'), { name: 'maxusers', id: 'room-maxusers', type: 'number', min: '0', max: '10000', value: '0' }),
    error, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const d = new FormData(/** @type {HTMLFormElement} */ (form));
    const name = String(d.get('name')).trim().toLowerCase();
    const password = String(d.get('password') ?? '');
    submit.setAttribute('disabled', '');
    error.replaceChildren();
    try {
      const room = await createRoom(name);
      await room.configure({
        'muc#roomconfig_persistentroom': '1',
        'muc#roomconfig_publicroom': '0',
        'muc#roomconfig_roomname': name,
        'muc#roomconfig_roomdesc': String(d.get('description') ?? ''),
        'muc#roomconfig_passwordprotectedroom': password ? '1' : '0',
        'muc#roomconfig_roomsecret': password,
        'muc#roomconfig_membersonly': d.get('membersonly') ? '1' : '0',
        'muc#roomconfig_moderatedroom': d.get('moderated') ? '1' : '0',
        'muc#roomconfig_maxusers': String(Number(d.get('maxusers') || 0) > 0 ? Number(d.get('maxusers')) : 'none'),
        'muc#roomconfig_enablearchiving': '1',
      });
      handOver(room);
      navigate(`/room/${encodeURIComponent(name)}`);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      error.replaceChildren(alertBox(msg === 'exists' ? t('create.exists') : t('create.failed', { reason: msg })));
      submit.removeAttribute('disabled');
    }
  });
  render(h('h1', {}, t('create.title')), form);
}

/** One click: a fresh instant room with the service's defaults (temporary, not listed). */
export async function temporaryMeeting() {
  render(h('h1', {}, t('home.new')), h('p', { 'aria-busy': 'true' }, t('room.joining')));
  try {
    const name = randomRoomName();
    const room = await createRoom(name);
    await room.configure({ 'muc#roomconfig_persistentroom': '0', 'muc#roomconfig_publicroom': '0' });
    handOver(room);
    // Replace /meeting/new, so going back does not open yet another meeting.
    history.replaceState(null, '', `/room/${name}`);
    await route();
  } catch (err) {
    render(h('h1', {}, t('home.new')), alertBox(t('create.failed', { reason: err instanceof Error ? err.message : String(err) })));
  }
}
