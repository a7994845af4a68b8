// The owner's "Space" dialog on the room page: bind the room to a collaboration space
// (xep/amphi-spaces.md: directory groups, profiles, individual members, the role they
// enter with) or unbind it. Plain XEP-0045 §10.2 on the wire: the owner form is read and
// submitted back whole, only the amphi#space_* fields (and, on unbinding, members-only)
// changed, so every other setting of the room keeps its current value.

import { t } from '../i18n.js';
import { h, toast, field, nodes } from '../ui.js';
import { state } from '../session.js';
import { MUC } from '../muc.js';
import { x, child, children, NS, StanzaError } from '../xmpp.js';

/** The binding's fields in the `muc#roomconfig` form (src/muc/config.rs). */
export const SPACE = {
  groups: 'amphi#space_groups',
  profiles: 'amphi#space_profiles',
  members: 'amphi#space_members',
  role: 'amphi#space_role',
};
const MEMBERS_ONLY = 'muc#roomconfig_membersonly';
const ROOMCONFIG = 'http://jabber.org/protocol/muc#roomconfig';

/** @typedef {import('../muc.js').Room} Room */
/** @typedef {{ var: string, type: string, values: string[] }} FormField */

/** §10.2: the room's configuration form, as the server fills it in for an owner. @param {Room} room @returns {Promise<FormField[]>} */
export async function readConfig(room) {
  const res = await room.client.iq('get', room.jid, x('query', { xmlns: MUC.owner }));
  const q = child(res, 'query', MUC.owner);
  const form = q ? child(q, 'x', NS.data) : null;
  if (!form) throw new Error('the room sent no configuration form');
  return children(form, 'field', NS.data)
    .filter((f) => f.getAttribute('var'))
    .map((f) => ({
      var: f.getAttribute('var') ?? '',
      type: f.getAttribute('type') ?? 'text-single',
      values: children(f, 'value', NS.data).map((v) => v.textContent ?? ''),
    }));
}

/**
 * Submit the whole form back: each field with its current values, except those in
 * `changes`. A single-value field the server left empty is left out (absent keeps the
 * value, where an empty one could be read as a change); fixed fields are not submitted.
 * @param {Room} room @param {FormField[]} fields @param {Map<string, string[]>} changes
 */
export async function submitConfig(room, fields, changes) {
  /** @param {string} v @param {string[]} vals */
  const f = (v, vals) => x('field', { xmlns: NS.data, var: v }, ...vals.map((s) => x('value', { xmlns: NS.data }, s)));
  const out = [f('FORM_TYPE', [ROOMCONFIG])];
  for (const field of fields) {
    if (field.var === 'FORM_TYPE' || field.type === 'fixed' || changes.has(field.var)) continue;
    if (field.values.length === 0 && !field.type.endsWith('-multi')) continue;
    out.push(f(field.var, field.values));
  }
  for (const [v, vals] of changes) out.push(f(v, vals));
  await room.client.iq('set', room.jid, x('query', { xmlns: MUC.owner }, x('x', { xmlns: NS.data, type: 'submit' }, ...out)));
}

/** The non-empty trimmed lines of a text area. @param {string} text */
export function lines(text) {
  return text.split('\n').map((l) => l.trim()).filter(Boolean);
}

/** @param {FormField[]} fields @param {string} v */
function valuesOf(fields, v) {
  return fields.find((f) => f.var === v)?.values ?? [];
}

/**
 * What the owner reads when the server refuses: our words for the condition (the
 * server's own text is English and names the value, so it follows as a detail).
 * @param {unknown} err
 */
function refusal(err) {
  if (!(err instanceof StanzaError)) return { message: t('space.error.other', { condition: err instanceof Error ? err.message : String(err) }), text: '' };
  const known = ['not-acceptable', 'jid-malformed', 'bad-request', 'forbidden'];
  const message = known.includes(err.condition)
    ? t(`space.error.${err.condition}`, { domain: state.domain })
    : t('space.error.other', { condition: err.condition });
  return { message, text: err.text };
}

/** @param {string} label @param {string} id @param {string[]} values @param {string} hint */
function area(label, id, values, hint) {
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('textarea', { id, name: id, rows: '2', spellcheck: 'false', autocapitalize: 'none', 'aria-describedby': `${id}-hint` }, values.join('\n')),
    h('small', { id: `${id}-hint` }, hint));
}

/**
 * Open the dialog for `room`; `returnFocus` is called when it closes (the page may have
 * redrawn the button that opened it meanwhile).
 * @param {Room} room @param {() => void} returnFocus
 */
export async function spaceDialog(room, returnFocus) {
  const body = h('div', { 'aria-busy': 'true' }, h('p', {}, t('space.loading')));
  const dialog = /** @type {HTMLDialogElement} */ (h('dialog', { id: 'space-dialog', class: 'space', 'aria-labelledby': 'space-title' },
    h('h2', { id: 'space-title' }, t('space.title')), body));
  const closeOnLeave = () => dialog.close();
  room.addEventListener('left', closeOnLeave);
  dialog.addEventListener('close', () => {
    room.removeEventListener('left', closeOnLeave);
    dialog.remove();
    returnFocus();
  });
  document.body.append(dialog);
  dialog.showModal();
  const closeButton = () => h('button', { type: 'button', id: 'space-close', onclick: () => dialog.close() }, t('space.close'));

  /** @type {FormField[]} */
  let fields;
  try {
    fields = await readConfig(room);
  } catch (err) {
    const reason = err instanceof StanzaError ? err.text || err.condition : err instanceof Error ? err.message : String(err);
    body.replaceChildren(h('p', { class: 'alert', role: 'alert', id: 'space-error' }, t('space.failed.read', { reason })), closeButton());
    body.removeAttribute('aria-busy');
    /** @type {HTMLElement} */ (body.querySelector('button')).focus();
    return;
  }
  body.removeAttribute('aria-busy');
  if (!fields.some((f) => f.var === SPACE.members)) {
    body.replaceChildren(h('p', { id: 'space-error' }, t('space.unsupported')), closeButton());
    /** @type {HTMLElement} */ (body.querySelector('button')).focus();
    return;
  }
  body.replaceChildren(spaceForm(room, fields, dialog));
  /** @type {HTMLElement} */ (body.querySelector('textarea')).focus();
}

