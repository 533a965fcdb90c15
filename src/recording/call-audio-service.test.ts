/**
 * Consent and recording at unit level, with the real Bridge between fake legs: the explicit-yes path (a DTMF digit
 * from the WhatsApp side, RFC 4733), no digit → no recording (or the call ends), on-demand start/stop, and the
 * file's channels (user left, agent right). The WhatsApp test user (libwebrtc) cannot send DTMF, hence this level.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { detectTone } from '../../test/audio/goertzel.js';
import { readWav, writeWav } from '../../test/audio/wav.js';
import { decodeOggOpus, parseOggPages } from '../../test/audio/ogg.js';
import { configSchema } from '../config/schema.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { Bridge } from '../media/bridge.js';
import { ManualFrameClock } from '../media/frame-clock.js';
import { encodeG711 } from '../media/g711.js';
import { OpusEncoder8k } from '../media/opus-codec.js';
import { DtmfSender } from '../media/dtmf.js';
import { writeRtpHeader } from '../media/rtp-packet.js';
import { Call } from '../calls/call.js';
import type { CallRecord } from '../store/call-record.js';
import { CallAudioService } from './call-audio-service.js';
import { FakeSipLeg, FakeWhatsAppLeg } from '../media/fake-legs.js';

let now = 1000;
const sine = (hz: number, n: number, start: number): Int16Array => Int16Array.from({ length: n }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * hz * (start + i)) / 8000)));

const dir = mkdtempSync(join(tmpdir(), 'wagw-rec-'));
// A short announcement (0.3 s of 2 kHz) keeps the tests fast.
const announcementFile = join(dir, 'announce.wav');
writeWav(announcementFile, { sampleRate: 8000, samples: sine(2000, 2400, 0) });

function setup(recording: Record<string, unknown>) {
  const config = configSchema.parse({ recording: { folder: join(dir, `rec-${Math.random().toString(36).slice(2)}`), checkpointMs: 100, announcementFile, ...recording } });
  const metrics = createMetrics();
  const logger = createLogger('silent');
  const records: CallRecord[] = [];
  const call = new Call({ direction: 'user_initiated', tenant: 'acme', phoneNumberId: '1', businessNumber: '13175551399', userWaId: '16315553602' }, logger, metrics, (r) => { records.push(r); });
  call.transition('offered', 'test');
  call.transition('ringing', 'test');
  call.transition('answered', 'test');
  const clock = new ManualFrameClock();
  const wa = new FakeWhatsAppLeg(() => now);
  const sip = new FakeSipLeg(() => now);
  const bridge = new Bridge(wa, sip, { sipCodec: 'PCMU', clock, now: () => now });
  call.onTeardown(() => bridge.stop());
  bridge.startWhatsAppMedia();
  const service = new CallAudioService(() => config, logger, metrics);
  const enc = new OpusEncoder8k();
  const opus = new Uint8Array(1500);
  const g711 = Buffer.alloc(172);
  let f = 0;
  let dtmfSeq = 50_000;
  /** n frames: WhatsApp sends 1 kHz, the agent 440 Hz. */
  const frames = (n: number): void => {
    for (let i = 0; i < n; i++, f++) {
      const len = enc.encode(sine(1000, 160, f * 160), opus);
      wa.inject('audio', opus.subarray(0, len), { payloadType: 111, sequenceNumber: f & 0xffff, timestamp: f * 960, ssrc: 1, marker: false });
      writeRtpHeader(g711, { marker: false, payloadType: 0, sequenceNumber: f, timestamp: f * 160, ssrc: 7 });
      encodeG711('PCMU', sine(440, 160, f * 160), g711, 12);
      sip.inject(g711);
      now += 20;
      clock.tick(1);
    }
  };
  /** The WhatsApp user presses a key: RFC 4733 packets on the WhatsApp leg, as Meta would relay them. */
  const press = (digit: number): void => {
    const tx = new DtmfSender();
    tx.enqueue(digit, 100);
    const te = new Uint8Array(4);
    for (let info = tx.next(te); info; info = tx.next(te)) {
      wa.inject('dtmf', te, { payloadType: 126, sequenceNumber: dtmfSeq++, timestamp: f * 960, ssrc: 1, marker: info.start });
      frames(1);
    }
    frames(5);
  };
  const media = { activeBridge: bridge, onHold: false };
  return { config, metrics, call, service, frames, press, media, records };
}
const flush = () => new Promise((r) => setTimeout(r, 0));

