import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RtpHeader, SrtpSession } from 'werift';
import { SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_HMAC_SHA1_32, SRTP_AES128_CM_HMAC_SHA1_80, SrtpContext, type SrtpProfile } from './srtp.js';
import { SrtpReferenceContext } from './srtp-reference.js';

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

/** Each profile on the addon's OpenSSL crypto and on the JS path: both must pass the same tests. */
function withEngines(): Array<[string, string, SrtpProfile, boolean]> {
  const profiles: Array<[string, SrtpProfile]> = [['AES_CM_128_HMAC_SHA1_80', SRTP_AES128_CM_HMAC_SHA1_80], ['AEAD_AES_128_GCM', SRTP_AEAD_AES_128_GCM]];
  return profiles.flatMap(([name, p]) => [[name, 'native', p, true], [name, 'js', p, false]] as Array<[string, string, SrtpProfile, boolean]>);
}

describe('SrtpContext crypto engine', () => {
  it('runs on the addon (OpenSSL) on Linux, where npm ci builds it; the JS path only when asked', () => {
    if (process.platform !== 'linux') return;
    for (const p of [SRTP_AES128_CM_HMAC_SHA1_80, SRTP_AES128_CM_HMAC_SHA1_32, SRTP_AEAD_AES_128_GCM] as SrtpProfile[]) {
      const c = new SrtpContext(p, randomBytes(16), randomBytes(14));
      expect(c.native).not.toBeNull();
      expect(c.keystream).toBeNull();
      const js = new SrtpContext(p, randomBytes(16), randomBytes(14), { native: false });
      expect(js.native).toBeNull();
      expect(js.keystream).not.toBeNull();
    }
  });

  it('native and JS contexts with the same keys interoperate both ways, byte for byte', () => {
    for (const p of [SRTP_AES128_CM_HMAC_SHA1_80, SRTP_AEAD_AES_128_GCM] as SrtpProfile[]) {
      const key = randomBytes(16), salt = randomBytes(14);
      const n = new SrtpContext(p, key, salt), j = new SrtpContext(p, key, salt, { native: false });
      const nRx = new SrtpContext(p, key, salt), jRx = new SrtpContext(p, key, salt, { native: false });
      const out = { payloadOffset: 0 };
      for (let seq = 65500; seq < 65600; seq++) {
        const a = rtp(seq & 0xffff, seq * 960, 0xabcdef, randomBytes(1 + (seq % 200)));
        const b = Buffer.from(a);
        const len = a.length - 16;
        const na = n.protect(a, len), nb = j.protect(b, len);
        expect(na).toBe(nb);
        expect(a.equals(b)).toBe(true);
        expect(jRx.unprotect(a, na, out)).toBe(len);
        expect(nRx.unprotect(b, nb, out)).toBe(len);
        expect(a.subarray(0, len).equals(b.subarray(0, len))).toBe(true);
      }
    }
  });
});

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

describe.each(withEngines())('SrtpContext %s (%s crypto)', (_name, _engine, profile, native) => {
  it('protects byte-identically to werift across a sequence-number wrap, and both sides read each other', () => {
    const k = keys(profile);
    const theirs = weriftSession(profile, k);
    const ours = new SrtpContext(profile, k.key, k.salt, { native });
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
    const ours = new SrtpContext(profile, k.key, k.salt, { native });
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
    const ours = new SrtpContext(profile, k.key2, k.salt2, { native }); // werift's "remote" side
    const receiver = weriftSession(profile, k);
    const payload = randomBytes(73);
    const pkt = rtp(4242, 123456, 0x11223344, payload);
    const n = ours.protect(pkt, 12 + payload.length);
    const dec = receiver.decrypt(pkt.subarray(0, n));
    expect(dec.subarray(12).equals(payload)).toBe(true);
  });
});

