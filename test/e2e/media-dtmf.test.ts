/**
 * DTMF end to end with real peers. The WhatsApp user is an RTP-level peer (werift ICE + DTLS-SRTP, see
 * test/peers/meta/rtp-user.ts) because libwebrtc neither sends nor surfaces telephone-events:
 *  - baresip sends "0123456789*#" (RFC 4733) → the user receives them as RFC 4733 events on PT 126, in order, each
 *    with a marker on its first packet, one timestamp for all its packets, growing durations and a repeated end;
 *  - the user sends "0123456789*#" (RFC 4733 in the Opus stream) → baresip reports them, in order;
 *  - a PBX that negotiated no telephone-event (sipp) gets the user's digits as SIP INFO application/dtmf-relay;
 *  - digits such a PBX sends as SIP INFO reach the user as RFC 4733 events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drachtioAvailable, noteSkipped } from '../peers/drachtio.js';
import { RtpLevelUser } from '../peers/meta/rtp-user.js';
import { baresipAvailable, startBaresip, type BaresipAgent } from '../peers/sip/baresip.js';
import { sippAvailable, startSipp, type SippRun, type SippScenario } from '../peers/sip/sipp.js';
import { startE2E, waitFor, waitNoLiveCalls, type E2E } from './harness.js';

const DIGITS = '0123456789*#';
const drachtio = drachtioAvailable();
const baresip = baresipAvailable();
const sipp = sippAvailable();
const baresipSkip = !drachtio.ok ? drachtio.reason : !baresip.ok ? baresip.reason : undefined;
const sippSkip = !drachtio.ok ? drachtio.reason : !sipp.ok ? sipp.reason : undefined;
if (baresipSkip) noteSkipped(baresipSkip, 1, 'DTMF both ways (baresip)');
if (sippSkip) noteSkipped(sippSkip, 3, 'DTMF as SIP INFO (sipp)');

/** A user-initiated call from the RTP-level user, answered by the agent; resolves once media flows to the user. */
async function connectUser(e2e: E2E, waId: string): Promise<{ user: RtpLevelUser; callId: string }> {
  const { meta } = e2e;
  const user = await RtpLevelUser.create();
  const { callId } = await meta.userCalls({ waId, name: 'Keypad User' }, { offerSdp: user.offerSdp });
  await meta.waitForAction(callId, 'pre_accept');
  const c = meta.graph.calls.get(callId);
  await user.applyAnswer(c?.preAcceptSdp ?? c?.acceptSdp ?? '');
  expect((await meta.waitForAction(callId, 'accept', 20_000)).status).toBe(200);
  await waitFor(() => (user.audioPackets > 10 ? true : undefined), 'Opus from the gateway at the user', 10_000);
  return { user, callId };
}

/**
 * A sipp PBX answering with `scenario` and a gateway ringing it, started once for the describe block that calls this;
 * its tests get both from the returned function.
 */
function sippAgentSuite(scenario: SippScenario, durationMs: number, timeoutSec: number): () => { agent: SippRun; e2e: E2E } {
  let agent: SippRun;
  let e2e: E2E;
  beforeAll(async () => {
    agent = await startSipp({ scenario, service: 'agent', rtpEcho: true, durationMs, timeoutSec });
    e2e = await startE2E({ sipTarget: agent.uri });
  }, 60_000);
  afterAll(async () => {
    await e2e?.stop();
    await agent?.stop();
  });
  return () => ({ agent, e2e });
}

/** The user hangs up: no call is left, and the PBX's scenario ran to its end without a failure. */
async function hangUpCleanly(e2e: E2E, agent: SippRun, callId: string): Promise<void> {
  await e2e.meta.userHangsUp(callId);
  await waitNoLiveCalls(e2e.gateway);
  const result = await agent.done;
  expect(result.failed).toBe(0);
  expect(result.successful).toBe(1);
}

describe.skipIf(baresipSkip !== undefined)('DTMF both ways between baresip and the WhatsApp user (RFC 4733)', () => {
  let agent: BaresipAgent;
  let e2e: E2E;

  beforeAll(async () => {
    agent = await startBaresip({ toneHz: 440 });
    e2e = await startE2E({ sipTarget: agent.uri });
  }, 60_000);
  afterAll(async () => {
    await e2e?.stop();
    await agent?.stop();
  });

  it(`"${DIGITS}" from the agent arrive as RFC 4733 events in order; the user's "${DIGITS}" reach the agent in order`, async () => {
    const established = agent.waitEvent('CALL_ESTABLISHED', 15_000);
    const { user, callId } = await connectUser(e2e, '16315553692');
    try {
      await established;

      // SIP → WhatsApp.
      await agent.sendDtmf(DIGITS);
      await waitFor(() => (user.receivedDigits().length >= DIGITS.length ? true : undefined), 'all digits at the user', 20_000);
      await new Promise((r) => setTimeout(r, 300)); // the last digit's end repeats follow 20 and 40 ms later
      expect(user.receivedDigits()).toBe(DIGITS);
      const byTs = new Map<number, typeof user.events>();
      for (const e of user.events) byTs.set(e.timestamp, [...(byTs.get(e.timestamp) ?? []), e]);
      expect(byTs.size).toBe(DIGITS.length);
      for (const [, packets] of byTs) {
        expect(packets[0]!.marker).toBe(true);
        expect(packets.slice(1).every((p) => !p.marker)).toBe(true);
        expect(new Set(packets.map((p) => p.digit)).size).toBe(1);
        const ends = packets.filter((p) => p.end);
        expect(ends.length).toBe(3); // end-packet redundancy (RFC 4733 §2.5.1.4)
        expect(new Set(ends.map((p) => p.duration)).size).toBe(1);
        const durations = packets.filter((p) => !p.end).map((p) => p.duration);
        for (let i = 1; i < durations.length; i++) expect(durations[i]!).toBeGreaterThan(durations[i - 1]!);
        expect(ends[0]!.duration).toBeGreaterThanOrEqual(durations[durations.length - 1] ?? 0);
        expect(ends[0]!.duration).toBeGreaterThanOrEqual(8 * 40); // ≥ 40 ms on the 8 kHz event clock
      }
      const stamps = [...byTs.keys()];
      for (let i = 1; i < stamps.length; i++) expect(((stamps[i]! - stamps[i - 1]!) >>> 0)).toBeLessThan(0x80000000);

      // WhatsApp → SIP.
      const before = agent.seenEvents().length;
      user.sendDigits(DIGITS, 120);
      const heard = (): string => agent.seenEvents().slice(before).filter((e) => e.type === 'CALL_DTMF_START').map((e) => String(e.param ?? '')).join('');
      await waitFor(() => (heard().length >= DIGITS.length ? true : undefined), 'all digits at baresip', 20_000);
      expect(heard()).toBe(DIGITS);

      const closed = agent.waitEvent('CALL_CLOSED', 10_000);
      await e2e.meta.userHangsUp(callId);
      await closed;
      await waitNoLiveCalls(e2e.gateway);
    } finally {
      await user.close();
    }
  }, 90_000);
});

