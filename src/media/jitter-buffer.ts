/**
 * Adaptive jitter buffer for the WhatsApp → SIP direction: packets are pushed as they arrive and one
 * frame is popped per 20 ms playout tick. It reorders by sequence number, drops packets that arrive after
 * their playout time (counted as late), and sizes its target delay from the measured interarrival jitter
 * between minDelayMs and maxDelayMs. Payloads are copied into preallocated slots.
 */
import { seqDiff } from './rtp-packet.js';
import { copyInto } from './types.js';

export interface JitterBufferOptions {
  /** Lower bound of the target delay (and the initial target). */
  minDelayMs?: number;
  /** Upper bound of the target delay; packets further ahead than this are dropped as overflow. */
  maxDelayMs?: number;
  frameMs?: number;
  /** RTP clock of the stream (48000 for Opus), for the jitter estimate. */
  clockRate?: number;
  maxPayload?: number;
}

/** pop() results besides a payload length. */
export const JB_LOST = -1;
export const JB_EMPTY = -2;

export interface JitterBufferStats {
  pushed: number;
  played: number;
  /** Frames whose packet never arrived by playout time (the caller conceals them). */
  lost: number;
  /** Packets that arrived after their playout time and were dropped. */
  late: number;
  duplicate: number;
  /** Frames dropped to shrink the delay after a burst, or because they were too far ahead. */
  discarded: number;
  underruns: number;
  resyncs: number;
}

export class JitterBuffer {
  readonly frameMs: number;
  readonly minFrames: number;
  readonly maxFrames: number;
  private readonly clockRate: number;
  private readonly capacity: number;
  private readonly slots: Uint8Array[];
  private readonly lengths: Int32Array;
  private readonly seqOf: Float64Array;
  private readonly present: Uint8Array;
  private count = 0;
  private started = false;
  private playing = false;
  /** Extended sequence numbers (no 16-bit wrap). */
  private highestExt = 0;
  private nextExt = 0;
  private lowestExt = 0;
  private lastTransit = 0;
  private haveTransit = false;
  private jitterMsEst = 0;
  private targetFrames: number;
  private excessTicks = 0;
  private lateRun = 0;
  readonly stats: JitterBufferStats = { pushed: 0, played: 0, lost: 0, late: 0, duplicate: 0, discarded: 0, underruns: 0, resyncs: 0 };

  constructor(opts: JitterBufferOptions = {}) {
    this.frameMs = opts.frameMs ?? 20;
    const minMs = Math.max(this.frameMs, opts.minDelayMs ?? 20);
    const maxMs = Math.max(minMs, opts.maxDelayMs ?? 200);
    this.minFrames = Math.ceil(minMs / this.frameMs);
    this.maxFrames = Math.ceil(maxMs / this.frameMs);
    this.clockRate = opts.clockRate ?? 48000;
    this.capacity = this.maxFrames + 8;
    const maxPayload = opts.maxPayload ?? 1500;
    this.slots = Array.from({ length: this.capacity }, () => new Uint8Array(maxPayload));
    this.lengths = new Int32Array(this.capacity);
    this.seqOf = new Float64Array(this.capacity);
    this.present = new Uint8Array(this.capacity);
    this.targetFrames = this.minFrames;
  }

  get targetDelayMs(): number {
    return this.targetFrames * this.frameMs;
  }

  get jitterMs(): number {
    return this.jitterMsEst;
  }

  /** Frames buffered from the playout point to the newest packet. */
  get depth(): number {
    if (this.count === 0) return 0;
    return this.highestExt - (this.playing ? this.nextExt : this.lowestExt) + 1;
  }

  push(seq: number, timestamp: number, payload: Uint8Array, offset: number, length: number, arrivalMs: number): boolean {
    if (length > this.slots[0]!.length) {
      this.stats.discarded++;
      return false;
    }
    this.updateJitter(timestamp, arrivalMs);
    let ext: number;
    if (!this.started) {
      this.started = true;
      ext = seq;
      this.highestExt = this.lowestExt = ext;
    } else {
      ext = this.highestExt + seqDiff(seq, this.highestExt & 0xffff);
      if (!this.playing && this.count === 0) {
        // Rebuffering with nothing queued: whatever arrives starts the stream afresh, even if its sequence
        // number went backwards (the old newest packet must not count towards the depth).
        this.highestExt = this.lowestExt = ext;
      }
    }
    if (this.playing && ext < this.nextExt) {
      // A large backwards jump, or a run of "late" packets that keeps pace with playout, is a new sequence
      // space (sender restart, relay switching SSRC), not lateness: follow it instead of dropping it forever.
      if (this.nextExt - ext > this.capacity * 4 || ++this.lateRun >= 8) return this.resync(ext, timestamp, payload, offset, length);
      this.stats.late++;
      return false;
    }
    this.lateRun = 0;
    const base = this.playing ? this.nextExt : Math.min(this.lowestExt, ext);
    if (ext - base >= this.capacity) {
      if (ext - base > this.capacity * 4 || this.count === 0) return this.resync(ext, timestamp, payload, offset, length);
      this.stats.discarded++;
      return false;
    }
    const i = ext % this.capacity;
    if (this.present[i] && this.seqOf[i] === ext) {
      this.stats.duplicate++;
      return false;
    }
    this.store(i, ext, payload, offset, length);
    if (ext > this.highestExt) this.highestExt = ext;
    if (!this.playing && ext < this.lowestExt) this.lowestExt = ext;
    return true;
  }

