import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SrtcpSession } from 'werift';
import { parseRtcp, type ParsedRtcp } from './rtcp.js';
import { SrtcpContext, SrtcpGcmContext } from './srtcp.js';
import { SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_HMAC_SHA1_80 } from './srtp.js';

/** An RTCP RR with one report block and an SDES CNAME: 32 + 16 bytes. */
function rtcp(ssrc: number): Buffer {
  const b = Buffer.alloc(48);
  b[0] = 0x81;
  b[1] = 201;
  b.writeUInt16BE(7, 2);
  b.writeUInt32BE(ssrc, 4);
  randomBytes(24).copy(b, 8);
  b[32] = 0x81;
  b[33] = 202;
  b.writeUInt16BE(3, 34);
  b.writeUInt32BE(ssrc, 36);
  b[40] = 1;
  b[41] = 5;
  b.write('abcde', 42, 'ascii');
  return b;
}

describe('SrtcpContext (RFC 3711 §3.4, AES_CM_128_HMAC_SHA1_80)', () => {
  const key = randomBytes(16);
  const salt = randomBytes(14);
  const werift = new SrtcpSession({
    profile: SRTP_AES128_CM_HMAC_SHA1_80,
    keys: { localMasterKey: key, localMasterSalt: salt, remoteMasterKey: key, remoteMasterSalt: salt },
  });

  it('protects what werift decrypts: E flag set, index counting up, 10-byte tag', () => {
    const ours = new SrtcpContext(key, salt);
    for (let i = 0; i < 5; i++) {
      const plain = rtcp(0x11223344);
      const p = ours.protect(plain);
      expect(p.length).toBe(plain.length + 14);
      expect(p.subarray(0, 8).equals(plain.subarray(0, 8))).toBe(true);
      expect(p.subarray(8, plain.length).equals(plain.subarray(8))).toBe(false);
      expect(p.readUInt32BE(plain.length)).toBe((0x80000000 | i) >>> 0);
      expect(werift.decrypt(p).equals(plain)).toBe(true);
    }
  });

  it('unprotects what werift encrypts and refuses a tampered packet', () => {
    const ours = new SrtcpContext(key, salt);
    const plain = rtcp(0x55667788);
    const p = werift.encrypt(Buffer.from(plain));
    expect(ours.unprotect(p)?.equals(plain)).toBe(true);
    const bad = Buffer.from(p);
    bad[12] = bad[12]! ^ 1;
    expect(ours.unprotect(bad)).toBeNull();
    expect(ours.unprotect(p.subarray(0, 20))).toBeNull();
    expect(new SrtcpContext(randomBytes(16), salt).unprotect(p)).toBeNull();
  });

  it('drops random bytes and every truncation of a good packet without throwing', () => {
    const ours = new SrtcpContext(key, salt);
    for (let i = 0; i < 2000; i++) {
      const garbage = randomBytes(Math.floor(Math.random() * 120));
      expect(ours.unprotect(garbage), `garbage ${i}`).toBeNull();
    }
    const p = werift.encrypt(Buffer.from(rtcp(0x01020304)));
    for (let cut = 0; cut < p.length; cut++) expect(ours.unprotect(p.subarray(0, cut)), `cut at ${cut}`).toBeNull();
    expect(ours.unprotect(p)).not.toBeNull();
  });

  it('AEAD_AES_128_GCM (RFC 7714 §9): protects what werift decrypts, unprotects what werift encrypts, refuses tampering', () => {
    const gKey = randomBytes(16);
    const gSalt = randomBytes(12);
    const w = new SrtcpSession({
      profile: SRTP_AEAD_AES_128_GCM,
      keys: { localMasterKey: gKey, localMasterSalt: gSalt, remoteMasterKey: gKey, remoteMasterSalt: gSalt },
    });
    const ours = new SrtcpGcmContext(gKey, gSalt);
    for (let i = 0; i < 3; i++) {
      const plain = rtcp(0x0a0b0c0d);
      const p = ours.protect(plain);
      expect(p.length).toBe(plain.length + 16 + 4);
      expect(p.subarray(0, 8).equals(plain.subarray(0, 8))).toBe(true);
      expect(p.readUInt32BE(p.length - 4)).toBe((0x80000000 | i) >>> 0);
      expect(w.decrypt(p).equals(plain)).toBe(true);
    }
    const plain = rtcp(0x66778899);
    const fromWerift = w.encrypt(Buffer.from(plain));
    expect(ours.unprotect(fromWerift)?.equals(plain)).toBe(true);
    for (const at of [3, 12, fromWerift.length - 10, fromWerift.length - 1]) {
      const bad = Buffer.from(fromWerift);
      bad[at] = bad[at]! ^ 1;
      expect(ours.unprotect(bad), `flip at ${at}`).toBeNull();
    }
    for (let cut = 0; cut < fromWerift.length; cut++) expect(ours.unprotect(fromWerift.subarray(0, cut))).toBeNull();
    expect(new SrtcpGcmContext(randomBytes(16), gSalt).unprotect(fromWerift)).toBeNull();
    for (let i = 0; i < 500; i++) expect(ours.unprotect(randomBytes(Math.floor(Math.random() * 120)))).toBeNull();
  });

  it('takes the MKI where each suite puts it: before the tag (RFC 3711), at the end (RFC 7714)', () => {
    const mki = Buffer.from([0, 0, 0, 7]);
    const cmKey = randomBytes(16);
    const cmSalt = randomBytes(14);
    const cm = new SrtcpContext(cmKey, cmSalt).protect(rtcp(0x01010101));
    const cmWithMki = Buffer.concat([cm.subarray(0, cm.length - 10), mki, cm.subarray(cm.length - 10)]);
    expect(new SrtcpContext(cmKey, cmSalt).unprotect(cmWithMki, cmWithMki.length, 4)?.readUInt32BE(4)).toBe(0x01010101);
    expect(new SrtcpContext(cmKey, cmSalt).unprotect(cmWithMki)).toBeNull();
    const gKey = randomBytes(16);
    const gSalt = randomBytes(12);
    const gcm = new SrtcpGcmContext(gKey, gSalt).protect(rtcp(0x02020202));
    const gcmWithMki = Buffer.concat([gcm, mki]);
    expect(new SrtcpGcmContext(gKey, gSalt).unprotect(gcmWithMki, gcmWithMki.length, 4)?.readUInt32BE(4)).toBe(0x02020202);
    expect(new SrtcpGcmContext(gKey, gSalt).unprotect(gcmWithMki)).toBeNull();
  });

  it('parseRtcp reads random compound packets without throwing (what a peer with a valid key could still send)', () => {
    const parsed: ParsedRtcp = { senderSsrc: 0, srNtpMiddle: -1, blocks: [] };
    for (let i = 0; i < 3000; i++) {
      const b = randomBytes(Math.floor(Math.random() * 200));
      if (b.length > 1) {
        b[0] = 0x80 | (b[0]! & 0x3f);
        b[1] = i % 2 === 0 ? 200 : 201;
      }
      expect(typeof parseRtcp(b, b.length, parsed)).toBe('boolean');
    }
  });
});
