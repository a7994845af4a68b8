// Sign in, or sign up with in-band registration (XEP-0077), over the WebSocket; or sign in
// through the organisation (OpenID Connect single sign-on): `/sso` lists the identity
// providers, the server runs the code flow (`/sso/{id}/start` … `/sso/callback`) and comes
// back to `/sso/done#token=…&jid=…` (or to `/signin?sso_error=<code>`), and the client signs
// in to XMPP with that token (SASL OAUTHBEARER).
//
// These pages live in one file because the server embeds a fixed list of web files.

import { t } from '../i18n.js';
import { h, render, field, alertBox } from '../ui.js';
import { signIn, toJid, state, savedCredentials, forgetCredentials, whoAmI, rememberName } from '../session.js';
import { navigate, route } from '../app.js';

/** The codes the server sends back in `sso_error`, plus `session` (a refused token). */
const SSO_ERRORS = ['state', 'provider', 'exchange', 'id_token', 'claims', 'account', 'unavailable', 'session'];
/** Where to go after single sign-on, kept across the trip to the provider. */
const NEXT_KEY = 'amphi.sso.next';

/** @returns {Promise<{ id: string, name: string }[]>} */
async function issuers() {
  const res = await fetch('/api/sso/issuers', { cache: 'no-store' });
  if (!res.ok) throw new Error(res.statusText || String(res.status));
  const list = await res.json();
  return Array.isArray(list) ? list.filter((i) => i && typeof i.id === 'string' && typeof i.name === 'string') : [];
}

/** Only same-site paths: `next` comes from the URL and must not send anyone elsewhere. @param {string|null} next */
function safeNext(next) {
  return next && next.startsWith('/') && !next.startsWith('//') ? next : null;
}

/** The message for an `sso_error` code (the organisation's button below starts again). @param {string} code */
function ssoAlert(code) {
  const known = SSO_ERRORS.includes(code);
  const text = known ? t(`sso.error.${code}`) : t('sso.error.other', { code: code.replace(/[^a-z_]/g, '').slice(0, 32) });
  const box = alertBox(text);
  box.id = 'sso-error';
  box.dataset.code = known ? code : 'other';
  return h('div', { class: 'sso-error' }, box);
}

