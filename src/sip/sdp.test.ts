import { describe, expect, it } from 'vitest';
import { buildSdpAnswer, buildSdpOffer, parseSdp, SdpError } from './sdp.js';

const CRLF = '\r\n';
const sdp = (...lines: string[]): string => lines.join(CRLF) + CRLF;

function expectSdpError(fn: () => unknown, code: SdpError['code']): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SdpError);
    expect((err as SdpError).code).toBe(code);
    return;
  }
  throw new Error('expected SdpError');
}

describe('buildSdpOffer', () => {
  it('builds a G.711 + telephone-event offer with CRLF line endings', () => {
    const offer = buildSdpOffer({ address: '127.0.0.1', port: 40000, sessionId: '123', sessionVersion: 1 });
    expect(offer).toBe(
      sdp(
        'v=0',
        'o=wa-sip-gateway 123 1 IN IP4 127.0.0.1',
        's=wa-sip-gateway',
        'c=IN IP4 127.0.0.1',
        't=0 0',
        'm=audio 40000 RTP/AVP 0 8 101',
        'a=rtpmap:0 PCMU/8000',
        'a=rtpmap:8 PCMA/8000',
        'a=rtpmap:101 telephone-event/8000',
        'a=fmtp:101 0-16',
        'a=ptime:20',
        'a=sendrecv',
      ),
    );
  });

  it('honours codec preference, dtmf off, direction', () => {
    const offer = buildSdpOffer({ address: '10.0.0.1', port: 5000, codecs: ['PCMA', 'PCMU'], dtmf: false, direction: 'sendonly' });
    expect(offer).toContain('m=audio 5000 RTP/AVP 8 0\r\n');
    expect(offer).not.toContain('telephone-event');
    expect(offer).toContain('a=sendonly\r\n');
    const only = buildSdpOffer({ address: '10.0.0.1', port: 5000, codecs: ['PCMA'] });
    expect(only).toContain('m=audio 5000 RTP/AVP 8 101\r\n');
  });

  it('rejects bad options with SdpError', () => {
    expectSdpError(() => buildSdpOffer({ address: 'not-an-ip', port: 5000 }), 'bad-option');
    expectSdpError(() => buildSdpOffer({ address: '127.0.0.1', port: 0 }), 'bad-option');
    expectSdpError(() => buildSdpOffer({ address: '127.0.0.1', port: 5000, codecs: [] }), 'bad-option');
    expectSdpError(() => buildSdpOffer({ address: '127.0.0.1', port: 5000, dtmfPayloadType: 13 }), 'bad-option');
  });

  it('round-trips through parseSdp', () => {
    const parsed = parseSdp(buildSdpOffer({ address: '192.0.2.7', port: 31000 }));
    expect(parsed).toMatchObject({ address: '192.0.2.7', port: 31000, codec: 'PCMU', payloadType: 0, dtmfPayloadType: 101, direction: 'sendrecv', ptime: 20 });
    expect(parsed.commonCodecs).toEqual(['PCMU', 'PCMA']);
  });
});