/** A random RTP packet: CSRCs, a header extension and padding as `opts` says; room for a 16-byte tag. */
function randomRtp(seq: number, ssrc: number, payloadLen: number, opts: { csrc?: number; extWords?: number; pad?: number } = {}): { buf: Buffer; len: number } {
  const cc = opts.csrc ?? 0;
  const ext = opts.extWords;
  const pad = opts.pad ?? 0;
  const hdr = 12 + 4 * cc + (ext === undefined ? 0 : 4 + 4 * ext);
  const len = hdr + payloadLen + pad;
  const buf = Buffer.alloc(len + 16);
  buf[0] = 0x80 | (pad > 0 ? 0x20 : 0) | (ext === undefined ? 0 : 0x10) | cc;
  buf[1] = 111;
  buf.writeUInt16BE(seq & 0xffff, 2);
  buf.writeUInt32BE((seq * 960) >>> 0, 4);
  buf.writeUInt32BE(ssrc >>> 0, 8);
  randomBytes(4 * cc).copy(buf, 12);
  if (ext !== undefined) {
    const o = 12 + 4 * cc;
    buf.writeUInt16BE(0xbede, o);
    buf.writeUInt16BE(ext, o + 2);
    randomBytes(4 * ext).copy(buf, o + 4);
  }
  randomBytes(payloadLen).copy(buf, hdr);
  if (pad > 0) buf[len - 1] = pad;
  return { buf, len };
}

function randomOpts(): { csrc?: number; extWords?: number; pad?: number } {
  const r = Math.random();
  return {
    csrc: r < 0.2 ? Math.floor(Math.random() * 16) : 0,
    extWords: Math.random() < 0.3 ? Math.floor(Math.random() * 4) : undefined,
    pad: Math.random() < 0.2 ? 1 + Math.floor(Math.random() * 16) : 0,
  };
}

/** Feeds the same packet to both receivers; they must agree on the result, the offset and every byte. */
function expectSameUnprotect(ours: SrtpContext, ref: SrtpReferenceContext, srtp: Buffer, len: number, what: string): number {
  const a = Buffer.from(srtp);
  const b = Buffer.from(srtp);
  const oa = { payloadOffset: -1 };
  const ob = { payloadOffset: -1 };
  const na = ours.unprotect(a, len, oa);
  const nb = ref.unprotect(b, len, ob);
  expect(na, what).toBe(nb);
  if (nb >= 0) expect(oa.payloadOffset, what).toBe(ob.payloadOffset);
  expect(a.equals(b), `${what}: buffer`).toBe(true);
  return na;
}

