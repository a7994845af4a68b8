// One real OpenID provider (oidc-provider) on a loopback port, made for amphi's tests:
// one confidential client with PKCE required, a login form that checks passwords, a
// consent page, a signing key generated at start (kept here, so ID tokens can be re-signed),
// and a tampering step on the token endpoint switched by `POST /__test/mode`.
//
// Routes besides the provider's own (discovery, /auth, /token, /jwks, /me, ...):
//   GET  /interaction/:uid           login or consent page
//   POST /interaction/:uid/login     username + password
//   POST /interaction/:uid/confirm   consent given
//   POST /interaction/:uid/abort     "Cancel": the provider answers error=access_denied
//   GET|POST /__test/mode            {"mode": "pass" | "tamper-signature" | "expired" | ...}
//   POST /__test/id-token            {"username": "alice", ...claim overrides} → {"id_token"}
//                                    (a genuine token without a browser, for API tests)

import Provider from 'oidc-provider';
import { createServer } from 'node:http';
import { generateKeyPair, exportJWK, SignJWT } from 'jose';
import { MODES, rewrite } from './tamper.js';

/** @typedef {import('./users.js').User} User */

/**
 * @param {{ id: string, name: string, host?: string, port: number, redirectUris: string[],
 *   users: User[], verbose?: boolean }} o
 */
