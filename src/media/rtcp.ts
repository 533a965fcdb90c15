/**
 * RTCP sender and receiver reports (RFC 3550 §6.4) for a plain-RTP leg: what we build every few seconds, what we
 * read from the peer, and the round-trip time from its report blocks (LSR/DLSR, §6.4.1).
 *
 * Buffers are reused; parsing fills a caller-owned result object.
 */
import type { RtpReceiveStats } from './stats.js';

export const RTCP_SR = 200;
export const RTCP_RR = 201;

/** 2^32 · seconds between 1900 (NTP) and 1970 (Unix). */
const NTP_UNIX_OFFSET_S = 2_208_988_800;

/** The NTP time of `unixMs` as [seconds, fraction]. */
export function ntpFromUnixMs(unixMs: number): [number, number] {
  const sec = Math.floor(unixMs / 1000);
  const frac = Math.floor(((unixMs - sec * 1000) / 1000) * 0x100000000);
  return [(sec + NTP_UNIX_OFFSET_S) >>> 0, frac >>> 0];
}

/** The middle 32 bits of an NTP timestamp (the unit LSR and DLSR use: 1/65536 s). */
export function ntpMiddle(sec: number, frac: number): number {
  return (((sec & 0xffff) << 16) | (frac >>> 16)) >>> 0;
}

export interface ReportBlock {
  ssrc: number;
  /** Fraction lost since the previous report, 0..255 (/256). */
  fractionLost: number;
  cumulativeLost: number;
  highestSeq: number;
  /** Interarrival jitter in RTP timestamp units. */
  jitter: number;
  lsr: number;
  dlsr: number;
}

export interface ParsedRtcp {
  senderSsrc: number;
  /** Middle 32 bits of the NTP time of the last SR in the compound packet, or -1 when it held none. */
  srNtpMiddle: number;
  blocks: ReportBlock[];
}

/**
 * Reads every SR and RR in a compound RTCP packet into `out` (blocks appended). Returns false for something that
 * is not RTCP v2; other packet types (SDES, BYE, APP, feedback) are skipped.
 */
export function parseRtcp(buf: Uint8Array, len: number, out: ParsedRtcp): boolean {
  out.srNtpMiddle = -1;
  out.blocks.length = 0;
  let off = 0;
  let any = false;
  const view = new DataView(buf.buffer, buf.byteOffset, len);
  while (off + 4 <= len) {
    if ((buf[off]! >> 6) !== 2) return any;
    const count = buf[off]! & 0x1f;
    const pt = buf[off + 1]!;
    const words = view.getUint16(off + 2);
    const end = off + 4 + words * 4;
    if (end > len) return any;
    if ((pt === RTCP_SR || pt === RTCP_RR) && off + 8 <= end) {
      any = true;
      out.senderSsrc = view.getUint32(off + 4);
      let p = off + 8;
      if (pt === RTCP_SR) {
        if (p + 20 > end) return any;
        out.srNtpMiddle = ntpMiddle(view.getUint32(p), view.getUint32(p + 4));
        p += 20;
      }
      for (let i = 0; i < count && p + 24 <= end; i++, p += 24) {
        const lostWord = view.getUint32(p + 4);
        let cumulative = lostWord & 0xffffff;
        if (cumulative & 0x800000) cumulative -= 0x1000000; // signed 24-bit
        out.blocks.push({
          ssrc: view.getUint32(p), fractionLost: lostWord >>> 24, cumulativeLost: cumulative,
          highestSeq: view.getUint32(p + 8), jitter: view.getUint32(p + 12), lsr: view.getUint32(p + 16), dlsr: view.getUint32(p + 20),
        });
      }
    }
    off = end;
  }
  return any;
}

/** The receive side of one RTP stream as RTCP sees it: report blocks with fraction lost since the last one. */
export class RtcpReceiverState {
  remoteSsrc = 0;
  /** Middle NTP bits of the peer's last SR, and when (monotonic ms) it arrived; 0 / -1 before any. */
  lastSr = 0;
  lastSrAt = -1;
  private expectedPrior = 0;
  private receivedPrior = 0;

