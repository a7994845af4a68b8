// The room page: participants with their roles, chat with history, moderator actions,
// the invitation dialog, and a stage where the call (its own module) mounts.

import { t } from '../i18n.js';
import { h, render, alertBox, toast, clock, field, nodes } from '../ui.js';
import { state, authorization, signOut } from '../session.js';
import { Room, MAM } from '../muc.js';
import { localOf, StanzaError } from '../xmpp.js';
import { callExtension } from '../call/ui.js';
import { spaceDialog } from './space.js';

/**
 * Modules that add to the room page (the call UI) register here:
 * `mount(stage, room)` is called once the room is joined and may return a cleanup. The
 * stage starts hidden; `room.client` sends iqs (`client.iq`) and answers incoming ones
 * (`client.handlers.set(namespace, fn)`). A new module is imported from app.js and its
 * file listed in FILES of src/http/assets.rs (a test checks the list against web/).
 * @type {{ mount(stage: HTMLElement, room: Room): (void | (() => void)) }[]}
 */
export const roomExtensions = [callExtension];

/** @type {Room|null} */
let current = null;
/** @type {Room|null} */
let handedOver = null;
/** @type {(() => void)[]} */
let cleanups = [];

/** A room already joined by another page (just created), to show without joining again. @param {Room} room */
export function handOver(room) {
  handedOver = room;
}

export function leaveCurrentRoom() {
  for (const c of cleanups) c();
  cleanups = [];
  current?.leave();
  current = null;
}

/** @param {string} role @param {string} affiliation */
function badges(role, affiliation) {
  return h('span', { class: 'badges' },
    h('span', { class: `badge role-${role}` }, t(`room.role.${role}`)),
    ['owner', 'admin', 'member'].includes(affiliation) ? h('span', { class: 'badge' }, t(`room.aff.${affiliation}`)) : null);
}

/** @param {unknown} err */
function reason(err) {
  if (err instanceof StanzaError) return err.text || err.condition;
  return err instanceof Error ? err.message : String(err);
}

/** @param {string} name room localpart @param {string} [password] */
export async function roomPage(name, password) {
  const client = state.client;
  if (!client || !state.creds) return;
  const jid = `${name}@${state.service}`;
  let room;
  if (handedOver && handedOver.jid === jid && handedOver.joined) {
    room = handedOver;
  } else {
    leaveCurrentRoom();
    render(h('h1', {}, name), h('p', { 'aria-busy': 'true' }, t('room.joining')));
    const nick = state.creds.nick ?? localOf(state.creds.jid);
    room = new Room(client, jid, nick);
    try {
      await room.join({ password, history: 50 });
    } catch (err) {
      room.detach();
      if (err instanceof StanzaError && err.condition === 'not-authorized' && !password) return passwordPrompt(name);
      if (err instanceof StanzaError && err.condition === 'conflict' && !state.creds.guest) {
        state.creds.nick = `${nick}-${Math.floor(Math.random() * 1000)}`;
        return roomPage(name, password);
      }
      render(h('h1', {}, name), alertBox(t('room.error', { reason: reason(err) })));
      return;
    }
    // Visiting a room that did not exist made an instant room: accept the defaults.
    if (room.created) await room.configure({}).catch(() => {});
  }
  handedOver = null;
  current = room;
  show(room, name);
}

/** @param {string} name */
function passwordPrompt(name) {
  const form = h('form', { class: 'card narrow', id: 'room-password-form' },
    field(t('signin.password'), { name: 'password', type: 'password', required: true, id: 'room-password' }),
    h('button', { type: 'submit', class: 'primary' }, t('join.submit')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    roomPage(name, String(new FormData(/** @type {HTMLFormElement} */ (form)).get('password')));
  });
  render(h('h1', {}, name), h('p', {}, t('room.password')), form);
}