export async function startIssuer(o) {
  const host = o.host ?? '127.0.0.1';
  const kid = `${o.id}-key-1`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };

  // Listen first: with port 0 the issuer URL is only known once bound.
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, host, () => resolve(undefined));
  });
  const addr = server.address();
  const url = `http://${host}:${typeof addr === 'object' && addr ? addr.port : o.port}`;
  const bySub = new Map(o.users.map((u) => [u.claims.sub, u]));

  const provider = new Provider(url, {
    clients: [{
      client_id: 'amphi',
      client_secret: 'secret',
      redirect_uris: o.redirectUris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    pkce: { required: () => true },
    jwks: { keys: [jwk] },
    // Two issuers share the host 127.0.0.1 and cookies ignore ports: distinct names.
    cookies: {
      keys: [`cookie-key-${o.id}`],
      names: { session: `_session_${o.id}`, interaction: `_interaction_${o.id}`, resume: `_interaction_resume_${o.id}` },
    },
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username', 'groups'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    // Put the scopes' claims in the ID token itself (not only at userinfo).
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const u = bySub.get(sub);
      if (!u) return undefined;
      return { accountId: sub, claims: async () => ({ ...u.claims }) };
    },
  });
  provider.on('server_error', (_ctx, err) => console.error(`[${o.id}] server_error`, err));
  if (o.verbose) {
    for (const ev of ['grant.error', 'authorization.error', 'grant.success']) {
      provider.on(ev, (_ctx, err) => console.error(`[${o.id}] ${ev}`, err?.message ?? ''));
    }
  }

  let mode = 'pass';
  let rewritten = 0;
  // The tampering step sits after the token endpoint has built its answer and before it
  // is serialised: the relying party receives the altered ID token from the real endpoint.
  provider.use(async (ctx, next) => {
    await next();
    const body = /** @type {any} */ (ctx.body);
    if (ctx.oidc?.route === 'token' && ctx.status === 200 && body && typeof body === 'object' && body.id_token && mode !== 'pass') {
      ctx.body = { ...body, id_token: await rewrite(body.id_token, mode, privateKey) };
      rewritten += 1;
      if (o.verbose) console.error(`[${o.id}] ID token rewritten (${mode})`);
    }
  });

  const providerCallback = provider.callback();
  server.on('request', (req, res) => {
    const path = new URL(req.url ?? '/', url).pathname;
    const handle = path.startsWith('/interaction/') ? interaction
      : path.startsWith('/__test/') ? control
        : null;
    if (!handle) {
      providerCallback(req, res);
      return;
    }
    handle(req, res, path).catch((err) => {
      console.error(`[${o.id}] ${path}:`, err);
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', String(err?.message ?? err));
    });
  });

  /** @param {import('node:http').IncomingMessage} req @param {import('node:http').ServerResponse} res @param {string} path */
  async function interaction(req, res, path) {
    const details = await provider.interactionDetails(req, res);
    const action = path.split('/')[3] ?? '';
    const prompt = details.prompt.name;
    if (req.method === 'GET' && !action) {
      return page(res, prompt === 'login' ? loginForm(details.uid, '') : consentForm(details.uid, details.params));
    }
    if (req.method !== 'POST') return send(res, 405, 'text/plain', 'method not allowed');
    const form = new URLSearchParams(await readBody(req));
    if (action === 'abort') {
      return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'The user cancelled' }, { mergeWithLastSubmission: false });
    }
    if (action === 'login' && prompt === 'login') {
      const username = String(form.get('username') ?? '').normalize('NFC');
      const password = String(form.get('password') ?? '').normalize('NFC');
      const user = o.users.find((u) => u.username === username && u.password === password);
      if (!user) return page(res, loginForm(details.uid, username), 200);
      return provider.interactionFinished(req, res, { login: { accountId: user.claims.sub } }, { mergeWithLastSubmission: false });
    }
    if (action === 'confirm' && prompt === 'consent') {
      const session = /** @type {{ accountId: string }} */ (details.session);
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: String(details.params.client_id) });
      if (!grant) throw new Error('grant not found');
      const missing = /** @type {any} */ (details.prompt.details);
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    return send(res, 400, 'text/plain', `unexpected ${action} at the ${prompt} prompt`);
  }

  /** @param {import('node:http').IncomingMessage} req @param {import('node:http').ServerResponse} res @param {string} path */
  async function control(req, res, path) {
    if (path === '/__test/mode') {
      if (req.method === 'POST') {
        const asked = JSON.parse((await readBody(req)) || '{}').mode;
        if (!MODES.includes(asked)) return send(res, 400, 'application/json', JSON.stringify({ error: `mode must be one of ${MODES.join(', ')}` }));
        mode = asked;
      }
      return send(res, 200, 'application/json', JSON.stringify({ mode, rewritten }));
    }
    if (path === '/__test/id-token' && req.method === 'POST') {
      const { username, ...overrides } = JSON.parse((await readBody(req)) || '{}');
      const user = o.users.find((u) => u.username === username);
      if (!user) return send(res, 404, 'application/json', JSON.stringify({ error: 'no such user' }));
      const now = Math.floor(Date.now() / 1000);
      const idToken = await new SignJWT({ ...user.claims, iss: url, aud: 'amphi', iat: now, exp: now + 600, ...overrides })
        .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
        .sign(privateKey);
      return send(res, 200, 'application/json', JSON.stringify({ id_token: idToken }));
    }
    return send(res, 404, 'text/plain', 'not found');
  }

  /** @param {import('node:http').ServerResponse} res @param {string} body @param {number} [status] */
  function page(res, body, status = 200) {
    send(res, status, 'text/html; charset=utf-8', `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(o.name)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:2rem auto;padding:0 1rem}
label,input,button{display:block;font:inherit;margin:.3rem 0}input{width:100%;padding:.4rem}
button{padding:.4rem 1rem}.alert{color:#8a1c14}</style></head>
<body><header><strong>${esc(o.name)}</strong> <small>(${esc(url)})</small></header>${body}</body></html>`);
  }

  /** @param {string} uid @param {string} username */
  function loginForm(uid, username) {
    return `<h1>Sign in</h1>
${username ? '<p class="alert" role="alert">Wrong username or password.</p>' : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required value="${esc(username)}" autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="login">Sign in</button></form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit" id="cancel">Cancel</button></form>`;
  }

  /** @param {string} uid @param {Record<string, unknown>} params */
  function consentForm(uid, params) {
    return `<h1>Allow ${esc(String(params.client_id))}?</h1>
<p>It asks for: ${esc(String(params.scope ?? ''))}.</p>
<form method="post" action="/interaction/${esc(uid)}/confirm"><button type="submit" id="allow">Allow</button></form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit" id="deny">Deny</button></form>`;
  }

  return {
    id: o.id,
    name: o.name,
    issuer: url,
    kid,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}

/** @param {string} s */
function esc(s) {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** @param {import('node:http').ServerResponse} res @param {number} status @param {string} type @param {string} body */
function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

/** A request body, at most 64 KiB. @param {import('node:http').IncomingMessage} req @returns {Promise<string>} */
function readBody(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    /** @type {Buffer[]} */
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > 65536) {
        reject(new Error('body too large'));
        req.destroy();
      } else {
        chunks.push(c);
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
