import { describe, expect, it } from 'vitest';
import { speechLikeFrame } from '../../test/audio/tone.js';
import { OpusDecoder8k, OpusEncoder8k, FRAME_SAMPLES } from './opus-codec.js';
import { OpusFecDecoder8k, opusFecAvailable } from './opus-fec.js';

function energyDb(a: Int16Array, b: Int16Array): number {
  let e = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    e += (a[i]! - b[i]!) ** 2;
    s += b[i]! ** 2;
  }
  return 10 * Math.log10(e / s);
}

describe('OpusFecDecoder8k', () => {
  it('decodes like the native decoder and rebuilds a lost frame from the next packet\'s FEC closer than concealment', () => {
    expect(opusFecAvailable()).toBe(true);
    const enc = new OpusEncoder8k({ complexity: 5, inbandFec: true, expectedLossPercent: 20 });
    const packets: Uint8Array[] = [];
    const out = new Uint8Array(1500);
    for (let f = 0; f < 60; f++) packets.push(out.slice(0, enc.encode(speechLikeFrame(f), out)));

    // Same libopus: the wasm decoder's output matches the native one's.
    const native = new OpusDecoder8k();
    const fec = new OpusFecDecoder8k();
    const a = new Int16Array(960);
    const b = new Int16Array(960);
    for (let f = 0; f < 40; f++) {
      expect(fec.decode(packets[f]!, a)).toBe(FRAME_SAMPLES);
      native.decode(packets[f]!, b);
      expect(energyDb(a.subarray(0, FRAME_SAMPLES), b.subarray(0, FRAME_SAMPLES))).toBeLessThan(-40);
    }

    // Frame 40 is lost. Reference: what a decoder that received it outputs.
    const ref = new OpusFecDecoder8k();
    for (let f = 0; f <= 40; f++) ref.decode(packets[f]!, b);
    const plc = new OpusFecDecoder8k();
    const viaFec = new OpusFecDecoder8k();
    for (let f = 0; f < 40; f++) {
      plc.decode(packets[f]!, a);
      viaFec.decode(packets[f]!, a);
    }
    const concealed = new Int16Array(960);
    const rebuilt = new Int16Array(960);
    expect(plc.conceal(concealed)).toBe(FRAME_SAMPLES);
    expect(viaFec.decodeFec(packets[41]!, rebuilt)).toBe(FRAME_SAMPLES);
    expect(viaFec.fecFrames).toBe(1);
    const errFec = energyDb(rebuilt.subarray(0, FRAME_SAMPLES), b.subarray(0, FRAME_SAMPLES));
    const errPlc = energyDb(concealed.subarray(0, FRAME_SAMPLES), b.subarray(0, FRAME_SAMPLES));
    console.log(`lost frame: FEC error ${errFec.toFixed(1)} dB, PLC error ${errPlc.toFixed(1)} dB (relative to the frame)`);
    expect(errFec).toBeLessThan(errPlc);
    // And the stream goes on normally after the rebuilt frame.
    expect(viaFec.decode(packets[41]!, rebuilt)).toBe(FRAME_SAMPLES);
    for (const d of [fec, ref, plc, viaFec]) d.destroy();
  });
});
