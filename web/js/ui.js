// DOM helpers: elements from plain data (never from HTML strings, so text from the
// network can never become markup), focus handling and notices.

/**
 * @param {string} tag
 * @param {Record<string, any>} [props] attributes; `on*` functions become listeners,
 *   `class`, `text` and boolean attributes are handled
 * @param {...(Node|string|null|undefined|false)} kids
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = String(v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of kids) {
    if (c == null || c === false) continue;
    el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return el;
}

/** Replace the page content and move focus to its heading (for screen readers and keyboards). @param {...Node} nodes */
export function render(...nodes) {
  const main = /** @type {HTMLElement} */ (document.getElementById('main'));
  main.replaceChildren(...nodes);
  const h1 = main.querySelector('h1');
  if (h1) {
    h1.setAttribute('tabindex', '-1');
    h1.focus();
  }
  return main;
}

/** A short notice read out by screen readers. @param {string} text */
export function toast(text) {
  const el = document.getElementById('toast');
  if (!el) return;
  el.textContent = text;
  el.classList.add('show');
  clearTimeout(Number(el.dataset.timer));
  el.dataset.timer = String(setTimeout(() => el.classList.remove('show'), 4000));
}

/** An error box. @param {string} text */
export function alertBox(text) {
  return h('p', { class: 'alert', role: 'alert' }, text);
}

/** A labelled input. @param {string} label @param {Record<string, any>} props @param {string} [hint] */
export function field(label, props, hint) {
  const id = props.id ?? `f-${Math.random().toString(36).slice(2)}`;
  const hintId = hint ? `${id}-hint` : undefined;
  return h('div', { class: props.type === 'checkbox' ? 'field check' : 'field' },
    props.type === 'checkbox' ? h('input', { ...props, id }) : null,
    h('label', { for: id }, label),
    props.type === 'checkbox' ? null : h('input', { ...props, id, 'aria-describedby': hintId }),
    hint ? h('small', { id: hintId }, hint) : null);
}

/** Drop the null/false entries of a child list. @param {...(Node|string|null|undefined|false)} kids @returns {(Node|string)[]} */
export function nodes(...kids) {
  return /** @type {(Node|string)[]} */ (kids.filter((k) => k != null && k !== false));
}

/** @param {Date} d */
export function clock(d) {
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}
