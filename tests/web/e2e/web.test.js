// The web client end to end in headless Chromium: sign up / sign in, rooms, invitations,
// a guest from a second browser context, chat, moderation, forged links, devices.
// The steps share one server and run in order; each saves a screenshot.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAmphi } from '../lib/server.js';
import { launch, newPage, shot } from '../lib/browser.js';

/** @type {import('../lib/server.js').Amphi} */
let amphi;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof newPage>>} */
let owner;
/** @type {Awaited<ReturnType<typeof newPage>>} */
let guest;
let participantLink = '';
let moderatorLink = '';

before(async () => {
  amphi = await startAmphi({ capacity: 100 });
  browser = await launch();
  owner = await newPage(browser, { locale: 'fr-FR' });
});

after(async () => {
  for (const p of [owner, guest]) {
    if (p) assert.deepEqual(p.errors, [], 'no script errors or CSP violations');
  }
  await browser?.close();
  await amphi?.stop();
});

test('landing page shows the live figures, in French then English', async () => {
  const { page } = owner;
  await page.goto(amphi.base);
  await page.waitForSelector('#stats:not(:empty)');
  assert.equal(await page.textContent('#stats'), 'Actuellement 0 réunions et 0 participants pour une capacité de 100 participants');
  assert.equal(await page.getAttribute('html', 'lang'), 'fr');
  await shot(page, '01-home-fr');
  await page.click('#lang');
  await page.waitForSelector('text=Currently 0 meetings and 0 participants for a capacity of 100 participants');
  await shot(page, '02-home-en');
  await page.click('#lang');
  await page.waitForSelector('text=Actuellement');
});

test('sign up, sign out, refused sign-in, sign in', async () => {
  const { page } = owner;
  await page.click('a[href="/signup"]');
  await page.fill('#user', 'alice');
  await page.fill('#password', 'correct horse');
  await shot(page, '03-signup');
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('text=Connecté en tant que alice@localhost');
  await page.click('text=Se déconnecter');
  await page.waitForSelector('a[href="/signin"]');
  await page.click('#nav a[href="/signin"]');
  await page.fill('#user', 'alice');
  await page.fill('#password', 'wrong horse');
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#signin-error .alert');
  await shot(page, '04-signin-refused');
  await page.fill('#password', 'correct horse');
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('text=Connecté en tant que alice@localhost');
});

test('create a permanent room with options', async () => {
  const { page } = owner;
  await page.click('a[href="/rooms/new"]');
  await page.fill('#room-name', 'equipe');
  await page.fill('#room-description', 'Réunion d’équipe du lundi');
  await page.check('#room-moderated');
  await page.fill('#room-maxusers', '20');
  await shot(page, '05-create-room');
  await page.click('#create-form button[type=submit]');
  await page.waitForURL(`${amphi.base}/room/equipe`);
  await page.waitForSelector('#participants li[data-nick="alice"]');
  const badges = await page.textContent('#participants li[data-nick="alice"]');
  assert.match(badges ?? '', /modérateur/);
  assert.match(badges ?? '', /propriétaire/);
  await shot(page, '06-room-owner');
});

test('My rooms lists the room, also after a server restart', async () => {
  const { page } = owner;
  await page.click('#nav a[href="/rooms"]');
  await page.waitForSelector('#my-rooms li[data-room="equipe"]');
  await shot(page, '07-my-rooms');
  await amphi.restart();
  // The open tab notices, signs in again by itself and shows the page again.
  await page.waitForSelector('#toast:has-text("Connexion rétablie")', { timeout: 20000 });
  await page.waitForSelector('#my-rooms li[data-room="equipe"]');
  // A reload signs in again from this tab's session memory.
  await page.reload();
  await page.waitForSelector('#my-rooms li[data-room="equipe"]', { timeout: 15000 });
});

test('a temporary meeting is not in My rooms', async () => {
  const { page } = owner;
  await page.click('a[href="/"]');
  await page.click('#new-meeting');
  await page.waitForURL(/\/room\/[a-z]+-[a-z]+-\d{6}$/);
  const name = new URL(page.url()).pathname.split('/').pop();
  await page.waitForSelector('#participants li[data-nick="alice"]');
  await shot(page, '08-temporary-meeting');
  await page.click('#nav a[href="/rooms"]');
  await page.waitForSelector('#my-rooms li[data-room="equipe"]');
  assert.equal(await page.locator(`#my-rooms li[data-room="${name}"]`).count(), 0);
});

