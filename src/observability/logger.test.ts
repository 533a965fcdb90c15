import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

describe('logger', () => {
  it('never writes SDES keys: a=crypto key parameters in any sdp field are replaced, the rest of the SDP stays', () => {
    const lines: string[] = [];
    const dest = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb(); } });
    const log = createLogger('debug', dest);
    const key = randomBytes(30).toString('base64');
    const sdp = `v=0\r\nm=audio 3480 RTP/SAVP 111 126\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${key}|2^31\r\na=rtpmap:111 opus/48000/2\r\n`;
    log.debug({ sdp }, 'offer');
    log.child({ waCallId: 'wacid.x' }).child({ leg: 'whatsapp' }).debug({ sdp }, 'answer');
    expect(lines).toHaveLength(2);
    for (const l of lines) {
      expect(l).not.toContain(key);
      const logged = (JSON.parse(l) as { sdp: string }).sdp;
      expect(logged).toContain('a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:[redacted]|2^31');
      expect(logged).toContain('m=audio 3480 RTP/SAVP 111 126');
    }
  });

  it('redacts keys on malformed a=crypto lines too, and in the offer / answer fields that hold SDP', () => {
    const lines: string[] = [];
    const dest = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb(); } });
    const log = createLogger('debug', dest);
    const key = randomBytes(30).toString('base64');
    const sdp = [
      'v=0', `a=crypto: 1 AES_CM_128_HMAC_SHA1_80 inline:${key}`, `a=crypto:2 inline:${key}`,
      `a=crypto:3 AES_CM_128_HMAC_SHA1_80 ${key}`, `a=crypto:4\tAES_CM_128_HMAC_SHA1_80\tinline:${key};inline:${key}|2^20|1:4`, '',
    ].join('\r\n');
    log.debug({ sdp, offer: sdp, answer: sdp }, 'sdp');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(key);
    expect(lines[0]).not.toContain(key.slice(0, 16));
    expect((JSON.parse(lines[0]!) as { answer: string }).answer).toContain('inline:[redacted];inline:[redacted]|2^20|1:4');
  });
});
