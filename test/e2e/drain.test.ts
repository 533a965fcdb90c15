/**
 * Graceful drain: once draining, new WhatsApp calls are rejected and new SIP INVITEs get 503, readiness turns false,
 * and a live call goes on until the deadline, then ends cleanly with its record written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { sippAvailable, startSipp, type SippRun } from '../peers/sip/sipp.js';
import { SqliteCallRecordStore } from '../../src/store/sqlite-store.js';
import { startE2E, waitFor, type E2E } from './harness.js';

const drachtio = drachtioAvailable();
const sipp = sippAvailable();
const skipReason = firstMissing(drachtio, sipp);
if (skipReason) noteSkipped(skipReason, 1, 'drain');

describe.skipIf(skipReason !== undefined)('drain', () => {
  let e2e: E2E;
  let agent: SippRun;

  beforeAll(async () => {
    agent = await startSipp({ scenario: 'uas-answer', service: 'agent', durationMs: 30_000, timeoutSec: 40 });
    e2e = await startE2E({ sipTarget: agent.uri, config: { calls: { drainDeadlineMs: 3000 } } });
  }, 60_000);
  afterAll(async () => {
    await e2e?.stop();
    await agent?.stop();
  });

  it('refuses new calls on both sides, lets the live call run to the deadline, then ends it with a record', async () => {
    const { meta, gateway } = e2e;
    const base = `http://127.0.0.1:${gateway.http.port}`;
    const { callId: live } = await meta.userCalls({ waId: '16315553602', name: 'Jane Doe' });
    await meta.waitForAction(live, 'accept');

    const startedDrain = Date.now();
    const drained = gateway.drainAndStop();
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ checks: { accepting: false } });

    const { callId: late } = await meta.userCalls({ waId: '16315550000', name: 'Late Caller' });
    expect((await meta.waitForAction(late, 'reject')).status).toBe(200);
    expect(meta.requests.filter((r) => r.callId === late).map((r) => r.op)).toEqual(['reject']);

    const uac = await startSipp({ scenario: 'uac-invite', remote: `127.0.0.1:${e2e.drachtio.sipPort}`, service: '16315553602', timeoutSec: 10 });
    const result = await uac.done;
    expect(result.messages).toMatch(/SIP\/2\.0 503/);

    expect(gateway.registry.list()[0]?.state).toBe('answered');
    await drained;
    expect(Date.now() - startedDrain).toBeGreaterThanOrEqual(2900);
    const records = await new SqliteCallRecordStore(e2e.sqlitePath).list();
    expect(records.find((r) => r.waCallId === live)).toMatchObject({ outcome: 'answered', cause: 'drain', endedBy: 'gateway' });
    expect(records.find((r) => r.waCallId === late)).toMatchObject({ outcome: 'rejected', cause: 'draining' });
    await waitFor(() => meta.requests.some((r) => r.callId === live && r.op === 'terminate') || undefined, 'Graph terminate of the live call');
    await waitFor(() => agent.messages().includes('BYE sip:') || undefined, 'BYE at the agent');
  }, 60_000);
});
