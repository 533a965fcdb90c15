import { describe, expect, it } from 'vitest';
import { speechLikeFrame } from '../../test/audio/tone.js';
import { Bridge, type PcmSource } from './bridge.js';
import { FakeSipLeg, FakeWhatsAppLeg } from './fake-legs.js';
import { ManualFrameClock } from './frame-clock.js';
import { OpusLossAdapter, quantizeLossRate } from './opus-loss-adapter.js';
import type { SendRtpParams } from './webrtc-leg.js';

describe('quantizeLossRate (libwebrtc levels with margins)', () => {
  it('rounds down to 0, 1, 5, 10 or 20 %', () => {
    expect(quantizeLossRate(0, 0)).toBe(0);
    expect(quantizeLossRate(0.009, 0)).toBe(0);
    expect(quantizeLossRate(0.03, 0)).toBe(0.01);
    expect(quantizeLossRate(0.12, 0)).toBe(0.1);
    expect(quantizeLossRate(0.5, 0)).toBe(0.2);
  });

  it('steps up only past the margin and stays until below it', () => {
    expect(quantizeLossRate(0.055, 0.01)).toBe(0.01);
    expect(quantizeLossRate(0.061, 0.01)).toBe(0.05);
    expect(quantizeLossRate(0.045, 0.05)).toBe(0.05);
    expect(quantizeLossRate(0.035, 0.05)).toBe(0.01);
  });
});

describe('OpusLossAdapter', () => {
  it('applies the prior until the first report, then follows the smoothed reports', () => {
    const applied: number[] = [];
    const a = new OpusLossAdapter((p) => applied.push(p), 5);
    expect(applied).toEqual([5]);
    a.update(undefined);
    expect(a.percent).toBe(5);
    a.update(0);
    expect(applied).toEqual([5, 0]);
    // One lossy report moves the smoothed value only a fifth of the way: no toggling on a single burst.
    a.update(0.12);
    expect(a.percent).toBe(1);
    for (let i = 0; i < 20; i++) a.update(0.12);
    expect(a.percent).toBe(10);
    for (let i = 0; i < 30; i++) a.update(0);
    expect(a.percent).toBe(0);
    // Called only on a change.
    expect(applied).toEqual([5, 0, 1, 5, 10, 5, 1, 0]);
  });
});

/** A SILK-only 20 ms mono packet: after the TOC byte, the first range-coded bits are the VAD and LBRR flags. */
function hasLbrr(packet: Uint8Array): boolean {
  return ((packet[1]! >> 6) & 1) === 1;
}

class LossyWhatsAppLeg extends FakeWhatsAppLeg {
  remoteFractionLost: number | undefined = undefined;
  readonly packets: Uint8Array[] = [];
  override sendRtp(_p?: SendRtpParams, payload?: Uint8Array, offset = 0, length = 0): void {
    if (payload) this.packets.push(payload.slice(offset, offset + length));
  }
}

describe('Bridge: in-band FEC toward WhatsApp follows the reported loss', () => {
  it('sends FEC before the first report and while loss is reported, none on a clean path', () => {
    let now = 0;
    const wa = new LossyWhatsAppLeg(() => now);
    const clock = new ManualFrameClock();
    const bridge = new Bridge(wa, new FakeSipLeg(() => now), { sipCodec: 'PCMU', clock, now: () => now, mediaTimeoutMs: 3_600_000 });
    let frame = 0;
    const speech: PcmSource = {
      read(out: Int16Array): void {
        out.set(speechLikeFrame(frame++));
      },
    };
    bridge.start();
    bridge.startWhatsAppMedia();
    bridge.setSipSource(speech);
    const seconds = (n: number): Uint8Array[] => {
      const from = wa.packets.length;
      for (let i = 0; i < n * 50; i++) {
        now += 20;
        clock.tick();
      }
      return wa.packets.slice(from);
    };
    const lbrrShare = (ps: Uint8Array[]): number => ps.filter(hasLbrr).length / ps.length;

    // No report yet: the prior (FEC on). libopus codes FEC for frames its voice detector calls speech only.
    expect(lbrrShare(seconds(2))).toBeGreaterThan(0.3);
    wa.remoteFractionLost = 0;
    seconds(1);
    // The first packet after the switch still carries the FEC of the frame encoded before it.
    expect(lbrrShare(seconds(2).slice(1))).toBe(0);
    wa.remoteFractionLost = 0.15;
    seconds(8);
    expect(lbrrShare(seconds(2))).toBeGreaterThan(0.3);
    void bridge.stop();
  });
});