/** @param {boolean} signup */
export async function signinPage(signup) {
  const params = new URLSearchParams(location.search);
  const next = safeNext(params.get('next'));
  const ssoError = params.get('sso_error');
  if (ssoError) {
    // Shown once: a reload or a bookmark must not repeat an old failure.
    params.delete('sso_error');
    const rest = params.toString();
    history.replaceState(null, '', `${location.pathname}${rest ? `?${rest}` : ''}`);
  }
  const refused = state.tokenRefused;
  state.tokenRefused = false;

  const error = h('div', { id: 'signin-error' });
  const user = field(t('signin.user'), { name: 'user', id: 'user', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' },
    t('signin.user.hint', { domain: state.domain }));
  const pass = field(t('signin.password'), { name: 'password', id: 'password', type: 'password', required: true, autocomplete: signup ? 'new-password' : 'current-password' });
  const submit = h('button', { type: 'submit', class: 'primary' }, t(signup ? 'signup.submit' : 'signin.submit'));
  const form = h('form', { class: 'card narrow', id: 'signin-form' }, user, pass, error, submit,
    h('p', {}, h('a', { href: signup ? '/signin' : '/signup', 'data-link': true }, t(signup ? 'signup.toSignin' : 'signin.toSignup'))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(/** @type {HTMLFormElement} */ (form));
    submit.setAttribute('disabled', '');
    submit.textContent = t('signin.busy');
    error.replaceChildren();
    try {
      await signIn({ jid: toJid(String(data.get('user'))), password: String(data.get('password')), guest: false }, { register: signup });
      navigate(next ?? '/');
    } catch (err) {
      error.replaceChildren(alertBox(t('signin.failed', { reason: err instanceof Error ? err.message : String(err) })));
      submit.removeAttribute('disabled');
      submit.textContent = t(signup ? 'signup.submit' : 'signin.submit');
    }
  });

  /** @type {HTMLElement|null} */
  let sso = null;
  if (!signup) {
    const here = location.href;
    const list = await issuers().catch(() => []);
    // The person may have moved on while the list loaded: do not draw over the next page.
    if (location.href !== here) return;
    if (list.length > 0) {
      sso = h('section', { class: 'card sso', 'aria-labelledby': 'sso-title' },
        h('h2', { id: 'sso-title' }, t('sso.title')),
        h('p', {}, t('sso.lead')),
        h('a', { class: 'button primary', id: 'sso-signin', href: next ? `/sso?next=${encodeURIComponent(next)}` : '/sso', 'data-link': true }, t('sso.button')));
    }
  }
  render(h('h1', {}, t(signup ? 'signup.title' : 'signin.title')),
    ...(ssoError ? [ssoAlert(ssoError)] : refused ? [ssoAlert('session')] : []),
    ...(sso ? [sso, h('p', { class: 'divider' }, t('signin.or'))] : []),
    form);
}

/** `/sso`: the organisation's identity providers, one link each to the server's flow. */
export async function ssoPage() {
  const next = safeNext(new URLSearchParams(location.search).get('next'));
  if (next) sessionStorage.setItem(NEXT_KEY, next);
  else sessionStorage.removeItem(NEXT_KEY);
  const body = h('div', { id: 'idp-body' });
  render(h('h1', {}, t('sso.choose.title')),
    h('section', { class: 'card sso' }, h('p', { class: 'muted' }, t('sso.choose.lead')), body,
      h('p', {}, h('a', { href: '/signin', 'data-link': true, id: 'sso-password' }, t('sso.choose.password')))));
  try {
    const list = await issuers();
    if (list.length === 0) {
      body.replaceChildren(h('p', { id: 'idp-none' }, t('sso.choose.none')));
      return;
    }
    // Plain links (no `data-link`): the browser leaves for the server's route and the provider.
    body.replaceChildren(h('ul', { class: 'idps', id: 'idp-list', 'aria-label': t('sso.choose.list') },
      ...list.map((i) => h('li', {},
        h('a', { class: 'button', href: `/sso/${encodeURIComponent(i.id)}/start`, 'data-idp': i.id }, i.name)))));
  } catch (err) {
    body.replaceChildren(alertBox(t('sso.choose.failed', { reason: err instanceof Error ? err.message : String(err) })));
  }
}

/**
 * `/sso/done`: the token from the fragment is already in this tab's storage (app.js took
 * it before anything else ran); sign in to XMPP with it and go on to My rooms.
 */
export async function ssoDonePage() {
  const creds = savedCredentials();
  if (!creds?.token) {
    render(h('h1', {}, t('sso.title')), h('p', { id: 'sso-none' }, t('sso.done.none')),
      h('p', {}, h('a', { href: '/signin', 'data-link': true }, t('signin.title'))));
    return;
  }
  render(h('h1', { 'aria-busy': 'true' }, t('sso.done.title')));
  try {
    await signIn(creds);
  } catch (err) {
    if (err instanceof Error && /** @type {any} */ (err).condition) {
      forgetCredentials();
      navigate('/signin?sso_error=session');
      return;
    }
    render(h('h1', {}, t('sso.title')),
      alertBox(t('sso.done.failed', { reason: err instanceof Error ? err.message : String(err) })),
      h('p', {}, h('button', { type: 'button', class: 'primary', onclick: () => ssoDonePage() }, t('sso.done.retry'))));
    return;
  }
  const me = await whoAmI();
  if (me?.name) rememberName(me.name);
  const next = safeNext(sessionStorage.getItem(NEXT_KEY));
  sessionStorage.removeItem(NEXT_KEY);
  // Replace /sso/done in the history: Back must not come here again.
  history.replaceState(null, '', next ?? '/rooms');
  await route();
}
