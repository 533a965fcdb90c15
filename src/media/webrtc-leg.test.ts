import { promises as dnsPromises } from 'node:dns';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RTCPeerConnection, RTCRtpCodecParameters, type RtpPacket } from 'werift';
import { detectTone } from '../../test/audio/goertzel.js';
import { FRAME_SAMPLES, OpusDecoder8k, OpusEncoder8k } from './opus-codec.js';
import { openUdpHandles, WrtcPeer } from './test-wrtc-peer.js';
import { PortPool, PortPoolExhaustedError } from './port-pool.js';
import { tickReadsAvailable } from './tick-socket.js';
import { decodeG711, encodeG711 } from './g711.js';
import { parseAudioPayloadTypes, UnanswerableOfferError, WebRtcLeg, shapeLocalSdp, unreachableFromMeta } from './webrtc-leg.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function sine(freq: number, n: number, start: number): Int16Array {
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * freq * (start + i)) / 8000));
  return out;
}

describe('WebRtcLeg', () => {
  it('rejects garbage and Opus-less offers with UnanswerableOfferError', async () => {
    await expect(WebRtcLeg.answer('hello')).rejects.toBeInstanceOf(UnanswerableOfferError);
    await expect(WebRtcLeg.answer('hello')).rejects.toThrow(/not an SDP/);
    const pcmuOnly = [
      'v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=audio 9 UDP/TLS/RTP/SAVPF 0', 'c=IN IP4 0.0.0.0',
      'a=ice-ufrag:abcd', 'a=ice-pwd:abcdefghijklmnopqrstuvwx', 'a=fingerprint:sha-256 AA:BB', 'a=setup:actpass',
      'a=mid:0', 'a=rtpmap:0 PCMU/8000', '',
    ].join('\r\n');
    await expect(WebRtcLeg.answer(pcmuOnly)).rejects.toThrow(/offers none of opus/);
    await expect(WebRtcLeg.answer('v=0\r\ns=-\r\n')).rejects.toThrow(/no m=audio/);
    const opusOffer = pcmuOnly.replace('SAVPF 0', 'SAVPF 111').replace('a=rtpmap:0 PCMU/8000', 'a=rtpmap:111 opus/48000/2');
    await expect(WebRtcLeg.answer(`${opusOffer}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n`)).rejects.toThrow(/more than one media section/);
    await expect(WebRtcLeg.answer(opusOffer.replace('a=setup:actpass', 'a=setup:active'))).rejects.toThrow(/setup:active/);
  });

  it('tells an announced address Meta\'s relays cannot reach (the start-up warning)', () => {
    expect(['10.1.2.3', '172.20.0.1', '192.168.1.5', '100.64.0.9', '127.0.0.1', '169.254.1.1', 'fd00::1', undefined].map(unreachableFromMeta).every((r) => r !== null)).toBe(true);
    expect(['203.0.113.7', '172.32.0.1', '100.128.0.1', '2001:db8::1'].map(unreachableFromMeta)).toEqual([null, null, null, null]);
  });

  it('shapes SDP: only telephone-event/8000, sha-256, announced candidates, default candidate in c=/m=', () => {
    const sdp = [
      'v=0', 's=-', 'a=ice-lite', 'm=audio 9 UDP/TLS/RTP/SAVPF 111 110 126', 'c=IN IP4 0.0.0.0',
      'a=candidate:1 1 udp 2116026367 10.0.0.5 50000 typ host', 'a=candidate:2 1 udp 2116026367 203.0.113.7 50002 typ host',
      'a=fingerprint:sha-1 AA', 'a=fingerprint:sha-256 BB', 'a=rtpmap:111 opus/48000/2',
      'a=rtpmap:110 telephone-event/48000', 'a=fmtp:110 0-15', 'a=rtpmap:126 telephone-event/8000', 'a=rtcp-fb:111 transport-cc', '',
    ].join('\r\n');
    const out = shapeLocalSdp(sdp, new Set(['203.0.113.7']), 126);
    expect(out).not.toContain('transport-cc');
    expect(out).toContain('m=audio 50002 UDP/TLS/RTP/SAVPF 111 126\r\n');
    expect(out).toContain('c=IN IP4 203.0.113.7');
    expect(out).not.toMatch(/ice-lite|sha-1|10\.0\.0\.5|:110 /);
    expect(parseAudioPayloadTypes(out)).toMatchObject({ hasAudio: true, opusPt: 111, dtmfPt: 126, pcmuPt: null, pcmaPt: null });
  });

  // 'tick' needs the addon, whose absence tick-socket.test.ts reports as a failure.
  it.each(tickReadsAvailable() ? ['fast', 'werift', 'tick'] as const : ['fast', 'werift'] as const)('answers a libwebrtc offer per Meta rules, connects on loopback and carries Opus both ways (%s RTP path)', async (variant) => {
    // 'tick': the fast path with the ICE socket read on the media tick (tick-socket.ts); STUN, DTLS and RTCP then
    // reach werift from pollReceived(), which the test calls every 20 ms as the bridge's tick does.
    const mediaPath = variant === 'werift' ? 'werift' : 'fast';
    const udpBefore = openUdpHandles();
    const peer = new WrtcPeer();
    cleanups.push(() => peer.close());
    const offer = await peer.createOffer();
    const offered = parseAudioPayloadTypes(offer);
    expect(offered.opusPt).not.toBeNull();

    const t0 = performance.now();
    const pool = new PortPool(47000, 47100);
    const leg = await WebRtcLeg.answer(offer, { bindAddress: '127.0.0.1', portPool: pool, mediaPath });
    cleanups.push(() => leg.close());
    // Asked before DTLS is up, as the bridge does: the switch happens when the fast path takes over.
    if (variant === 'tick') expect(leg.readOnTick()).toBe(false);
    const sdp = leg.localSdp;
    expect(sdp).toMatch(/^a=setup:active\r$/m);
    expect(sdp).toMatch(/^a=ptime:20\r$/m);
    expect(sdp).not.toMatch(/^a=ice-options:trickle/m);
    expect(sdp).not.toMatch(/ice-lite/);
    expect(sdp).toMatch(/^a=fingerprint:sha-256 [0-9A-F:]{95}\r$/m);
    expect(sdp).not.toMatch(/^a=fingerprint:(?!sha-256)/m);
    expect(parseAudioPayloadTypes(sdp)).toMatchObject({ hasAudio: true, opusPt: offered.opusPt, dtmfPt: 126, pcmuPt: null, pcmaPt: null });
    expect(sdp).toMatch(/^a=rtpmap:126 telephone-event\/8000\r$/m);
    expect(sdp).not.toMatch(/telephone-event\/(48000|32000|16000)/);
    const cands = sdp.match(/^a=candidate:.*$/gm) ?? [];
    expect(cands.length).toBeGreaterThan(0);
    for (const c of cands) {
      expect(c).toContain(' 127.0.0.1 ');
      const port = Number(c.split(' ')[5]);
      expect(port).toBeGreaterThanOrEqual(47000);
      expect(port).toBeLessThanOrEqual(47100);
    }
    expect(sdp).toContain('a=end-of-candidates');
    expect((sdp.match(/^a=ssrc:(\d+) /gm) ?? []).map((l) => l.split(' ')[0]).filter((v, i, a) => a.indexOf(v) === i)).toHaveLength(1);
    expect((sdp.match(/^m=/gm) ?? []).length).toBe(1);

    await peer.acceptAnswer(sdp);
    await Promise.all([leg.connected, peer.connected()]);
    const connectMs = performance.now() - t0;
    expect(leg.state).toBe('connected');
    // The fast path took over from werift (keys read from its DTLS transport), or werift's path was kept on request.
    expect(leg.mediaPath).toBe(mediaPath);
    if (variant === 'tick') expect(leg.readOnTick()).toBe(true);
    const poller = setInterval(() => leg.pollReceived(), 20);
    cleanups.push(() => clearInterval(poller));

    // WhatsApp → us: libwebrtc plays 1 kHz; we decode to 8 kHz and look for 1 kHz.
    const dec = new OpusDecoder8k();
    const heard: number[] = [];
    const frame = new Int16Array(960);
    leg.on('audio', (payload) => {
      const n = dec.decode(payload, frame);
      for (let i = 0; i < n; i++) heard.push(frame[i]!);
    });
    peer.play(1000);

    // Us → WhatsApp: 440 Hz at 8 kHz, Opus on the 48 kHz RTP clock, our own seq/ts.
    const enc = new OpusEncoder8k();
    const pkt = new Uint8Array(1500);
    let seq = 1000;
    let ts = 123456;
    let pos = 0;
    const timer = setInterval(() => {
      const n = enc.encode(sine(440, FRAME_SAMPLES, pos), pkt);
      pos += FRAME_SAMPLES;
      leg.sendRtp({ payloadType: leg.audio.payloadType, sequenceNumber: seq++, timestamp: (ts += 960) }, pkt, 0, n);
    }, 20);
    cleanups.push(() => clearInterval(timer));
    await new Promise((r) => setTimeout(r, 1500));
    clearInterval(timer);
    peer.stopPlaying();

    const rx = Int16Array.from(heard.slice(-4000));
    expect(rx.length).toBe(4000);
    expect(detectTone(rx, 8000, 1000).detected).toBe(true);
    expect(detectTone(rx, 8000, 1000).snrDb).toBeGreaterThan(10);
    const atPeer = peer.recent(500);
    expect(atPeer.length).toBe(24000);
    expect(detectTone(atPeer, 48000, 440).detected).toBe(true);
    expect(detectTone(atPeer, 48000, 1000).ratio).toBeLessThan(0.05);
    expect(leg.stats.packetsIn).toBeGreaterThan(40);
    expect(leg.stats.srtpDropped).toBe(0);
    expect(leg.lastReceivedAt).toBeGreaterThan(t0);
    // RTCP both ways on every path: libwebrtc got our receiver reports about its stream (remote-inbound-rtp), and
    // its reports about ours gave us an RTT (werift's on its path, srtcp-reporter.ts on the fast path).
    const until = performance.now() + 6000;
    let remoteInbound: { packetsLost?: number; jitter?: number } | undefined;
    while (performance.now() < until && (!remoteInbound || leg.rttMs === undefined)) {
      await new Promise((r) => setTimeout(r, 200));
      const report = (await (peer.pc as unknown as { getStats(): Promise<Map<string, { type: string; packetsLost?: number; jitter?: number }>> }).getStats());
      remoteInbound = [...report.values()].find((x) => x.type === 'remote-inbound-rtp');
      if (!remoteInbound) continue;
    }
    expect(remoteInbound).toBeDefined();
    expect(remoteInbound!.packetsLost ?? 0).toBeLessThanOrEqual(2);
    // Our receiver reports' jitter (from each packet's arrival): loopback has next to none, also when the
    // socket is read on the tick (whose time would put 20 ms steps into it).
    expect(remoteInbound!.jitter ?? 0).toBeLessThan(0.02);
    expect(leg.rttMs).toBeGreaterThanOrEqual(0);
    expect(leg.rttMs!).toBeLessThan(500);
    console.log(`webrtc-leg: connected in ${connectMs.toFixed(0)} ms, ICE role ${leg.iceRole}, in ${leg.stats.packetsIn} out ${leg.stats.packetsOut}`);
    clearInterval(poller);

    const states: string[] = [];
    leg.on('state', (s) => states.push(s));
    const c1 = leg.close();
    expect(leg.close()).toBe(c1);
    await c1;
    expect(states).toContain('closed');
    expect(pool.free).toBe(pool.size);
    peer.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(openUdpHandles()).toBeLessThanOrEqual(udpBefore);
  });

  it('takes the CONTROLLING role against an ICE-lite offerer with an IPv6 candidate too (Meta) and sends DTMF on the audio SSRC', async () => {
    // A werift peer configured as ICE-lite stands in for Meta's relay.
    const meta = new RTCPeerConnection({
      iceLite: true, iceServers: [], iceUseIpv6: false, iceInterfaceAddresses: { udp4: '127.0.0.1' }, iceAdditionalHostAddresses: ['127.0.0.1'],
      codecs: {
        audio: [
          new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 }),
          new RTCRtpCodecParameters({ mimeType: 'audio/telephone-event', clockRate: 8000, channels: 1, payloadType: 126 }),
        ],
        video: [],
      },
    });
    cleanups.push(() => meta.close());
    const received: RtpPacket[] = [];
    meta.onTrack.subscribe((track) => track.onReceiveRtp.subscribe((rtp) => received.push(rtp)));
    meta.addTransceiver('audio', { direction: 'sendrecv' });
    await meta.setLocalDescription(await meta.createOffer());
    // Meta's offers carry one IPv4 and one IPv6 host candidate; the gateway listens on IPv4 only and must simply
    // pair with the IPv4 one (the IPv6 one is listed first here, so it is not picked by luck).
    const offer = meta.localDescription!.sdp.replace(/^(a=candidate:.*\r\n)/m, 'a=candidate:9 1 udp 2130706431 2001:db8::7 3480 typ host\r\n$1');
    expect(offer).toContain('a=ice-lite');
    expect(offer.indexOf('2001:db8::7')).toBeLessThan(offer.indexOf(' 127.0.0.1 '));

    const leg = await WebRtcLeg.answer(offer, { bindAddress: '127.0.0.1' });
    cleanups.push(() => leg.close());
    expect(leg.localSdp).not.toContain('ice-lite');
    await meta.setRemoteDescription({ type: 'answer', sdp: leg.localSdp });
    await leg.connected;
    expect(leg.iceRole).toBe('controlling');

    const enc = new OpusEncoder8k();
    const pkt = new Uint8Array(1500);
    const n = enc.encode(sine(440, FRAME_SAMPLES, 0), pkt);
    leg.sendRtp({ payloadType: 111, sequenceNumber: 500, timestamp: 96000, marker: true }, pkt, 0, n);
    const ev = Uint8Array.from([5, 10, 0, 160]);
    leg.sendRtp({ payloadType: 126, sequenceNumber: 501, timestamp: 96960, marker: true }, ev);
    leg.sendRtp({ payloadType: 111, sequenceNumber: 502, timestamp: 97920 }, pkt, 0, n);
    const deadline = Date.now() + 3000;
    while (received.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(received.map((r) => r.header.payloadType)).toEqual([111, 126, 111]);
    expect(new Set(received.map((r) => r.header.ssrc)).size).toBe(1);
    expect(received[0]!.header.ssrc).toBe(leg.ssrc);
    expect(received.map((r) => r.header.sequenceNumber)).toEqual([500, 501, 502]);
    expect(received.map((r) => r.header.timestamp)).toEqual([96000, 96960, 97920]);
    expect(Array.from(received[1]!.payload)).toEqual([5, 10, 0, 160]);
  });

  it('answers with G.711 when media.whatsappCodecs prefers it and the offer carries it, and carries µ-law both ways', async () => {
    const peer = new WrtcPeer();
    cleanups.push(() => peer.close());
    const offer = await peer.createOffer();
    expect(parseAudioPayloadTypes(offer)).toMatchObject({ pcmuPt: 0, pcmaPt: 8 });
    const leg = await WebRtcLeg.answer(offer, { bindAddress: '127.0.0.1', codecs: ['PCMU', 'PCMA', 'opus'] });
    cleanups.push(() => leg.close());
    expect(leg.audio).toEqual({ codec: 'PCMU', payloadType: 0, clockRate: 8000 });
    expect(leg.remoteInbandFec).toBe(false);
    expect(parseAudioPayloadTypes(leg.localSdp)).toMatchObject({ order: [0, 126], dtmfPt: 126, opusPt: null });
    expect(leg.localSdp).toMatch(/^a=ptime:20\r$/m);

    await peer.acceptAnswer(leg.localSdp);
    await Promise.all([leg.connected, peer.connected()]);
    const poller = setInterval(() => leg.pollReceived(), 20);
    cleanups.push(() => clearInterval(poller));
    const heard: number[] = [];
    const frame = new Int16Array(960);
    leg.on('audio', (payload) => {
      const n = decodeG711('PCMU', payload, 0, payload.length, frame);
      for (let i = 0; i < n; i++) heard.push(frame[i]!);
    });
    peer.play(1000);
    const pkt = new Uint8Array(FRAME_SAMPLES);
    let seq = 7;
    let ts = 4000;
    let pos = 0;
    const timer = setInterval(() => {
      encodeG711('PCMU', sine(440, FRAME_SAMPLES, pos), pkt);
      pos += FRAME_SAMPLES;
      leg.sendRtp({ payloadType: 0, sequenceNumber: seq++, timestamp: (ts += 160) }, pkt);
    }, 20);
    cleanups.push(() => clearInterval(timer));
    await new Promise((r) => setTimeout(r, 1500));
    clearInterval(timer);
    peer.stopPlaying();

    const rx = Int16Array.from(heard.slice(-4000));
    expect(rx.length).toBe(4000);
    expect(detectTone(rx, 8000, 1000).snrDb).toBeGreaterThan(10);
    // libwebrtc decodes G.711 at its own 8 kHz.
    expect(peer.heardRate).toBe(8000);
    const atPeer = peer.recent(500);
    expect(atPeer.length).toBe(4000);
    expect(detectTone(atPeer, 8000, 440).detected).toBe(true);
    expect(detectTone(atPeer, 8000, 1000).ratio).toBeLessThan(0.05);
  });

  it('answers an offer that lists telephone-event before Opus (the m= line order is the offerer\'s, not a rule)', async () => {
    const peer = new WrtcPeer();
    cleanups.push(() => peer.close());
    const offer = (await peer.createOffer()).replace(/^(m=audio \d+ \S+) (.+)$/m, (_, head: string, pts: string) => {
      const list = pts.trim().split(' ');
      return `${head} ${[...list.filter((pt) => pt === '126'), ...list.filter((pt) => pt !== '126')].join(' ')}`;
    });
    expect(parseAudioPayloadTypes(offer).order[0]).toBe(126);
    const leg = await WebRtcLeg.answer(offer, { bindAddress: '127.0.0.1' });
    cleanups.push(() => leg.close());
    expect(leg.audio).toEqual({ codec: 'opus', payloadType: 111, clockRate: 48000 });
    expect(parseAudioPayloadTypes(leg.localSdp)).toMatchObject({ opusPt: 111, dtmfPt: 126 });
  });

  it('offers G.711 before Opus when preferred, and follows the codec the answer picks', async () => {
    const leg = await WebRtcLeg.offer({ bindAddress: '127.0.0.1', codecs: ['PCMA', 'opus'] });
    cleanups.push(() => leg.close());
    expect(parseAudioPayloadTypes(leg.localSdp)).toMatchObject({ order: [8, 111, 126], pcmaPt: 8, opusPt: 111, pcmuPt: null });
    const peer = new WrtcPeer();
    cleanups.push(() => peer.close());
    await leg.setRemoteAnswer(await peer.answer(leg.localSdp));
    expect(leg.audio).toEqual({ codec: 'PCMA', payloadType: 8, clockRate: 8000 });
    // An answer that picks Opus (a number without G.711 at Meta) is followed too.
    const opusOnly = await WebRtcLeg.offer({ bindAddress: '127.0.0.1', codecs: ['PCMA', 'opus'] });
    cleanups.push(() => opusOnly.close());
    const peer2 = new WrtcPeer();
    cleanups.push(() => peer2.close());
    const answer = (await peer2.answer(opusOnly.localSdp)).replace(/^(m=audio \d+ \S+) 8 /m, '$1 ');
    await opusOnly.setRemoteAnswer(answer);
    expect(opusOnly.audio).toEqual({ codec: 'opus', payloadType: 111, clockRate: 48000 });
  });

  it('offers for a business-initiated call and applies the answer', async () => {
    const leg = await WebRtcLeg.offer({ bindAddress: '127.0.0.1' });
    cleanups.push(() => leg.close());
    expect(parseAudioPayloadTypes(leg.localSdp)).toMatchObject({ hasAudio: true, opusPt: 111, dtmfPt: 126, pcmuPt: null, pcmaPt: null });
    expect(leg.localSdp).not.toContain('ice-lite');
    expect(leg.localSdp).toMatch(/^a=candidate:.* 127\.0\.0\.1 /m);
    const peer = new WrtcPeer();
    cleanups.push(() => peer.close());
    const answer = await peer.answer(leg.localSdp);
    await expect(leg.setRemoteAnswer('garbage')).rejects.toThrow(/cannot use the WhatsApp SDP answer/);
    await leg.setRemoteAnswer(answer);
    await Promise.all([leg.connected, peer.connected()]);
    expect(leg.iceRole).toBe('controlling');
    expect(leg.dtmfPayloadType).toBe(126);
  });

  it('announces only the public address behind 1:1 NAT', async () => {
    const peer = new WrtcPeer();
    cleanups.push(() => peer.close());
    const leg = await WebRtcLeg.answer(await peer.createOffer(), { bindAddress: '127.0.0.1', publicAddress: '203.0.113.7' });
    cleanups.push(() => leg.close());
    const cands = leg.localSdp.match(/^a=candidate:.*$/gm) ?? [];
    expect(cands).toHaveLength(1);
    expect(cands[0]).toMatch(/ udp \d+ 203\.0\.113\.7 \d+ typ host/);
    expect(leg.localSdp).toMatch(/^c=IN IP4 203\.0\.113\.7\r$/m);
  });

  it('gathers host candidates only: no DNS lookup or STUN query of a server nobody configured (werift defaults to Google\'s)', async () => {
    const lookup = vi.spyOn(dnsPromises, 'lookup');
    cleanups.push(() => lookup.mockRestore());
    const offerer = await WebRtcLeg.offer({ bindAddress: '127.0.0.1' });
    cleanups.push(() => offerer.close());
    const answerer = await WebRtcLeg.answer(offerer.localSdp, { bindAddress: '127.0.0.1' });
    cleanups.push(() => answerer.close());
    // werift starts the STUN query without waiting for it: give a lookup the time to be made.
    await new Promise((r) => setTimeout(r, 50));
    expect(lookup.mock.calls.map((c) => c[0])).toEqual([]);
    for (const sdp of [offerer.localSdp, answerer.localSdp]) {
      expect(sdp.match(/^a=candidate:.*$/gm)?.every((c) => / typ host\b/.test(c))).toBe(true);
    }
  });

  it('gives concurrent legs distinct pooled ports and returns them on close', async () => {
    const pool = new PortPool(47200, 47210); // 6 even ports
    const peers = Array.from({ length: 6 }, () => new WrtcPeer());
    cleanups.push(() => peers.forEach((p) => p.close()));
    const offers = await Promise.all(peers.map((p) => p.createOffer()));
    const legs = await Promise.all(offers.map((o) => WebRtcLeg.answer(o, { bindAddress: '127.0.0.1', portPool: pool })));
    cleanups.push(() => Promise.all(legs.map((l) => l.close())));
    const ports = legs.map((l) => Number(/^a=candidate:\S+ 1 udp \d+ \S+ (\d+) /m.exec(l.localSdp)![1]));
    expect(new Set(ports).size).toBe(6);
    for (const p of ports) expect(p >= 47200 && p <= 47211).toBe(true);
    expect(pool.free).toBe(0);
    await expect(WebRtcLeg.answer(offers[0]!, { bindAddress: '127.0.0.1', portPool: pool })).rejects.toBeInstanceOf(PortPoolExhaustedError);
    await Promise.all(legs.map((l) => l.close()));
    expect(pool.free).toBe(pool.size);
  });

  it('receives audio whose SSRC the offer never signalled (relays rewrite SSRCs) and tolerates a=rtcp:<port>', async () => {
    const peer = new WrtcPeer();
    cleanups.push(() => peer.close());
    const offer = (await peer.createOffer())
      .replace(/^a=ssrc:.*\r\n/gm, '')
      .replace(/^a=msid:.*\r\n/gm, '')
      .replace(/^a=rtcp:9 IN IP4 0\.0\.0\.0\r$/m, 'a=rtcp:9\r');
    expect(offer).not.toMatch(/^a=ssrc:/m);
    expect(offer).toMatch(/^a=rtcp:9\r$/m);
    const leg = await WebRtcLeg.answer(offer, { bindAddress: '127.0.0.1' });
    cleanups.push(() => leg.close());
    await peer.acceptAnswer(leg.localSdp);
    await Promise.all([leg.connected, peer.connected()]);
    const dec = new OpusDecoder8k();
    const frame = new Int16Array(960);
    const heard: number[] = [];
    leg.on('audio', (payload) => {
      const n = dec.decode(payload, frame);
      for (let i = 0; i < n; i++) heard.push(frame[i]!);
    });
    peer.play(1000);
    await new Promise((r) => setTimeout(r, 800));
    peer.stopPlaying();
    expect(heard.length).toBeGreaterThan(2000);
    expect(detectTone(Int16Array.from(heard.slice(-2000)), 8000, 1000).detected).toBe(true);
  });
});
