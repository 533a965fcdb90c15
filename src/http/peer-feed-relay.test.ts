import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { createLogger } from '../observability/logger.js';
import { PeerFeedRelay } from './peer-feed-relay.js';
import { FORWARDED_HEADER } from './webhook-forwarder.js';

/** A peer instance's /v1/events: answers 401 when `refuse`, else accepts and hands each connection to `onClient`. */
async function fakePeer(onClient: (ws: WebSocket, req: IncomingMessage) => void, refuse = false): Promise<{ base: string; server: Server; upgrades: () => number }> {
  const wss = new WebSocketServer({ noServer: true });
  let upgrades = 0;
  const server = createServer();
  server.on('upgrade', (req, socket, head) => {
    upgrades++;
    if (refuse) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onClient(ws, req));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  servers.push(server);
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, upgrades: () => upgrades };
}

const servers: Server[] = [];
const relays: PeerFeedRelay[] = [];
afterEach(async () => {
  for (const r of relays.splice(0)) r.close();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => { s.closeAllConnections(); s.close(r); })));
});

describe('PeerFeedRelay', () => {
  it("passes on a peer's call events marked with its instance, with the client's key and the forwarded header, and reconnects after a drop", async () => {
    const seen: IncomingMessage[] = [];
    const clients: WebSocket[] = [];
    const peer = await fakePeer((ws, req) => {
      seen.push(req);
      clients.push(ws);
      ws.send(JSON.stringify({ type: 'feed.ready' }));
      ws.send(JSON.stringify({ type: 'call.offered', callId: `c${clients.length}` }));
      ws.send('not json');
    });
    const got: Array<Record<string, unknown>> = [];
    relays.push(new PeerFeedRelay({ peers: [`${peer.base}/`], authorization: 'Bearer k1', deliver: (t) => got.push(JSON.parse(t) as Record<string, unknown>), selfFeedId: 'us', logger: createLogger('silent'), reconnectMs: 50 }));
    await vi.waitFor(() => expect(got).toHaveLength(1));
    expect(got[0]).toEqual({ type: 'call.offered', callId: 'c1', instance: peer.base });
    expect(seen[0]!.headers.authorization).toBe('Bearer k1');
    expect(seen[0]!.headers[FORWARDED_HEADER]).toBe('1');
    clients[0]!.terminate();
    await vi.waitFor(() => expect(got.map((e) => e.callId)).toEqual(['c1', 'c2']));
  });

  it('a peer that refuses the key is not asked again, and is logged once', async () => {
    const peer = await fakePeer(() => undefined, true);
    const logger = createLogger('silent');
    const warn = vi.spyOn(logger, 'warn');
    relays.push(new PeerFeedRelay({ peers: [peer.base], authorization: 'Bearer nope', deliver: () => undefined, selfFeedId: 'us', logger, reconnectMs: 20 }));
    await vi.waitFor(() => expect(warn).toHaveBeenCalledTimes(1));
    await new Promise((r) => setTimeout(r, 200));
    expect(peer.upgrades()).toBe(1);
    expect(warn.mock.calls[0]![1]).toMatch(/refused/);
  });

  it('a peer that is this very instance (a shared peer list) is left at once: its events would come twice', async () => {
    const peer = await fakePeer((ws) => {
      ws.send(JSON.stringify({ type: 'feed.ready', feedId: 'us' }));
      ws.send(JSON.stringify({ type: 'call.offered', callId: 'mine' }));
    });
    const got: string[] = [];
    relays.push(new PeerFeedRelay({ peers: [peer.base], authorization: 'Bearer k', deliver: (t) => got.push(t), selfFeedId: 'us', logger: createLogger('silent'), reconnectMs: 20 }));
    await vi.waitFor(() => expect(peer.upgrades()).toBe(1));
    await new Promise((r) => setTimeout(r, 200));
    expect(peer.upgrades()).toBe(1);
    expect(got).toEqual([]);
  });

  it('a peer that is down is retried, with one warning for the outage; close() stops the retries', async () => {
    const peer = await fakePeer(() => undefined);
    await new Promise((r) => peer.server.close(r));
    const logger = createLogger('silent');
    const warn = vi.spyOn(logger, 'warn');
    const relay = new PeerFeedRelay({ peers: [peer.base], authorization: 'Bearer k', deliver: () => undefined, selfFeedId: 'us', logger, reconnectMs: 20 });
    await new Promise((r) => setTimeout(r, 200));
    expect(warn).toHaveBeenCalledTimes(1);
    relay.close();
  });
});