describe('parseSdp', () => {
  const answer = sdp(
    'v=0',
    'o=- 1 2 IN IP4 203.0.113.5',
    's=-',
    'c=IN IP4 203.0.113.5',
    't=0 0',
    'm=audio 49170 RTP/AVP 8 96',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:96 telephone-event/8000',
    'a=fmtp:96 0-15',
    'a=sendrecv',
  );

  it('parses a typical answer', () => {
    expect(parseSdp(answer)).toEqual({
      address: '203.0.113.5',
      addressType: 'IP4',
      port: 49170,
      codec: 'PCMA',
      payloadType: 8,
      dtmfPayloadType: 96,
      direction: 'sendrecv',
      commonCodecs: ['PCMA'],
    });
  });

  it('accepts LF-only line endings and static payload types without rtpmap', () => {
    const p = parseSdp('v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 4000 RTP/AVP 0\n');
    expect(p).toMatchObject({ codec: 'PCMU', payloadType: 0, port: 4000, direction: 'sendrecv' });
    expect(p.dtmfPayloadType).toBeUndefined();
  });

  it('media-level c= and direction win over session-level', () => {
    const p = parseSdp(
      sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 1.1.1.1', 't=0 0', 'a=sendonly', 'm=audio 4000 RTP/AVP 0', 'c=IN IP4 2.2.2.2', 'a=recvonly'),
    );
    expect(p.address).toBe('2.2.2.2');
    expect(p.direction).toBe('recvonly');
    const q = parseSdp(sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 1.1.1.1', 't=0 0', 'a=inactive', 'm=audio 4000 RTP/AVP 0'));
    expect(q.direction).toBe('inactive');
  });

  it('chooses by remote order by default and by local preference on request', () => {
    const offer = sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 1.1.1.1', 't=0 0', 'm=audio 4000 RTP/AVP 18 8 0 101', 'a=rtpmap:101 telephone-event/8000');
    expect(parseSdp(offer).codec).toBe('PCMA');
    expect(parseSdp(offer, { prefer: 'local' }).codec).toBe('PCMU');
    expect(parseSdp(offer, { prefer: 'local', codecs: ['PCMA', 'PCMU'] }).codec).toBe('PCMA');
    expect(parseSdp(offer, { codecs: ['PCMU'] }).codec).toBe('PCMU');
  });

  it('maps dynamic payload types for G.711 via rtpmap and ignores non-8 kHz maps', () => {
    const p = parseSdp(sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 1.1.1.1', 't=0 0', 'm=audio 4000 RTP/AVP 97 98', 'a=rtpmap:97 PCMU/16000', 'a=rtpmap:98 pcma/8000'));
    expect(p).toMatchObject({ codec: 'PCMA', payloadType: 98 });
  });

  it('skips a rejected first audio stream and uses the next one', () => {
    const p = parseSdp(sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 1.1.1.1', 't=0 0', 'm=audio 0 RTP/AVP 0', 'm=audio 6000 RTP/AVP 8'));
    expect(p).toMatchObject({ port: 6000, codec: 'PCMA' });
  });

  it('throws SdpError on garbage and unacceptable offers', () => {
    expectSdpError(() => parseSdp(''), 'malformed');
    expectSdpError(() => parseSdp('hello world'), 'malformed');
    expectSdpError(() => parseSdp(undefined as unknown as string), 'malformed');
    expectSdpError(() => parseSdp('v=0\r\nthis is not sdp\r\n'), 'malformed');
    expectSdpError(() => parseSdp(sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 1.1.1.1', 't=0 0')), 'no-audio');
    expectSdpError(() => parseSdp(sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 1.1.1.1', 't=0 0', 'm=video 5000 RTP/AVP 96')), 'no-audio');
    expectSdpError(() => parseSdp(sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 't=0 0', 'm=audio 5000 RTP/AVP 0')), 'no-connection');
    expectSdpError(() => parseSdp(sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 1.1.1.1', 't=0 0', 'm=audio 0 RTP/AVP 0')), 'stream-rejected');
    expectSdpError(() => parseSdp(sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 1.1.1.1', 't=0 0', 'm=audio 99999 RTP/AVP 0')), 'bad-port');
    expectSdpError(() => parseSdp(sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 1.1.1.1', 't=0 0', 'm=audio 5000 UDP/TLS/RTP/SAVPF 111')), 'unsupported-transport');
    expectSdpError(() => parseSdp(sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 1.1.1.1', 't=0 0', 'm=audio 5000 RTP/AVP 18 9 101', 'a=rtpmap:101 telephone-event/8000')), 'no-common-codec');
    expectSdpError(() => parseSdp(sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 999.1.1.1', 't=0 0', 'm=audio 5000 RTP/AVP 0')), 'malformed');
    expectSdpError(() => parseSdp(sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 1.1.1.1', 't=0 0', 'm=audio 5000 RTP/AVP 0'), { codecs: ['PCMA'] }), 'no-common-codec');
  });
});

describe('buildSdpAnswer', () => {
  const offer = sdp(
    'v=0',
    'o=caller 5 5 IN IP4 198.51.100.1',
    's=call',
    'c=IN IP4 198.51.100.1',
    't=0 0',
    'm=audio 7078 RTP/AVP 8 0 101',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    'a=sendonly',
  );

  it('answers with one common codec by local preference, the offered telephone-event PT, mirrored direction', () => {
    const a = buildSdpAnswer(offer, { address: '127.0.0.1', port: 30000, sessionId: '9' });
    expect(a.remote).toMatchObject({ address: '198.51.100.1', port: 7078, codec: 'PCMU', payloadType: 0, dtmfPayloadType: 101, direction: 'sendonly' });
    expect(a.direction).toBe('recvonly');
    expect(a.sdp).toContain('m=audio 30000 RTP/AVP 0 101\r\n');
    expect(a.sdp).toContain('a=rtpmap:0 PCMU/8000\r\n');
    expect(a.sdp).toContain('a=rtpmap:101 telephone-event/8000\r\n');
    expect(a.sdp).toContain('a=recvonly\r\n');
    expect(a.sdp).toContain('c=IN IP4 127.0.0.1\r\n');
    expect(parseSdp(a.sdp)).toMatchObject({ codec: 'PCMU', port: 30000, dtmfPayloadType: 101 });
  });

  it('prefers PCMA when configured, drops DTMF when disabled or not offered', () => {
    const a = buildSdpAnswer(offer, { address: '127.0.0.1', port: 30000, codecs: ['PCMA', 'PCMU'], dtmf: false });
    expect(a.sdp).toContain('m=audio 30000 RTP/AVP 8\r\n');
    expect(a.remote.dtmfPayloadType).toBeUndefined();
    const noDtmf = sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 1.1.1.1', 't=0 0', 'm=audio 4000 RTP/AVP 0');
    expect(buildSdpAnswer(noDtmf, { address: '127.0.0.1', port: 30000 }).sdp).toContain('m=audio 30000 RTP/AVP 0\r\n');
  });

  it('throws no-common-codec when the offer has no G.711', () => {
    const opus = sdp('v=0', 'o=- 1 1 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 1.1.1.1', 't=0 0', 'm=audio 4000 RTP/AVP 111', 'a=rtpmap:111 opus/48000/2');
    expectSdpError(() => buildSdpAnswer(opus, { address: '127.0.0.1', port: 30000 }), 'no-common-codec');
  });

  it('c=0.0.0.0 is hold (RFC 3264 §8.4): no direction reads sendonly and is answered recvonly; recvonly reads inactive', () => {
    const held = (dir?: string) => sdp('v=0', 'o=- 1 2 IN IP4 1.1.1.1', 's=-', 'c=IN IP4 0.0.0.0', 't=0 0', 'm=audio 4000 RTP/AVP 0', ...(dir ? [`a=${dir}`] : []));
    expect(parseSdp(held()).direction).toBe('sendonly');
    expect(parseSdp(held('sendrecv')).direction).toBe('sendonly');
    expect(parseSdp(held('recvonly')).direction).toBe('inactive');
    expect(parseSdp(held('inactive')).direction).toBe('inactive');
    const a = buildSdpAnswer(held(), { address: '127.0.0.1', port: 30000 });
    expect(a.direction).toBe('recvonly');
    expect(a.sdp).toContain('a=recvonly\r\n');
    expect(buildSdpAnswer(held('recvonly'), { address: '127.0.0.1', port: 30000 }).sdp).toContain('a=inactive\r\n');
  });
});

describe('buildSdpAnswer: streams we do not take', () => {
  const video = ['m=video 50000 RTP/AVP 96', 'a=rtpmap:96 H264/90000'];
  const audio = ['m=audio 40000 RTP/AVP 0 101', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000'];
  const head = ['v=0', 'o=phone 1 1 IN IP4 10.0.0.5', 's=-', 'c=IN IP4 10.0.0.5', 't=0 0'];
  const mLines = (answer: string): string[] => answer.split(CRLF).filter((l) => l.startsWith('m='));

  it('keeps the offer\'s m= lines in order, refusing video with port 0 (RFC 3264 §6)', () => {
    expect(mLines(buildSdpAnswer(sdp(...head, ...audio, ...video), { address: '127.0.0.1', port: 30000 }).sdp))
      .toEqual(['m=audio 30000 RTP/AVP 0 101', 'm=video 0 RTP/AVP 96']);
    expect(mLines(buildSdpAnswer(sdp(...head, ...video, ...audio), { address: '127.0.0.1', port: 30000 }).sdp))
      .toEqual(['m=video 0 RTP/AVP 96', 'm=audio 30000 RTP/AVP 0 101']);
  });

  it('answers a second audio stream with port 0 and uses the first', () => {
    const answer = buildSdpAnswer(sdp(...head, ...audio, 'm=audio 40002 RTP/AVP 8', 'a=rtpmap:8 PCMA/8000'), { address: '127.0.0.1', port: 30000 });
    expect(mLines(answer.sdp)).toEqual(['m=audio 30000 RTP/AVP 0 101', 'm=audio 0 RTP/AVP 8']);
    expect(answer.remote.port).toBe(40000);
  });

  it('a later offer of ours keeps the session\'s refused streams (RFC 3264 §8: never fewer m= lines)', () => {
    const answer = buildSdpAnswer(sdp(...head, ...video, ...audio), { address: '127.0.0.1', port: 30000 }).sdp;
    const reoffer = buildSdpOffer({ address: '127.0.0.1', port: 30000, sameStreamsAs: answer, sessionVersion: 2 });
    expect(mLines(reoffer)).toEqual(['m=video 0 RTP/AVP 96', 'm=audio 30000 RTP/AVP 0 8 101']);
    expect(mLines(buildSdpOffer({ address: '127.0.0.1', port: 30000 }))).toEqual(['m=audio 30000 RTP/AVP 0 8 101']);
  });

  it('refuses an IPv6 media address: our media sockets are IPv4', () => {
    expectSdpError(() => buildSdpAnswer(sdp('v=0', 'o=phone 1 1 IN IP6 2001:db8::5', 's=-', 'c=IN IP6 2001:db8::5', 't=0 0', ...audio), { address: '127.0.0.1', port: 30000 }), 'unsupported-address');
  });
});

