/**
 * UPDATE (RFC 3311) in an early dialog, both call directions, with real SIP (sipp through drachtio-server): while a
 * phone rings the PBX sends an UPDATE without SDP (Asterisk's connected-line update, a session refresh), answered 200
 * with no SDP, and one with an SDP offer, refused (491 while our INVITE's offer waits for its answer, else 488). The
 * call then answers, carries audio (sipp echoes RTP: the user hears their own tone) and ends normally with a record.
 * Before, drachtio-srf answered these itself: 500 to an INVITE we received (the PBX then gave up the call), and
 * 200 with our INVITE's SDP, whatever the UPDATE carried, to one we sent. Our 180 carried no Contact, so a PBX had
 * nowhere to send an UPDATE to, and no message of ours said we allow UPDATE.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { detectTone } from '../audio/goertzel.js';
import { drachtioAvailable, firstMissing, noteSkipped } from '../peers/drachtio.js';
import { freePort } from '../peers/sip/ports.js';
import { sippAvailable, startSipp, type SippRun } from '../peers/sip/sipp.js';
import { WaUser } from '../peers/meta/index.js';
import { records, startE2E, waitFor, waitNoLiveCalls, type E2E } from './harness.js';

const drachtio = drachtioAvailable();
const sipp = sippAvailable();
const skipReason = firstMissing(drachtio, sipp);
const TESTS = 2;
if (skipReason) noteSkipped(skipReason, TESTS, 'early-dialog UPDATE');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The message in sipp's -trace_msg log that contains every one of `parts`. */
function messageWith(log: string, ...parts: string[]): string | undefined {
  return log.split(/^-{20,}.*$/m).find((m) => parts.every((p) => m.includes(p)));
}

/** The user plays 1 kHz and, sipp echoing, hears it back. */
async function carriesAudio(user: WaUser): Promise<void> {
  await user.waitForMedia();
  user.play({ toneHz: 1000, levelDbfs: -12 });
  await sleep(1500);
  const rec = user.recording();
  const tail = rec.samples.subarray(Math.max(0, rec.samples.length - Math.round(0.6 * rec.sampleRate)));
  expect(detectTone(tail, rec.sampleRate, 1000).detected).toBe(true);
}

describe.skipIf(skipReason !== undefined)('UPDATE in an early dialog', () => {
  let e2e: E2E;
  let agentPort: number;
  let run: SippRun | undefined;
  let user: WaUser | undefined;

  beforeAll(async () => {
    agentPort = await freePort({ tcp: false });
    e2e = await startE2E({
      sipTarget: `sip:agent@127.0.0.1:${agentPort}`,
      displayNumber: '447700900555',
      config: {
        businessCalls: { allowedSources: ['127.0.0.1'] },
        // Apart from other suites' gateways and below the ephemeral range where peers pick their ports.
        media: { rtpPortMin: 26200, rtpPortMax: 26299, webrtcPortMin: 26400, webrtcPortMax: 26599 },
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

  it('user-initiated: the ringing agent\'s UPDATE without SDP gets 200 with no SDP, one with SDP 491; the call then answers, carries audio and ends', async () => {
    run = await startSipp({ scenario: 'uas-ring-update', port: agentPort, service: 'agent', rtpEcho: true, timeoutSec: 30, keys: { updateafter: '300', sdpstatus: '491' } });
    user = new WaUser({ waId: '16315553602', name: 'Jane Doe' });
    const { callId } = await e2e.meta.userCalls(user);
    await e2e.meta.waitForAction(callId, 'accept');
    await carriesAudio(user);
    await e2e.meta.userHangsUp(callId);
    await waitNoLiveCalls(e2e.gateway);

    const result = await run.done;
    expect(result.failed, result.errors).toBe(0);
    expect(result.successful).toBe(1);
    expect(messageWith(result.messages, 'INVITE sip:agent@')).toMatch(/^Allow: .*\bUPDATE\b/m);
    const refreshed = messageWith(result.messages, 'SIP/2.0 200', 'CSeq: 1 UPDATE');
    expect(refreshed).toMatch(/^Content-Length: 0/m);
    expect(refreshed).not.toContain('v=0');
    expect(messageWith(result.messages, 'SIP/2.0 491', 'CSeq: 2 UPDATE')).toBeDefined();
    expect((await records(e2e.gateway)).find((r) => r.waCallId === callId)).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp' });
  }, 40_000);

  it('business-initiated: the PBX\'s UPDATE without SDP while the user rings gets 200, one with SDP 488; the call rings on, answers, carries audio and ends by the PBX\'s BYE', async () => {
    const waId = '447700900311';
    user = new WaUser({ waId, name: 'Una Update' });
    e2e.meta.addUser(user, { permission: 'temporary' });
    run = await startSipp({
      scenario: 'uac-invite-early-update', service: `+${waId}`, remote: `127.0.0.1:${e2e.drachtio.sipPort}`,
      rtpEcho: true, durationMs: 2500, timeoutSec: 30, keys: { sdpstatus: '488' },
    });
    const sip = run;
    const placed = await e2e.meta.waitForConnect(waId);
    await waitFor(() => messageWith(sip.messages(), 'SIP/2.0 488', 'CSeq: 3 UPDATE'), 'the answer to the UPDATE with SDP');
    const call = e2e.gateway.registry.list().find((c) => c.waCallId === placed.id);
    expect(call?.state).toBe('ringing');

    await e2e.meta.userAnswers(placed.id);
    await carriesAudio(user);
    const result = await sip.done;
    expect(result.failed, result.errors).toBe(0);
    expect(result.successful).toBe(1);
    const ringing = messageWith(result.messages, 'SIP/2.0 180', 'CSeq: 1 INVITE');
    expect(ringing).toMatch(/^Contact: <sip:127\.0\.0\.1:\d+>/m);
    expect(ringing).toMatch(/^Allow: .*\bUPDATE\b/m);
    expect(messageWith(result.messages, 'SIP/2.0 200', 'CSeq: 2 UPDATE')).toMatch(/^Content-Length: 0/m);
    await waitNoLiveCalls(e2e.gateway);
    expect((await records(e2e.gateway)).find((r) => r.userWaId === waId)).toMatchObject({ direction: 'business_initiated', outcome: 'answered', endedBy: 'sip', cause: 'agent_hangup' });
  }, 40_000);
});
