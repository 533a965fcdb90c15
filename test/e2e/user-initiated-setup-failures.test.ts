/**
 * A user-initiated call that cannot even ring the agent, or loses its media: unanswerable offers, no route,
 * drachtio-server gone, and the media timeout. Each ends in a Graph reject (or terminate), a log line, a metric and a
 * call record, with nothing left behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { sippAvailable, startSipp, type SippRun } from '../peers/sip/sipp.js';
import { WaUser, type WebhookEnvelope } from '../peers/meta/index.js';
import { recordOf, startE2E, waitFor, waitNoLiveCalls, type E2E } from './harness.js';

const drachtio = drachtioAvailable();
const sipp = sippAvailable();
const skipReason = firstMissing(drachtio, sipp);
if (skipReason) noteSkipped(skipReason, 6, 'user-initiated setup failures');

const user = { waId: '16315553602', name: 'Jane Doe' };

function withSdp(env: WebhookEnvelope, sdp: string): WebhookEnvelope {
  const copy = JSON.parse(JSON.stringify(env)) as { entry: { changes: { value: { calls: { session: { sdp: string } }[] } }[] }[] };
  copy.entry[0]!.changes[0]!.value.calls[0]!.session.sdp = sdp;
  return copy as unknown as WebhookEnvelope;
}

async function metricValue(e2e: E2E, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${e2e.gateway.http.port}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(name) && want.every((w) => l.includes(w)));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe.skipIf(skipReason !== undefined)('user-initiated call: setup failures and media timeout', () => {
  let e2e: E2E;
  let agent: SippRun;

  beforeAll(async () => {
    // The agent answers and then sends no RTP at all: the media timeout's subject.
    agent = await startSipp({ scenario: 'uas-answer', service: 'agent', durationMs: 30_000, timeoutSec: 60, calls: 5 });
    e2e = await startE2E({ sipTarget: agent.uri, config: { media: { mediaTimeoutMs: 2000 } } });
  }, 60_000);
  afterAll(async () => {
    await e2e?.stop();
    await agent?.stop();
  });

  it.each([
    ['garbage', 'this is not SDP'],
    ['an offer without Opus', 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 40012 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:0 PCMU/8000\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\n'],
  ])('rejects %s with a log line and a metric, without ringing anyone', async (_what, sdp) => {
    const before = await metricValue(e2e, 'wagw_unanswerable_offers_total');
    const { callId, envelope } = await e2e.meta.userCalls(user, { deliver: false });
    await e2e.meta.sendWebhook(withSdp(envelope, sdp));
    expect((await e2e.meta.waitForAction(callId, 'reject')).status).toBe(200);
    await waitNoLiveCalls(e2e.gateway);
    expect(await recordOf(e2e.gateway, callId)).toMatchObject({ outcome: 'failed', cause: 'unanswerable_offer' });
    expect(await metricValue(e2e, 'wagw_unanswerable_offers_total')).toBe(before + 1);
    expect(e2e.meta.requests.filter((r) => r.callId === callId).map((r) => r.op)).toEqual(['reject']);
  });

  it('refuses a call whose only SIP target the target policy forbids: Graph reject, record target_not_allowed (not a PBX 403)', async () => {
    e2e.config.sip.allowedTargetHosts = ['pbx.example.com'];
    try {
      const { callId } = await e2e.meta.userCalls(user);
      expect((await e2e.meta.waitForAction(callId, 'reject')).status).toBe(200);
      await waitNoLiveCalls(e2e.gateway);
      expect(await recordOf(e2e.gateway, callId)).toMatchObject({ outcome: 'failed', endedBy: 'gateway', cause: 'target_not_allowed' });
    } finally {
      e2e.config.sip.allowedTargetHosts = [];
    }
  });

  it('rejects a call to a business number that has no route', async () => {
    const { callId, envelope } = await e2e.meta.userCalls(user, { deliver: false });
    const text = JSON.stringify(envelope).replaceAll('"phone_number_id":"436666719526789"', '"phone_number_id":"999999999"');
    await e2e.meta.sendWebhook(JSON.parse(text) as WebhookEnvelope);
    expect(await recordOf(e2e.gateway, callId)).toMatchObject({ outcome: 'failed', cause: 'no_route' });
  });

  it('ends an answered call whose agent sends no media after the media timeout, with Graph terminate', async () => {
    const wa = new WaUser({ waId: '16315553602', name: 'Jane Doe' });
    try {
      const { callId } = await e2e.meta.userCalls(wa);
      await e2e.meta.waitForAction(callId, 'accept');
      await wa.waitForMedia();
      wa.play({ toneHz: 1000 });
      expect((await e2e.meta.waitForAction(callId, 'terminate')).status).toBe(200);
      await waitNoLiveCalls(e2e.gateway);
      const record = await recordOf(e2e.gateway, callId);
      expect(record).toMatchObject({ outcome: 'answered', cause: 'media_timeout_sip', endedBy: 'gateway' });
      expect(record!.durationSeconds).toBeGreaterThan(1.5);
      expect(await metricValue(e2e, 'wagw_media_timeouts_total', { leg: 'sip' })).toBeGreaterThanOrEqual(1);
      // The PBX learns why (RFC 3326): a timer ran out, and which.
      await waitFor(() => /BYE sip:[\s\S]*Reason: Q\.850;cause=102;text="media_timeout_sip"/.test(agent.messages()) || undefined, 'BYE with its Reason at the agent');
    } finally {
      await wa.close();
    }
  }, 30_000);

  it('rejects calls while drachtio-server is down, and readiness says so', async () => {
    await e2e.drachtio.stop();
    await waitFor(() => !e2e.gateway.sip.connected || undefined, 'drachtio disconnect');
    const { callId } = await e2e.meta.userCalls(user);
    expect((await e2e.meta.waitForAction(callId, 'reject')).status).toBe(200);
    await waitNoLiveCalls(e2e.gateway);
    expect(await recordOf(e2e.gateway, callId)).toMatchObject({ outcome: 'failed', cause: 'sip_unavailable' });
    const ready = await fetch(`http://127.0.0.1:${e2e.gateway.http.port}/readyz`);
    expect(ready.status).toBe(503);
  });
});
