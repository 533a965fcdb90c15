/**
 * Lowers the Opus encoders' complexity while this thread's event loop is nearly full, and raises it back when the
 * load falls.
 *
 * The Opus encoder is the largest part of a transcoded call's CPU (about half at complexity 5), and the media tick
 * shares one event loop with every call on it. Past about 85 % busy, the ticks start to run late for every call at
 * once: lag, then late packets and gaps toward both the user and the agent. Spending less on the encoder keeps the
 * timing for everyone; toward an 8 kHz G.711 source the quality it costs is small (bench/encoder-quality.ts:
 * log-spectral distance 3.23 dB at complexity 5 against 3.37 dB at 0 on espeak-ng speech, segmental SNR unchanged).
 * libwebrtc makes the same trade on phones (complexity 5, not 9). A gateway with headroom never steps down.
 *
 * Steps: one level per second while the loop is more than `high` busy (two above 90 %); one back every `upHoldMs`
 * while it is below `low`. Each encoder runs at max(its minimum, its configured complexity - level).
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

export interface GovernedEncoder {
  /** The complexity configured for this call: what it runs at with no load. */
  readonly maxComplexity: number;
  readonly minComplexity: number;
  setComplexity(complexity: number): void;
}

export interface EncoderLoadGovernorOptions {
  /** Busy fraction of the event loop above which the level goes up (less encoder CPU). */
  high?: number;
  /** Busy fraction below which, held for upHoldMs, the level goes back down. */
  low?: number;
  /** Busy fraction above which, with every encoder already at its minimum, the loop counts as saturated. */
  saturation?: number;
  intervalMs?: number;
  upHoldMs?: number;
  /** The loop's busy fraction since the previous call; default performance.eventLoopUtilization(). */
  utilization?: () => number;
}

/** Told each change of level, the level before it and the utilization that caused it (log line, metric). */
export type LoadObserver = (level: number, previous: number, utilization: number) => void;

export class EncoderLoadGovernor {
  /** How many complexity steps below their configured value the encoders run now. */
  level = 0;
  /** The last sample's busy fraction, and whether every encoder was then at its minimum (no step left). */
  private lastUtilization = 0;
  private atMinimum = false;
  /** Where changes of level are reported (the gateway's log and metrics). */
  onChange: LoadObserver | null = null;
  /** Level changes since start, each way. */
  readonly changes = { down: 0, up: 0 };
  private readonly encoders = new Set<GovernedEncoder>();
  private readonly high: number;
  private readonly low: number;
  private readonly saturation: number;
  private readonly intervalMs: number;
  private readonly upHoldMs: number;
  private readonly utilization: () => number;
  private timer: NodeJS.Timeout | null = null;
  private lastBusyMs = 0;
  private lastChangeMs = 0;

  constructor(opts: EncoderLoadGovernorOptions = {}) {
    this.high = opts.high ?? 0.8;
    this.low = opts.low ?? 0.7;
    this.saturation = opts.saturation ?? 0.95;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.upHoldMs = opts.upHoldMs ?? 5000;
    this.utilization = opts.utilization ?? loopUtilization();
  }

  /** Adds an encoder at the current level; the governor samples the loop while it holds any. */
  add(enc: GovernedEncoder): void {
    this.encoders.add(enc);
    if (this.level > 0) enc.setComplexity(this.complexityOf(enc));
    if (!this.timer) {
      this.utilization(); // starts the interval
      this.timer = setInterval(() => this.sample(performance.now()), this.intervalMs);
      this.timer.unref();
    }
  }

  delete(enc: GovernedEncoder): void {
    this.encoders.delete(enc);
    if (this.encoders.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
      // An idle gateway starts its next calls at full quality.
      this.level = 0;
      this.lastUtilization = 0;
      this.atMinimum = false;
    }
  }

  /**
   * The last sample found the loop over `saturation` with every encoder at its minimum: no step left, and one more
   * call would make every call's audio late (the gateway then refuses new calls).
   */
  get saturated(): boolean {
    return this.saturatedAbove(this.saturation);
  }

  /** As `saturated`, with the busy fraction the operator chose (media.saturationBusyPercent). */
  saturatedAbove(busyFraction: number): boolean {
    return this.atMinimum && this.lastUtilization > busyFraction;
  }

  get size(): number {
    return this.encoders.size;
  }

  /** One look at the loop (called every intervalMs; public for tests). */
  sample(nowMs: number): void {
    const u = this.utilization();
    const room = this.maxLevel();
    this.lastUtilization = u;
    this.atMinimum = this.level >= room;
    let next = this.level;
    if (u > this.high && this.level < room) {
      next = Math.min(room, this.level + (u > 0.9 ? 2 : 1));
      this.lastBusyMs = nowMs;
    } else if (u >= this.low) {
      this.lastBusyMs = nowMs;
    } else if (this.level > 0 && nowMs - Math.max(this.lastBusyMs, this.lastChangeMs) >= this.upHoldMs) {
      next = this.level - 1;
    }
    if (next === this.level) return;
    if (next > this.level) this.changes.down++;
    else this.changes.up++;
    const previous = this.level;
    this.level = next;
    this.lastChangeMs = nowMs;
    for (const enc of this.encoders) enc.setComplexity(this.complexityOf(enc));
    this.onChange?.(next, previous, u);
  }

  private complexityOf(enc: GovernedEncoder): number {
    return Math.max(enc.minComplexity, enc.maxComplexity - this.level);
  }

  /** No level beyond the one that already puts every encoder at its minimum. */
  private maxLevel(): number {
    let room = 0;
    for (const enc of this.encoders) room = Math.max(room, enc.maxComplexity - enc.minComplexity);
    return room;
  }
}

function loopUtilization(): () => number {
  let prev: EventLoopUtilization = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, prev);
    prev = now;
    return delta.utilization;
  };
}

let shared: EncoderLoadGovernor | null = null;

/** The governor of this thread's event loop (each media plane has its own loop, so its own governor). */
export function encoderLoadGovernor(): EncoderLoadGovernor {
  shared ??= new EncoderLoadGovernor();
  return shared;
}
