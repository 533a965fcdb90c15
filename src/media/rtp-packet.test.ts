import { describe, expect, it } from 'vitest';
import {
  createRtpHeader, digitToEvent, eventToDigit, readRtpHeader, readTelephoneEvent, seqDiff,
  writeRtpHeader, writeTelephoneEvent, type TelephoneEvent,
} from './rtp-packet.js';

describe('rtp-packet', () => {
  it('writes and reads back a header with large seq/ts/ssrc', () => {
    const buf = new Uint8Array(12 + 160);
    writeRtpHeader(buf, { marker: true, payloadType: 111, sequenceNumber: 65535, timestamp: 0xfffffff0, ssrc: 0xdeadbeef });
    const h = createRtpHeader();
    expect(readRtpHeader(buf, h)).toBe(true);
    expect(h).toMatchObject({ marker: true, payloadType: 111, sequenceNumber: 65535, timestamp: 0xfffffff0, ssrc: 0xdeadbeef, payloadOffset: 12, payloadLength: 160 });
  });

  it('skips CSRCs and header extensions and strips padding', () => {
    // V=2 P=1 X=1 CC=1, PT=0, then 1 CSRC, a 1-word extension, 3 payload bytes, 2 padding bytes.
    const buf = Uint8Array.from([
      0xb1, 0x00, 0x00, 0x07, 0, 0, 0, 160, 1, 2, 3, 4,
      9, 9, 9, 9,
      0xbe, 0xde, 0x00, 0x01, 0x10, 0xff, 0, 0,
      0xaa, 0xbb, 0xcc,
      0x00, 0x02,
    ]);
    const h = createRtpHeader();
    expect(readRtpHeader(buf, h)).toBe(true);
    expect(h.payloadOffset).toBe(24);
    expect(h.payloadLength).toBe(3);
    expect(h.sequenceNumber).toBe(7);
    expect(h.timestamp).toBe(160);
  });

  it('rejects short, wrong-version, truncated and RTCP packets', () => {
    const h = createRtpHeader();
    expect(readRtpHeader(new Uint8Array(11), h)).toBe(false);
    expect(readRtpHeader(Uint8Array.from([0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), h)).toBe(false);
    expect(readRtpHeader(Uint8Array.from([0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), h)).toBe(false);
    expect(readRtpHeader(Uint8Array.from([0x80, 200, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0]), h)).toBe(false); // RTCP SR
  });

  it('round trips an RFC 4733 telephone-event payload', () => {
    const buf = new Uint8Array(4);
    writeTelephoneEvent(buf, { event: 11, end: true, volume: 10, duration: 1280 });
    expect(Array.from(buf)).toEqual([11, 0x8a, 0x05, 0x00]);
    const ev: TelephoneEvent = { event: 0, end: false, volume: 0, duration: 0 };
    expect(readTelephoneEvent(buf, 0, 4, ev)).toBe(true);
    expect(ev).toEqual({ event: 11, end: true, volume: 10, duration: 1280 });
    expect(eventToDigit(11)).toBe('#');
    expect(digitToEvent('*')).toBe(10);
    expect(() => digitToEvent('x')).toThrow(/not a DTMF digit/);
  });

  it('computes sequence distance across the wrap', () => {
    expect(seqDiff(2, 65534)).toBe(4);
    expect(seqDiff(65534, 2)).toBe(-4);
  });
});
