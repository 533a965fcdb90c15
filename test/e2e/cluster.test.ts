/**
 * Two gateway instances behind one webhook URL (cluster.peers): Meta's delivery for a call may reach the instance that
 * does not hold it. Each instance here has its own drachtio-server and Meta double; instance A lists B as its peer.
 * The call lives on B (its connect went there, a sipp agent answered), while the user's hang-up is delivered to A.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { drachtioAvailable, firstMissing, noteSkipped } from '../peers/drachtio.js';
import { sippAvailable, startSipp, type SippRun } from '../peers/sip/sipp.js';
import { freePort } from '../peers/sip/ports.js';
import { recordOf, records, startE2E, waitFor, waitNoLiveCalls, type E2E } from './harness.js';
import { FORWARDED_HEADER } from '../../src/http/webhook-forwarder.js';

const skipReason = firstMissing(drachtioAvailable(), sippAvailable());
const TESTS = 5;
if (skipReason) noteSkipped(skipReason, TESTS, 'two instances behind one webhook URL');

const user = { waId: '16315553602', name: 'Jane Doe' };
const ADMIN_KEY = 'cluster-admin-key';

describe.skipIf(skipReason !== undefined)('two instances behind one webhook URL', () => {
  let a: E2E;
  let b: E2E;
  let agentPort: number;
  let agent: SippRun | undefined;

  type Metric = { get(): Promise<{ values: Array<{ value: number; labels: Partial<Record<string, string | number>> }> }> };
  /** The sum of a counter's series whose labels match. */
  const counter = async (metric: Metric, labels: Record<string, string> = {}): Promise<number> =>
    (await metric.get()).values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
  const until = async (cond: () => Promise<boolean>, what: string): Promise<void> => {
    for (const end = Date.now() + 10_000; !(await cond());) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const webhookUrl = (e2e: E2E): string => `http://127.0.0.1:${e2e.gateway.http.port}/webhooks/whatsapp`;

  beforeAll(async () => {
    agentPort = await freePort({ tcp: false });
    b = await startE2E({ sipTarget: `sip:agent@127.0.0.1:${agentPort}`, adminKeys: { [ADMIN_KEY]: 'ops:supervisor' } });
    a = await startE2E({
      sipTarget: `sip:agent@127.0.0.1:${agentPort}`,
      adminKeys: { [ADMIN_KEY]: 'ops:supervisor' },
      config: {
        media: { rtpPortMin: 23500, rtpPortMax: 23599, webrtcPortMin: 23600, webrtcPortMax: 23799 },
        cluster: { peers: [`http://127.0.0.1:${b.gateway.http.port}`] },
      },
    });
  }, 90_000);
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    a.meta.webhookUrl = webhookUrl(a);
    b.meta.webhookUrl = webhookUrl(b);
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  it('a hang-up delivered to the instance without the call reaches the instance that holds it', async () => {
    agent = await startSipp({ scenario: 'uas-answer', port: agentPort, service: 'agent', timeoutSec: 20, durationMs: 20_000 });
    const { callId } = await b.meta.userCalls(user);
    await b.meta.waitForAction(callId, 'accept');
    await waitFor(() => b.gateway.registry.byWhatsAppId(callId)?.state === 'answered' || undefined, 'call answered on B');

    // Meta's next delivery for this call lands on A.
    b.meta.webhookUrl = webhookUrl(a);
    const [delivery] = await b.meta.userHangsUp(callId);
    expect(delivery?.status).toBe(200);

    await waitNoLiveCalls(b.gateway);
    const record = await recordOf(b.gateway, callId);
    expect(record).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp', cause: 'whatsapp_hangup' });
    const run = agent;
    await waitFor(() => run.messages().includes('BYE sip:') || undefined, 'BYE at the agent');
    expect(await counter(a.gateway.metrics.webhookForwards, { result: 'ok' })).toBe(1);
    // A never held the call: no call, no record, no Graph action of its own.
    expect((await records(a.gateway)).filter((r) => r.waCallId === callId)).toHaveLength(0);
    expect(a.meta.requests).toHaveLength(0);
  });

  it('the admin API and event feed of either instance show the calls of both (?cluster=1); it hangs up a call held by the other', async () => {
    // A wallboard on A that asks for the cluster, and one that does not.
    type FeedEvent = { type: string; callId?: string; waCallId?: string; instance?: string; peers?: number; cause?: string };
    const feedOnA = (query: string) => {
      const got: FeedEvent[] = [];
      const ws = new WebSocket(`ws://127.0.0.1:${a.gateway.http.port}/v1/events${query}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      ws.on('message', (d) => got.push(JSON.parse(String(d)) as FeedEvent));
      return { ws, got };
    };
    const clusterFeed = feedOnA('?cluster=1');
    const localFeed = feedOnA('');
    await waitFor(() => clusterFeed.got.find((e) => e.type === 'feed.ready'), 'cluster feed ready');
    await waitFor(() => localFeed.got.find((e) => e.type === 'feed.ready'), 'local feed ready');
    expect(clusterFeed.got[0]).toMatchObject({ type: 'feed.ready', peers: 1 });
    // The relay's own connection to B is up once B counts a feed client.
    const feedClientsOnB = async (): Promise<number> => (await b.gateway.metrics.eventFeedClients.get()).values[0]?.value ?? 0;
    await until(async () => (await feedClientsOnB()) === 1, 'relay connected to B');

    agent = await startSipp({ scenario: 'uas-answer', port: agentPort, service: 'agent', timeoutSec: 20, durationMs: 20_000 });
    const { callId } = await b.meta.userCalls(user);
    await b.meta.waitForAction(callId, 'accept');
    const onB = await waitFor(() => b.gateway.registry.byWhatsAppId(callId), 'call on B');
    const api = (method: string, path: string) => fetch(`http://127.0.0.1:${a.gateway.http.port}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_KEY}` } });

    expect(((await (await api('GET', '/v1/calls')).json()) as { calls: unknown[] }).calls).toHaveLength(0);
    const all = (await (await api('GET', '/v1/calls?cluster=1')).json()) as { calls: Array<{ id: string; waCallId: string; instance?: string }>; peers: Array<{ ok: boolean }> };
    expect(all.calls).toEqual([expect.objectContaining({ id: onB.id, waCallId: callId, instance: `http://127.0.0.1:${b.gateway.http.port}` })]);
    expect(all.peers).toEqual([expect.objectContaining({ ok: true })]);
    const one = await api('GET', `/v1/calls/${onB.id}`);
    expect(one.status).toBe(200);
    expect(await one.json()).toMatchObject({ id: onB.id, waCallId: callId });

    const hangUp = await api('DELETE', `/v1/calls/${onB.id}`);
    expect(hangUp.status).toBe(200);
    expect(await hangUp.json()).toMatchObject({ ended: true, record: { waCallId: callId, cause: 'admin_hangup' } });
    await waitNoLiveCalls(b.gateway);
    expect((await api('GET', `/v1/calls/${onB.id}`)).status).toBe(404);
    const bUrl = `http://127.0.0.1:${b.gateway.http.port}`;
    await waitFor(() => clusterFeed.got.find((e) => e.type === 'call.ended' && e.callId === onB.id), "B's call.ended on A's cluster feed");
    const relayed = clusterFeed.got.filter((e) => e.callId === onB.id);
    expect(relayed.map((e) => e.type)).toEqual(expect.arrayContaining(['call.offered', 'call.answered', 'call.ended']));
    expect(relayed.every((e) => e.instance === bUrl && e.waCallId === callId)).toBe(true);
    expect(relayed.find((e) => e.type === 'call.ended')).toMatchObject({ cause: 'admin_hangup' });
    // Without ?cluster=1, A's feed carries A's own calls only.
    expect(localFeed.got.filter((e) => e.callId === onB.id)).toEqual([]);
    clusterFeed.ws.terminate();
    localFeed.ws.terminate();
    // The relay leaves with its client.
    await until(async () => (await feedClientsOnB()) === 0, 'relay closed on B');
    // A peer never passes an admin request on again: B alone answers for itself.
    const fromPeer = await fetch(`http://127.0.0.1:${b.gateway.http.port}/v1/calls?cluster=1`, { headers: { authorization: `Bearer ${ADMIN_KEY}`, [FORWARDED_HEADER]: '1' } });
    expect(await fromPeer.json()).toEqual({ calls: [] });
  });

  it('a new call rings only where Meta\'s delivery arrived; the peer remembers it, so Meta\'s retry there does not ring twice', async () => {
    agent = await startSipp({ scenario: 'uas-answer', port: agentPort, service: 'agent', timeoutSec: 20, durationMs: 20_000 });
    const forwardsBefore = await counter(a.gateway.metrics.webhookForwards);
    const { callId, envelope } = await a.meta.userCalls(user);
    await a.meta.waitForAction(callId, 'accept');
    await until(async () => (await counter(b.gateway.metrics.webhookEvents, { event: 'connect', result: 'forwarded_skipped' })) === 1, 'connect passed on to B');
    expect(b.gateway.registry.size).toBe(0);

    // Meta did not get A's 200 and retries: this time its load balancer picks B.
    a.meta.webhookUrl = webhookUrl(b);
    const [retry] = await a.meta.sendWebhook(envelope);
    expect(retry?.status).toBe(200);
    await until(async () => (await counter(b.gateway.metrics.webhookEvents, { event: 'connect', result: 'duplicate' })) === 1, 'retry seen as a duplicate on B');
    expect(b.gateway.registry.size).toBe(0);
    expect(b.meta.requests.filter((r) => r.callId === callId)).toHaveLength(0);

    // The hang-up names a call live on A: A handles it and passes nothing on.
    a.meta.webhookUrl = webhookUrl(a);
    await a.meta.userHangsUp(callId);
    await waitNoLiveCalls(a.gateway);
    expect(await recordOf(a.gateway, callId)).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp' });
    expect(await counter(a.gateway.metrics.webhookForwards)).toBe(forwardsBefore + 1);
  });

  it('an instance listed among its own peers takes its copy as a duplicate: one shared list may name every instance', async () => {
    const self = `http://127.0.0.1:${b.gateway.http.port}`;
    b.gateway.reload({ ...b.gateway.deps.config, cluster: { peers: [self], forwardTimeoutMs: 2000 } });
    try {
      agent = await startSipp({ scenario: 'uas-answer', port: agentPort, service: 'agent', timeoutSec: 20, durationMs: 20_000 });
      const skipped = await counter(b.gateway.metrics.webhookEvents, { event: 'connect', result: 'forwarded_skipped' });
      const { callId } = await b.meta.userCalls(user);
      await b.meta.waitForAction(callId, 'accept');
      await until(async () => (await counter(b.gateway.metrics.webhookEvents, { event: 'connect', result: 'forwarded_skipped' })) === skipped + 1, 'B\'s copy to itself');
      expect(b.gateway.registry.size).toBe(1);
      await b.meta.userHangsUp(callId);
      await waitNoLiveCalls(b.gateway);
      expect((await records(b.gateway)).filter((r) => r.waCallId === callId)).toEqual([expect.objectContaining({ outcome: 'answered', endedBy: 'whatsapp' })]);
      expect(agent.messages().match(/^INVITE sip:/gm)).toHaveLength(1);
    } finally {
      b.gateway.reload({ ...b.gateway.deps.config, cluster: { peers: [], forwardTimeoutMs: 2000 } });
    }
  });

  it('a forwarded user-initiated connect does not ring the PBX a second time', async () => {
    const skipped = await counter(b.gateway.metrics.webhookEvents, { event: 'connect', result: 'forwarded_skipped' });
    const { envelope } = await b.meta.userCalls(user, { deliver: false });
    const [delivery] = await b.meta.sendWebhook(envelope, { headers: { [FORWARDED_HEADER]: '1' } });
    expect(delivery?.status).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    expect(b.gateway.registry.size).toBe(0);
    expect(await counter(b.gateway.metrics.webhookEvents, { event: 'connect', result: 'forwarded_skipped' })).toBe(skipped + 1);
    // Still Meta's signature that counts: a forwarded delivery with a bad one is refused like any other.
    const [forged] = await b.meta.sendWebhook(envelope, { headers: { [FORWARDED_HEADER]: '1' }, signature: 'wrong', retries: 0 });
    expect(forged?.status).toBe(401);
  });
});