test('the owner copies the participant link from the invitation dialog', async () => {
  const { page } = owner;
  await page.click('#my-rooms li[data-room="equipe"] a');
  await page.waitForSelector('#participants li[data-nick="alice"]');
  await page.click('#invite');
  await page.waitForSelector('#participant-link');
  participantLink = await page.inputValue('#participant-link');
  assert.match(participantLink, new RegExp(`^${amphi.base}/meeting/signin/participant/equipe/hash/[A-Za-z0-9_-]{43}$`));
  moderatorLink = await page.inputValue('#moderator-link');
  assert.match(moderatorLink, /\/meeting\/signin\/moderator\/equipe\/hash\//);
  await page.click('[data-copy="participant-link"]');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), participantLink);
  await shot(page, '09-invite-dialog');
  await page.keyboard.press('Escape');
});

test('forged or altered links are refused', async () => {
  const { page } = await newPage(browser, { locale: 'en-US' });
  const sig = participantLink.split('/').pop() ?? '';
  const altered = sig.slice(0, 10) + (sig[10] === 'A' ? 'B' : 'A') + sig.slice(11);
  for (const bad of [
    participantLink.replace(sig, altered),
    participantLink.replace('/participant/', '/moderator/'),
    participantLink.replace('/equipe/', '/autre/'),
  ]) {
    await page.goto(bad);
    await page.waitForSelector('#join-invalid');
  }
  await shot(page, '10-forged-link');
  // A genuine moderator link is for people with an account: it asks to sign in.
  await page.goto(moderatorLink);
  await page.waitForSelector('text=Sign in to continue.');
  await page.context().close();
});

test('a guest joins from a participant link; chat both ways', async () => {
  guest = await newPage(browser, { locale: 'en-US' });
  const g = guest.page;
  await g.goto(participantLink);
  await g.waitForSelector('#join-form');
  await g.fill('#display-name', 'Bob Guest');
  await shot(g, '11-join-page');
  await g.click('#join-form button[type=submit]');
  await g.waitForURL(`${amphi.base}/room/equipe`);
  await g.waitForSelector('#participants li[data-nick="alice"]');
  await owner.page.waitForSelector('#participants li[data-nick="Bob Guest"]');
  // The room is moderated (a waiting room): the guest listens until given voice.
  assert.match(await g.textContent('#participants li[data-nick="Bob Guest"]') ?? '', /listener/);
  await g.waitForSelector('#visitor-notice');
  assert.equal(await g.isDisabled('#chat-input'), true);
  await owner.page.click('#participants li[data-nick="Bob Guest"] [data-action="unmute"]');
  await g.waitForSelector('#participants li[data-nick="Bob Guest"]:has-text("participant")');
  await g.waitForSelector('#visitor-notice', { state: 'detached' });
  await owner.page.fill('#chat-input', 'Bonjour Bob');
  await owner.page.press('#chat-input', 'Enter');
  await g.waitForSelector('#chat-log li:has-text("Bonjour Bob")');
  await g.fill('#chat-input', 'Hello Alice');
  await g.click('#chat-form button[type=submit]');
  await owner.page.waitForSelector('#chat-log li:has-text("Hello Alice")');
  await shot(g, '12-guest-room');
  await shot(owner.page, '13-owner-room-with-guest');
});

test('the moderator kicks the guest', async () => {
  await owner.page.click('#participants li[data-nick="Bob Guest"] [data-action="kick"]');
  await guest.page.waitForSelector('#left-notice');
  assert.match(await guest.page.textContent('#left-notice') ?? '', /removed/);
  await owner.page.waitForSelector('#participants li[data-nick="Bob Guest"]', { state: 'detached' });
  await shot(guest.page, '14-guest-kicked');
});