/** @param {Room} room @param {string} name */
function show(room, name) {
  const people = h('ul', { class: 'people', id: 'participants' });
  const peopleTitle = h('h2', { id: 'participants-title' });
  const log = h('ol', { class: 'log', id: 'chat-log', 'aria-live': 'polite', 'aria-label': t('room.chat') });
  const input = /** @type {HTMLInputElement} */ (h('input', { name: 'body', id: 'chat-input', autocomplete: 'off', 'aria-label': t('room.message'), maxlength: '4000' }));
  const chatForm = h('form', { class: 'say', id: 'chat-form' }, input, h('button', { type: 'submit', class: 'primary' }, t('room.send')));
  chatForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const body = input.value.trim();
    if (body) room.say(body);
    input.value = '';
  });
  const stage = h('section', { class: 'stage', id: 'stage', 'aria-label': t('room.call'), hidden: true });
  const tools = h('div', { class: 'tools' });
  const notice = h('div', { id: 'room-notice' });

  const renderTools = () => {
    tools.replaceChildren(...nodes(
      room.isOwner ? h('button', { type: 'button', id: 'invite', onclick: () => inviteDialog(name) }, t('room.invite')) : null,
      // Owners only: binding the room to a collaboration space (./space.js).
      room.isOwner ? h('button', { type: 'button', id: 'space-settings', 'aria-haspopup': 'dialog', onclick: () => {
        spaceDialog(room, () => document.getElementById('space-settings')?.focus());
      } }, t('room.space')) : null,
      room.isOwner ? h('button', { type: 'button', id: 'end-meeting', class: 'danger', onclick: async () => {
        if (!confirm(t('room.end.confirm'))) return;
        try { await room.destroy(); } catch (err) { toast(reason(err)); }
      } }, t('room.end')) : null,
      h('button', { type: 'button', id: 'leave', onclick: async () => {
        leaveCurrentRoom();
        if (state.creds?.guest) await signOut();
        location.assign('/');
      } }, t('room.leave'))));
  };

  const renderPeople = () => {
    peopleTitle.textContent = t('room.participants', { n: room.occupants.size });
    const sorted = [...room.occupants.values()].sort((a, b) => a.nick.localeCompare(b.nick));
    people.replaceChildren(...sorted.map((o) => {
      const me = o.nick === room.nick;
      const li = h('li', { 'data-nick': o.nick },
        h('span', { class: 'nick' }, o.nick, me ? ` ${t('room.you')}` : ''), badges(o.role, o.affiliation));
      if (room.isModerator && !me && o.affiliation !== 'owner') li.append(moderatorActions(room, o));
      return li;
    }));
    const listening = room.self?.role === 'visitor';
    notice.replaceChildren(listening ? h('p', { class: 'notice', id: 'visitor-notice' }, t('room.visitor')) : '');
    input.disabled = listening;
    renderTools();
  };

  room.addEventListener('occupants', renderPeople);
  /** @type {string} the oldest archive id shown, where "earlier messages" continues */
  let oldest = '';
  /** @param {import('../muc.js').ChatLine} line */
  const item = (line) => h('li', { class: line.mine ? 'mine' : line.delayed ? 'old' : '' },
    h('time', { datetime: line.time.toISOString() }, clock(line.time)), ' ',
    h('strong', {}, line.nick), ' ', h('span', { class: 'body' }, line.body));
  room.addEventListener('message', (e) => {
    const line = /** @type {import('../muc.js').ChatLine} */ (/** @type {CustomEvent} */ (e).detail);
    if (!oldest && line.archiveId) oldest = line.archiveId;
    log.append(item(line));
    log.scrollTop = log.scrollHeight;
  });
  // XEP-0313: older messages from the room's archive, when it keeps one.
  const earlier = h('button', { type: 'button', class: 'small', id: 'earlier', hidden: true, onclick: async () => {
    try {
      const page = await room.history(oldest);
      if (page.lines.length) oldest = page.lines[0].archiveId;
      log.prepend(...page.lines.map(item));
      if (page.complete) earlier.hidden = true;
    } catch (err) {
      earlier.hidden = true;
      toast(reason(err));
    }
  } }, t('room.history'));
  room.client.discoInfo(room.jid).then((info) => {
    if (info.features.includes(MAM) && oldest) earlier.hidden = false;
  }, () => {});
  room.addEventListener('left', (e) => {
    const d = /** @type {{reason: string, text: string}} */ (/** @type {CustomEvent} */ (e).detail);
    const key = ['kicked', 'banned', 'destroyed', 'left'].includes(d.reason) ? `room.left.${d.reason}` : 'room.left.other';
    current = null;
    for (const c of cleanups) c();
    cleanups = [];
    // A guest's login is for this room only: nothing left to do with it.
    if (state.creds?.guest) signOut();
    render(h('h1', {}, name), h('p', { class: 'alert', role: 'alert', id: 'left-notice' }, t(key), d.text ? ` (${d.text})` : ''),
      h('p', {}, h('a', { href: '/', 'data-link': true }, t('nav.home'))));
  });
  room.addEventListener('error', (e) => toast(reason(/** @type {CustomEvent} */ (e).detail)));

  const about = h('p', { class: 'muted', id: 'room-about' });
  render(
    h('div', { class: 'room-head' }, h('h1', {}, name), tools),
    about,
    notice,
    stage,
    h('div', { class: 'room' },
      h('aside', { class: 'card' }, peopleTitle, people),
      h('section', { class: 'card chat' }, h('h2', {}, t('room.chat')), earlier, log, chatForm)),
  );
  renderPeople();
  describe(room, about);
  for (const ext of roomExtensions) {
    const cleanup = ext.mount(stage, room);
    if (cleanup) cleanups.push(cleanup);
  }
}