describe.skipIf(sippSkip !== undefined)('DTMF toward a PBX without telephone-event: SIP INFO (sipp)', () => {
  const pbx = sippAgentSuite('uas-answer-info-dtmf', 60_000, 80);

  it(`the user's "${DIGITS}" reach the PBX as SIP INFO application/dtmf-relay, in order, and the call goes on`, async () => {
    const { agent, e2e } = pbx();
    const { user, callId } = await connectUser(e2e, '16315553693');
    try {
      user.sendDigits(DIGITS, 100);
      const infos = (): Array<{ signal: string; duration: number }> =>
        [...agent.messages().matchAll(/INFO sip:[^\n]*\n[\s\S]*?Content-Type: application\/dtmf-relay[\s\S]*?Signal=([0-9*#A-D])\s*\r?\nDuration=(\d+)/g)]
          .map((m) => ({ signal: m[1]!, duration: Number(m[2]) }));
      await waitFor(() => (infos().length >= DIGITS.length ? true : undefined), 'all INFOs at sipp', 20_000);
      expect(infos().map((i) => i.signal).join('')).toBe(DIGITS);
      expect(infos().every((i) => i.duration >= 40 && i.duration <= 2000)).toBe(true);
      // No telephone-event toward a PBX that did not negotiate it: the echo carries only G.711 back.
      await hangUpCleanly(e2e, agent, callId);
    } finally {
      await user.close();
    }
  }, 90_000);
});

describe.skipIf(sippSkip !== undefined)('an UPDATE from the PBX while our DTMF INFO is pending (sipp)', () => {
  const pbx = sippAgentSuite('uas-answer-info-update', 60_000, 80);

  // drachtio-srf hands an incoming UPDATE to whichever request of ours is pending with the same Call-ID; the
  // PBX holds its answer to our INFO until its own session-refresh UPDATE is answered.
  it('answers the UPDATE 200 while the INFO waits, then the digits go on and the call stays up', async () => {
    const { agent, e2e } = pbx();
    const { user, callId } = await connectUser(e2e, '16315553695');
    try {
      user.sendDigits('12', 100);
      // One digit per CSeq: the INFO held by the PBX is retransmitted meanwhile.
      const signals = (): string => {
        const byCseq = new Map<string, string>();
        for (const msg of agent.messages().split(/^-{20,}/m)) {
          const m = /^INFO sip:[\s\S]*?CSeq: (\d+) INFO[\s\S]*?Signal=([0-9*#A-D])/m.exec(msg);
          if (m) byCseq.set(m[1]!, m[2]!);
        }
        return [...byCseq.values()].join('');
      };
      await waitFor(() => (signals().length >= 2 ? true : undefined), 'both INFOs at sipp', 20_000);
      expect(signals()).toBe('12');
      expect(agent.messages()).toMatch(/SIP\/2\.0 200 OK\r?\n[\s\S]*?CSeq: 1 UPDATE/);
      expect(e2e.gateway.registry.size).toBe(1);
      await hangUpCleanly(e2e, agent, callId);
    } finally {
      await user.close();
    }
  }, 90_000);
});

describe.skipIf(sippSkip !== undefined)('DTMF from a PBX that sends SIP INFO (sipp)', () => {
  const pbx = sippAgentSuite('uas-answer-send-info-dtmf' as SippScenario, 1500, 40);

  it('INFO application/dtmf-relay digits "12#" from the PBX reach the user as RFC 4733 events, in order', async () => {
    const { agent, e2e } = pbx();
    const { user, callId } = await connectUser(e2e, '16315553694');
    try {
      await waitFor(() => (user.receivedDigits().length >= 3 ? true : undefined), 'three digits at the user', 20_000);
      expect(user.receivedDigits()).toBe('12#');
      await e2e.meta.userHangsUp(callId);
      await waitNoLiveCalls(e2e.gateway);
      expect((await agent.done).successful).toBe(1);
    } finally {
      await user.close();
    }
  }, 60_000);
});

