/**
 * Plain RTP (RFC 3550) header reading/writing and the RFC 4733 telephone-event payload.
 * Readers fill a caller-owned object so the per-packet path allocates nothing.
 */
import { copyInto } from './types.js';

export const RTP_HEADER_SIZE = 12;

export interface RtpHeader {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  csrcCount: number;
  extension: boolean;
  padding: boolean;
  /** Offset of the payload inside the buffer (after CSRCs and extension). */
  payloadOffset: number;
  /** Payload length after removing padding. */
  payloadLength: number;
}

export function createRtpHeader(): RtpHeader {
  return {
    marker: false, payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0,
    csrcCount: 0, extension: false, padding: false, payloadOffset: RTP_HEADER_SIZE, payloadLength: 0,
  };
}

/**
 * Parses an RTP header from `buf[offset, offset+length)` into `out`.
 * Returns false for anything that is not a well-formed RTP v2 packet (including RTCP on a muxed port:
 * PT 72–79 with the marker bit are RTCP types 200–207).
 */
export function readRtpHeader(buf: Uint8Array, out: RtpHeader, offset = 0, length = buf.length - offset): boolean {
  if (length < RTP_HEADER_SIZE) return false;
  const b0 = buf[offset]!;
  if (b0 >> 6 !== 2) return false;
  const b1 = buf[offset + 1]!;
  const pt = b1 & 0x7f;
  if (pt >= 72 && pt <= 79) return false;
  const cc = b0 & 0x0f;
  let pos = RTP_HEADER_SIZE + cc * 4;
  if (pos > length) return false;
  const hasExt = (b0 & 0x10) !== 0;
  if (hasExt) {
    if (pos + 4 > length) return false;
    const extWords = (buf[offset + pos + 2]! << 8) | buf[offset + pos + 3]!;
    pos += 4 + extWords * 4;
    if (pos > length) return false;
  }
  let end = length;
  const hasPadding = (b0 & 0x20) !== 0;
  if (hasPadding) {
    const pad = buf[offset + length - 1]!;
    if (pad === 0 || pos + pad > length) return false;
    end -= pad;
  }
  out.padding = hasPadding;
  out.extension = hasExt;
  out.csrcCount = cc;
  out.marker = (b1 & 0x80) !== 0;
  out.payloadType = pt;
  out.sequenceNumber = (buf[offset + 2]! << 8) | buf[offset + 3]!;
  out.timestamp = ((buf[offset + 4]! << 24) | (buf[offset + 5]! << 16) | (buf[offset + 6]! << 8) | buf[offset + 7]!) >>> 0;
  out.ssrc = ((buf[offset + 8]! << 24) | (buf[offset + 9]! << 16) | (buf[offset + 10]! << 8) | buf[offset + 11]!) >>> 0;
  out.payloadOffset = offset + pos;
  out.payloadLength = end - pos;
  return true;
}

/** Writes a 12-byte header (no CSRC, no extension, no padding); returns the header size. */
export function writeRtpHeader(
  buf: Uint8Array,
  h: { marker: boolean; payloadType: number; sequenceNumber: number; timestamp: number; ssrc: number },
  offset = 0,
): number {
  putHeader(buf, offset, h.marker, h.payloadType, h.sequenceNumber, h.timestamp, h.ssrc);
  return RTP_HEADER_SIZE;
}

function putHeader(buf: Uint8Array, offset: number, marker: boolean, payloadType: number, seq: number, ts: number, ssrc: number): void {
  buf[offset] = 0x80;
  buf[offset + 1] = (marker ? 0x80 : 0) | (payloadType & 0x7f);
  buf[offset + 2] = (seq >>> 8) & 0xff;
  buf[offset + 3] = seq & 0xff;
  buf[offset + 4] = (ts >>> 24) & 0xff;
  buf[offset + 5] = (ts >>> 16) & 0xff;
  buf[offset + 6] = (ts >>> 8) & 0xff;
  buf[offset + 7] = ts & 0xff;
  buf[offset + 8] = (ssrc >>> 24) & 0xff;
  buf[offset + 9] = (ssrc >>> 16) & 0xff;
  buf[offset + 10] = (ssrc >>> 8) & 0xff;
  buf[offset + 11] = ssrc & 0xff;
}

