/**
 * drachtio-server going away mid-call. drachtio-server sends a dialog's requests only to the connection that owns it,
 * so after the connection is lost neither the PBX's BYE nor ours can pass: the gateway must end those calls itself
 * (Graph terminate, a record), not leave the WhatsApp user on dead air until a media timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { sippAvailable, startSipp, type SippRun } from '../peers/sip/sipp.js';
import { freePort } from '../peers/sip/ports.js';
import { recordOf, records, startE2E, waitNoLiveCalls, type E2E } from './harness.js';

const drachtio = drachtioAvailable();
const sipp = sippAvailable();
const skipReason = firstMissing(drachtio, sipp);
const TESTS = 2;
if (skipReason) noteSkipped(skipReason, TESTS, 'drachtio connection loss');

describe.skipIf(skipReason !== undefined)('drachtio connection lost mid-call', () => {
  let e2e: E2E;
  let agent: SippRun | undefined;

  beforeAll(async () => {
    const agentPort = await freePort({ tcp: false });
    // A long media timeout: the call must end because the connection went, not because media stopped.
    e2e = await startE2E({ sipTarget: `sip:agent@127.0.0.1:${agentPort}`, config: { media: { mediaTimeoutMs: 60_000 } } });
    agent = await startSipp({ scenario: 'uas-answer', port: agentPort, service: 'agent', durationMs: 30_000, timeoutSec: 40 });
  }, 60_000);
  afterAll(async () => {
    await agent?.stop();
    await e2e?.stop();
  });

  it('an answered call ends at once with Graph terminate and a record saying the SIP connection was lost', async () => {
    const { callId } = await e2e.meta.userCalls({ waId: '16315553602', name: 'Jane Doe' });
    await e2e.meta.waitForAction(callId, 'accept');
    expect(e2e.gateway.registry.size).toBe(1);
    const lostAt = Date.now();
    await e2e.drachtio.stop();
    await e2e.meta.waitForAction(callId, 'terminate', 5000);
    await waitNoLiveCalls(e2e.gateway, 5000);
    expect(Date.now() - lostAt).toBeLessThan(5000);
    expect(await recordOf(e2e.gateway, callId)).toMatchObject({ outcome: 'answered', endedBy: 'gateway', cause: 'sip_connection_lost' });
    const metrics = await (await fetch(`http://127.0.0.1:${e2e.gateway.http.port}/metrics`)).text();
    expect(metrics).toMatch(/^wagw_drachtio_connected 0$/m);
  });
});

describe.skipIf(skipReason !== undefined)('drachtio connection lost while a PBX INVITE waits for the WhatsApp user', () => {
  let e2e: E2E;
  let pbx: SippRun | undefined;

  beforeAll(async () => {
    e2e = await startE2E({
      sipTarget: 'sip:unused@127.0.0.1:5999', displayNumber: '447700900555',
      config: { businessCalls: { allowedSources: ['127.0.0.1'] } },
    });
  }, 60_000);
  afterAll(async () => {
    await pbx?.stop();
    await e2e?.stop();
  });

  it('the ringing WhatsApp call is terminated and recorded as sip_connection_lost, not as a PBX cancel', async () => {
    const waId = '447700900321';
    e2e.meta.addUser({ waId }, { permission: 'temporary' });
    pbx = await startSipp({ scenario: 'uac-invite', service: waId, remote: `127.0.0.1:${e2e.drachtio.sipPort}`, durationMs: 1000, timeoutSec: 20 });
    const placed = await e2e.meta.waitForConnect(waId);
    await e2e.drachtio.stop();
    await e2e.meta.waitForAction(placed.id, 'terminate', 5000);
    await waitNoLiveCalls(e2e.gateway, 5000);
    const record = (await records(e2e.gateway)).find((r) => r.userWaId === waId);
    expect(record).toMatchObject({ direction: 'business_initiated', outcome: 'failed', endedBy: 'gateway', cause: 'sip_connection_lost' });
  });
});
