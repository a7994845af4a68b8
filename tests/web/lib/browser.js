// Headless Chromium (the Debian package) through playwright-core.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SHOTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'screenshots');
mkdirSync(SHOTS, { recursive: true });

/** @param {string[]} [extraArgs] more Chromium flags (the call test's screen capture) */
export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required', ...extraArgs],
  });
}

/**
 * A page that fails the test on a script error or a CSP violation.
 * @param {import('playwright-core').Browser} browser
 * @param {{ locale?: string, viewport?: { width: number, height: number } }} [opts]
 */
export async function newPage(browser, opts = {}) {
  const ctx = await browser.newContext({ locale: opts.locale ?? 'fr-FR', viewport: opts.viewport ?? { width: 1280, height: 800 } });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write', 'camera', 'microphone']);
  const page = await ctx.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) errors.push(`csp: ${m.text()}`);
  });
  return { ctx, page, errors };
}

/** @param {import('playwright-core').Page} page @param {string} name */
export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/**
 * Keep every RTCPeerConnection the page makes, so the test can read its stats; with
 * `noUdp`, remote UDP candidates never reach Chrome.
 * Runs in the page: `page.addInitScript(recordPeerConnections[, noUdp])`.
 * @param {boolean} [noUdp]
 */
export function recordPeerConnections(noUdp) {
  const Base = window.RTCPeerConnection;
  /** @type {RTCPeerConnection[]} */
  const all = [];
  Object.defineProperty(window, '__pcs', { value: all });
  window.RTCPeerConnection = class extends Base {
    /** @param {RTCConfiguration} [c] */
    constructor(c) {
      super(c);
      all.push(this);
    }

    /** @param {RTCSessionDescriptionInit} d */
    setRemoteDescription(d) {
      const sdp = noUdp && d?.sdp ? d.sdp.replace(/a=candidate:\S+ \d+ udp [^\r\n]*\r\n/gi, '') : d?.sdp;
      return super.setRemoteDescription(d && { type: d.type, sdp });
    }
  };
}
