import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { GraphClient, GraphError } from './graph-client.js';

interface Seen { path: string; auth?: string; raw: string }
const seen: Seen[] = [];
let reply: { status: number; body: string } = { status: 200, body: '{"success":true}' };
let server: Server;
let client: GraphClient;

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => { raw += c.toString('utf8'); });
    req.on('end', () => {
      seen.push({ path: req.url ?? '', auth: req.headers.authorization, raw });
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(reply.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  client = new GraphClient({ baseUrl: `http://127.0.0.1:${port}`, apiVersion: 'v21.0', token: 'tok', timeoutMs: 2000, retries: 0, logger: createLogger('silent'), metrics: createMetrics() });
});
afterAll(() => server.close());

describe('GraphClient request and response shapes (§2.1, §2.7)', () => {
  const sdp = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 126\r\n';

  it('pre_accept and accept: messaging_product, action, call_id, session {sdp_type, sdp} with CRLF kept, not double-encoded', async () => {
    reply = { status: 200, body: '{"success":true}' };
    await expect(client.preAccept('436666719526789', 'wacid.A', sdp)).resolves.toEqual({ success: true });
    reply = { status: 200, body: '{"messaging_product":"whatsapp","success":true}' };
    await client.accept('436666719526789', 'wacid.A', sdp);
    const [pre, acc] = seen.slice(-2);
    expect(pre!.path).toBe('/v21.0/436666719526789/calls');
    expect(pre!.auth).toBe('Bearer tok');
    expect(JSON.parse(pre!.raw)).toEqual({ messaging_product: 'whatsapp', action: 'pre_accept', call_id: 'wacid.A', session: { sdp_type: 'answer', sdp } });
    expect(JSON.parse(acc!.raw)).toEqual({ messaging_product: 'whatsapp', action: 'accept', call_id: 'wacid.A', session: { sdp_type: 'answer', sdp } });
    expect(JSON.parse(acc!.raw).session.sdp).toBe(JSON.parse(pre!.raw).session.sdp);
  });

  it('reject and terminate carry only call_id; an empty 200 body is success too', async () => {
    reply = { status: 200, body: '' };
    await client.reject('1', 'wacid.B');
    await client.terminate('1', 'wacid.B');
    expect(seen.slice(-2).map((s) => JSON.parse(s.raw))).toEqual([
      { messaging_product: 'whatsapp', action: 'reject', call_id: 'wacid.B' },
      { messaging_product: 'whatsapp', action: 'terminate', call_id: 'wacid.B' },
    ]);
  });

  it('connect: the wacid from calls[0].id; a bare {"success":true} is still a placed call (undefined id, §2.1)', async () => {
    reply = { status: 200, body: '{"messaging_product":"whatsapp","calls":[{"id":"wacid.NEW"}]}' };
    await expect(client.connect('1', '14085551234', sdp, 'gw-leg-1')).resolves.toBe('wacid.NEW');
    expect(JSON.parse(seen.at(-1)!.raw)).toEqual({ messaging_product: 'whatsapp', action: 'connect', to: '14085551234', session: { sdp_type: 'offer', sdp }, biz_opaque_callback_data: 'gw-leg-1' });
    reply = { status: 200, body: '{"success":true}' };
    await expect(client.connect('1', '14085551234', sdp, 'gw-leg-2')).resolves.toBeUndefined();
  });

  it('reads Meta\'s error shape: code and error_data.details', async () => {
    reply = { status: 400, body: JSON.stringify({ error: { message: 'Invalid parameter', type: 'OAuthException', code: 100, error_data: { details: 'SDP: missing fingerprint' }, fbtrace_id: 'x' } }) };
    const err = await client.accept('1', 'wacid.C', sdp).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphError);
    expect(err).toMatchObject({ action: 'accept', httpStatus: 400, code: 100, details: 'SDP: missing fingerprint' });
    reply = { status: 502, body: '<html>bad gateway</html>' };
    expect(await client.terminate('1', 'wacid.C').catch((e: unknown) => e)).toMatchObject({ httpStatus: 502, code: undefined });
  });

  it('sends nothing for an empty or non-numeric phone-number id (POST //calls would be another endpoint)', async () => {
    const before = seen.length;
    for (const pnid of ['', 'undefined', '../me']) {
      const err = await client.reject(pnid, 'wacid.D').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GraphError);
      expect((err as Error).message).toMatch(/invalid phone number id/);
    }
    expect(seen.length).toBe(before);
  });
});

describe('GraphClient retries', () => {
  const answers: number[] = [];
  let retrying: GraphClient;
  let retryServer: Server;
  beforeAll(async () => {
    retryServer = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const status = answers.shift() ?? 200;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(status === 200 ? '{"success":true}' : `{"error":{"code":${status === 429 ? 613 : status === 400 ? 100 : 1},"message":"m"}}`);
      });
    });
    await new Promise<void>((r) => retryServer.listen(0, '127.0.0.1', r));
    const { port } = retryServer.address() as AddressInfo;
    retrying = new GraphClient({ baseUrl: `http://127.0.0.1:${port}`, apiVersion: 'v21.0', token: 'tok', timeoutMs: 2000, retries: 2, logger: createLogger('silent'), metrics: createMetrics() });
  });
  afterAll(() => retryServer.close());

  it('a 5xx is retried; a 4xx after it is marked uncertain (the first attempt may have been carried out)', async () => {
    answers.splice(0, answers.length, 500, 200);
    await expect(retrying.accept('1', 'wacid.R', 'v=0\r\n')).resolves.toEqual({ success: true });
    answers.splice(0, answers.length, 500, 400);
    const err = await retrying.accept('1', 'wacid.R', 'v=0\r\n').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphError);
    expect(err).toMatchObject({ httpStatus: 400, code: 100, uncertain: true });
  });

  it('a plain 4xx is certain, and a 429 (rate limit) is not retried', async () => {
    answers.splice(0, answers.length, 400);
    expect(await retrying.accept('1', 'wacid.R', 'v=0\r\n').catch((e: unknown) => e)).toMatchObject({ httpStatus: 400, uncertain: false });
    answers.splice(0, answers.length, 429, 200);
    expect(await retrying.callPermissions('1', '14085551234').catch((e: unknown) => e)).toMatchObject({ httpStatus: 429, code: 613 });
    expect(answers).toEqual([200]);
  });
});
