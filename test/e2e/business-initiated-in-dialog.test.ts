/**
 * In-dialog SIP from the PBX on business-initiated calls, with real peers: a sipp PBX dials the WhatsApp user (a
 * libwebrtc user who answers and plays 1 kHz; sipp echoes RTP), then holds and resumes with re-INVITEs (a=inactive,
 * and the RFC 2543 form c=0.0.0.0 with no direction attribute), refreshes the session with an offerless re-INVITE
 * (our offer in the 200 OK, its answer in the ACK), or holds with an UPDATE (RFC 3311). A click-to-call agent holds
 * and resumes too, and a PBX's REFER moves the call to another agent. The SIP media timeout is 2 s and every hold lasts longer: a held call must outlive it, the user
 * hears hold music meanwhile, and nothing is sent to a PBX that answered or asked for no media from us.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { detectTone } from '../audio/goertzel.js';
import { generateTone } from '../audio/tone.js';
import { writeWav } from '../audio/wav.js';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { sippAvailable, startSipp, type SippRun, type SippScenario } from '../peers/sip/sipp.js';
import { WaUser } from '../peers/meta/index.js';
import type { Call } from '../../src/calls/call.js';
import { records, startE2E, waitFor, waitNoLiveCalls, type E2E } from './harness.js';

const drachtio = drachtioAvailable();
const sipp = sippAvailable();
const skipReason = firstMissing(drachtio, sipp);
const TESTS = 6;
if (skipReason) noteSkipped(skipReason, TESTS, 'business-initiated in-dialog SIP');

const MEDIA_TIMEOUT_MS = 2000;
const HOLD_HZ = 600;
const ADMIN_KEY = 'e2e-admin-key';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let userSeq = 0;
const newUser = (): string => `4477009${String(300 + userSeq++).padStart(5, '0')}`;

/** The message in sipp's -trace_msg log that contains every one of `parts` (e.g. the 200 OK to CSeq 2). */
function messageWith(log: string, ...parts: string[]): string | undefined {
  return log.split(/^-{20,}.*$/m).find((m) => parts.every((p) => m.includes(p)));
}

/** What the user heard during the last `ms`, checked for each frequency. */
function lastHeard(user: WaUser, ms: number, ...freqs: number[]) {
  const rec = user.recording();
  const n = Math.round((ms / 1000) * rec.sampleRate);
  const tail = rec.samples.subarray(Math.max(0, rec.samples.length - n));
  return Object.fromEntries(freqs.map((f) => [f, detectTone(tail, rec.sampleRate, f)]));
}