/** The room's description and subject, from disco#info (muc#roominfo) and the room. @param {Room} room @param {HTMLElement} el */
async function describe(room, el) {
  const text = () => {
    const parts = [el.dataset.description ?? '', room.subject].filter(Boolean);
    el.textContent = parts.join(' — ');
  };
  room.addEventListener('subject', text);
  try {
    const info = await room.client.discoInfo(room.jid);
    for (const form of info.forms) {
      for (const f of Array.from(form.children)) {
        if (f.getAttribute('var') === 'muc#roominfo_description') el.dataset.description = f.firstElementChild?.textContent ?? '';
      }
    }
  } catch { /* no description */ }
  text();
}

/** @param {Room} room @param {import('../muc.js').Occupant} o */
function moderatorActions(room, o) {
  /** @param {string} label @param {string} id @param {() => Promise<unknown>} act */
  const btn = (label, id, act) => h('button', { type: 'button', class: 'small', 'data-action': id, onclick: async () => {
    try { await act(); } catch (err) { toast(reason(err)); }
  } }, label);
  return h('span', { class: 'mod-actions', role: 'group', 'aria-label': t('room.actions', { nick: o.nick }) },
    o.role === 'visitor'
      ? btn(t('room.unmute'), 'unmute', () => room.setRole(o.nick, 'participant'))
      : o.role === 'participant' ? btn(t('room.mute'), 'mute', () => room.setRole(o.nick, 'visitor')) : null,
    o.role !== 'moderator' ? btn(t('room.grant'), 'grant', () => room.setRole(o.nick, 'moderator')) : null,
    btn(t('room.kick'), 'kick', () => room.setRole(o.nick, 'none')),
    o.jid && (room.isOwner || room.self?.affiliation === 'admin') ? btn(t('room.ban'), 'ban', () => room.setAffiliation(o.jid, 'outcast')) : null);
}

/** The owner's invitation links, from the server (which signs them for owners only). @param {string} name */
async function inviteDialog(name) {
  const body = h('div', {});
  const dialog = /** @type {HTMLDialogElement} */ (h('dialog', { id: 'invite-dialog', 'aria-labelledby': 'invite-title' },
    h('h2', { id: 'invite-title' }, t('invite.title')), body,
    h('form', { method: 'dialog' }, h('button', { type: 'submit' }, t('invite.close')))));
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  /** @param {string} path */
  const load = async (path, method = 'GET') => {
    const res = await fetch(path, { method, headers: { Authorization: authorization() }, cache: 'no-store' });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.text || res.statusText);
    return /** @type {{moderator: string, participant: string}} */ (data);
  };
  /** @param {{moderator: string, participant: string}} links */
  const show = (links) => {
    body.replaceChildren(
      linkRow(t('invite.participant'), location.origin + links.participant, 'participant-link'),
      linkRow(t('invite.moderator'), location.origin + links.moderator, 'moderator-link'),
      h('button', { type: 'button', id: 'regenerate', onclick: async () => {
        try { show(await load(`/api/rooms/${encodeURIComponent(name)}/invites/regenerate`, 'POST')); } catch (err) { toast(reason(err)); }
      } }, t('invite.regenerate')));
  };
  try {
    show(await load(`/api/rooms/${encodeURIComponent(name)}/invites`));
  } catch (err) {
    body.replaceChildren(alertBox(t('invite.failed', { reason: reason(err) })));
  }
}

/** @param {string} label @param {string} url @param {string} id */
function linkRow(label, url, id) {
  const input = /** @type {HTMLInputElement} */ (h('input', { id, readonly: true, value: url }));
  return h('div', { class: 'field' }, h('label', { for: id }, label),
    h('div', { class: 'copy' }, input, h('button', { type: 'button', 'data-copy': id, onclick: async () => {
      input.select();
      try { await navigator.clipboard.writeText(url); } catch { document.execCommand?.('copy'); }
      toast(t('invite.copied'));
    } }, t('invite.copy'))));
}
