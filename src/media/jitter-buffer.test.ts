import { describe, expect, it } from 'vitest';
import { JB_EMPTY, JB_LOST, JitterBuffer } from './jitter-buffer.js';

function pkt(seq: number): Uint8Array {
  return Uint8Array.from([seq & 0xff, (seq >> 8) & 0xff, 7]);
}

function popSeq(jb: JitterBuffer, out: Uint8Array): number | 'lost' | 'empty' {
  const n = jb.pop(out);
  if (n === JB_LOST) return 'lost';
  if (n === JB_EMPTY) return 'empty';
  expect(n).toBe(3);
  return out[0]! | (out[1]! << 8);
}

describe('JitterBuffer', () => {
  it('reorders packets within the window and plays them in sequence', () => {
    const jb = new JitterBuffer({ minDelayMs: 40, maxDelayMs: 200 });
    const out = new Uint8Array(1500);
    const order = [100, 102, 101, 104, 103, 105];
    order.forEach((s, i) => jb.push(s, s * 960, pkt(s), 0, 3, i * 20));
    const played = [];
    for (let i = 0; i < 6; i++) played.push(popSeq(jb, out));
    expect(played).toEqual([100, 101, 102, 103, 104, 105]);
    expect(jb.stats.late).toBe(0);
  });

  it('waits for the minimum delay before starting', () => {
    const jb = new JitterBuffer({ minDelayMs: 60 });
    const out = new Uint8Array(1500);
    jb.push(1, 960, pkt(1), 0, 3, 0);
    expect(popSeq(jb, out)).toBe('empty');
    jb.push(2, 1920, pkt(2), 0, 3, 20);
    expect(popSeq(jb, out)).toBe('empty');
    jb.push(3, 2880, pkt(3), 0, 3, 40);
    expect(popSeq(jb, out)).toBe(1);
  });

  it('reports a missing frame as lost and drops its late arrival', () => {
    const jb = new JitterBuffer({ minDelayMs: 20 });
    const out = new Uint8Array(1500);
    jb.push(10, 0, pkt(10), 0, 3, 0);
    jb.push(12, 1920, pkt(12), 0, 3, 40);
    expect(popSeq(jb, out)).toBe(10);
    expect(popSeq(jb, out)).toBe('lost');
    expect(jb.push(11, 960, pkt(11), 0, 3, 60)).toBe(false);
    expect(jb.stats.late).toBe(1);
    expect(popSeq(jb, out)).toBe(12);
    expect(jb.stats.lost).toBe(1);
  });

  it('handles the 16-bit sequence wrap and duplicates', () => {
    const jb = new JitterBuffer({ minDelayMs: 20 });
    const out = new Uint8Array(1500);
    for (const s of [65534, 65535, 65535, 0, 1]) jb.push(s, 0, pkt(s), 0, 3, 0);
    expect(jb.stats.duplicate).toBe(1);
    const got = [];
    for (let i = 0; i < 4; i++) got.push(popSeq(jb, out));
    expect(got).toEqual([65534, 65535, 0, 1]);
  });

  it('grows its target delay under jitter, within the maximum', () => {
    const jb = new JitterBuffer({ minDelayMs: 20, maxDelayMs: 120 });
    for (let i = 0; i < 200; i++) jb.push(i, i * 960, pkt(i), 0, 3, i * 20 + (i % 2 ? 35 : 0));
    expect(jb.jitterMs).toBeGreaterThan(25);
    expect(jb.targetDelayMs).toBeGreaterThan(40);
    expect(jb.targetDelayMs).toBeLessThanOrEqual(120);
  });

  it('rebuffers after an underrun and shrinks latency after a burst', () => {
    const jb = new JitterBuffer({ minDelayMs: 20, maxDelayMs: 100 });
    const out = new Uint8Array(1500);
    jb.push(0, 0, pkt(0), 0, 3, 0);
    expect(popSeq(jb, out)).toBe(0);
    expect(popSeq(jb, out)).toBe('empty');
    expect(jb.stats.underruns).toBe(1);
    for (let s = 1; s <= 12; s++) jb.push(s, s * 960, pkt(s), 0, 3, 200);
    const got = [];
    for (let i = 0; i < 12; i++) got.push(popSeq(jb, out));
    expect(jb.stats.discarded).toBeGreaterThan(0);
    expect(got.filter((g) => typeof g === 'number').length).toBe(12 - jb.stats.discarded);
  });

  it('resynchronises on a sequence jump (sender restart)', () => {
    const jb = new JitterBuffer({ minDelayMs: 20 });
    const out = new Uint8Array(1500);
    jb.push(100, 0, pkt(100), 0, 3, 0);
    expect(popSeq(jb, out)).toBe(100);
    jb.push(30000, 0, pkt(30000), 0, 3, 20);
    jb.push(30001, 960, pkt(30001), 0, 3, 40);
    expect(jb.stats.resyncs).toBe(1);
    expect(popSeq(jb, out)).toBe(30000);
    expect(popSeq(jb, out)).toBe(30001);
  });

  for (const minDelayMs of [20, 80]) {
    it(`follows a moderate backwards sequence jump instead of dropping it as late (min ${minDelayMs} ms)`, () => {
      const jb = new JitterBuffer({ minDelayMs });
      const out = new Uint8Array(1500);
      let arrival = 0;
      for (let s = 1000; s < 1010; s++) {
        jb.push(s, s * 960, pkt(s), 0, 3, (arrival += 20));
        popSeq(jb, out);
      }
      // The relay switched SSRC and sequence space: 40 behind, then counting up at the normal pace.
      const got: Array<number | string> = [];
      for (let s = 970; s < 1000; s++) {
        jb.push(s, s * 960, pkt(s), 0, 3, (arrival += 20));
        got.push(popSeq(jb, out));
      }
      const tail = got.slice(-10) as number[];
      expect(tail.every((v) => typeof v === 'number')).toBe(true);
      for (let k = 1; k < tail.length; k++) expect(tail[k]).toBeGreaterThan(tail[k - 1]!);
      expect(tail[9]).toBeGreaterThanOrEqual(999 - minDelayMs / 20 - 1);
      expect(got.filter((v) => typeof v !== 'number').length).toBeLessThanOrEqual(6);
      expect(jb.targetDelayMs).toBeLessThanOrEqual(minDelayMs + 40);
    });
  }
});
