// The owner's "Space" dialog (web/js/pages/space.js, xep/amphi-spaces.md): bind a room to
// one individual member with the moderator role, see the server refuse a remote JID, the
// member enter as moderator, a third account refused with the server's text, then unbind
// and the third account enters. No directory is needed: listed members are not looked up.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAmphi } from '../lib/server.js';
import { launch, newPage, shot } from '../lib/browser.js';

/** @type {import('../lib/server.js').Amphi} */
let amphi;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  amphi = await startAmphi({ users: [['boss', 'boss-pass'], ['mate', 'mate-pass'], ['outsider', 'outsider-pass']] });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await amphi?.stop();
});

/** @param {string} user @param {string} password @param {string} locale */
async function signedIn(user, password, locale) {
  const p = await newPage(browser, { locale });
  await p.page.goto(`${amphi.base}/signin`);
  await p.page.fill('#user', user);
  await p.page.fill('#password', password);
  await p.page.click('#signin-form button[type=submit]');
  await p.page.waitForSelector(`#signed-in-as:has-text("${user}@localhost")`);
  return p;
}

/** The id of the focused element. @param {import('playwright-core').Page} page */
const focused = (page) => page.evaluate(() => document.activeElement?.id ?? '');

test('an owner binds a room to a member, the space admits only them, then unbinding reopens it', async () => {
  // The owner works in French, from the keyboard where it matters.
  const boss = await signedIn('boss', 'boss-pass', 'fr-FR');
  await boss.page.click('a[href="/rooms/new"]');
  await boss.page.fill('#room-name', 'equipe');
  await boss.page.fill('#room-description', 'Équipe projet');
  await boss.page.click('#create-form button[type=submit]');
  await boss.page.waitForSelector('#participants li[data-nick="boss"]');

  await boss.page.focus('#space-settings');
  await boss.page.keyboard.press('Enter');
  await boss.page.waitForSelector('#space-form');
  assert.equal(await boss.page.textContent('#space-title'), 'Espace de collaboration');
  assert.match(await boss.page.textContent('#space-status') ?? '', /n’est liée à aucun espace/);
  assert.equal(await focused(boss.page), 'space-groups', 'the first field has the focus');
  assert.equal(await boss.page.isChecked('#space-role-moderator'), true, 'moderator is the default role');
  assert.equal(await boss.page.locator('#space-unbind').count(), 0, 'nothing to unbind yet');
  await shot(boss.page, 'spaces-01-dialog-empty');

  // A user of another server: the server refuses (not-acceptable), the dialog says why in
  // French, with the server's own words, and points at the field.
  await boss.page.fill('#space-members', 'bob@example.org');
  await boss.page.click('#space-save');
  await boss.page.waitForSelector('#space-error .alert');
  const refusal = await boss.page.textContent('#space-error .alert') ?? '';
  assert.match(refusal, /Réglage refusé : les membres individuels doivent être des comptes de ce serveur \(localhost\)/);
  assert.match(refusal, /Réponse du serveur : amphi#space_members: bob@example\.org is not an account of localhost/);
  assert.equal(await boss.page.getAttribute('#space-members', 'aria-invalid'), 'true');
  assert.equal(await focused(boss.page), 'space-members');
  assert.equal(await boss.page.isVisible('#space-dialog'), true, 'the dialog stays open on a refusal');
  await shot(boss.page, 'spaces-02-remote-jid-refused');

  // The member alone, entering as moderator.
  await boss.page.fill('#space-members', 'mate@localhost\n');
  await boss.page.check('#space-role-moderator');
  await boss.page.click('#space-save');
  await boss.page.waitForSelector('#space-dialog', { state: 'detached' });
  await boss.page.waitForSelector('#toast:has-text("Espace enregistré")');
  assert.equal(await focused(boss.page), 'space-settings', 'focus returns to the button');

  // Opened again: the stored binding, and the way out; Escape closes.
  await boss.page.keyboard.press('Enter');
  await boss.page.waitForSelector('#space-form');
  assert.equal(await boss.page.inputValue('#space-members'), 'mate@localhost');
  assert.equal(await boss.page.inputValue('#space-groups'), '');
  assert.match(await boss.page.textContent('#space-status') ?? '', /liée à un espace/);
  await boss.page.waitForSelector('#space-unbind');
  await shot(boss.page, 'spaces-03-dialog-bound');
  await boss.page.keyboard.press('Escape');
  await boss.page.waitForSelector('#space-dialog', { state: 'detached' });
  assert.equal(await focused(boss.page), 'space-settings');

  // The member enters, as moderator (and member), and sees no space settings.
  const mate = await signedIn('mate', 'mate-pass', 'en-US');
  await mate.page.goto(`${amphi.base}/room/equipe`);
  await mate.page.waitForSelector('#participants li[data-nick="mate"]');
  const mine = mate.page.locator('#participants li[data-nick="mate"]');
  assert.equal(await mine.locator('.badge.role-moderator').textContent(), 'moderator');
  assert.match(await mine.textContent() ?? '', /member/);
  assert.equal(await mate.page.locator('#space-settings').count(), 0, 'non-owners never see the dialog');
  await boss.page.waitForSelector('#participants li[data-nick="mate"] .badge.role-moderator');
  await shot(mate.page, 'spaces-04-member-moderator');

  // Anyone else is refused, with the server's (French and English) text.
  const outsider = await signedIn('outsider', 'outsider-pass', 'en-US');
  await outsider.page.goto(`${amphi.base}/room/equipe`);
  await outsider.page.waitForSelector('.alert');
  const refused = await outsider.page.textContent('.alert') ?? '';
  assert.match(refused, /Cannot enter the room/);
  assert.match(refused, /This room is reserved for the members of its space/);
  assert.match(refused, /Ce salon est réservé aux membres de son espace/);
  await shot(outsider.page, 'spaces-05-outsider-refused');

  // Unbind (not keeping members-only): the room opens again.
  await boss.page.click('#space-settings');
  await boss.page.waitForSelector('#space-unbind');
  assert.equal(await boss.page.isChecked('#space-keep-membersonly'), false);
  await boss.page.locator('#space-unbind').scrollIntoViewIfNeeded();
  await shot(boss.page, 'spaces-06-unbind');
  await boss.page.click('#space-unbind');
  await boss.page.waitForSelector('#space-dialog', { state: 'detached' });
  await boss.page.waitForSelector('#toast:has-text("La salle n’est plus liée à un espace")');
  assert.equal(await focused(boss.page), 'space-settings');
  await boss.page.click('#space-settings');
  await boss.page.waitForSelector('#space-form');
  assert.equal(await boss.page.inputValue('#space-members'), '');
  assert.match(await boss.page.textContent('#space-status') ?? '', /n’est liée à aucun espace/);
  await boss.page.click('#space-cancel');
  await boss.page.waitForSelector('#space-dialog', { state: 'detached' });

  await outsider.page.goto(`${amphi.base}/room/equipe`);
  await outsider.page.waitForSelector('#participants li[data-nick="outsider"]');
  await boss.page.waitForSelector('#participants li[data-nick="outsider"]');
  // The form went back whole: the settings the dialog does not show kept their values.
  await outsider.page.waitForSelector('#room-about:has-text("Équipe projet")');
  assert.equal(await outsider.page.locator('#space-settings').count(), 0);
  await shot(outsider.page, 'spaces-07-outsider-enters');
  await shot(boss.page, 'spaces-08-owner-view');

  assert.deepEqual([...boss.errors, ...mate.errors, ...outsider.errors], []);
  for (const p of [boss, mate, outsider]) await p.ctx.close();
});

test('the dialog speaks English too, and an empty binding is caught before the server', async () => {
  const boss = await signedIn('boss', 'boss-pass', 'en-US');
  await boss.page.goto(`${amphi.base}/room/equipe`);
  await boss.page.waitForSelector('#participants li[data-nick="boss"]');
  await boss.page.click('#space-settings');
  await boss.page.waitForSelector('#space-form');
  assert.equal(await boss.page.textContent('#space-title'), 'Collaboration space');
  await boss.page.click('#space-save');
  assert.equal(await boss.page.textContent('#space-error .alert'), 'Give at least one group, profile or member.');
  // A guest login's name is refused like a remote JID, now in English.
  await boss.page.fill('#space-members', 'guest-abc123@localhost');
  await boss.page.check('#space-role-participant');
  await boss.page.click('#space-save');
  await boss.page.waitForSelector('#space-error .alert p.detail');
  const refusal = await boss.page.textContent('#space-error .alert') ?? '';
  assert.match(refusal, /Setting refused: individual members must be accounts of this server \(localhost\)/);
  assert.match(refusal, /Server’s answer: amphi#space_members: guest-abc123@localhost is not an account/);
  // A profile that is not attribute=value: bad-request, pointed at the profiles.
  await boss.page.fill('#space-members', '');
  await boss.page.fill('#space-profiles', 'inspector');
  await boss.page.click('#space-save');
  await boss.page.waitForSelector('#space-profiles[aria-invalid="true"]');
  assert.match(await boss.page.textContent('#space-error .alert') ?? '', /a profile is written attribute=value/);
  await shot(boss.page, 'spaces-09-dialog-en-bad-profile');
  await boss.page.keyboard.press('Escape');
  await boss.page.waitForSelector('#space-dialog', { state: 'detached' });
  assert.deepEqual(boss.errors, []);
  await boss.ctx.close();
});
