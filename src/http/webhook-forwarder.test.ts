import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { FORWARDED_HEADER, WebhookForwarder } from './webhook-forwarder.js';

interface Seen { path: string; headers: IncomingMessage['headers']; body: string }

/** A peer instance that answers with the given statuses in turn (the last one repeats). */
async function peer(statuses: number[]): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(statuses[Math.min(seen.length, statuses.length) - 1]!).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, seen, server };
}

async function counts(metrics: ReturnType<typeof createMetrics>): Promise<Record<string, number>> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === 'wagw_webhook_forwards_total');
  return Object.fromEntries(((m?.values ?? []) as Array<{ value: number; labels: Record<string, string> }>).map((v) => [v.labels.result, v.value]));
}

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setTimeout(r, 30));
};

describe('WebhookForwarder', () => {
  const servers: Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });

  it('passes the raw body, Meta\'s signature and the webhook path on, marked as forwarded, and retries a 503', async () => {
    const p = await peer([503, 200]);
    servers.push(p.server);
    const metrics = createMetrics();
    const fwd = new WebhookForwarder({ peers: () => [p.url], timeoutMs: () => 1000, logger: createLogger('silent'), metrics });
    const raw = Buffer.from('{"object":"whatsapp_business_account","entry":[]}');
    fwd.forward(raw, 'sha256=abc', '/webhooks/whatsapp/brand2', 'call_not_here');
    await until(() => p.seen.length === 2);
    expect(p.seen.map((s) => s.path)).toEqual(['/webhooks/whatsapp/brand2', '/webhooks/whatsapp/brand2']);
    expect(p.seen[1]).toMatchObject({ body: raw.toString(), headers: { 'x-hub-signature-256': 'sha256=abc', [FORWARDED_HEADER]: '1' } });
    for (let i = 0; i < 100 && (await counts(metrics)).ok === undefined; i++) await new Promise((r) => setTimeout(r, 30));
    expect(await counts(metrics)).toEqual({ ok: 1 });
  });

  it('does not retry a peer that refuses (401: another app secret), and counts it', async () => {
    const p = await peer([401]);
    servers.push(p.server);
    const metrics = createMetrics();
    const fwd = new WebhookForwarder({ peers: () => [p.url], timeoutMs: () => 1000, logger: createLogger('silent'), metrics });
    fwd.forward(Buffer.from('{}'), undefined, '/webhooks/whatsapp', 'permission_reply');
    await until(() => p.seen.length > 0);
    await new Promise((r) => setTimeout(r, 400));
    expect(p.seen).toHaveLength(1);
    expect(p.seen[0]!.headers['x-hub-signature-256']).toBeUndefined();
    expect(await counts(metrics)).toEqual({ refused: 1 });
  });

  it('gives up on an unreachable peer after its retries and counts a failure', async () => {
    const p = await peer([200]);
    const url = p.url;
    await new Promise<void>((r) => p.server.close(() => r()));
    const metrics = createMetrics();
    const fwd = new WebhookForwarder({ peers: () => [url], timeoutMs: () => 500, logger: createLogger('silent'), metrics });
    expect(fwd.enabled).toBe(true);
    fwd.forward(Buffer.from('{}'), 'sha256=x', '/webhooks/whatsapp', 'call_not_here');
    for (let i = 0; i < 100 && (await counts(metrics)).failed === undefined; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await counts(metrics)).toEqual({ failed: 1 });
  });
});
