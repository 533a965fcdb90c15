import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildSdesSdp, chooseCrypto, isSdesSdp, parseCryptoAttribute, readSdesMedia, SdesCryptoError } from './sdes.js';
import { SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_HMAC_SHA1_80 } from './srtp.js';
import { audioOf } from './wa-audio-codec.js';

const key30 = randomBytes(30);
const inline30 = key30.toString('base64');

/** Meta's SDES offer (whatsapp-calling.md §4.5) with a real key where the document masks it. */
function metaSdesOffer(cryptoLine = `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${inline30}`): string {
  return [
    'v=0', 'o=- 1732000000 2 IN IP4 157.240.1.1', 's=-', 'c=IN IP4 157.240.1.1', 't=0 0',
    'm=audio 3480 RTP/SAVP 111 126', 'a=rtcp-mux', cryptoLine, 'a=rtpmap:111 opus/48000/2',
    'a=fmtp:111 maxaveragebitrate=20000;maxplaybackrate=16000;minptime=20;sprop-maxcapturerate=16000;useinbandfec=1',
    'a=rtpmap:126 telephone-event/8000', 'a=ptime:20', 'a=maxptime:20', '',
  ].join('\r\n');
}

describe('a=crypto (RFC 4568)', () => {
  it('reads tag, suite, key and salt', () => {
    const c = parseCryptoAttribute(`a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:${inline30}`);
    expect(c).toMatchObject({ tag: 7, suite: 'AES_CM_128_HMAC_SHA1_80', profile: SRTP_AES128_CM_HMAC_SHA1_80, mki: null, lifetime: null });
    expect(c.masterKey.equals(key30.subarray(0, 16))).toBe(true);
    expect(c.masterSalt.equals(key30.subarray(16))).toBe(true);
  });

  it('reads lifetime and MKI, ignores extra keys and harmless session parameters', () => {
    const c = parseCryptoAttribute(`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${inline30}|2^20|1:4;inline:${inline30}|2^20|2:4 WSH=64`);
    expect(c.lifetime).toBe(2 ** 20);
    expect(c.mki).toEqual({ value: 1, length: 4 });
    expect(parseCryptoAttribute(`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${inline30}|1000`).lifetime).toBe(1000);
  });

  it('reads AEAD_AES_128_GCM (16-byte key ‖ 12-byte salt)', () => {
    const k = randomBytes(28);
    const c = parseCryptoAttribute(`a=crypto:2 AEAD_AES_128_GCM inline:${k.toString('base64')}`);
    expect(c.profile).toBe(SRTP_AEAD_AES_128_GCM);
    expect(c.masterSalt.length).toBe(12);
  });

  it.each([
    ['a=crypto:1 AES_CM_128_HMAC_SHA1_80', /expected "a=crypto:<tag> <suite> inline:<key>"/],
    [`a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:${inline30}`, /tag must be 1 to 9 decimal digits/],
    [`a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:${inline30}`, /suite AES_256_CM_HMAC_SHA1_80 is not supported/],
    [`a=crypto:1 F8_128_HMAC_SHA1_80 inline:${inline30}`, /suite F8_128_HMAC_SHA1_80 is not supported/],
    [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 uri:${inline30}`, /"inline:" method/],
    ['a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:@@notbase64@@', /not valid base64/],
    [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${randomBytes(24).toString('base64')}`, /is 24 bytes, AES_CM_128_HMAC_SHA1_80 needs 30/],
    [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${inline30}|banana`, /neither a lifetime nor MKI:length/],
    [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${inline30}|1:0`, /MKI length 0 is out of range/],
    [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${inline30}|1:4|2^20`, /lifetime must come before the MKI/],
    [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${inline30} KDR=1`, /session parameter KDR=1 is not supported/],
    [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${inline30} UNENCRYPTED_SRTP`, /UNENCRYPTED_SRTP is not supported/],
    // Malformed lines put the key where a well-formed line would not, and a long one is cut short in the message.
    [`a=crypto: 1 AES_CM_128_HMAC_SHA1_80 inline:${inline30}`, /expected "a=crypto:<tag> <suite> inline:<key>"/],
    [`a=crypto:1 inline:${inline30}`, /expected "a=crypto:<tag> <suite> inline:<key>"/],
    [`a=crypto:1 ${'X'.repeat(90)} inline:${inline30}`, /is not supported/],
  ])('refuses %s with a clear error that never shows the key', (line, why) => {
    let err: unknown;
    try {
      parseCryptoAttribute(line);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SdesCryptoError);
    expect((err as Error).message).toMatch(why);
    expect((err as Error).message).toMatch(/^a=crypto line "/);
    expect((err as Error).message).not.toContain(inline30.slice(0, 8));
  });

  it('chooses the first supported line in offer order and says why earlier ones were skipped', () => {
    const { crypto, skipped } = chooseCrypto([
      `a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:${inline30}`,
      `a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:${inline30}`,
      `a=crypto:3 AEAD_AES_128_GCM inline:${randomBytes(28).toString('base64')}`,
    ]);
    expect(crypto.tag).toBe(2);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatch(/AES_256_CM_HMAC_SHA1_80 is not supported/);
    expect(() => chooseCrypto([])).toThrow(/no a=crypto line/);
    expect(() => chooseCrypto(['a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA', 'a=crypto:2 NULL_HMAC_SHA1_80 inline:AAAA'])).toThrow(
      /no usable a=crypto line: .*is 3 bytes.*; .*NULL_HMAC_SHA1_80 is not supported/,
    );
  });
});

describe('SDES SDP', () => {
  it('tells SDES offers from DTLS ones', () => {
    expect(isSdesSdp(metaSdesOffer())).toBe(true);
    const dtls = 'v=0\r\ns=-\r\nm=audio 3480 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 1.2.3.4\r\na=fingerprint:sha-256 AA\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n';
    expect(isSdesSdp(dtls)).toBe(false);
    expect(isSdesSdp('v=0\r\nm=audio 3480 RTP/SAVP 111\r\nc=IN IP4 1.2.3.4\r\n')).toBe(false);
    expect(isSdesSdp('v=0\r\nm=audio 3480 RTP/AVP 111\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n')).toBe(false);
  });

  it('reads the connection address at media level before session level', () => {
    const m = readSdesMedia(metaSdesOffer().replace('m=audio 3480 RTP/SAVP 111 126', 'm=audio 3482 RTP/SAVP 111 126\r\nc=IN IP4 31.13.65.60'))!;
    expect(m).toMatchObject({ address: '31.13.65.60', port: 3482, proto: 'RTP/SAVP', rtcpMux: true, family: 'IP4' });
    expect(m.cryptoLines).toHaveLength(1);
    expect(readSdesMedia(metaSdesOffer())!.address).toBe('157.240.1.1');
  });

  it('writes one sendrecv RTP/SAVP audio section without ICE or DTLS', () => {
    const sdp = buildSdesSdp({ address: '203.0.113.9', port: 25002, proto: 'RTP/SAVP', cryptoLines: ['a=crypto:1 X inline:Y'], audio: [audioOf('opus', 111)], dtmfPt: 126 });
    expect(sdp.endsWith('\r\n')).toBe(true);
    const lines = sdp.split('\r\n');
    expect(lines).toContain('c=IN IP4 203.0.113.9');
    expect(lines).toContain('m=audio 25002 RTP/SAVP 111 126');
    expect(lines).toContain('a=rtcp-mux');
    expect(lines).toContain('a=rtpmap:126 telephone-event/8000');
    expect(lines).toContain('a=ptime:20');
    expect(lines).toContain('a=sendrecv');
    expect(sdp).not.toMatch(/ice-|fingerprint|setup:|candidate/);
  });
});
