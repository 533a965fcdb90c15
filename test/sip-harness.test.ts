/**
 * Self-test of the SIP leg and its test peers: drachtio-server + SipAgent against SIPp (and baresip).
 * Skips loudly (and counts the skip in $WAGW_SKIP_LOG) when drachtio-server or sipp is not installed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { SipAgent, SipCallFailure, type SipDialog } from '../src/sip/agent.js';
import { buildSdpAnswer, buildSdpOffer, parseSdp } from '../src/sip/sdp.js';
import { waContextToSip } from '../src/sip/headers.js';
import { drachtioAvailable, noteSkipped, startDrachtio, type DrachtioServer } from './peers/drachtio.js';
import { sippAvailable, startSipp } from './peers/sip/sipp.js';
import { freePort } from './peers/sip/ports.js';
import { baresipAvailable, startBaresip, type BaresipAgent } from './peers/sip/baresip.js';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { decodeG711, encodeG711 } from '../src/media/g711.js';
import { detectTone } from './audio/goertzel.js';
import { generateTone } from './audio/tone.js';
import { readWav, toMono } from './audio/wav.js';

const logger = pino({ level: process.env.WAGW_TEST_LOG ?? 'silent' });
const d = drachtioAvailable();
const s = sippAvailable();
const skipReason = !d.ok ? d.reason : !s.ok ? s.reason : undefined;

const SIPP_TESTS = 9;
const RECONNECT_TESTS = 3;
const BARESIP_TESTS = 2;
const b = baresipAvailable();
const baresipSkip = !d.ok ? d.reason : !b.ok ? b.reason : undefined;
// One loud line (and one WAGW_SKIP_LOG line) per distinct reason, with the number of tests it skips.
{
  const skips = new Map<string, number>();
  const add = (reason: string | undefined, n: number): void => {
    if (reason !== undefined) skips.set(reason, (skips.get(reason) ?? 0) + n);
  };
  add(skipReason, SIPP_TESTS);
  add(d.ok ? undefined : d.reason, RECONNECT_TESTS);
  add(baresipSkip, BARESIP_TESTS);
  for (const [reason, n] of skips) noteSkipped(reason, n);
}

function waitFor<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timeout waiting for ${what}`)), ms))]);
}

describe.skipIf(skipReason !== undefined)('SIP harness: drachtio-server + SipAgent + sipp', () => {
  let server: DrachtioServer;
  let agent: SipAgent;

  beforeAll(async () => {
    server = await startDrachtio();
    agent = new SipAgent({ ...server.connectOptions, logger });
    agent.start();
    await agent.waitConnected(10_000);
  });

  afterAll(async () => {
    await agent?.stop();
    await server?.stop();
  });

  it('sipp UAC → drachtio → SipAgent.onInvite answers 200 with SDP; sipp BYE ends the dialog', async () => {
    const dialogs: SipDialog[] = [];
    const invites: { from?: string; user?: string; xtest?: string; sdpCodec?: string }[] = [];
    agent.onInvite(async (inv) => {
      const answer = buildSdpAnswer(inv.sdp, { address: '127.0.0.1', port: 40000 });
      invites.push({ from: inv.from.displayName, user: inv.from.user, xtest: inv.header('X-Test'), sdpCodec: answer.remote.codec });
      inv.ringing();
      dialogs.push(await inv.answer({ sdp: answer.sdp }));
    });
    const uac = await startSipp({ scenario: 'uac-invite', remote: `127.0.0.1:${server.sipPort}`, service: 'gateway', durationMs: 300, timeoutSec: 15 });
    const result = await uac.done;
    expect(result.exitCode, result.errors || result.stderr).toBe(0);
    expect(result.successful).toBe(1);
    expect(result.failed).toBe(0);
    expect(invites).toEqual([{ from: 'SIPp Caller', user: '+15550001111', xtest: 'sipp', sdpCodec: 'PCMU' }]);
    expect(result.messages).toMatch(/SIP\/2\.0 180 Ringing/);
    expect(result.messages).toMatch(/SIP\/2\.0 200 OK[\s\S]*m=audio 40000 RTP\/AVP 0 101/);
    expect(dialogs).toHaveLength(1);
    const end = await waitFor(dialogs[0]!.done, 5000, 'dialog end');
    expect(end.by).toBe('remote');
    expect(dialogs[0]!.active).toBe(false);
  });

  it('draining: a new INVITE gets 503 with Retry-After', async () => {
    agent.draining = true;
    try {
      const uac = await startSipp({ scenario: 'uac-invite', remote: `127.0.0.1:${server.sipPort}`, timeoutSec: 5 });
      const result = await uac.done;
      expect(result.successful).toBe(0);
      expect(result.messages).toMatch(/SIP\/2\.0 503 Service Unavailable[\s\S]*Retry-After: 30/);
    } finally {
      agent.draining = false;
    }
  });

  it('SipAgent.invite → sipp UAS answers (X-WA headers, From) → dialog → bye()', async () => {
    const uas = await startSipp({ scenario: 'uas-answer', keys: { codec: 'PCMA', pt: '8' }, rtpEcho: true, timeoutSec: 15 });
    const { headers, from } = waContextToSip({ callId: 'wacid.TEST1', phoneNumberId: '1065', waId: '16315553602', userName: 'Jane "JD" Doe' });
    const provisional: number[] = [];
    const dialog = await agent.invite({
      uri: uas.uri,
      from,
      headers,
      sdp: buildSdpOffer({ address: '127.0.0.1', port: 40002 }),
      onProvisional: (st) => provisional.push(st),
      timeoutMs: 5000,
    });
    expect(provisional).toContain(180);
    const remote = parseSdp(dialog.remoteSdp);
    expect(remote).toMatchObject({ address: '127.0.0.1', port: uas.mediaPort, codec: 'PCMA', payloadType: 8, dtmfPayloadType: 101 });
    expect(dialog.callId).toBeTruthy();
    expect(agent.activeDialogs).toBe(1);
    await dialog.bye();
    await dialog.bye(); // idempotent
    expect(dialog.end?.by).toBe('local');
    const r = await uas.done;
    expect(r.exitCode, r.errors).toBe(0);
    expect(r.successful).toBe(1);
    const invite = r.messages.slice(r.messages.indexOf('INVITE sip:'));
    expect(invite).toMatch(/X-WA-Call-Id: wacid\.TEST1/);
    expect(invite).toMatch(/X-WA-User: 16315553602/);
    expect(invite).toMatch(/From: "Jane \\"JD\\" Doe" <sip:\+16315553602@127\.0\.0\.1/);
    expect(agent.activeDialogs).toBe(0);
  });

  it('SipAgent.invite → sipp UAS hangs up → dialog ended by remote with Reason', async () => {
    const uas = await startSipp({ scenario: 'uas-answer-hangup', durationMs: 300, timeoutSec: 15 });
    const dialog = await agent.invite({ uri: uas.uri, from: { user: '+16315553602' }, sdp: buildSdpOffer({ address: '127.0.0.1', port: 40004 }) });
    const end = await waitFor(dialog.done, 5000, 'remote BYE');
    expect(end).toMatchObject({ by: 'remote', reason: 'Normal call clearing' });
    const r = await uas.done;
    expect(r.exitCode, r.errors).toBe(0);
  });

  it('in-dialog INFO and re-INVITE from the far end reach SipDialog (info event, reinviteHandler, remoteSdp updated)', async () => {
    const uas = await startSipp({ scenario: 'uas-answer-info-reinvite', durationMs: 200, timeoutSec: 15 });
    const dialog = await agent.invite({ uri: uas.uri, from: { user: '+16315553602' }, sdp: buildSdpOffer({ address: '127.0.0.1', port: 40022 }) });
    const infos: { contentType: string; body: string }[] = [];
    dialog.on('info', (i) => infos.push({ contentType: i.contentType, body: i.body }));
    const offers: string[] = [];
    dialog.reinviteHandler = (offer) => {
      offers.push(offer);
      return buildSdpAnswer(offer, { address: '127.0.0.1', port: 40022, sessionVersion: 2 }).sdp;
    };
    const reinvite = new Promise<string>((resolve) => dialog.once('reinvite', resolve));
    const newSdp = await waitFor(reinvite, 5000, 're-INVITE');
    expect(parseSdp(newSdp)).toMatchObject({ port: uas.mediaPort + 2, direction: 'sendonly' });
    expect(parseSdp(dialog.remoteSdp).port).toBe(uas.mediaPort + 2);
    expect(infos).toEqual([{ contentType: 'application/dtmf-relay', body: expect.stringContaining('Signal=5') as unknown as string }]);
    expect(offers).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(parseSdp(dialog.localSdp).direction).toBe('recvonly');
    await dialog.bye();
    const r = await uas.done;
    expect(r.exitCode, r.errors || r.stderr).toBe(0);
    expect(r.messages).toMatch(/SIP\/2\.0 200 OK[\s\S]*a=recvonly/);
  });

  it('SipAgent.invite → sipp refusing 486 / 603 → SipCallFailure', async () => {
    for (const [status, reason] of [
      ['486', 'Busy Here'],
      ['603', 'Decline'],
    ] as const) {
      const uas = await startSipp({ scenario: 'uas-refuse', keys: { status, reason }, timeoutSec: 10 });
      const err = await agent.invite({ uri: uas.uri, from: { user: '+16315553602' }, sdp: buildSdpOffer({ address: '127.0.0.1', port: 40006 }) }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SipCallFailure);
      expect((err as SipCallFailure).status).toBe(Number(status));
      expect((err as SipCallFailure).reason).toBe(reason);
      expect((err as SipCallFailure).reasonHeader).toContain(`cause=${status}`);
      const r = await uas.done;
      expect(r.exitCode, r.errors).toBe(0);
    }
  });

  it('SipAgent.invite → ringing sipp → abort → CANCEL → 487; timeoutMs → 408; not connected → 503', async () => {
    const uas = await startSipp({ scenario: 'uas-ring-cancel', timeoutSec: 10 });
    const ac = new AbortController();
    const p = agent.invite({
      uri: uas.uri,
      from: { user: '+16315553602' },
      sdp: buildSdpOffer({ address: '127.0.0.1', port: 40008 }),
      signal: ac.signal,
      onProvisional: (st) => {
        if (st === 180) setTimeout(() => ac.abort(), 100);
      },
    });
    const err = await p.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(SipCallFailure);
    expect((err as SipCallFailure).status).toBe(487);
    const r = await uas.done;
    expect(r.exitCode, r.errors).toBe(0);
    expect(r.messages).toMatch(/CANCEL sip:/);

    const uas2 = await startSipp({ scenario: 'uas-ring-cancel', timeoutSec: 10 });
    const t0 = Date.now();
    const err2 = await agent
      .invite({ uri: uas2.uri, from: { user: '+16315553602' }, sdp: buildSdpOffer({ address: '127.0.0.1', port: 40010 }), timeoutMs: 700 })
      .then(() => undefined, (e: unknown) => e);
    expect((err2 as SipCallFailure).status).toBe(408);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await uas2.done).exitCode).toBe(0);

    // A target that swallows the INVITE (no provisional, so no CANCEL can go out yet): 408 at timeoutMs.
    const holePort = await freePort({ tcp: false });
    const hole = await bindUdp(holePort);
    try {
      const t1 = Date.now();
      const err4 = await agent
        .invite({ uri: `sip:hole@127.0.0.1:${holePort}`, from: { user: '+16315553602' }, sdp: buildSdpOffer({ address: '127.0.0.1', port: 40010 }), timeoutMs: 500 })
        .then(() => undefined, (e: unknown) => e);
      expect((err4 as SipCallFailure).status).toBe(408);
      expect(Date.now() - t1).toBeLessThan(2000);
    } finally {
      hole.close();
    }

    const offline = new SipAgent({ host: '127.0.0.1', port: await freePort({ udp: false }), secret: 'x', logger });
    const err3 = await offline.invite({ uri: 'sip:a@127.0.0.1', from: { user: '+1' }, sdp: '' }).then(() => undefined, (e: unknown) => e);
    expect((err3 as SipCallFailure).status).toBe(503);
  });

  it('sipp UAC CANCELs a ringing inbound INVITE → signal aborts, 200/487 to the caller', async () => {
    let seen: { cancelled: boolean; reason: unknown } | undefined;
    const aborted = new Promise<void>((resolve) => {
      agent.onInvite((inv) => {
        inv.ringing();
        inv.signal.addEventListener('abort', () => {
          seen = { cancelled: inv.cancelled, reason: inv.signal.reason };
          // Too late to answer or reject now.
          expect(inv.reject(480)).toBe(false);
          resolve();
        });
      });
    });
    const uac = await startSipp({ scenario: 'uac-cancel', remote: `127.0.0.1:${server.sipPort}`, durationMs: 200, timeoutSec: 10 });
    await waitFor(aborted, 5000, 'cancel');
    const r = await uac.done;
    expect(r.exitCode, r.errors || r.stderr).toBe(0);
    expect(r.successful).toBe(1);
    expect(seen?.cancelled).toBe(true);
    expect(seen?.reason).toBeInstanceOf(SipCallFailure);
  });

  it('two gateways (two drachtio-servers): SipAgent.invite → other SipAgent.onInvite → reject 486 with Reason / 500 / answer + BYE both ways', async () => {
    // drachtio refuses to send a request to itself ("can not send request to myself"), hence a second server.
    const server2 = await startDrachtio();
    const agent2 = new SipAgent({ ...server2.connectOptions, logger });
    agent2.start();
    try {
    await agent2.waitConnected();
    const target = `sip:loop@127.0.0.1:${server2.sipPort}`;
    const err0 = await agent.invite({ uri: `sip:self@127.0.0.1:${server.sipPort}`, from: { user: '+1' }, sdp: buildSdpOffer({ address: '127.0.0.1', port: 40012 }) }).then(() => undefined, (e: unknown) => e);
    expect((err0 as SipCallFailure).status).toBe(500);
    agent2.onInvite((inv) => {
      if (inv.header('X-Mode') === 'busy') {
        inv.reject(486, { reasonHeader: { protocol: 'Q.850', cause: 17, text: 'User busy' } });
        return;
      }
      throw new Error('handler blew up');
    });
    const err = await agent
      .invite({ uri: target, from: { user: '+16315553602' }, headers: { 'X-Mode': 'busy' }, sdp: buildSdpOffer({ address: '127.0.0.1', port: 40012 }) })
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(SipCallFailure);
    expect((err as SipCallFailure).status).toBe(486);
    expect((err as SipCallFailure).reasonHeader).toBe('Q.850;cause=17;text="User busy"');

    const err500 = await agent
      .invite({ uri: target, from: { user: '+16315553602' }, sdp: buildSdpOffer({ address: '127.0.0.1', port: 40012 }) })
      .then(() => undefined, (e: unknown) => e);
    expect((err500 as SipCallFailure).status).toBe(500);

    let inbound: SipDialog | undefined;
    const inboundInfo: { user?: string; display?: string; wa?: string; source?: string } = {};
    agent2.onInvite(async (inv) => {
      inboundInfo.user = inv.from.user;
      inboundInfo.display = inv.from.displayName;
      inboundInfo.wa = inv.header('x-wa-call-id');
      inboundInfo.source = inv.source.address;
      await inv.answer({ sdp: buildSdpAnswer(inv.sdp, { address: '127.0.0.1', port: 40014 }).sdp });
    });
    const { headers, from } = waContextToSip({ callId: 'wacid.LOOP', phoneNumberId: '1', waId: '16315553602', userName: 'Loop "Q" \\ Test' });
    const firstInbound = new Promise<SipDialog>((resolve) => agent2.once('dialog', resolve));
    const outbound = await agent.invite({ uri: target, from, headers, sdp: buildSdpOffer({ address: '127.0.0.1', port: 40016 }) });
    inbound = await waitFor(firstInbound, 5000, 'inbound dialog');
    expect(inboundInfo).toEqual({ user: '+16315553602', display: 'Loop "Q" \\ Test', wa: 'wacid.LOOP', source: '127.0.0.1' });
    expect(parseSdp(outbound.remoteSdp).port).toBe(40014);
    expect(inbound).toBeDefined();
    expect(parseSdp(inbound!.remoteSdp).port).toBe(40016);
    await outbound.bye({ reasonHeader: 'Q.850;cause=16;text="Normal call clearing"' });
    const end = await waitFor(inbound!.done, 5000, 'inbound end');
    expect(end).toEqual({ by: 'remote', reason: 'Normal call clearing', reasonHeader: 'Q.850;cause=16;text="Normal call clearing"' });

    // and the other way round: the answering side hangs up
    const nextInbound = new Promise<SipDialog>((resolve) => agent2.once('dialog', resolve));
    const outbound2 = await agent.invite({ uri: target, from, headers, sdp: buildSdpOffer({ address: '127.0.0.1', port: 40016 }) });
    const second = await waitFor(nextInbound, 5000, 'second inbound dialog');
    expect(second).not.toBe(inbound);
    expect(second.callId).toBe(outbound2.callId); // same SIP message, relayed by two drachtio-servers
    await second.bye();
    const end2 = await waitFor(outbound2.done, 5000, 'outbound end');
    expect(end2.by).toBe('remote');
    } finally {
      await agent2.stop();
      await server2.stop();
    }
  });
});

describe.skipIf(!d.ok)('SipAgent reconnect', () => {
  it('keeps retrying with backoff while drachtio is down, connects when it starts, reconnects after a restart', async () => {
    const adminPort = await freePort({ udp: false });
    const agent = new SipAgent({ host: '127.0.0.1', port: adminPort, secret: 'cymru', logger, backoff: { initialMs: 100, maxMs: 400 } });
    const delays: number[] = [];
    agent.on('reconnecting', (r) => delays.push(r.delayMs));
    let server: DrachtioServer | undefined;
    try {
      agent.start();
      await new Promise((r) => setTimeout(r, 1200));
      expect(agent.connected).toBe(false);
      expect(delays.slice(0, 4)).toEqual([100, 200, 400, 400]);
      const connected = new Promise<void>((resolve) => agent.once('connected', () => resolve()));
      server = await startDrachtio({ adminPort });
      await waitFor(connected, 5000, 'connected');
      expect(agent.connected).toBe(true);

      const disconnected = new Promise<string>((resolve) => agent.once('disconnected', (e) => resolve(e.reason)));
      await server.stop();
      await waitFor(disconnected, 5000, 'disconnected');
      expect(agent.connected).toBe(false);
      const again = new Promise<void>((resolve) => agent.once('connected', () => resolve()));
      server = await startDrachtio({ adminPort });
      await waitFor(again, 5000, 'reconnected');
      expect(agent.connected).toBe(true);
    } finally {
      await agent.stop();
      await server?.stop();
    }
    expect(agent.connected).toBe(false);
  });

  it('an INVITE in progress fails with 503 when drachtio goes away', async () => {
    const server = await startDrachtio();
    const agent = new SipAgent({ ...server.connectOptions, logger, backoff: { initialMs: 100, maxMs: 200 } });
    const uas = s.ok ? await startSipp({ scenario: 'uas-ring-cancel', timeoutSec: 10 }) : undefined;
    try {
      agent.start();
      await agent.waitConnected();
      const ringing = new Promise<void>((resolve) => {
        void agent
          .invite({
            uri: uas?.uri ?? 'sip:nobody@127.0.0.1:9',
            from: { user: '+16315553602' },
            sdp: buildSdpOffer({ address: '127.0.0.1', port: 40018 }),
            onProvisional: () => resolve(),
          })
          .then(
            () => (outcome = 'answered'),
            (e: unknown) => (outcome = e),
          );
        if (!uas) setTimeout(resolve, 300);
      });
      let outcome: unknown;
      await waitFor(ringing, 5000, 'ringing');
      await server.stop();
      await waitFor(
        (async () => {
          while (outcome === undefined) await new Promise((r) => setTimeout(r, 20));
        })(),
        5000,
        'invite to fail',
      );
      expect(outcome).toBeInstanceOf(SipCallFailure);
      expect((outcome as SipCallFailure).status).toBe(503);
      expect(agent.connected).toBe(false);
    } finally {
      await agent.stop();
      await server.stop();
      await uas?.stop();
    }
  });

  it('a wrong secret is retried, not fatal', async () => {
    const server = await startDrachtio({ secret: 'right' });
    const agent = new SipAgent({ host: '127.0.0.1', port: server.adminPort, secret: 'wrong', logger, backoff: { initialMs: 100, maxMs: 200 } });
    try {
      const retries: string[] = [];
      agent.on('reconnecting', (r) => retries.push(r.reason));
      agent.start();
      await new Promise((r) => setTimeout(r, 800));
      expect(agent.connected).toBe(false);
      expect(retries.length).toBeGreaterThan(0);
    } finally {
      await agent.stop();
      await server.stop();
    }
  });
});


function bindUdp(port: number): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    sock.once('error', reject);
    sock.bind(port, '127.0.0.1', () => resolve(sock));
  });
}

describe.skipIf(baresipSkip !== undefined)('SIP harness: baresip agent (auto-answer, 440 Hz tone, records what it hears)', () => {
  let server: DrachtioServer;
  let agent: SipAgent;
  let bs: BaresipAgent;

  beforeAll(async () => {
    server = await startDrachtio();
    agent = new SipAgent({ ...server.connectOptions, logger });
    agent.start();
    await agent.waitConnected(10_000);
    bs = await startBaresip({ toneHz: 440 });
  });

  afterAll(async () => {
    await bs?.stop();
    await agent?.stop();
    await server?.stop();
  });

  it('SipAgent.invite → baresip answers, sends its 440 Hz tone as PCMU, records our 1 kHz tone, DTMF, hangs up on demand', async () => {
    const rtpPort = await freePort({ tcp: false, even: true, span: 2 });
    const sock = await bindUdp(rtpPort);
    const received: Buffer[] = [];
    const dtmfPayloads: Buffer[] = [];
    sock.on('message', (m) => {
      if (m.length < 12) return;
      const pt = m[1]! & 0x7f;
      if (pt === 0) received.push(m.subarray(12));
      else if (pt === 101) dtmfPayloads.push(m.subarray(12));
    });
    let sender: NodeJS.Timeout | undefined;
    try {
      const dialog = await agent.invite({
        uri: bs.uri,
        from: { user: '+16315553602', displayName: 'WA Test' },
        headers: { 'X-WA-Call-Id': 'wacid.BARESIP' },
        sdp: buildSdpOffer({ address: '127.0.0.1', port: rtpPort, codecs: ['PCMU'] }),
        timeoutMs: 5000,
      });
      const remote = parseSdp(dialog.remoteSdp);
      expect(remote).toMatchObject({ address: '127.0.0.1', codec: 'PCMU', payloadType: 0, dtmfPayloadType: 101 });

      // Send 1 kHz PCMU to baresip for ~1.2 s (20 ms packets).
      const tone = generateTone({ freqHz: 1000, sampleRate: 8000, durationMs: 1400, levelDbfs: -10 });
      let seq = 0;
      sender = setInterval(() => {
        const off = seq * 160;
        if (off + 160 > tone.length) return;
        const pkt = Buffer.alloc(12 + 160);
        pkt[0] = 0x80;
        pkt[1] = 0;
        pkt.writeUInt16BE(seq & 0xffff, 2);
        pkt.writeUInt32BE(seq * 160, 4);
        pkt.writeUInt32BE(0x5eed, 8);
        encodeG711('PCMU', tone.subarray(off, off + 160), pkt, 12);
        seq++;
        sock.send(pkt, remote.port, remote.address);
      }, 20);
      await new Promise((r) => setTimeout(r, 1200));
      await bs.sendDtmf('5');
      await new Promise((r) => setTimeout(r, 400));
      clearInterval(sender);

      expect(received.length).toBeGreaterThan(30);
      const pcm = new Int16Array(received.length * 160);
      let n = 0;
      for (const p of received) n += decodeG711('PCMU', p, 0, p.length, pcm.subarray(n));
      const det = detectTone(pcm.subarray(1600, n), 8000, 440);
      expect(det.detected, JSON.stringify(det)).toBe(true);
      // RFC 4733 event 5 from baresip's sndcode.
      expect(dtmfPayloads.length).toBeGreaterThan(0);
      expect(dtmfPayloads[0]![0]).toBe(5);

      const closed = bs.waitEvent('CALL_CLOSED', 5000);
      const r = await bs.hangup();
      expect(r.ok).toBe(true);
      const end = await waitFor(dialog.done, 5000, 'baresip BYE');
      expect(end.by).toBe('remote');
      await closed;
      const rec = bs.recordings();
      expect(rec.decoded).toBeDefined();
      const wav = readWav(rec.decoded!);
      expect(wav.sampleRate).toBe(8000);
      const heard = toMono(wav);
      expect(heard.length).toBeGreaterThan(8000 * 0.8);
      const det2 = detectTone(heard.subarray(800, heard.length - 800), wav.sampleRate, 1000);
      expect(det2.detected, JSON.stringify(det2)).toBe(true);
    } finally {
      clearInterval(sender);
      sock.close();
    }
  });

  it('baresip dials the gateway (inbound INVITE via drachtio) and our bye() ends its call', async () => {
    const got = new Promise<SipDialog>((resolve, reject) => {
      agent.onInvite(async (inv) => {
        try {
          const answer = buildSdpAnswer(inv.sdp, { address: '127.0.0.1', port: 40020 });
          resolve(await inv.answer({ sdp: answer.sdp }));
        } catch (err) {
          reject(err);
        }
      });
    });
    const established = bs.waitEvent('CALL_ESTABLISHED', 5000);
    const r = await bs.dial(`sip:gateway@127.0.0.1:${server.sipPort}`);
    expect(r.ok).toBe(true);
    const dialog = await waitFor(got, 5000, 'inbound INVITE');
    expect(dialog.direction).toBe('inbound');
    expect(parseSdp(dialog.remoteSdp).codec).toBe('PCMU');
    await established;
    const closed = bs.waitEvent('CALL_CLOSED', 5000);
    await dialog.bye({ reasonHeader: 'Q.850;cause=16' });
    await closed;
  });
});