/**
 * Writes a whole RTP packet for sending: a fixed 12-byte header (no CSRC, no extension) on `ssrc`, then `length`
 * payload bytes from `payload[offset]`. Returns the packet length.
 */
export function writeRtpPacket(
  buf: Uint8Array,
  h: { marker?: boolean; payloadType: number; sequenceNumber: number; timestamp: number },
  ssrc: number,
  payload: Uint8Array,
  offset: number,
  length: number,
): number {
  putHeader(buf, 0, h.marker ?? false, h.payloadType, h.sequenceNumber, h.timestamp, ssrc);
  copyInto(buf, RTP_HEADER_SIZE, payload, offset, length);
  return RTP_HEADER_SIZE + length;
}

/** The fixed header fields of a received RTP packet (at least 12 bytes), into `out`. */
export function readRtpFields(buf: Uint8Array, out: { payloadType: number; marker: boolean; sequenceNumber: number; timestamp: number; ssrc: number }): void {
  out.payloadType = buf[1]! & 0x7f;
  out.marker = (buf[1]! & 0x80) !== 0;
  out.sequenceNumber = (buf[2]! << 8) | buf[3]!;
  out.timestamp = ((buf[4]! << 24) | (buf[5]! << 16) | (buf[6]! << 8) | buf[7]!) >>> 0;
  out.ssrc = ((buf[8]! << 24) | (buf[9]! << 16) | (buf[10]! << 8) | buf[11]!) >>> 0;
}

/** RFC 4733 §2.3 telephone-event payload. */
export interface TelephoneEvent {
  /** 0–9 digits, 10 = '*', 11 = '#', 12–15 = A–D. */
  event: number;
  end: boolean;
  /** Power level in -dBm0, 0–63. */
  volume: number;
  /** Duration in units of the telephone-event clock (8 kHz here). */
  duration: number;
}

export const TELEPHONE_EVENT_SIZE = 4;

export function readTelephoneEvent(buf: Uint8Array, offset: number, length: number, out: TelephoneEvent): boolean {
  if (length < TELEPHONE_EVENT_SIZE) return false;
  out.event = buf[offset]!;
  const b1 = buf[offset + 1]!;
  out.end = (b1 & 0x80) !== 0;
  out.volume = b1 & 0x3f;
  out.duration = (buf[offset + 2]! << 8) | buf[offset + 3]!;
  return true;
}

export function writeTelephoneEvent(buf: Uint8Array, ev: TelephoneEvent, offset = 0): number {
  buf[offset] = ev.event & 0xff;
  buf[offset + 1] = (ev.end ? 0x80 : 0) | (ev.volume & 0x3f);
  const d = Math.min(ev.duration, 0xffff);
  buf[offset + 2] = (d >>> 8) & 0xff;
  buf[offset + 3] = d & 0xff;
  return TELEPHONE_EVENT_SIZE;
}

const DIGITS = '0123456789*#ABCD';

export type DtmfDigit = '0' | '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | '9' | '*' | '#' | 'A' | 'B' | 'C' | 'D';

export function eventToDigit(event: number): DtmfDigit | null {
  return event >= 0 && event < 16 ? (DIGITS[event] as DtmfDigit) : null;
}

export function digitToEvent(digit: string): number {
  const i = DIGITS.indexOf(digit.toUpperCase());
  if (i < 0 || digit.length !== 1) throw new RangeError(`not a DTMF digit: ${JSON.stringify(digit)}`);
  return i;
}

/** Signed distance a - b in 16-bit sequence space (RFC 3550 wrap-around). */
export function seqDiff(a: number, b: number): number {
  return ((a - b + 0x8000) & 0xffff) - 0x8000;
}
