// The web client's modules on their own: type check, SCRAM against RFC 7677, translations.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = join(dirname(fileURLToPath(import.meta.url)), '..');

test('web/ type-checks (tsc --checkJs --noEmit, strict)', () => {
  execFileSync(join(HERE, 'node_modules', '.bin', 'tsc'), ['-p', join(HERE, 'tsconfig.json')], { stdio: 'inherit' });
});

test('SCRAM-SHA-256 matches the RFC 7677 example', async () => {
  const { scramSha256, textToBase64 } = await import('../../../web/js/sasl.js');
  const m = scramSha256('user', 'pencil', 'rOprNGfwEbeRWgbNEkqO');
  assert.equal(atob(await m.initial()), 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
  const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
  const final = atob(await m.step(textToBase64(serverFirst)));
  assert.equal(final, 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
  assert.equal(await m.verify(textToBase64('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')), true);
  assert.equal(await m.verify(textToBase64('v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')), false, 'a wrong server signature is caught');
  const other = scramSha256('user', 'pencil', 'abc');
  await assert.rejects(other.step(textToBase64('r=xyz,s=AAAA,i=4096')), /invalid SCRAM challenge/, 'a nonce not extending ours');
});

test('French and English have the same messages', async () => {
  const g = /** @type {any} */ (globalThis);
  g.localStorage ??= { getItem: () => null, setItem: () => {} };
  g.navigator ??= { languages: ['fr-FR'], language: 'fr-FR' };
  const { missingKeys, t } = await import('../../../web/js/i18n.js');
  assert.deepEqual(missingKeys(), []);
  assert.equal(t('home.stats', { meetings: 2, participants: 7, capacity: 50 }),
    'Actuellement 2 réunions et 7 participants pour une capacité de 50 participants');
});