describe.each(withEngines())('SrtpContext %s (%s crypto) against the per-packet-cipher reference', (_name, _engine, profile, native) => {
  const make = (): { ours: SrtpContext; ref: SrtpReferenceContext; oursRx: SrtpContext; refRx: SrtpReferenceContext } => {
    const k = keys(profile);
    return {
      ours: new SrtpContext(profile, k.key, k.salt, { native }), ref: new SrtpReferenceContext(profile, k.key, k.salt),
      oursRx: new SrtpContext(profile, k.key, k.salt, { native }), refRx: new SrtpReferenceContext(profile, k.key, k.salt),
    };
  };

  it('protects byte-identically for random packets (payload 0..1400, CSRCs, header extensions, padding) and reads them back', () => {
    const { ours, ref, oursRx, refRx } = make();
    const ssrc = 0x9abcdef0;
    for (let i = 0; i < 600; i++) {
      const seq = (65000 + i) & 0xffff; // crosses a wrap: ROC 0 → 1
      const payloadLen = i < 100 ? i : i < 110 ? 1400 - (i - 100) * 7 : Math.floor(Math.random() * 300);
      const p = randomRtp(seq, ssrc, payloadLen, i < 50 ? {} : randomOpts());
      const a = Buffer.from(p.buf);
      const na = ours.protect(a, p.len);
      const nb = ref.protect(p.buf, p.len);
      expect(na, `packet ${i}`).toBe(nb);
      expect(a.equals(p.buf), `packet ${i} (seq ${seq}, payload ${payloadLen})`).toBe(true);
      expect(expectSameUnprotect(oursRx, refRx, a, na, `packet ${i}`)).toBeGreaterThan(0);
    }
    if (!native) {
      expect(ours.keystream!.counts.hits).toBeGreaterThan(400);
      expect(oursRx.keystream!.counts.hits).toBeGreaterThan(400);
    }
  });

  it('keeps the ROC across several wraps, including jumps that miss the keystream window', () => {
    const { ours, ref, oursRx, refRx } = make();
    const ssrc = 7;
    let seq = 0;
    for (let i = 0; i < 40; i++) {
      // Contiguous runs broken by quarter-space jumps: four jumps are one ROC increment.
      seq = i % 5 === 4 ? (seq + 0x4000) & 0xffff : (seq + 1) & 0xffff;
      const p = randomRtp(seq, ssrc, 60);
      const a = Buffer.from(p.buf);
      const na = ours.protect(a, p.len);
      ref.protect(p.buf, p.len);
      expect(a.equals(p.buf), `packet ${i}`).toBe(true);
      expect(expectSameUnprotect(oursRx, refRx, a, na, `packet ${i}`)).toBe(p.len);
    }
    if (!native) expect(ours.keystream!.counts.fills + ours.keystream!.counts.onDemand).toBeGreaterThan(5);
  });

  it('unprotects reordered, late, duplicated and far-jumping packets exactly as the reference does', () => {
    const { ref, oursRx, refRx } = make();
    const ssrc = 0xfeedface;
    const sent: Buffer[] = [];
    const lens: number[] = [];
    for (let i = 0; i < 400; i++) {
      const p = randomRtp((65200 + i) & 0xffff, ssrc, 40 + (i % 90), i % 7 === 0 ? randomOpts() : {});
      lens.push(ref.protect(p.buf, p.len));
      sent.push(p.buf);
    }
    const order: number[] = [];
    for (let i = 0; i < 400; i++) order.push(i);
    for (let i = 0; i + 2 < 200; i += 3) [order[i], order[i + 2]] = [order[i + 2]!, order[i]!]; // local reordering
    order.splice(250, 0, 180, 100, 249, 249); // late by 70, by 150, a duplicate
    order.splice(300, 0, 399, 398); // far ahead, then back
    for (const idx of order) {
      expect(expectSameUnprotect(oursRx, refRx, sent[idx]!, lens[idx]!, `seq index ${idx}`)).toBeGreaterThan(0);
    }
    if (!native) {
      const c = oursRx.keystream!.counts;
      expect(c.onDemand).toBeGreaterThan(0);
      expect(c.hits).toBeGreaterThan(300);
    }
  });

  it('rejects a tampered header, payload or tag and leaves the buffer as it was', () => {
    const { ref, oursRx, refRx } = make();
    for (let i = 0; i < 30; i++) {
      const p = randomRtp(100 + i, 0x1234, 50 + i, randomOpts());
      const n = ref.protect(p.buf, p.len);
      expect(expectSameUnprotect(oursRx, refRx, p.buf, n, `good ${i}`)).toBeGreaterThan(0);
      for (const at of [1, 12, Math.floor(n / 2), n - 1, n - refRx.tagLength]) {
        const bad = Buffer.from(p.buf);
        bad[at] = bad[at]! ^ (1 << (i & 7));
        const copy = Buffer.from(bad);
        expect(oursRx.unprotect(bad, n, { payloadOffset: 0 }), `byte ${at}`).toBe(-1);
        expect(bad.equals(copy)).toBe(true);
      }
    }
  });

  it('still handles packets beyond the 1500-byte budget (computed on demand), as werift reads them', () => {
    const k = keys(profile);
    const ours = new SrtpContext(profile, k.key2, k.salt2, { native });
    const oursRx = new SrtpContext(profile, k.key2, k.salt2, { native });
    const receiver = weriftSession(profile, k);
    const payload = randomBytes(1700);
    const pkt = rtp(9, 960, 0x5555, payload);
    const n = ours.protect(pkt, 12 + payload.length);
    expect(receiver.decrypt(pkt.subarray(0, n)).subarray(12).equals(payload)).toBe(true);
    const out = { payloadOffset: 0 };
    expect(oursRx.unprotect(pkt, n, out)).toBe(12 + payload.length);
    expect(pkt.subarray(out.payloadOffset, 12 + payload.length).equals(payload)).toBe(true);
  });

  it('serves two interleaved SSRCs and packets larger than the window rows byte-identically', () => {
    const { ours, ref } = make();
    for (let i = 0; i < 200; i++) {
      const ssrc = i % 2 === 0 ? 0x11111111 : 0x22222222;
      const p = randomRtp(30000 + (i >> 1), ssrc, i % 50 === 0 ? 1400 : 80);
      const a = Buffer.from(p.buf);
      expect(ours.protect(a, p.len)).toBe(ref.protect(p.buf, p.len));
      expect(a.equals(p.buf), `packet ${i}`).toBe(true);
    }
    if (!native) expect(ours.keystream!.counts.onDemand + ours.keystream!.counts.fills).toBeGreaterThan(10);
  });
});

