import { describe, expect, it } from 'vitest';
import { EncoderLoadGovernor, type GovernedEncoder } from './encoder-load-governor.js';
import { OpusEncoder8k } from './opus-codec.js';

class FakeEncoder implements GovernedEncoder {
  complexity: number;
  constructor(readonly maxComplexity: number, readonly minComplexity = 0) {
    this.complexity = maxComplexity;
  }
  setComplexity(c: number): void {
    this.complexity = c;
  }
}

function governorWith(loads: number[]): EncoderLoadGovernor {
  let i = 0;
  return new EncoderLoadGovernor({ utilization: () => loads[Math.min(i++, loads.length - 1)]!, upHoldMs: 5000 });
}

describe('EncoderLoadGovernor', () => {
  it('steps the encoders down one level a second while the loop is over 80 % busy, two over 90 %, never below their minimum', () => {
    const g = governorWith([0, 0.85, 0.95, 0.95, 0.95, 0.95]);
    const a = new FakeEncoder(5);
    const b = new FakeEncoder(5, 3);
    g.add(a);
    g.add(b);
    g.sample(1000);
    expect([g.level, a.complexity, b.complexity]).toEqual([1, 4, 4]);
    g.sample(2000);
    expect([g.level, a.complexity, b.complexity]).toEqual([3, 2, 3]);
    g.sample(3000);
    g.sample(4000);
    g.sample(5000);
    // Level 5 puts every encoder at its minimum: no further.
    expect([g.level, a.complexity, b.complexity]).toEqual([5, 0, 3]);
    expect(g.changes.down).toBe(3);
    g.delete(a);
    g.delete(b);
  });

  it('holds its level between the thresholds and steps back up only after 5 s below 70 %', () => {
    const g = governorWith([0, 0.95, 0.75, 0.75, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]);
    const a = new FakeEncoder(5);
    g.add(a);
    g.sample(1000);
    expect(a.complexity).toBe(3);
    g.sample(2000);
    g.sample(3000);
    expect(g.level).toBe(2); // 75 %: neither up nor down
    for (let t = 4000; t <= 7000; t += 1000) g.sample(t);
    expect(g.level).toBe(2); // calm for 4 s only
    g.sample(8000);
    expect([g.level, a.complexity]).toEqual([1, 4]);
    for (let t = 9000; t <= 12_000; t += 1000) g.sample(t);
    expect(g.level).toBe(1); // each step up needs its own 5 s
    g.sample(13_000);
    expect([g.level, a.complexity, g.changes.up]).toEqual([0, 5, 2]);
    g.delete(a);
  });

  it('gives a call that starts under load the current level, and starts the next calls at full complexity once it holds none', () => {
    const g = governorWith([0, 0.95]);
    const a = new FakeEncoder(5);
    g.add(a);
    g.sample(1000);
    const late = new FakeEncoder(9);
    g.add(late);
    expect(late.complexity).toBe(7);
    g.delete(a);
    g.delete(late);
    expect(g.level).toBe(0);
    const next = new FakeEncoder(5);
    g.add(next);
    expect(next.complexity).toBe(5);
    g.delete(next);
  });

  it('is saturated only while the loop is over 95 % busy with every encoder at its minimum', () => {
    const g = governorWith([0, 0.97, 0.97, 0.97, 0.97, 0.9]);
    const a = new FakeEncoder(4, 1);
    g.add(a);
    g.sample(1000);
    expect([g.level, g.saturated]).toEqual([2, false]); // a step was still left
    g.sample(2000);
    expect([g.level, g.saturated]).toEqual([3, false]);
    g.sample(3000);
    expect([g.level, a.complexity, g.saturated]).toEqual([3, 1, true]);
    g.sample(4000);
    expect(g.saturated).toBe(true);
    g.sample(5000);
    expect(g.saturated).toBe(false); // 90 %: busy, not saturated
    g.delete(a);
    // Encoders with no room to move (load adaptation off) are saturated on the loop alone.
    const fixed = governorWith([0, 0.97]);
    const f = new FakeEncoder(5, 5);
    fixed.add(f);
    fixed.sample(1000);
    expect([fixed.level, fixed.saturated]).toEqual([0, true]);
    fixed.delete(f);
    expect(fixed.saturated).toBe(false);
  });

  it('is saturated above the busy fraction the operator chose (media.saturationBusyPercent)', () => {
    const g = governorWith([0, 0.87, 0.87]);
    const a = new FakeEncoder(1, 0);
    g.add(a);
    g.sample(1000);
    expect([g.level, g.saturatedAbove(0.85)]).toEqual([1, false]); // it could still step down
    g.sample(2000);
    expect([g.saturated, g.saturatedAbove(0.85), g.saturatedAbove(0.9)]).toEqual([false, true, false]);
    g.delete(a);
    expect(g.saturatedAbove(0.5)).toBe(false); // no calls, nothing to refuse for
  });

  it('reads the real event loop: a loop blocked for the whole interval counts as busy', () => {
    const g = new EncoderLoadGovernor();
    const a = new FakeEncoder(5);
    g.add(a);
    const until = performance.now() + 150;
    while (performance.now() < until) { /* the media tick that overran */ }
    g.sample(performance.now());
    expect(g.level).toBe(2);
    g.delete(a);
  });

  it('drives a real Opus encoder: complexity follows the level', () => {
    const enc = new OpusEncoder8k({ complexity: 5, minComplexity: 1 });
    enc.setComplexity(2);
    expect(enc.settings.complexity).toBe(2);
    const pcm = new Int16Array(160).map((_, i) => Math.round(3000 * Math.sin(i / 3)));
    expect(enc.encode(pcm, new Uint8Array(1500))).toBeGreaterThan(0);
    expect([enc.maxComplexity, enc.minComplexity]).toEqual([5, 1]);
  });
});