  constructor(private readonly stats: RtpReceiveStats) {}

  onSenderReport(ntpMiddle32: number, nowMs: number): void {
    this.lastSr = ntpMiddle32;
    this.lastSrAt = nowMs;
  }

  /** Writes a 24-byte report block at `off`; false when nothing has been received yet. */
  writeBlock(view: DataView, off: number, nowMs: number): boolean {
    const s = this.stats;
    if (s.packets === 0) return false;
    const expected = s.expected;
    const expectedInterval = expected - this.expectedPrior;
    const receivedInterval = s.packets - this.receivedPrior;
    this.expectedPrior = expected;
    this.receivedPrior = s.packets;
    const lostInterval = expectedInterval - receivedInterval;
    const fraction = expectedInterval <= 0 || lostInterval <= 0 ? 0 : Math.min(255, Math.floor((lostInterval << 8) / expectedInterval));
    const cumulative = Math.max(-0x800000, Math.min(0x7fffff, expected - s.packets));
    view.setUint32(off, this.remoteSsrc >>> 0);
    view.setUint32(off + 4, ((fraction << 24) | (cumulative & 0xffffff)) >>> 0);
    view.setUint32(off + 8, s.extendedHighestSeq >>> 0);
    view.setUint32(off + 12, Math.round(s.jitterTimestampUnits) >>> 0);
    view.setUint32(off + 16, this.lastSr >>> 0);
    const dlsr = this.lastSrAt < 0 ? 0 : Math.round(((nowMs - this.lastSrAt) / 1000) * 65536);
    view.setUint32(off + 20, dlsr >>> 0);
    return true;
  }
}

export interface SenderInfo {
  ssrc: number;
  unixMs: number;
  rtpTimestamp: number;
  packets: number;
  octets: number;
}

/**
 * Writes an SR (when `sender` is given) or an RR from `ssrc`, with one report block when `rx` has received
 * anything. Returns the length. `buf` needs 52 bytes.
 */
export function writeReport(buf: Buffer, ssrc: number, sender: SenderInfo | null, rx: RtcpReceiverState | null, nowMs: number): number {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  let off = 8;
  if (sender) {
    const [sec, frac] = ntpFromUnixMs(sender.unixMs);
    view.setUint32(off, sec);
    view.setUint32(off + 4, frac);
    view.setUint32(off + 8, sender.rtpTimestamp >>> 0);
    view.setUint32(off + 12, sender.packets >>> 0);
    view.setUint32(off + 16, sender.octets >>> 0);
    off += 20;
  }
  const withBlock = rx !== null && rx.writeBlock(view, off, nowMs);
  if (withBlock) off += 24;
  buf[0] = 0x80 | (withBlock ? 1 : 0);
  buf[1] = sender ? RTCP_SR : RTCP_RR;
  view.setUint16(2, off / 4 - 1);
  view.setUint32(4, ssrc >>> 0);
  return off;
}

/** 1/65536 s units a computed round trip may fall below zero by rounding alone (about 0.1 ms). */
const RTT_ROUNDING_SLACK = 8;

/** RTT in ms from a report block about our stream (RFC 3550 §6.4.1), or null when it cannot be computed. */
export function rttFromBlock(block: ReportBlock, nowUnixMs: number): number | null {
  if (block.lsr === 0) return null;
  const [sec, frac] = ntpFromUnixMs(nowUnixMs);
  const a = ntpMiddle(sec, frac);
  const rtt = (a - block.lsr - block.dlsr) | 0;
  // The three terms are each rounded to 1/65536 s, so a round trip of a few µs can come out a little below zero;
  // further below is a clock step or a bogus report.
  if (rtt < -RTT_ROUNDING_SLACK) return null;
  return (Math.max(0, rtt) / 65536) * 1000;
}
