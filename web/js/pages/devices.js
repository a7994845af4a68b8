// Device test: microphone level, camera preview, speaker tone. `mountDeviceTest` is the
// reusable part (the call's pre-join screen mounts it too).

import { t } from '../i18n.js';
import { h, render, alertBox } from '../ui.js';

/** @type {{ stop(): void } | null} */
let active = null;

export function stopDeviceTest() {
  active?.stop();
  active = null;
}

/**
 * Mount the test into `container`. `start()` asks for the devices; `stream` is the
 * current MediaStream (for a call to reuse); `stop()` releases everything.
 * @param {HTMLElement} container
 */
export function mountDeviceTest(container) {
  const video = /** @type {HTMLVideoElement} */ (h('video', { id: 'camera-preview', autoplay: true, muted: true, playsinline: true }));
  const meter = /** @type {HTMLMeterElement} */ (h('meter', { id: 'mic-level', min: '0', max: '1', low: '0.3', high: '0.8', optimum: '0.5', value: '0' }));
  const micSelect = /** @type {HTMLSelectElement} */ (h('select', { id: 'mic-select' }));
  const camSelect = /** @type {HTMLSelectElement} */ (h('select', { id: 'camera-select' }));
  const error = h('div', {});
  /** @type {MediaStream|null} */
  let stream = null;
  /** @type {AudioContext|null} */
  let audio = null;
  let frame = 0;

  const stop = () => {
    cancelAnimationFrame(frame);
    stream?.getTracks().forEach((tr) => tr.stop());
    stream = null;
    video.srcObject = null;
    audio?.close().catch(() => {});
    audio = null;
    meter.value = 0;
  };

  const fillSelects = async () => {
    const devices = await navigator.mediaDevices.enumerateDevices();
    /** @param {HTMLSelectElement} sel @param {MediaDeviceKind} kind */
    const fill = (sel, kind) => {
      const list = devices.filter((d) => d.kind === kind);
      sel.replaceChildren(...(list.length ? list.map((d, i) => h('option', { value: d.deviceId }, d.label || `${kind} ${i + 1}`))
        : [h('option', { value: '' }, t('devices.none'))]));
    };
    fill(micSelect, 'audioinput');
    fill(camSelect, 'videoinput');
  };

  const start = async () => {
    stop();
    error.replaceChildren();
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: micSelect.value ? { deviceId: { exact: micSelect.value } } : true,
        video: camSelect.value ? { deviceId: { exact: camSelect.value } } : true,
      });
    } catch (err) {
      error.replaceChildren(alertBox(t('devices.denied', { reason: err instanceof Error ? err.message : String(err) })));
      return;
    }
    video.srcObject = stream;
    await fillSelects();
    audio = new AudioContext();
    const analyser = audio.createAnalyser();
    analyser.fftSize = 1024;
    audio.createMediaStreamSource(stream).connect(analyser);
    const data = new Float32Array(analyser.fftSize);
    const tick = () => {
      analyser.getFloatTimeDomainData(data);
      let sum = 0;
      for (const v of data) sum += v * v;
      // Loudness in dBFS mapped from -60 dB (silence) .. 0 dB (full scale) onto 0..1.
      const db = 20 * Math.log10(Math.sqrt(sum / data.length) || 1e-6);
      meter.value = Math.max(0, Math.min(1, (db + 60) / 60));
      meter.dataset.level = meter.value.toFixed(3);
      frame = requestAnimationFrame(tick);
    };
    tick();
  };

  const playTone = () => {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 440;
    gain.gain.setValueAtTime(0.2, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 1);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 1);
    osc.onended = () => ctx.close();
  };

  micSelect.addEventListener('change', start);
  camSelect.addEventListener('change', start);
  container.append(
    h('div', { class: 'devices' },
      h('div', { class: 'card' }, h('h2', {}, t('devices.camera')), video, h('label', { for: 'camera-select' }, t('devices.camera')), camSelect),
      h('div', { class: 'card' }, h('h2', {}, t('devices.mic')), h('label', { for: 'mic-level' }, t('devices.level')), meter,
        h('label', { for: 'mic-select' }, t('devices.mic')), micSelect),
      h('div', { class: 'card' }, h('h2', {}, t('devices.speaker')), h('button', { type: 'button', id: 'play-tone', onclick: playTone }, t('devices.play')))),
    error,
    h('p', { class: 'actions' },
      h('button', { type: 'button', class: 'primary', id: 'start-test', onclick: start }, t('devices.start')),
      h('button', { type: 'button', id: 'stop-test', onclick: stop }, t('devices.stop'))));
  fillSelects().catch(() => {});
  return { start, stop, get stream() { return stream; } };
}

export function devicesPage() {
  const box = h('div', {});
  render(h('h1', {}, t('devices.title')), h('p', { class: 'lead' }, t('devices.lead')), box);
  active = mountDeviceTest(box);
}