  /**
   * Writes the next frame's payload into `out` and returns its length, or JB_LOST when the frame is
   * missing (conceal it), or JB_EMPTY while (re)buffering (play silence or conceal).
   */
  pop(out: Uint8Array): number {
    if (!this.playing) {
      if (this.count === 0 || this.depth < this.targetFrames) return JB_EMPTY;
      this.playing = true;
      this.nextExt = this.lowestExt;
    }
    if (this.count === 0) {
      // Underrun: wait for the target depth again rather than conceal an unbounded gap frame by frame.
      this.stats.underruns++;
      this.playing = false;
      this.targetFrames = Math.min(this.maxFrames, this.targetFrames + 1);
      this.lowestExt = this.nextExt;
      return JB_EMPTY;
    }
    // After a burst, drop the oldest frame to bring latency back towards the target, but only once the
    // excess has persisted for 100 ms, so ordinary reordering never costs a frame.
    if (this.depth > this.targetFrames + 2) this.excessTicks++;
    else this.excessTicks = 0;
    if (this.excessTicks >= 5) {
      this.excessTicks = 0;
      const i = this.nextExt % this.capacity;
      if (this.present[i] && this.seqOf[i] === this.nextExt) {
        this.present[i] = 0;
        this.count--;
      }
      this.stats.discarded++;
      this.nextExt++;
    }
    const i = this.nextExt % this.capacity;
    this.nextExt++;
    if (this.present[i] && this.seqOf[i] === this.nextExt - 1) {
      this.present[i] = 0;
      this.count--;
      const n = this.lengths[i]!;
      copyInto(out, 0, this.slots[i]!, 0, n);
      this.stats.played++;
      return n;
    }
    this.stats.lost++;
    return JB_LOST;
  }

  /**
   * The next frame's payload, left in place (for FEC: right after pop() returned JB_LOST, this is the packet whose
   * in-band FEC rebuilds the lost frame). Returns its length, or -1 when it has not arrived.
   */
  peekNext(out: Uint8Array): number {
    if (!this.playing) return -1;
    const i = this.nextExt % this.capacity;
    if (!this.present[i] || this.seqOf[i] !== this.nextExt) return -1;
    const n = this.lengths[i]!;
    copyInto(out, 0, this.slots[i]!, 0, n);
    return n;
  }

  reset(): void {
    this.lateRun = 0;
    this.present.fill(0);
    this.count = 0;
    this.started = false;
    this.playing = false;
    this.haveTransit = false;
    this.targetFrames = this.minFrames;
  }

  private store(i: number, ext: number, payload: Uint8Array, offset: number, length: number): void {
    copyInto(this.slots[i]!, 0, payload, offset, length);
    this.lengths[i] = length;
    this.seqOf[i] = ext;
    this.present[i] = 1;
    this.count++;
    this.stats.pushed++;
  }

  private resync(ext: number, timestamp: number, payload: Uint8Array, offset: number, length: number): boolean {
    this.stats.resyncs++;
    this.lateRun = 0;
    this.present.fill(0);
    this.count = 0;
    this.playing = false;
    this.haveTransit = false;
    // Keep the extended sequence numbering continuous: restart it at the new packet.
    this.highestExt = this.lowestExt = ext;
    this.store(ext % this.capacity, ext, payload, offset, length);
    void timestamp;
    return true;
  }

  private updateJitter(timestamp: number, arrivalMs: number): void {
    const transit = arrivalMs - (timestamp * 1000) / this.clockRate;
    if (this.haveTransit) {
      let d = Math.abs(transit - this.lastTransit);
      // A timestamp wrap or a sender/SSRC jump is a discontinuity, not jitter: ignore it rather than let one
      // packet push the target delay to its maximum.
      if (d > 250) d = 0;
      this.jitterMsEst += (d - this.jitterMsEst) / 16;
      const want = Math.ceil((this.frameMs + 2 * this.jitterMsEst) / this.frameMs);
      // Grow promptly, shrink only by one frame at a time so a quiet spell does not cause an underrun storm.
      if (want > this.targetFrames) this.targetFrames = Math.min(this.maxFrames, want);
      else if (want < this.targetFrames - 1) this.targetFrames = Math.max(this.minFrames, this.targetFrames - 1);
    }
    this.haveTransit = true;
    this.lastTransit = transit;
  }
}