describe('CallAudioService: consent and recording', () => {
  it('explicit policy: the announcement, then a "1" from WhatsApp → recorded, user left and agent right', async () => {
    const t = setup({ policy: 'always', consent: 'explicit' });
    t.service.attach(t.call, t.media);
    expect(t.service.state(t.call.id)).toMatchObject({ consent: 'pending', recording: false });
    t.frames(20);
    await flush();
    t.press(1);
    await flush();
    expect(t.service.state(t.call.id)).toMatchObject({ consent: 'explicit_yes', recording: true });
    t.frames(100);
    const record = await t.call.end({ by: 'whatsapp', outcome: 'answered', cause: 'whatsapp_hangup' });
    expect(record.recording).toMatchObject({ id: t.call.id, format: 'wav', consent: 'explicit_yes' });
    const wav = readWav(record.recording!.file);
    expect(wav).toMatchObject({ sampleRate: 8000, channels: 2 });
    const left = wav.samples.filter((_, i) => i % 2 === 0);
    const right = wav.samples.filter((_, i) => i % 2 === 1);
    expect(left.length).toBeGreaterThanOrEqual(100 * 160);
    expect(detectTone(left.subarray(-8000), 8000, 1000).detected).toBe(true);
    expect(detectTone(right.subarray(-8000), 8000, 440).detected).toBe(true);
    expect(detectTone(right.subarray(-8000), 8000, 1000).detected).toBe(false);
    expect(record.recording!.durationSeconds).toBeCloseTo(left.length / 8000, 2);
    expect(t.service.store.get(t.call.id)).toMatchObject({ status: 'complete', tenant: 'acme', consent: 'explicit_yes' });
  });

  it('format ogg (a tenant setting): <id>.opus, Opus in Ogg with the user left and the agent right; listed, opened and deleted like a WAV', async () => {
    const t = setup({ policy: 'always', consent: 'none', tenants: { acme: { format: 'ogg' } } });
    t.service.attach(t.call, t.media);
    await flush();
    t.frames(100);
    const record = await t.call.end({ by: 'whatsapp', outcome: 'answered', cause: 'whatsapp_hangup' });
    expect(record.recording).toMatchObject({ id: t.call.id, format: 'ogg' });
    expect(record.recording!.file).toBe(join(t.config.recording.folder, 'acme', `${t.call.id}.opus`));
    const bytes = readFileSync(record.recording!.file);
    const pages = parseOggPages(bytes);
    expect(pages.every((p) => p.crcOk)).toBe(true);
    const ogg = decodeOggOpus(bytes);
    expect(ogg.tags).toContain('CHANNELS=left:user,right:agent');
    expect(ogg.left.length).toBe(Math.round(record.recording!.durationSeconds * 8000));
    expect(ogg.left.length).toBeGreaterThanOrEqual(100 * 160);
    const last = (s: Int16Array) => s.subarray(-8000);
    // The user's tone is Opus-coded twice (WhatsApp leg, then the file): a lower SNR than the WAV's, still a clear tone.
    console.log(`ogg recording: left 1 kHz SNR ${detectTone(last(ogg.left), 8000, 1000).snrDb.toFixed(1)} dB, right 440 Hz SNR ${detectTone(last(ogg.right), 8000, 440).snrDb.toFixed(1)} dB`);
    expect(detectTone(last(ogg.left), 8000, 1000).detected).toBe(true);
    expect(detectTone(last(ogg.right), 8000, 440).detected).toBe(true);
    expect(detectTone(last(ogg.right), 8000, 1000).detected).toBe(false);
    expect(detectTone(last(ogg.left), 8000, 440).detected).toBe(false);
    const meta = t.service.store.get(t.call.id)!;
    expect(meta).toMatchObject({ status: 'complete', format: 'ogg', bytes: bytes.length });
    const opened = t.service.store.open(meta)!;
    expect(opened.size).toBe(bytes.length);
    expect(Buffer.concat((await opened.stream.toArray()) as Buffer[]).equals(bytes)).toBe(true);
    expect(t.service.store.delete(meta)).toBe(true);
    expect(existsSync(record.recording!.file)).toBe(false);
    // Other tenants keep the global format.
    expect(t.config.recording.format).toBe('wav');
  });

  it('explicit policy without a digit: no recording, the call goes on (proceed_unrecorded)', async () => {
    const t = setup({ policy: 'always', consent: 'explicit', consentTimeoutMs: 1000 });
    t.service.attach(t.call, t.media);
    t.frames(30); // the announcement has played
    await new Promise((r) => setTimeout(r, 1100));
    expect(t.service.state(t.call.id)).toMatchObject({ consent: 'no_consent', recording: false });
    expect(t.call.isEnded).toBe(false);
    t.press(1); // too late
    expect(t.service.state(t.call.id)).toMatchObject({ recording: false });
    expect(t.service.start(t.call.id)).toMatchObject({ ok: false, status: 409 });
    const record = await t.call.end({ by: 'whatsapp', outcome: 'answered', cause: 'whatsapp_hangup' });
    expect(record.recording).toBeUndefined();
    expect(existsSync(t.config.recording.folder)).toBe(false);
    expect(t.service.store.list()).toEqual([]);
  });

  it('explicit policy without a digit and onNoConsent end_call: the call ends', async () => {
    const t = setup({ policy: 'always', consent: 'explicit', consentTimeoutMs: 1000, onNoConsent: 'end_call' });
    t.service.attach(t.call, t.media);
    t.frames(30);
    const record = await t.call.ended;
    expect(record).toMatchObject({ endedBy: 'gateway', cause: 'recording_consent_refused' });
    expect(record.recording).toBeUndefined();
  });

  it('a digit not in consentDigits is no yes', async () => {
    const t = setup({ policy: 'always', consent: 'explicit', consentDigits: '1', consentTimeoutMs: 1000 });
    t.service.attach(t.call, t.media);
    t.frames(30);
    await flush();
    t.press(2);
    await new Promise((r) => setTimeout(r, 1100));
    expect(t.service.state(t.call.id)).toMatchObject({ consent: 'no_consent', recording: false });
    await t.call.end({ by: 'whatsapp', outcome: 'answered', cause: 'whatsapp_hangup' });
  });

  it('on demand: nothing recorded until start; stop pauses; start resumes the same file', async () => {
    const t = setup({ policy: 'on_demand', consent: 'announce' });
    t.service.attach(t.call, t.media);
    expect(t.service.start(t.call.id)).toMatchObject({ ok: false, status: 409 }); // consent still being asked
    t.frames(20); // announcement (15 frames) played
    await flush();
    expect(t.service.state(t.call.id)).toMatchObject({ consent: 'announced', recording: false });
    t.frames(50);
    expect(t.service.start(t.call.id)).toMatchObject({ ok: true, recording: true });
    t.frames(50);
    expect(t.service.stop(t.call.id)).toMatchObject({ ok: true, recording: false });
    t.frames(50);
    expect(t.service.start(t.call.id)).toMatchObject({ ok: true, recording: true });
    t.frames(25);
    const record = await t.call.end({ by: 'sip', outcome: 'answered', cause: 'agent_hangup' });
    // 50 + 25 frames of 20 ms were recorded; the 50 frames before start and the 50 while stopped were not.
    expect(record.recording!.durationSeconds).toBeCloseTo(1.5, 2);
    expect(record.recording!.consent).toBe('announced');
  });

  it('policy off: nothing attached, nothing recorded, start refused', async () => {
    const t = setup({ policy: 'off' });
    t.service.attach(t.call, t.media);
    expect(t.service.state(t.call.id)).toBeUndefined();
    expect(t.service.start(t.call.id)).toMatchObject({ ok: false, status: 404 });
    const record = await t.call.end({ by: 'whatsapp', outcome: 'answered', cause: 'whatsapp_hangup' });
    expect(record.recording).toBeUndefined();
  });
});
