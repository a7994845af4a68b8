// Sign in, or sign up with in-band registration (XEP-0077), over the WebSocket.

import { t } from '../i18n.js';
import { h, render, field, alertBox } from '../ui.js';
import { signIn, toJid, state } from '../session.js';
import { navigate } from '../app.js';

/** @param {boolean} signup */
export function signinPage(signup) {
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
      const next = new URLSearchParams(location.search).get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/');
    } catch (err) {
      error.replaceChildren(alertBox(t('signin.failed', { reason: err instanceof Error ? err.message : String(err) })));
      submit.removeAttribute('disabled');
      submit.textContent = t(signup ? 'signup.submit' : 'signin.submit');
    }
  });
  render(h('h1', {}, t(signup ? 'signup.title' : 'signin.title')), form);
}
