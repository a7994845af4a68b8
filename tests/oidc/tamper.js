// Rewrites of an ID token, each made so that exactly one check of the relying party can
// catch it: a forged payload under the provider's genuine signature, or a token re-signed
// with the provider's own key whose only fault is its expiry, nonce, audience or issuer.

import { SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';

/** Every mode the control endpoint accepts; `pass` leaves the token alone. */
export const MODES = ['pass', 'tamper-signature', 'expired', 'wrong-nonce', 'wrong-audience', 'wrong-issuer', 'alg-none'];

/** @param {string} s */
const b64url = (s) => Buffer.from(s).toString('base64url');

/**
 * @param {string} idToken the provider's genuine ID token
 * @param {string} mode one of MODES
 * @param {CryptoKey} key the provider's private signing key
 * @returns {Promise<string>}
 */
export async function rewrite(idToken, mode, key) {
  const header = decodeProtectedHeader(idToken);
  const claims = decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  const resign = (/** @type {Record<string, unknown>} */ changed) =>
    new SignJWT({ ...claims, ...changed })
      .setProtectedHeader({ alg: String(header.alg), kid: header.kid, typ: header.typ })
      .sign(key);
  switch (mode) {
    case 'pass':
      return idToken;
    case 'tamper-signature': {
      // The attacker's edit: someone else's identity, the genuine signature kept.
      const [h, , sig] = idToken.split('.');
      const forged = { ...claims, preferred_username: 'admin', name: 'Forged Admin' };
      return `${h}.${b64url(JSON.stringify(forged))}.${sig}`;
    }
    case 'expired':
      return resign({ iat: now - 7200, exp: now - 3600 });
    case 'wrong-nonce':
      return resign({ nonce: 'not-the-nonce-amphi-sent' });
    case 'wrong-audience':
      return resign({ aud: 'another-client' });
    case 'wrong-issuer':
      return resign({ iss: 'http://127.0.0.1:1/not-this-issuer' });
    case 'alg-none': {
      const h = b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }));
      return `${h}.${b64url(JSON.stringify(claims))}.`;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}
