/**
 * The 20 ms media tick. One timer serves every bridge in the process (a timer per call would cost a
 * timer wake-up per call per frame). Deadlines are absolute, so setTimeout lateness does not accumulate;
 * after a stall the clock catches up a few ticks at once and reports any ticks it gave up on, so the
 * subscribers can keep their RTP timestamps in step with real time.
 */

export type TickHandler = (skipped: number) => void;

export interface FrameClock {
  readonly frameMs: number;
  subscribe(fn: TickHandler): () => void;
}

export class IntervalFrameClock implements FrameClock {
  private readonly subs = new Set<TickHandler>();
  private timer: NodeJS.Timeout | null = null;
  private next = 0;
  /** Ticks dropped because the event loop stalled beyond the catch-up limit. */
  skippedTotal = 0;
  /** Worst observed lateness of a tick, ms. */
  maxLateMs = 0;

  constructor(readonly frameMs = 20, private readonly maxCatchUp = 5) {}

  subscribe(fn: TickHandler): () => void {
    this.subs.add(fn);
    if (!this.timer) {
      this.next = performance.now() + this.frameMs;
      this.schedule();
    }
    return () => {
      this.subs.delete(fn);
      if (this.subs.size === 0 && this.timer) {
        clearTimeout(this.timer);
        this.timer = null;
      }
    };
  }

  get subscribers(): number {
    return this.subs.size;
  }

  private schedule(): void {
    this.timer = setTimeout(() => this.fire(), Math.max(0, this.next - performance.now()));
  }

  private fire(): void {
    const now = performance.now();
    const late = now - this.next;
    if (late > this.maxLateMs) this.maxLateMs = late;
    let due = Math.floor(late / this.frameMs) + 1;
    let skipped = 0;
    if (due > this.maxCatchUp) {
      skipped = due - this.maxCatchUp;
      due = this.maxCatchUp;
      this.skippedTotal += skipped;
    }
    this.next += (due + skipped) * this.frameMs;
    for (let i = 0; i < due; i++) {
      for (const fn of this.subs) {
        try {
          fn(i === 0 ? skipped : 0);
        } catch {
          // A failing subscriber must not stop the other calls' media; bridges guard their own ticks.
        }
      }
    }
    if (this.subs.size > 0) this.schedule();
    else this.timer = null;
  }
}

/** Process-wide clock for production bridges. */
export const sharedFrameClock = new IntervalFrameClock(20);

/** Test clock: ticks only when told to. */
export class ManualFrameClock implements FrameClock {
  readonly frameMs = 20;
  private readonly subs = new Set<TickHandler>();
  subscribe(fn: TickHandler): () => void {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }
  tick(n = 1, skipped = 0): void {
    for (let i = 0; i < n; i++) for (const fn of [...this.subs]) fn(i === 0 ? skipped : 0);
  }
  get subscribers(): number {
    return this.subs.size;
  }
}
