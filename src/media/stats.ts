/**
 * Receive-side RTP statistics (RFC 3550 A.1 loss, A.8 interarrival jitter) updated in place per packet,
 * and an E-model (ITU-T G.107, simplified) MOS estimate for the call record.
 */
import { seqDiff } from './rtp-packet.js';

export class RtpReceiveStats {
  packets = 0;
  private started = false;
  private baseExt = 0;
  private maxExt = 0;
  private lastTransit = 0;
  /** lastTransit belongs to the current sequence space (false until a packet on the media clock came). */
  private transitKnown = false;
  /** Packets expected in earlier sequence spaces (before a restart or SSRC switch). */
  private expectedBefore = 0;
  /** Interarrival jitter in timestamp units, scaled as in RFC 3550 (J += (|D| - J) / 16). */
  private jitterTs = 0;

  constructor(readonly clockRate: number) {}

  update(seq: number, rtpTimestamp: number, arrivalMs: number): void {
    this.packets++;
    const arrivalTs = (arrivalMs * this.clockRate) / 1000;
    const transit = arrivalTs - rtpTimestamp;
    if (!this.track(seq) || !this.transitKnown) {
      this.lastTransit = transit;
      this.transitKnown = true;
      return;
    }
    // RTP timestamps wrap at 2^32: fold the transit difference into the signed 32-bit range.
    let delta = transit - this.lastTransit;
    if (delta > 0x7fffffff) delta -= 0x100000000;
    else if (delta < -0x80000000) delta += 0x100000000;
    this.lastTransit = transit;
    this.jitterTs += (Math.abs(delta) - this.jitterTs) / 16;
  }

  /**
   * A packet of the stream whose timestamp is not on this clock (a payload type we do not decode): it was received, so
   * its sequence number is not booked as lost, but it leaves the jitter alone.
   */
  countReceived(seq: number): void {
    this.packets++;
    if (!this.track(seq)) this.transitKnown = false;
  }

  /** Sequence tracking; false when `seq` starts a sequence space (the first packet, a restart), where jitter has no base. */
  private track(seq: number): boolean {
    if (!this.started) {
      this.started = true;
      this.baseExt = this.maxExt = seq;
      return false;
    }
    const d = seqDiff(seq, this.maxExt & 0xffff);
    if (d > 3000 || d < -3000) {
      // A new sequence space (sender restart or SSRC switch): count what the old one expected and re-base,
      // rather than booking the jump as thousands of lost packets.
      this.expectedBefore += this.maxExt - this.baseExt + 1;
      this.baseExt = this.maxExt = seq;
      return false;
    }
    if (d > 0) this.maxExt += d;
    return true;
  }

  get expected(): number {
    return this.started ? this.expectedBefore + this.maxExt - this.baseExt + 1 : 0;
  }

  /** Cumulative loss from sequence gaps (duplicates can make the raw count negative; clamped at 0). */
  get lost(): number {
    return Math.max(0, this.expected - this.packets);
  }

  /** Extended highest sequence number received (RTCP report block). */
  get extendedHighestSeq(): number {
    return this.maxExt;
  }

  /** Interarrival jitter in RTP timestamp units (RTCP report block). */
  get jitterTimestampUnits(): number {
    return this.jitterTs;
  }

  get jitterMs(): number {
    return (this.jitterTs * 1000) / this.clockRate;
  }

  get lossFraction(): number {
    const e = this.expected;
    return e > 0 ? this.lost / e : 0;
  }
}

export type MosCodec = 'PCMU' | 'PCMA' | 'opus';

/** Equipment impairment Ie and packet-loss robustness Bpl (G.113 Appendix I for G.711 with PLC; Opus NB estimated). */
const CODEC_IMPAIRMENT: Readonly<Record<MosCodec, { ie: number; bpl: number }>> = {
  PCMU: { ie: 0, bpl: 25.1 },
  PCMA: { ie: 0, bpl: 25.1 },
  opus: { ie: 10, bpl: 20 },
};

export interface MosInput {
  codec: MosCodec;
  /** Packet loss, 0–100 %. */
  lossPercent: number;
  jitterMs: number;
  /** One-way network delay if known (RTT/2); defaults to a typical 40 ms. */
  delayMs?: number;
}

/** MOS-CQE estimate (1.0–4.5) from the E-model: R = 93.2 − Id − Ie,eff, then G.107's R→MOS mapping. */
export function estimateMos(input: MosInput): number {
  const { ie, bpl } = CODEC_IMPAIRMENT[input.codec];
  const ppl = Math.max(0, Math.min(100, input.lossPercent));
  // Mouth-to-ear delay: network + a jitter buffer sized at about twice the jitter + packetisation/codec.
  const d = Math.max(0, (input.delayMs ?? 40) + 2 * Math.max(0, input.jitterMs) + 30);
  const id = 0.024 * d + (d > 177.3 ? 0.11 * (d - 177.3) : 0);
  const ieEff = ie + ((95 - ie) * ppl) / (ppl + bpl);
  const r = 93.2 - id - ieEff;
  if (r <= 0) return 1;
  if (r >= 100) return 4.5;
  const mos = 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6;
  return Math.round(Math.max(1, Math.min(4.5, mos)) * 100) / 100;
}
