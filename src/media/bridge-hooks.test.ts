/** The Bridge's hooks for hold and transfer: a PCM source replacing the SIP side, and moving SIP media to another leg/codec. */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { detectTone } from '../../test/audio/goertzel.js';
import { Bridge, type PcmSource } from './bridge.js';
import { ManualFrameClock } from './frame-clock.js';
import { decodeG711, encodeG711 } from './g711.js';
import { OpusDecoder8k } from './opus-codec.js';
import { createRtpHeader, readRtpHeader, writeRtpHeader } from './rtp-packet.js';
import type { ReceivedRtpInfo, SendRtpParams } from './webrtc-leg.js';
import { audioOf } from './wa-audio-codec.js';

let now = 1000;
class FakeWa extends EventEmitter {
  audio = audioOf('opus', 111);
  dtmfPayloadType: number | null = 126;
  lastReceivedAt = now;
  sent: Uint8Array[] = [];
  sendRtp(_p: SendRtpParams, payload: Uint8Array, offset = 0, length = payload.length - offset): void {
    this.sent.push(payload.slice(offset, offset + length));
  }
  async close(): Promise<void> {}
  inject(_k: 'audio', _p: Uint8Array, _i: ReceivedRtpInfo): void {}
}
class FakeSip extends EventEmitter {
  lastReceivedAt = now;
  sent: Buffer[] = [];
  closes = 0;
  private readonly h = createRtpHeader();
  send(buf: Uint8Array, offset = 0, length = buf.length - offset): boolean {
    this.sent.push(Buffer.from(buf.subarray(offset, offset + length)));
    return true;
  }
  async close(): Promise<void> { this.closes++; }
  inject(pkt: Buffer): void {
    this.lastReceivedAt = now;
    readRtpHeader(pkt, this.h);
    this.emit('rtp', pkt, this.h);
  }
}
function sine(freq: number, n: number, start: number): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * freq * (start + i)) / 8000));
  return out;
}
function packet(seq: number, pt: number, codec: 'PCMU' | 'PCMA', pcm: Int16Array): Buffer {
  const b = Buffer.alloc(12 + 160);
  writeRtpHeader(b, { marker: false, payloadType: pt, sequenceNumber: seq, timestamp: seq * 160, ssrc: 7 });
  encodeG711(codec, pcm, b, 12);
  return b;
}
/** Decodes what the bridge sent to WhatsApp (Opus) back to 8 kHz PCM. */
function heard(wa: FakeWa, from: number): Int16Array {
  const dec = new OpusDecoder8k();
  const out = new Int16Array(wa.sent.length * 160);
  const f = new Int16Array(960);
  wa.sent.forEach((p, i) => { dec.decode(p, f); out.set(f.subarray(0, 160), i * 160); });
  return out.subarray(from * 160);
}

describe('Bridge hold and move hooks', () => {
  it('plays a PCM source to WhatsApp instead of the SIP side, and resumes the SIP side on null', async () => {
    const clock = new ManualFrameClock();
    const wa = new FakeWa();
    const sip = new FakeSip();
    const bridge = new Bridge(wa, sip, { sipCodec: 'PCMU', clock, now: () => now });
    bridge.startWhatsAppMedia();
    let t = 0;
    const feedSip = (frames: number, hz: number) => {
      for (let i = 0; i < frames; i++) {
        sip.inject(packet(t, 0, 'PCMU', sine(hz, 160, t * 160)));
        t++;
        now += 20;
        clock.tick(1);
      }
    };
    feedSip(50, 440);
    expect(detectTone(heard(wa, 25), 8000, 440).detected).toBe(true);
    let phase = 0;
    const music: PcmSource = { read(out) { out.set(sine(1000, out.length, phase)); phase += out.length; } };
    bridge.setSipSource(music);
    const holdFrom = wa.sent.length;
    feedSip(50, 440);
    const onHold = heard(wa, holdFrom + 5);
    expect(detectTone(onHold, 8000, 1000).detected).toBe(true);
    expect(detectTone(onHold, 8000, 440).detected).toBe(false);
    bridge.setSipSource(null);
    const resumeFrom = wa.sent.length;
    feedSip(50, 440);
    expect(detectTone(heard(wa, resumeFrom + 10), 8000, 440).detected).toBe(true);
    await bridge.stop();
  });

  it('moves SIP media to a new leg and codec; the old leg is no longer heard nor closed by stop()', async () => {
    const clock = new ManualFrameClock();
    const wa = new FakeWa();
    const first = new FakeSip();
    const second = new FakeSip();
    const bridge = new Bridge(wa, first, { sipCodec: 'PCMU', clock, now: () => now });
    bridge.startWhatsAppMedia();
    const prev = bridge.setSipMedia({ leg: second, codec: 'PCMA' });
    expect(prev).toBe(first);
    const from = wa.sent.length;
    for (let i = 0; i < 50; i++) {
      first.inject(packet(i, 0, 'PCMU', sine(440, 160, i * 160)));
      second.inject(packet(i, 8, 'PCMA', sine(1000, 160, i * 160)));
      now += 20;
      clock.tick(1);
    }
    const pcm = heard(wa, from + 10);
    expect(detectTone(pcm, 8000, 1000).detected).toBe(true);
    expect(detectTone(pcm, 8000, 440).detected).toBe(false);
    expect(first.sent.length).toBe(0);
    const toSecond = second.sent.at(-1)!;
    const h = createRtpHeader();
    readRtpHeader(toSecond, h);
    expect(h.payloadType).toBe(8);
    const back = new Int16Array(160);
    decodeG711('PCMA', toSecond, 12, 160, back);
    await bridge.stop();
    expect(second.closes).toBe(1);
    expect(first.closes).toBe(0);
  });

  it('sends no RTP toward the PBX while told not to (answered recvonly/inactive), and marks the first packet after', async () => {
    const clock = new ManualFrameClock();
    const wa = new FakeWa();
    const sip = new FakeSip();
    const bridge = new Bridge(wa, sip, { sipCodec: 'PCMU', clock, now: () => now });
    bridge.startWhatsAppMedia();
    const run = (frames: number) => { for (let i = 0; i < frames; i++) { now += 20; clock.tick(1); } };
    run(10);
    expect(sip.sent.length).toBe(10);
    bridge.setSipSending(false, false);
    run(20);
    expect(sip.sent.length).toBe(10);
    bridge.setSipSending(true);
    run(5);
    expect(sip.sent.length).toBe(15);
    const h = createRtpHeader();
    readRtpHeader(sip.sent[10]!, h);
    expect(h.marker).toBe(true);
    await bridge.stop();
  });
});
