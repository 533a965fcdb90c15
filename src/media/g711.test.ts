import { describe, expect, it } from 'vitest';
import { decodeG711, decodeSample, encodeG711, encodeSample, g711Silence, type G711Law } from './g711.js';

describe('g711', () => {
  it('maps silence and full scale to the standard codes', () => {
    expect(encodeSample('PCMU', 0)).toBe(0xff);
    expect(encodeSample('PCMA', 0)).toBe(0xd5);
    expect(g711Silence('PCMU')).toBe(0xff);
    expect(encodeSample('PCMU', 32767)).toBe(0x80);
    expect(encodeSample('PCMU', -32768)).toBe(0x00);
    expect(decodeSample('PCMU', 0x80)).toBe(32124);
    expect(decodeSample('PCMA', 0xaa)).toBe(32256);
    expect(decodeSample('PCMA', 0x2a)).toBe(-32256);
  });

  for (const law of ['PCMU', 'PCMA'] as G711Law[]) {
    it(`${law}: every code survives decode → encode`, () => {
      for (let c = 0; c < 256; c++) {
        if (law === 'PCMU' && c === 0x7f) continue; // μ-law has two zeros; 0x7f (-0) re-encodes as 0xff (+0)
        expect(encodeSample(law, decodeSample(law, c))).toBe(c);
      }
    });

    it(`${law}: a frame round trips within the companding error`, () => {
      const pcm = new Int16Array(160);
      for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(20000 * Math.sin((2 * Math.PI * 1000 * i) / 8000));
      const coded = new Uint8Array(160);
      expect(encodeG711(law, pcm, coded)).toBe(160);
      const back = new Int16Array(160);
      expect(decodeG711(law, coded, 0, 160, back)).toBe(160);
      let signal = 0;
      let noise = 0;
      for (let i = 0; i < 160; i++) {
        const err = back[i]! - pcm[i]!;
        // Logarithmic quantisation: the step is at most 1/16 of the segment, i.e. ≲ 3.2 % of the magnitude + 16.
        expect(Math.abs(err)).toBeLessThanOrEqual(Math.abs(pcm[i]!) * 0.035 + 16);
        signal += pcm[i]! ** 2;
        noise += err ** 2;
      }
      expect(10 * Math.log10(signal / noise)).toBeGreaterThan(30); // G.711 SQNR is ~38 dB for a loud tone
    });
  }
});
