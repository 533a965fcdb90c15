import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RtpHeader, SrtpSession } from 'werift';
import { SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_HMAC_SHA1_80, SrtpContext, type SrtpProfile } from './srtp.js';

function keys(profile: SrtpProfile): { key: Buffer; salt: Buffer; key2: Buffer; salt2: Buffer } {
  const saltLen = profile === SRTP_AES128_CM_HMAC_SHA1_80 ? 14 : 12;
  return { key: randomBytes(16), salt: randomBytes(saltLen), key2: randomBytes(16), salt2: randomBytes(saltLen) };
}

/** werift's session with our keys as "local" (what it encrypts) and the second pair as "remote". */
function weriftSession(profile: SrtpProfile, k: ReturnType<typeof keys>): SrtpSession {
  return new SrtpSession({
    profile,
    keys: { localMasterKey: k.key, localMasterSalt: k.salt, remoteMasterKey: k.key2, remoteMasterSalt: k.salt2 },
  });
}

function rtp(seq: number, ts: number, ssrc: number, payload: Buffer, marker = false, pt = 111): Buffer {
  const b = Buffer.alloc(12 + payload.length + 16);
  b[0] = 0x80;
  b[1] = (marker ? 0x80 : 0) | pt;
  b.writeUInt16BE(seq, 2);
  b.writeUInt32BE(ts >>> 0, 4);
  b.writeUInt32BE(ssrc >>> 0, 8);
  payload.copy(b, 12);
  return b;
}

describe.each([
  ['AES_CM_128_HMAC_SHA1_80', SRTP_AES128_CM_HMAC_SHA1_80 as SrtpProfile],
  ['AEAD_AES_128_GCM', SRTP_AEAD_AES_128_GCM as SrtpProfile],
])('SrtpContext %s', (_name, profile) => {
  it('protects byte-identically to werift across a sequence-number wrap, and both sides read each other', () => {
    const k = keys(profile);
    const theirs = weriftSession(profile, k);
    const ours = new SrtpContext(profile, k.key, k.salt);
    const ssrc = 0xdeadbeef;
    let seq = 65530;
    for (let i = 0; i < 20; i++, seq = (seq + 1) & 0xffff) {
      const payload = randomBytes(20 + i * 13); // up to ~270 bytes: several keystream blocks, odd tails
      const mine = rtp(seq, 1000 + i * 960, ssrc, payload, i === 0);
      const n = ours.protect(mine, 12 + payload.length);
      const header = new RtpHeader({ payloadType: 111, sequenceNumber: seq, timestamp: 1000 + i * 960, ssrc, marker: i === 0 });
      const ref = theirs.encrypt(payload, header);
      expect(mine.subarray(0, n).equals(ref), `packet ${i} (seq ${seq})`).toBe(true);
    }
  });

  it('unprotects what werift protects (ROC across a wrap, reordering) and rejects a tampered packet', () => {
    const k = keys(profile);
    // werift encrypts with its "local" keys; our receiving context uses the same master key.
    const sender = weriftSession(profile, k);
    const ours = new SrtpContext(profile, k.key, k.salt);
    const ssrc = 0x01020304;
    const out = { payloadOffset: 0 };
    const sent: Array<{ seq: number; payload: Buffer; srtp: Buffer }> = [];
    for (let i = 0; i < 12; i++) {
      const seq = (65530 + i) & 0xffff;
      const payload = randomBytes(60);
      const srtp = sender.encrypt(payload, new RtpHeader({ payloadType: 111, sequenceNumber: seq, timestamp: i * 960, ssrc }));
      sent.push({ seq, payload, srtp });
    }
    // Deliver with a swap across the wrap (65535 after 0).
    const order = [0, 1, 2, 3, 4, 6, 5, 7, 8, 9, 10, 11];
    for (const idx of order) {
      const p = sent[idx]!;
      const buf = Buffer.from(p.srtp);
      const n = ours.unprotect(buf, buf.length, out);
      expect(n, `seq ${p.seq}`).toBe(12 + 60);
      expect(buf.subarray(out.payloadOffset, n).equals(p.payload), `seq ${p.seq}`).toBe(true);
    }
    const bad = Buffer.from(sent[11]!.srtp);
    bad[20] = bad[20]! ^ 1;
    expect(ours.unprotect(bad, bad.length, out)).toBe(-1);
  });

  it('werift decrypts what we protect', () => {
    const k = keys(profile);
    const ours = new SrtpContext(profile, k.key2, k.salt2); // werift's "remote" side
    const receiver = weriftSession(profile, k);
    const payload = randomBytes(73);
    const pkt = rtp(4242, 123456, 0x11223344, payload);
    const n = ours.protect(pkt, 12 + payload.length);
    const dec = receiver.decrypt(pkt.subarray(0, n));
    expect(dec.subarray(12).equals(payload)).toBe(true);
  });
});
