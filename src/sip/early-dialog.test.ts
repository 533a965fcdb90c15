import { describe, expect, it } from 'vitest';
import type Srf from 'drachtio-srf';
import { createLogger } from '../observability/logger.js';
import { answerEarlyUpdate, earlyContact } from './early-dialog.js';

const log = createLogger('silent');

/** An UPDATE with this body, and the response it got. */
function update(body: string, send?: () => void) {
  const sent: { status: number; opts: Srf.SendOptions }[] = [];
  const req = { body } as Srf.SrfRequest;
  const res = { send: send ?? ((status: number, opts: Srf.SendOptions) => sent.push({ status, opts })) } as unknown as Srf.SrfResponse;
  return { req, res, sent };
}

describe('earlyContact', () => {
  const server = { address: '127.0.0.1', hostport: 'tcp/203.0.113.5:5070,udp/203.0.113.5:5060,udp/198.51.100.7:5080' };
  it('is drachtio\'s advertised address of the transport and port the INVITE came in on', () => {
    expect(earlyContact({ protocol: 'udp', receivedOn: '10.0.0.5:5080', server })).toBe('<sip:198.51.100.7:5080>');
    expect(earlyContact({ protocol: 'udp', receivedOn: '10.0.0.5:5060', server })).toBe('<sip:203.0.113.5:5060>');
    expect(earlyContact({ protocol: 'tcp', receivedOn: '10.0.0.5:5070', server })).toBe('<sip:203.0.113.5:5070;transport=tcp>');
    expect(earlyContact({ protocol: 'udp', server: { address: '::1', hostport: 'udp/[2001:db8::1]:5060' } })).toBe('<sip:[2001:db8::1]:5060>');
  });
  it('falls back to the local address the INVITE came in on, and is undefined when drachtio said neither', () => {
    expect(earlyContact({ protocol: 'udp', receivedOn: '10.0.0.5:5060' })).toBe('<sip:10.0.0.5:5060>');
    expect(earlyContact({ protocol: 'udp' })).toBeUndefined();
  });
});

describe('answerEarlyUpdate', () => {
  it('answers an UPDATE without SDP 200 with our Contact and no body', () => {
    const u = update('');
    answerEarlyUpdate(u.req, u.res, { callId: 'c1', log, offerPending: true, contact: '<sip:192.0.2.1:5060>' });
    expect(u.sent).toEqual([{ status: 200, opts: { headers: { Contact: '<sip:192.0.2.1:5060>' } } }]);
  });
  it('refuses an SDP offer: 491 while our offer waits for its answer, else 488', () => {
    const sdp = 'v=0\r\no=- 1 2 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
    const pending = update(sdp);
    answerEarlyUpdate(pending.req, pending.res, { callId: 'c1', log, offerPending: true, contact: '<sip:192.0.2.1:5060>' });
    expect(pending.sent).toEqual([{ status: 491, opts: {} }]);
    const answered = update(sdp);
    answerEarlyUpdate(answered.req, answered.res, { callId: 'c1', log, offerPending: false });
    expect(answered.sent).toEqual([{ status: 488, opts: {} }]);
  });
  it('does not throw when the response cannot be sent (drachtio connection gone)', () => {
    const u = update('', () => { throw new Error('socket closed'); });
    expect(() => answerEarlyUpdate(u.req, u.res, { callId: 'c1', log, offerPending: false })).not.toThrow();
  });
});
