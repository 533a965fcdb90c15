/**
 * A PBX trunk that wants digest authentication for calls from the gateway (401 challenge, RFC 3261 §22): the gateway
 * answers it with the credentials configured for the target's host (WAGW_SIP_OUTBOUND_CREDENTIALS), and sipp checks
 * the digest against its own copy of the password.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { sippAvailable, startSipp, type SippRun, type SippScenario } from '../peers/sip/sipp.js';
import { freePort } from '../peers/sip/ports.js';
import { recordOf, startE2E, waitNoLiveCalls, type E2E } from './harness.js';

const drachtio = drachtioAvailable();
const sipp = sippAvailable();
const skipReason = firstMissing(drachtio, sipp);
const TESTS = 2;
if (skipReason) noteSkipped(skipReason, TESTS, 'PBX digest authentication of the gateway');

const user = { waId: '16315553611', name: 'Auth Caller' };

describe.skipIf(skipReason !== undefined)('a PBX that challenges the gateway\'s INVITE (401)', () => {
  let e2e: E2E;
  let agentPort: number;
  let agent: SippRun | undefined;

  beforeAll(async () => {
    agentPort = await freePort({ tcp: false });
    e2e = await startE2E({
      sipTarget: `sip:agent@127.0.0.1:${agentPort}`,
      sipOutboundCredentials: new Map([['127.0.0.1', { username: 'gateway', password: 's3cret-trunk' }]]),
    });
  }, 60_000);
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  const startAgent = async (password: string) => {
    agent = await startSipp({ scenario: 'uas-answer-auth' as SippScenario, port: agentPort, service: 'agent', keys: { username: 'gateway', password }, durationMs: 30_000, timeoutSec: 30 });
    return agent;
  };

  it('answers the challenge with the credentials for the target host: the PBX takes the call', async () => {
    const run = await startAgent('s3cret-trunk');
    const { callId } = await e2e.meta.userCalls(user);
    expect((await e2e.meta.waitForAction(callId, 'accept')).status).toBe(200);
    expect(run.messages()).toMatch(/INVITE sip:[^\n]*\n[\s\S]*Authorization: Digest [^\n]*username="gateway"/);
    await e2e.meta.userHangsUp(callId);
    await waitNoLiveCalls(e2e.gateway);
    expect(await recordOf(e2e.gateway, callId)).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp' });
    const result = await run.done;
    expect(result.successful).toBe(1);
  });

  it('a PBX that does not accept those credentials refuses: the WhatsApp call is rejected', async () => {
    const run = await startAgent('another-password');
    const { callId } = await e2e.meta.userCalls(user);
    expect((await e2e.meta.waitForAction(callId, 'reject')).status).toBe(200);
    await waitNoLiveCalls(e2e.gateway);
    expect(await recordOf(e2e.gateway, callId)).toMatchObject({ cause: 'sip_403', sipStatus: 403 });
    expect(run.messages()).toMatch(/SIP\/2.0 403/);
  });
});
