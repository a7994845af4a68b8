#!/usr/bin/env node
// Two OpenID providers on loopback for amphi's single sign-on tests.
//
//   node providers.js --ports 9001,9002 --redirect-uri http://127.0.0.1:5280/sso/callback
//
// Options (or environment):
//   --ports A,B          (OIDC_PORTS)         issuer ports, 0 = any free port; default 9001,9002
//   --redirect-uri URI   (OIDC_REDIRECT_URIS, comma-separated) amphi's callback, repeatable;
//                                            default http://localhost:5280/sso/callback
//   --host H             (OIDC_HOST)          loopback address; default 127.0.0.1
//   --verbose            (OIDC_VERBOSE=1)     log grants, errors and rewrites to stderr
//
// When both listen, one line goes to stdout:
//   oidc-providers ready {"issuers":[{"id":"agents","name":"…","issuer":"http://127.0.0.1:9001"},…]}
// Accounts and passwords are in users.js. SIGTERM or SIGINT stops both.

import { parseArgs } from 'node:util';
import { startIssuer } from './issuer.js';
import { USERS, ISSUERS } from './users.js';

const { values } = parseArgs({
  options: {
    ports: { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    host: { type: 'string' },
    verbose: { type: 'boolean' },
  },
});

const ports = (values.ports ?? process.env.OIDC_PORTS ?? '9001,9002').split(',').map(Number);
if (ports.length !== ISSUERS.length || ports.some((p) => !Number.isInteger(p) || p < 0 || p > 65535)) {
  console.error(`--ports needs ${ISSUERS.length} port numbers separated by a comma, e.g. --ports 9001,9002`);
  process.exit(2);
}
const redirectUris = values['redirect-uri']
  ?? (process.env.OIDC_REDIRECT_URIS ? process.env.OIDC_REDIRECT_URIS.split(',') : ['http://localhost:5280/sso/callback']);
const host = values.host ?? process.env.OIDC_HOST ?? '127.0.0.1';
const verbose = values.verbose ?? process.env.OIDC_VERBOSE === '1';

const issuers = await Promise.all(ISSUERS.map((i, n) =>
  startIssuer({ ...i, host, port: ports[n], redirectUris, users: USERS[i.id], verbose })));

console.log(`oidc-providers ready ${JSON.stringify({ issuers: issuers.map(({ id, name, issuer }) => ({ id, name, issuer })), redirectUris })}`);

const stop = async () => {
  await Promise.all(issuers.map((i) => i.close()));
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