describe.skipIf(skipReason !== undefined)('business-initiated calls: hold, offerless re-INVITE and UPDATE from the PBX', () => {
  let e2e: E2E;
  let run: SippRun | undefined;
  let user: WaUser | undefined;

  beforeAll(async () => {
    const musicFile = join(mkdtempSync(join(tmpdir(), 'wagw-bi-hold-')), 'hold.wav');
    writeWav(musicFile, { sampleRate: 8000, samples: generateTone({ freqHz: HOLD_HZ, sampleRate: 8000, durationMs: 2000, levelDbfs: -12 }) });
    e2e = await startE2E({
      sipTarget: 'sip:unused@127.0.0.1:5999',
      displayNumber: '447700900555',
      adminKeys: { [ADMIN_KEY]: 'crm:supervisor' },
      config: {
        businessCalls: { allowedSources: ['127.0.0.1'] },
        hold: { musicFile },
        // Apart from other suites' gateways and below the ephemeral range where peers pick their ports.
        media: { mediaTimeoutMs: MEDIA_TIMEOUT_MS, rtpPortMin: 24000, rtpPortMax: 24099, webrtcPortMin: 24200, webrtcPortMax: 24399 },
      },
    });
  }, 60_000);
  afterEach(async () => {
    await run?.stop();
    run = undefined;
    await user?.close();
    user = undefined;
    await waitNoLiveCalls(e2e.gateway);
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  const holds = async (event: string) => (await e2e.gateway.metrics.holds.get()).values.find((v) => v.labels.event === event)?.value ?? 0;
  /** Waits until the holds counter for `event` passed `above`. */
  const untilHolds = async (event: string, above: number, what: string, timeoutMs = 10_000) => {
    const until = Date.now() + timeoutMs;
    while ((await holds(event)) <= above) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  };
  const sipPacketsOut = (call: Call) => call.currentQuality()?.sip?.packetsOut ?? 0;

  /** sipp (the PBX) dials a fresh user, who answers and plays 1 kHz once media is up. */
  const placeCall = async (scenario: string, keys: Record<string, string>, durationMs: number): Promise<{ sip: SippRun; call: Call; waId: string }> => {
    const waId = newUser();
    user = new WaUser({ waId, name: 'Hal Held' });
    e2e.meta.addUser(user, { permission: 'temporary' });
    const sip = (run = await startSipp({
      scenario: scenario as SippScenario, service: `+${waId}`, remote: `127.0.0.1:${e2e.drachtio.sipPort}`,
      keys, durationMs, rtpEcho: true, timeoutSec: 30,
    }));
    const placed = await e2e.meta.waitForConnect(waId);
    await e2e.meta.userAnswers(placed.id);
    const call = await waitFor(() => e2e.gateway.registry.list().find((c) => c.waCallId === placed.id && c.state === 'answered'), 'call answered');
    await user.waitForMedia();
    user.play({ toneHz: 1000, levelDbfs: -12 });
    return { sip, call, waId };
  };

  /** The call ended by the PBX's BYE, not by the media timeout; sipp saw every message it expected. */
  const endedByPbx = async (sip: SippRun, waId: string) => {
    const result = await sip.done;
    expect(result.failed, result.errors).toBe(0);
    expect(result.successful).toBe(1);
    await waitNoLiveCalls(e2e.gateway);
    const record = (await records(e2e.gateway)).find((r) => r.userWaId === waId);
    expect(record).toMatchObject({ direction: 'business_initiated', outcome: 'answered', endedBy: 'sip', cause: 'agent_hangup' });
    return result.messages;
  };

  /** Hold of `holdForMs` from the PBX's request: music to the user, no RTP to the PBX, the call outlives the media timeout. */
  const checkHeld = async (call: Call) => {
    await sleep(800);
    const heard = lastHeard(user!, 600, 1000, HOLD_HZ);
    expect(heard[HOLD_HZ]!.detected).toBe(true);
    expect(heard[1000]!.detected).toBe(false);
    const out = sipPacketsOut(call);
    await sleep(MEDIA_TIMEOUT_MS + 300);
    expect(sipPacketsOut(call)).toBe(out);
    expect(call.isEnded).toBe(false);
  };

  it('re-INVITE a=inactive holds (answered a=inactive, music, no RTP, past the media timeout); a=sendrecv resumes the echo', async () => {
    const [h0, r0] = [await holds('hold'), await holds('resume')];
    const { sip, call, waId } = await placeCall('uac-invite-hold-resume', { holdafter: '1500', holdfor: '3800', holdaddr: '127.0.0.1', holddir: 'a=inactive' }, 2500);
    await sleep(1000);
    expect(lastHeard(user!, 600, 1000)[1000]!.detected).toBe(true);
    await untilHolds('hold', h0, 'hold applied');
    await checkHeld(call);
    await untilHolds('resume', r0, 'resume applied', 5000);
    await sleep(1200);
    expect(lastHeard(user!, 600, 1000, HOLD_HZ)).toMatchObject({ 1000: { detected: true }, [HOLD_HZ]: { detected: false } });
    const messages = await endedByPbx(sip, waId);
    const held = messageWith(messages, 'SIP/2.0 200', 'CSeq: 2 INVITE');
    expect(held).toMatch(/a=inactive/);
    expect(held).not.toMatch(/a=sendrecv/);
    expect(messageWith(messages, 'SIP/2.0 200', 'CSeq: 3 INVITE')).toMatch(/a=sendrecv/);
  }, 40_000);

  it('c=0.0.0.0 with no direction attribute is hold (RFC 3264 §8.4): answered a=recvonly, music, the call outlives the media timeout', async () => {
    const h0 = await holds('hold');
    const { sip, call, waId } = await placeCall('uac-invite-hold-resume', { holdafter: '1500', holdfor: '3800', holdaddr: '0.0.0.0', holddir: 'a=maxptime:20' }, 1500);
    await untilHolds('hold', h0, 'hold applied', 8000);
    await checkHeld(call);
    const messages = await endedByPbx(sip, waId);
    const held = messageWith(messages, 'SIP/2.0 200', 'CSeq: 2 INVITE');
    expect(held).toMatch(/a=recvonly/);
    expect(held).not.toMatch(/a=sendrecv/);
  }, 40_000);

  it('an offerless re-INVITE gets 200 with our offer; the answer in the ACK (a=sendonly) puts the call on hold', async () => {
    const h0 = await holds('hold');
    const { sip, call, waId } = await placeCall('uac-invite-offerless', { holdafter: '1500', ackdir: 'a=sendonly' }, 3800);
    await untilHolds('hold', h0, 'hold from the ACK applied', 8000);
    await checkHeld(call);
    const messages = await endedByPbx(sip, waId);
    const offer = messageWith(messages, 'SIP/2.0 200', 'CSeq: 2 INVITE');
    expect(offer).toMatch(/m=audio \d+ RTP\/AVP 0 8 101/);
    expect(offer).toMatch(/a=sendrecv/);
  }, 40_000);

  it('an UPDATE with SDP (a=sendonly) is answered like a re-INVITE: a=recvonly, hold', async () => {
    const h0 = await holds('hold');
    const { sip, call, waId } = await placeCall('uac-invite-update', { holdafter: '1500', updatedir: 'a=sendonly' }, 3800);
    await untilHolds('hold', h0, 'hold from the UPDATE applied', 8000);
    await checkHeld(call);
    const messages = await endedByPbx(sip, waId);
    const answer = messageWith(messages, 'SIP/2.0 200', 'CSeq: 2 UPDATE');
    expect(answer).toMatch(/m=audio \d+ RTP\/AVP 0 101/);
    expect(answer).toMatch(/a=recvonly/);
    expect(answer).not.toMatch(/a=sendrecv/);
  }, 40_000);

  it('a REFER from the PBX is taken (was 603): the target is called from the WhatsApp user, NOTIFY 100/180/200, BYE to the PBX', async () => {
    const transfers = async () => (await e2e.gateway.metrics.transfers.get()).values.find((v) => v.labels.result === 'completed')?.value ?? 0;
    const before = await transfers();
    const target = await startSipp({ scenario: 'uas-answer', service: 'agent2', rtpEcho: true, timeoutSec: 30 });
    try {
      const { sip, call, waId } = await placeCall('uac-invite-refer', { referafter: '1500', referto: target.uri }, 1000);
      const pbx = await sip.done;
      expect(pbx.failed, pbx.errors).toBe(0);
      expect(pbx.messages).toMatch(/SIP\/2.0 202/);
      expect(pbx.messages).toContain('SIP/2.0 100 Trying');
      expect(pbx.messages).toContain('SIP/2.0 200 OK\r\n');
      expect(pbx.messages).toMatch(/BYE sip:/);
      expect(await transfers()).toBe(before + 1);
      await sleep(1200);
      expect(call.isEnded).toBe(false);
      expect(call.sipAgent).toContain(`:${target.port}`);
      // The target echoes: the user hears its own tone again, through the new agent.
      expect(lastHeard(user!, 600, 1000)[1000]!.detected).toBe(true);
      const seen = target.messages();
      expect(seen).toMatch(new RegExp(`From: [^\r\n]*${waId}`));
      expect(seen).toMatch(/X-WA-Call-Id: /i);
      expect(seen).toMatch(/Referred-By: <sip:\+15550001111@/);
      await e2e.meta.userHangsUp(call.waCallId!);
      await waitNoLiveCalls(e2e.gateway);
      const t = await target.done;
      expect(t.failed, t.errors).toBe(0);
      expect(t.messages).toMatch(/BYE sip:/);
      expect((await records(e2e.gateway)).find((r) => r.userWaId === waId)).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp' });
    } finally {
      await target.stop();
    }
  }, 40_000);

  it('click-to-call: the agent\'s re-INVITE a=sendonly holds (answered a=recvonly, music) and a=sendrecv resumes', async () => {
    const [h0, r0] = [await holds('hold'), await holds('resume')];
    const waId = newUser();
    user = new WaUser({ waId, name: 'Cy Click' });
    e2e.meta.addUser(user, { permission: 'permanent' });
    const agent = (run = await startSipp({
      scenario: 'uas-answer-hold-resume' as SippScenario, service: 'agent', rtpEcho: true, timeoutSec: 30,
      keys: { holdafter: '2000', holdfor: '3800' },
    }));
    const res = await fetch(`http://127.0.0.1:${e2e.gateway.http.port}/v1/calls`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: `+${waId}`, agent: agent.uri }),
    });
    expect(res.status).toBe(202);
    const { callId } = await res.json() as { callId: string };
    const placed = await e2e.meta.waitForConnect(waId);
    await e2e.meta.userAnswers(placed.id);
    const call = await waitFor(() => { const c = e2e.gateway.registry.get(callId); return c?.state === 'answered' ? c : undefined; }, 'agent answered');
    await user.waitForMedia();
    user.play({ toneHz: 1000, levelDbfs: -12 });
    await untilHolds('hold', h0, 'hold applied', 8000);
    await checkHeld(call);
    await untilHolds('resume', r0, 'resume applied', 5000);
    await sleep(1200);
    expect(lastHeard(user, 600, 1000, HOLD_HZ)).toMatchObject({ 1000: { detected: true }, [HOLD_HZ]: { detected: false } });
    await e2e.meta.userHangsUp(placed.id);
    await waitNoLiveCalls(e2e.gateway);
    const result = await agent.done;
    expect(result.failed, result.errors).toBe(0);
    expect(messageWith(result.messages, 'SIP/2.0 200', 'CSeq: 2 INVITE')).toMatch(/a=recvonly/);
    expect((await records(e2e.gateway)).find((r) => r.id === callId)).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp' });
  }, 40_000);
});
