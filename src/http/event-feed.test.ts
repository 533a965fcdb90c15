import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { Socket } from 'node:net';
import type { CallEvent } from '../calls/events.js';
import { KEYS, startAdminFixture, type AdminFixture } from './admin-fixture.js';

interface Client { ws: WebSocket; events: (CallEvent | { type: 'feed.ready' })[]; closed: Promise<void> }

async function connect(fx: AdminFixture, key: string = KEYS.supervisor, via: 'header' | 'query' = 'header'): Promise<Client> {
  const ws = via === 'header'
    ? new WebSocket(`${fx.wsBase}/v1/events`, { headers: { authorization: `Bearer ${key}` } })
    : new WebSocket(`${fx.wsBase}/v1/events?access_token=${encodeURIComponent(key)}`);
  const events: Client['events'] = [];
  const closed = new Promise<void>((r) => ws.once('close', () => r()));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (data) => {
      const ev = JSON.parse(String(data)) as Client['events'][number];
      events.push(ev);
      if (ev.type === 'feed.ready') resolve();
    });
    ws.once('unexpected-response', () => reject(new Error('refused')));
  });
  return { ws, events, closed };
}

const until = async (cond: () => boolean, what: string, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('live event feed', () => {
  let fx: AdminFixture | undefined;
  afterEach(async () => { await fx?.close(); fx = undefined; });

  it("delivers a call's events in order: offered, ringing, answered, quality, ended with its outcome", async () => {
    fx = await startAdminFixture({ qualityIntervalMs: 250 });
    const a = await connect(fx);
    const b = await connect(fx, KEYS.admin);
    const call = fx.liveCall('answered');
    const q = { whatsapp: { packetsIn: 50, packetsOut: 50, lost: 0, late: 0, jitterMs: 1, mos: 4.4 }, sip: { packetsIn: 50, packetsOut: 50, lost: 0, late: 0, jitterMs: 1, mos: 4.4 } };
    call.setQualitySource(() => q);
    await until(() => a.events.some((e) => e.type === 'call.quality'), 'a quality event');
    await call.end({ by: 'whatsapp', outcome: 'answered', cause: 'whatsapp_hangup' });
    await until(() => a.events.some((e) => e.type === 'call.ended') && b.events.some((e) => e.type === 'call.ended'), 'ended on both clients');

    const mine = a.events.filter((e): e is CallEvent => 'callId' in e && e.callId === call.id);
    const types = mine.map((e) => e.type).filter((t, i, all) => t !== 'call.quality' || all[i - 1] !== 'call.quality');
    expect(types).toEqual(['call.offered', 'call.ringing', 'call.answered', 'call.quality', 'call.ended']);
    const seqs = mine.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(mine.find((e) => e.type === 'call.quality')?.quality).toEqual(q);
    expect(mine.at(-1)).toMatchObject({ type: 'call.ended', state: 'ended', outcome: 'answered', endedBy: 'whatsapp', cause: 'whatsapp_hangup', waCallId: call.waCallId, userWaId: '16315553602', tenant: 'acme' });
    expect(b.events.filter((e) => 'callId' in e && e.callId === call.id).map((e) => e.type).filter((t) => t !== 'call.quality'))
      .toEqual(['call.offered', 'call.ringing', 'call.answered', 'call.ended']);
    a.ws.close();
    b.ws.close();
  });

  it('a client that does not read is dropped; the others keep receiving and the gateway does not wait', async () => {
    fx = await startAdminFixture({ maxBufferedBytes: 256 * 1024 });
    const slow = await connect(fx);
    const fast = await connect(fx, KEYS.admin);
    // The slow client stops reading: its kernel buffers fill, then the gateway's send buffer grows.
    (slow.ws as unknown as { _socket: Socket })._socket.pause();
    const bigName = 'x'.repeat(32 * 1024);
    const N = 600; // ~20 MB of events: more than loopback socket buffers hold
    let publishMs = 0;
    // In bursts of 4 events (128 kB, under the limit), as calls arrive: a reader that keeps up is never over the limit.
    for (let i = 0; i < N; i += 4) {
      const t0 = performance.now();
      for (let j = 0; j < 4; j++) fx.liveCall('offered', { userName: bigName });
      publishMs = Math.max(publishMs, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 3));
    }
    await until(() => fast.events.filter((e) => e.type === 'call.offered').length === N, 'every event at the fast client', 20_000);
    await until(() => fx!.feed.clientCount === 1, 'slow client dropped', 10_000);
    const dropped = await fx.metrics.registry.getSingleMetric('wagw_event_feed_dropped_total')!.get();
    expect(dropped.values).toEqual([expect.objectContaining({ labels: { reason: 'slow' }, value: 1 })]);
    // Publishing never waited for the slow client: the worst burst of 4 took milliseconds (generous bound for busy CI).
    expect(publishMs).toBeLessThan(1000);
    expect(fast.ws.readyState).toBe(WebSocket.OPEN);
    fast.ws.close();
  }, 40_000);

  it('a browser authenticates with ?access_token= (RFC 6750): a supervisor key gets the feed, a wrong or reporting key does not', async () => {
    fx = await startAdminFixture();
    const client = await connect(fx, KEYS.supervisor, 'query');
    expect(client.events[0]).toMatchObject({ type: 'feed.ready' });
    client.ws.close();
    await expect(connect(fx, 'not-a-key', 'query')).rejects.toThrow('refused');
    await expect(connect(fx, KEYS.reporting, 'query')).rejects.toThrow('refused');
  });

  it("a supervisor key given a tenant gets that tenant's call events only", async () => {
    fx = await startAdminFixture();
    const scoped = await connect(fx, KEYS.supervisorAcme);
    const all = await connect(fx, KEYS.supervisor);
    fx.liveCall('offered', { tenant: 'globex' });
    const own = fx.liveCall('offered', { tenant: 'acme' });
    await until(() => all.events.filter((e) => e.type === 'call.offered').length === 2, 'both offers at the unscoped client');
    await until(() => scoped.events.some((e) => e.type === 'call.offered'), 'the acme offer at the scoped client');
    const seen = scoped.events.filter((e): e is CallEvent => e.type !== 'feed.ready');
    expect(seen.map((e) => [e.type, e.callId, e.tenant])).toEqual([['call.offered', own.id, 'acme']]);
    scoped.ws.close();
    all.ws.close();
  });

  it('the feed closes its clients when the gateway stops', async () => {
    fx = await startAdminFixture();
    const c = await connect(fx);
    const code = new Promise<number>((r) => c.ws.once('close', (n) => r(n)));
    await fx.feed.close();
    expect(await code).toBe(1001);
  });
});
