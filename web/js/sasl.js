// SASL for the browser: SCRAM-SHA-256 (RFC 5802 / RFC 7677) with WebCrypto, PLAIN, and
// OAUTHBEARER (RFC 7628) with the token amphi issues after single sign-on.
// Channel binding (-PLUS) is out of reach for web pages: browsers expose no TLS data.

const enc = new TextEncoder();

/** @param {Uint8Array} bytes */
export function toBase64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** @param {string} b64 */
export function fromBase64(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** UTF-8 text to base64. @param {string} text */
export function textToBase64(text) {
  return toBase64(enc.encode(text));
}

/** @param {Uint8Array<ArrayBuffer>} key @param {Uint8Array<ArrayBuffer>|string} data */
async function hmac(key, data) {
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const d = typeof data === 'string' ? enc.encode(data) : data;
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, d));
}

/** @param {Uint8Array<ArrayBuffer>} data */
async function sha256(data) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', data));
}

/** @param {string} password @param {Uint8Array<ArrayBuffer>} salt @param {number} iterations */
async function saltedPassword(password, salt, iterations) {
  const k = await crypto.subtle.importKey('raw', enc.encode(password), 'PBKDF2', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, k, 256);
  return new Uint8Array(bits);
}

/** RFC 5802 saslname: ',' and '=' escaped. @param {string} name */
function saslName(name) {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** @param {string} msg @returns {Map<string,string>} */
function parseAttributes(msg) {
  const m = new Map();
  for (const part of msg.split(',')) {
    const i = part.indexOf('=');
    if (i === 1) m.set(part[0], part.slice(2));
  }
  return m;
}

/**
 * A SASL client exchange: `initial()` gives the first message, `step(challenge)` the
 * answer to each challenge, `verify(additionalData)` checks the server's final word.
 * @typedef {{ name: string, initial(): Promise<string>, step(challenge: string): Promise<string>, verify(data: string): Promise<boolean> }} Mechanism
 */

/** @param {string} username @param {string} password @returns {Mechanism} */
export function plain(username, password) {
  return {
    name: 'PLAIN',
    initial: async () => textToBase64(`\0${username}\0${password}`),
    step: async () => { throw new Error('PLAIN has no challenge'); },
    verify: async () => true,
  };
}

/**
 * OAUTHBEARER (RFC 7628) with a token amphi issued after single sign-on. The authzid
 * names the account the token is bound to. A refused token comes back as a challenge
 * holding a JSON error (`{"status":"invalid_token"}`); RFC 7628 §3.2.3 has the client
 * answer it with a lone %x01, after which the server sends its `<failure/>`.
 * @param {string} authzid bare JID @param {string} token
 * @returns {Mechanism}
 */
export function oauthBearer(authzid, token) {
  return {
    name: 'OAUTHBEARER',
    initial: async () => textToBase64(`n,a=${saslName(authzid)},\x01auth=Bearer ${token}\x01\x01`),
    step: async () => textToBase64('\x01'),
    verify: async () => true,
  };
}

/**
 * @param {string} username @param {string} password
 * @param {string} [nonce] fixed client nonce, for tests against RFC vectors
 * @returns {Mechanism}
 */
export function scramSha256(username, password, nonce) {
  const cnonce = nonce ?? toBase64(crypto.getRandomValues(new Uint8Array(18)));
  const clientFirstBare = `n=${saslName(username)},r=${cnonce}`;
  /** @type {Uint8Array<ArrayBuffer>|null} */
  let serverSignature = null;
  return {
    name: 'SCRAM-SHA-256',
    initial: async () => textToBase64(`n,,${clientFirstBare}`),
    async step(challenge) {
      const serverFirst = new TextDecoder().decode(fromBase64(challenge));
      const a = parseAttributes(serverFirst);
      const r = a.get('r'), s = a.get('s'), i = Number(a.get('i'));
      if (!r || !s || !r.startsWith(cnonce) || !Number.isInteger(i) || i < 1) {
        throw new Error('invalid SCRAM challenge');
      }
      const salted = await saltedPassword(password, fromBase64(s), i);
      const clientKey = await hmac(salted, 'Client Key');
      const storedKey = await sha256(clientKey);
      const withoutProof = `c=biws,r=${r}`;
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const signature = await hmac(storedKey, authMessage);
      const proof = clientKey.map((b, idx) => b ^ signature[idx]);
      serverSignature = await hmac(await hmac(salted, 'Server Key'), authMessage);
      return textToBase64(`${withoutProof},p=${toBase64(proof)}`);
    },
    async verify(data) {
      if (!serverSignature) return false;
      const v = parseAttributes(new TextDecoder().decode(fromBase64(data))).get('v');
      return v === toBase64(serverSignature);
    },
  };
}