/** @param {Room} room @param {FormField[]} fields @param {HTMLDialogElement} dialog */
function spaceForm(room, fields, dialog) {
  const bound = [SPACE.groups, SPACE.profiles, SPACE.members].some((v) => valuesOf(fields, v).length > 0);
  const role = valuesOf(fields, SPACE.role)[0] === 'participant' ? 'participant' : 'moderator';
  const error = h('div', { id: 'space-error' });
  /** @param {string} r */
  const radio = (r) => h('label', { class: 'radio' },
    h('input', { type: 'radio', name: 'space-role', id: `space-role-${r}`, value: r, checked: r === role }), ' ', t(`space.role.${r}`));
  const form = /** @type {HTMLFormElement} */ (h('form', { id: 'space-form', novalidate: true },
    h('p', { id: 'space-status', class: bound ? 'notice' : 'muted' }, t(bound ? 'space.bound' : 'space.unbound')),
    h('p', { class: 'muted small' }, t('space.lead')),
    h('div', { class: 'pair' },
      area(t('space.groups'), 'space-groups', valuesOf(fields, SPACE.groups), t('space.groups.hint')),
      area(t('space.profiles'), 'space-profiles', valuesOf(fields, SPACE.profiles), t('space.profiles.hint'))),
    area(t('space.members'), 'space-members', valuesOf(fields, SPACE.members), t('space.members.hint', { domain: state.domain })),
    h('fieldset', { class: 'choices' }, h('legend', {}, t('space.role')), radio('moderator'), radio('participant')),
    error,
    h('div', { class: 'dialog-actions' },
      h('button', { type: 'submit', class: 'primary', id: 'space-save' }, t('space.save')),
      h('button', { type: 'button', id: 'space-cancel', onclick: () => dialog.close() }, t('space.cancel')))));
  const keep = field(t('space.unbind.keep'), { type: 'checkbox', id: 'space-keep-membersonly', name: 'keep' });
  const unbindBox = bound ? h('fieldset', { class: 'unbind' },
    h('legend', {}, t('space.unbind.title')),
    h('p', { class: 'muted', id: 'space-unbind-hint' }, t('space.unbind.hint')),
    keep,
    h('button', { type: 'button', class: 'danger', id: 'space-unbind', 'aria-describedby': 'space-unbind-hint', onclick: () => unbind() }, t('space.unbind'))) : null;

  const areas = () => /** @type {HTMLTextAreaElement[]} */ (Array.from(form.querySelectorAll('textarea')));
  /** @param {Map<string, string[]>} changes @param {string} done */
  const send = async (changes, done) => {
    error.replaceChildren();
    for (const a of areas()) a.removeAttribute('aria-invalid');
    const buttons = Array.from(dialog.querySelectorAll('button'));
    for (const b of buttons) b.setAttribute('disabled', '');
    form.setAttribute('aria-busy', 'true');
    try {
      await submitConfig(room, fields, changes);
      dialog.close();
      toast(t(done));
    } catch (err) {
      const { message, text } = refusal(err);
      // The server names the field it refused ("amphi#space_members: …"): point at it.
      const culprit = Object.entries(SPACE).find(([, v]) => text.startsWith(`${v}:`));
      const target = culprit ? /** @type {HTMLTextAreaElement|null} */ (form.querySelector(`#space-${culprit[0]}`)) : null;
      error.replaceChildren(h('div', { class: 'alert', role: 'alert' },
        ...nodes(h('p', {}, message), text ? h('p', { class: 'detail' }, t('space.error.server', { text })) : null)));
      if (target) {
        target.setAttribute('aria-invalid', 'true');
        target.setAttribute('aria-describedby', `${target.id}-hint space-error`);
        target.focus();
      }
      error.scrollIntoView({ block: 'nearest' });
    } finally {
      for (const b of buttons) b.removeAttribute('disabled');
      form.removeAttribute('aria-busy');
    }
  };
  const unbind = () => {
    const keepIt = /** @type {HTMLInputElement} */ (keep.querySelector('input')).checked;
    return send(new Map([[SPACE.groups, []], [SPACE.profiles, []], [SPACE.members, []], [MEMBERS_ONLY, [keepIt ? '1' : '0']]]), 'space.unbound.done');
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const [groups, profiles, members] = areas().map((a) => lines(a.value));
    if (!groups.length && !profiles.length && !members.length) {
      // Emptying every list is unbinding: the dedicated button says what that means.
      if (bound) return unbind();
      error.replaceChildren(h('p', { class: 'alert', role: 'alert' }, t('space.empty')));
      areas()[0].focus();
      error.scrollIntoView({ block: 'nearest' });
      return;
    }
    const chosen = /** @type {HTMLInputElement|null} */ (form.querySelector('input[name="space-role"]:checked'))?.value ?? 'moderator';
    send(new Map([[SPACE.groups, groups], [SPACE.profiles, profiles], [SPACE.members, members], [SPACE.role, [chosen]]]), 'space.saved');
  });
  return h('div', {}, form, unbindBox);
}
