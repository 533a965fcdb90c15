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
      expect(logged).toContain('a=crypto:1 AES_CM_128_HMAC_SHA1_80 [redacted]');
      expect(logged).toContain('m=audio 3480 RTP/SAVP 111 126');
    }
  });
});
