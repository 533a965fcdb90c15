/** What the Bridge does with each payload type the PBX sends: both G.711 laws, comfort noise, anything else. */
import { describe, expect, it } from 'vitest';
import { detectTone } from '../../test/audio/goertzel.js';
import { Bridge } from './bridge.js';
import { FakeSipLeg, FakeWhatsAppLeg } from './fake-legs.js';
import { ManualFrameClock } from './frame-clock.js';
import { encodeG711, type G711Law } from './g711.js';
import { writeRtpHeader } from './rtp-packet.js';

let now = 1000;

/** Records the payload type of each packet the bridge sends toward the PBX. */
class RecordingSipLeg extends FakeSipLeg {
  readonly sentPayloadTypes: number[] = [];
  override send(buf?: Uint8Array): boolean {
    if (buf) this.sentPayloadTypes.push(buf[1]! & 0x7f);
    return true;
  }
}

function sine(freq: number, n: number, start: number): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * freq * (start + i)) / 8000));
  return out;
}

function packet(seq: number, pt: number, payload: Uint8Array, timestamp = seq * 160): Buffer {
  const b = Buffer.alloc(12 + payload.length);
  writeRtpHeader(b, { marker: false, payloadType: pt, sequenceNumber: seq, timestamp, ssrc: 0x77 });
  b.set(payload, 12);
  return b;
}

function rms(samples: readonly number[]): number {
  let sum = 0;
  for (const s of samples) sum += s * s;
  return Math.sqrt(sum / samples.length);
}

function setup(sipCodec: G711Law) {
  const clock = new ManualFrameClock();
  const wa = new FakeWhatsAppLeg(() => now);
  const sip = new RecordingSipLeg(() => now);
  const bridge = new Bridge(wa, sip, { sipCodec, sipDtmfPayloadType: 101, clock, now: () => now });
  bridge.startWhatsAppMedia();
  /** What WhatsApp is sent, before the Opus encode: one array of 160 samples per tick. */
  const toUser: number[][] = [];
  bridge.addTap((_u, a) => toUser.push(Array.from(a)));
  const tick = (): void => {
    now += 20;
    clock.tick(1);
  };
  /** One 20 ms frame of 440 Hz in `law` as payload type `pt`, then the tick. */
  const speech = (seq: number, law: G711Law, pt: number): void => {
    const g = new Uint8Array(160);
    encodeG711(law, sine(440, 160, seq * 160), g);
    sip.inject(packet(seq, pt, g));
    tick();
  };
  return { sip, bridge, toUser, tick, speech };
}

describe('Bridge: payload types from the PBX', () => {
  it.each([
    { negotiated: 'PCMA' as const, sent: 'PCMU' as const, pt: 0 },
    { negotiated: 'PCMU' as const, sent: 'PCMA' as const, pt: 8 },
  ])('decodes $sent (PT $pt) in a call negotiated as $negotiated, and keeps sending $negotiated', ({ negotiated, sent, pt }) => {
    const { sip, bridge, toUser, speech } = setup(negotiated);
    for (let seq = 0; seq < 50; seq++) speech(seq, sent, pt);
    const tail = Int16Array.from(toUser.slice(-25).flat());
    expect(detectTone(tail, 8000, 440).detected).toBe(true);
    expect(rms(Array.from(tail))).toBeGreaterThan(3000);
    expect(bridge.quality().sip).toMatchObject({ packetsIn: 50, lost: 0 });
    expect(bridge.details.sipOtherPayloadTypes).toBe(0);
    expect(sip.sentPayloadTypes.length).toBeGreaterThan(40);
    expect(new Set(sip.sentPayloadTypes)).toEqual(new Set([negotiated === 'PCMU' ? 0 : 8]));
    bridge.stop();
  });

  it('takes comfort noise (PT 13) as the PBX\'s silence: no loss, noise at its level toward WhatsApp, then speech again', () => {
    const { bridge, sip, toUser, tick, speech } = setup('PCMU');
    for (let seq = 0; seq < 30; seq++) speech(seq, 'PCMU', 0);
    // Silence suppression: one CN packet at -50 dBov (RMS 32767·10^-2.5 ≈ 104), then nothing for 800 ms.
    sip.inject(packet(30, 13, Uint8Array.of(50)));
    const gapStart = toUser.length;
    for (let i = 0; i < 40; i++) tick();
    const gap = toUser.slice(gapStart + 10, gapStart + 40).flat(); // the queued speech has played by then
    expect(rms(gap)).toBeGreaterThan(70);
    expect(rms(gap)).toBeLessThan(150);
    expect(detectTone(Int16Array.from(gap), 8000, 440).detected).toBe(false);
    // Speech resumes (the timestamp moved on by the silence): the noise stops once it plays.
    for (let seq = 31; seq < 61; seq++) {
      const g = new Uint8Array(160);
      encodeG711('PCMU', sine(440, 160, seq * 160), g);
      sip.inject(packet(seq, 0, g, seq * 160 + 40 * 160));
      tick();
    }
    const tail = Int16Array.from(toUser.slice(-20).flat());
    expect(detectTone(tail, 8000, 440).detected).toBe(true);
    expect(bridge.details.sipComfortNoisePackets).toBe(1);
    expect(bridge.details.sipOtherPayloadTypes).toBe(0);
    expect(bridge.quality().sip).toMatchObject({ packetsIn: 61, lost: 0 });
    bridge.stop();
  });

  it('counts a payload type it does not decode apart: not as loss, and its timestamp does not move the jitter', () => {
    const { bridge, sip, speech, tick } = setup('PCMU');
    for (let seq = 0; seq < 20; seq++) speech(seq, 'PCMU', 0);
    sip.inject(packet(20, 98, new Uint8Array(40).fill(7), 0x12345678)); // say, a codec the SDP never named
    tick();
    for (let seq = 21; seq < 40; seq++) speech(seq, 'PCMU', 0);
    expect(bridge.details.sipOtherPayloadTypes).toBe(1);
    const q = bridge.quality().sip;
    expect(q).toMatchObject({ packetsIn: 40, lost: 0 });
    expect(q.jitterMs).toBeLessThan(1);
    bridge.stop();
  });
});
