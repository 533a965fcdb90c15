import { afterEach, describe, expect, it, vi } from 'vitest';
import { IntervalFrameClock } from './frame-clock.js';

describe('IntervalFrameClock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('spreads subscribers over phases offset by frameMs / phases, each ticking once per frame', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const clock = new IntervalFrameClock(20, 5, 2, false);
    const at: number[][] = [[], [], [], []];
    const t0 = performance.now();
    const offs = at.map((list) => clock.subscribe(() => list.push(performance.now() - t0)));
    vi.advanceTimersByTime(100);
    // Round-robin by load: subscribers 0 and 2 share phase 0, 1 and 3 phase 1.
    expect(at[0]).toEqual([20, 40, 60, 80, 100]);
    expect(at[2]).toEqual([20, 40, 60, 80, 100]);
    expect(at[1]).toEqual([10, 30, 50, 70, 90]);
    expect(at[3]).toEqual([10, 30, 50, 70, 90]);
    for (const off of offs) off();
    expect(clock.subscribers).toBe(0);
    vi.advanceTimersByTime(100);
    expect(at[0]).toHaveLength(5);
  });

  it('joins a later subscriber on its phase of the running grid', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const clock = new IntervalFrameClock(20, 2, 4, false);
    const a: number[] = [];
    const t0 = performance.now();
    clock.subscribe(() => a.push(performance.now() - t0));
    vi.advanceTimersByTime(25);
    const b: number[] = [];
    clock.subscribe(() => b.push(performance.now() - t0));
    vi.advanceTimersByTime(40);
    expect(a).toEqual([20, 40, 60]);
    expect(b).toEqual([45, 65]); // phase 1 of 4: 5 ms after phase 0's grid, the first deadline after it joined
    expect(clock.skippedTotal).toBe(0);
  });

  it('after a stall, the phase due first runs first, and afterPhase runs as each phase is done', () => {
    // Time is set by hand and the clock's callback called directly: the stall is exact.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let now = 1000;
    vi.spyOn(performance, 'now').mockImplementation(() => now);
    const clock = new IntervalFrameClock(20, 5, 4, false);
    const order: string[] = [];
    clock.afterPhase = () => order.push('flush');
    // Phase 0 starts at 1020; the others join its grid at their first deadline after now: 1005, 1010, 1015.
    for (const phase of [0, 1, 2, 3]) clock.subscribe(() => order.push(`p${phase}@${clock.tickDeadline - 1000}`));
    now = 1024; // a stall: all four phases are due at once, phase 0 last of them
    (clock as unknown as { fire(): void }).fire();
    expect(order).toEqual(['p1@5', 'flush', 'p2@10', 'flush', 'p3@15', 'flush', 'p0@20', 'flush']);
    expect(clock.skippedTotal).toBe(0);
    vi.restoreAllMocks();
  });

  it.runIf(process.platform === 'linux')('starts ticks closer to their deadlines on the kernel timer than on setTimeout (medians, same run)', async () => {
    const medianLateness = async (precise: boolean): Promise<number> => {
      const clock = new IntervalFrameClock(20, 5, 4, precise);
      const late: number[] = [];
      const offs = [0, 1, 2, 3].map(() => clock.subscribe(() => late.push(performance.now() - clock.tickDeadline)));
      expect(clock.timerKind).toBe(precise ? 'timerfd' : 'setTimeout');
      await new Promise((r) => setTimeout(r, 600));
      for (const off of offs) off();
      expect(clock.timerKind).toBeNull(); // idle: the timer is closed
      expect(late.length).toBeGreaterThan(60);
      for (const l of late) expect(l).toBeGreaterThanOrEqual(0); // a tick never runs before it is due
      return late.sort((a, b) => a - b)[late.length >> 1]!;
    };
    const precise = await medianLateness(true);
    const coarse = await medianLateness(false);
    expect(precise).toBeLessThan(coarse);
  });
});
