// Room options from the create form, seen by another account: password, members only.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAmphi } from '../lib/server.js';
import { launch, newPage, shot } from '../lib/browser.js';

/** @type {import('../lib/server.js').Amphi} */
let amphi;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  amphi = await startAmphi({ users: [['host', 'host-pass'], ['visitor', 'visitor-pass']] });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await amphi?.stop();
});

/** @param {string} user @param {string} password */
async function signedIn(user, password) {
  const p = await newPage(browser, { locale: 'en-US' });
  await p.page.goto(`${amphi.base}/signin`);
  await p.page.fill('#user', user);
  await p.page.fill('#password', password);
  await p.page.click('#signin-form button[type=submit]');
  await p.page.waitForSelector(`text=Signed in as ${user}@localhost`);
  return p;
}

/** @param {import('playwright-core').Page} page @param {string} name @param {(page: import('playwright-core').Page) => Promise<void>} options */
async function createRoom(page, name, options) {
  await page.click('a[href="/rooms/new"]');
  await page.fill('#room-name', name);
  await options(page);
  await page.click('#create-form button[type=submit]');
  await page.waitForSelector('#participants li[data-nick="host"]');
}

test('a password-protected room asks for its password', async () => {
  const host = await signedIn('host', 'host-pass');
  await createRoom(host.page, 'secret', (p) => p.fill('#room-password', 'sesame'));
  const guest = await signedIn('visitor', 'visitor-pass');
  await guest.page.goto(`${amphi.base}/room/secret`);
  await guest.page.waitForSelector('#room-password-form');
  await shot(guest.page, '20-room-password');
  await guest.page.fill('#room-password', 'wrong');
  await guest.page.click('#room-password-form button[type=submit]');
  await guest.page.waitForSelector('.alert');
  await guest.page.goto(`${amphi.base}/room/secret`);
  await guest.page.fill('#room-password', 'sesame');
  await guest.page.click('#room-password-form button[type=submit]');
  await guest.page.waitForSelector('#participants li[data-nick="visitor"]');
  await host.page.waitForSelector('#participants li[data-nick="visitor"]');
  assert.deepEqual([...host.errors, ...guest.errors], []);
  await host.ctx.close();
  await guest.ctx.close();
});

test('a members-only room refuses a non-member with the server\'s reason', async () => {
  const host = await signedIn('host', 'host-pass');
  await createRoom(host.page, 'club', (p) => p.check('#room-membersonly'));
  const guest = await signedIn('visitor', 'visitor-pass');
  await guest.page.goto(`${amphi.base}/room/club`);
  await guest.page.waitForSelector('.alert');
  assert.match(await guest.page.textContent('.alert') ?? '', /Cannot enter the room/);
  await shot(guest.page, '21-members-only');
  await host.ctx.close();
  await guest.ctx.close();
});