test('a late joiner pages back through the room archive (XEP-0313)', async () => {
  const { page } = owner;
  for (let i = 1; i <= 60; i++) {
    await page.fill('#chat-input', `m${i}`);
    await page.press('#chat-input', 'Enter');
  }
  await page.waitForSelector('#chat-log li:has-text("m60")');
  const eve = await newPage(browser, { locale: 'en-US' });
  await eve.page.goto(participantLink);
  await eve.page.fill('#display-name', 'Eve');
  await eve.page.click('#join-form button[type=submit]');
  await eve.page.waitForSelector('#chat-log li:has-text("m60")');
  const first = eve.page.locator('#chat-log li .body', { hasText: /^m1$/ });
  assert.equal(await first.count(), 0, 'the join history is only the recent part');
  await eve.page.waitForSelector('#earlier:not([hidden])');
  for (let i = 0; i < 5 && (await first.count()) === 0; i++) {
    await eve.page.click('#earlier');
    await eve.page.waitForTimeout(300);
  }
  assert.equal(await first.count(), 1);
  await eve.page.waitForSelector('#earlier', { state: 'hidden' });
  const bodies = await eve.page.locator('#chat-log li .body').allTextContents();
  const ms = bodies.filter((b) => /^m\d+$/.test(b));
  assert.deepEqual(ms, Array.from({ length: 60 }, (_, i) => `m${i + 1}`), 'in order, no gaps, no duplicates');
  await shot(eve.page, '15-archive');
  await eve.ctx.close();
});

/** @type {Awaited<ReturnType<typeof newPage>>} */
let phone;

test('the room page reads on a phone', async () => {
  phone = await newPage(browser, { locale: 'fr-FR', viewport: { width: 390, height: 844 } });
  await phone.page.goto(participantLink);
  await phone.page.fill('#display-name', 'Chloé');
  await phone.page.click('#join-form button[type=submit]');
  await phone.page.waitForSelector('#participants li[data-nick="Chloé"]');
  assert.match(await phone.page.textContent('#room-about') ?? '', /Réunion d’équipe du lundi/);
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, 'no horizontal scrolling');
  await shot(phone.page, '15-room-phone');
});

test('the owner makes a participant moderator, then bans them', async () => {
  await owner.page.click('#participants li[data-nick="Chloé"] [data-action="grant"]');
  await phone.page.waitForSelector('#participants li[data-nick="Chloé"] .role-moderator');
  await owner.page.waitForSelector('#participants li[data-nick="Chloé"] .role-moderator');
  await owner.page.click('#participants li[data-nick="Chloé"] [data-action="ban"]');
  await phone.page.waitForSelector('#left-notice');
  assert.match(await phone.page.textContent('#left-notice') ?? '', /banni/);
  await shot(phone.page, '16-banned-phone');
  await phone.ctx.close();
});

test('regenerating the links revokes the old ones', async () => {
  const { page } = owner;
  await page.click('#invite');
  await page.waitForSelector('#participant-link');
  await page.click('#regenerate');
  await page.waitForFunction((old) => /** @type {HTMLInputElement} */ (document.querySelector('#participant-link'))?.value !== old, participantLink);
  const fresh = await page.inputValue('#participant-link');
  await page.keyboard.press('Escape');
  const visitor = await newPage(browser, { locale: 'en-US' });
  await visitor.page.goto(participantLink);
  await visitor.page.waitForSelector('#join-invalid');
  participantLink = fresh;
  await visitor.page.goto(participantLink);
  await visitor.page.waitForSelector('#join-form');
  await visitor.ctx.close();
});

test('the owner ends the meeting for everyone', async () => {
  const dan = await newPage(browser, { locale: 'en-US' });
  await dan.page.goto(participantLink);
  await dan.page.fill('#display-name', 'Dan');
  await dan.page.click('#join-form button[type=submit]');
  await dan.page.waitForSelector('#participants li[data-nick="Dan"]');
  owner.page.once('dialog', (d) => d.accept());
  await owner.page.click('#end-meeting');
  await dan.page.waitForSelector('#left-notice:has-text("The meeting has ended.")');
  await shot(dan.page, '17-meeting-ended');
  await owner.page.waitForSelector('#left-notice');
  await owner.page.click('#nav a[href="/rooms"]');
  await owner.page.waitForSelector('#my-rooms-empty');
  assert.deepEqual(dan.errors, []);
  await dan.ctx.close();
});

test('device test: camera preview and microphone level', async () => {
  const { page, ctx } = await newPage(browser, { locale: 'en-US' });
  await page.goto(`${amphi.base}/devices`);
  await page.click('#start-test');
  await page.waitForFunction(() => {
    const v = /** @type {HTMLVideoElement|null} */ (document.querySelector('#camera-preview'));
    return !!v && v.videoWidth > 0;
  });
  await page.waitForFunction(() => Number(document.querySelector('#mic-level')?.getAttribute('data-level') ?? 0) > 0, null, { timeout: 10000 });
  await shot(page, '18-devices');
  await ctx.close();
});