describe.each(withEngines())('SrtpContext %s (%s crypto) with hostile input', (_name, _engine, profile, native) => {
  it('drops random bytes and truncated packets without throwing, and keeps no state for their SSRCs', () => {
    const k = keys(profile);
    const tx = new SrtpContext(profile, k.key, k.salt, { native });
    const rx = new SrtpContext(profile, k.key, k.salt, { native });
    const out = { payloadOffset: 0 };
    for (let i = 0; i < 3000; i++) {
      const len = Math.floor(Math.random() * 200);
      const garbage = randomBytes(len);
      if (i % 2 === 0 && len > 0) garbage[0] = 0x80 | (garbage[0]! & 0x3f); // version 2, so it reaches the crypto
      expect(rx.unprotect(garbage, len, out), `garbage ${i}`).toBe(-1);
    }
    expect(rx.ssrcCount).toBe(0);
    const good = rtp(1, 960, 0x0badcafe, randomBytes(80));
    const n = tx.protect(good, 92);
    for (let cut = 0; cut < n; cut++) {
      expect(rx.unprotect(Buffer.from(good.subarray(0, cut)), cut, out), `cut at ${cut}`).toBe(-1);
    }
    expect(rx.unprotect(good, n, out)).toBe(92);
    expect(rx.ssrcCount).toBe(1);
  });

  it.each([true, false])('AES_CM_128_HMAC_SHA1_32: the same ciphertext as _80, the tag its first 4 bytes; tampering is caught (native %s)', (native) => {
    const key = randomBytes(16);
    const salt = randomBytes(14);
    const long = new SrtpContext(SRTP_AES128_CM_HMAC_SHA1_80, key, salt, { native });
    const short = new SrtpContext(SRTP_AES128_CM_HMAC_SHA1_32, key, salt, { native: !native }); // one of each: they agree
    const rx = new SrtpContext(SRTP_AES128_CM_HMAC_SHA1_32, key, salt, { native });
    const out = { payloadOffset: 0 };
    for (let seq = 65530; seq < 65546; seq++) {
      const a = Buffer.alloc(200);
      a[0] = 0x80;
      a[1] = 111;
      a.writeUInt16BE(seq & 0xffff, 2);
      a.writeUInt32BE(seq * 960, 4);
      a.writeUInt32BE(0x1234, 8);
      randomBytes(60).copy(a, 12);
      const plain = Buffer.from(a.subarray(0, 72));
      const b = Buffer.from(a);
      const nLong = long.protect(a, 72);
      const nShort = short.protect(b, 72);
      expect(nShort).toBe(72 + 4);
      expect(b.subarray(0, 76).equals(a.subarray(0, 76))).toBe(true);
      expect(nLong).toBe(72 + 10);
      expect(rx.unprotect(b, nShort, out)).toBe(72);
      expect(b.subarray(0, 72).equals(plain)).toBe(true);
    }
    const t = Buffer.alloc(200);
    t[0] = 0x80;
    t.writeUInt16BE(9, 2);
    const n = short.protect(t, 40);
    t[n - 1] = t[n - 1]! ^ 1;
    expect(rx.unprotect(t, n, out)).toBe(-1);
  });
});

