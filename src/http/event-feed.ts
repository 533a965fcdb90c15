import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket } from 'ws';
import { seesTenant, type AdminRouter, type Principal, type Role } from './admin-router.js';
import type { CallEvents, CallEvent } from '../calls/events.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { PeerFeedRelay } from './peer-feed-relay.js';
import { FORWARDED_HEADER } from './webhook-forwarder.js';

export const EVENTS_PATH = '/v1/events';

export interface EventFeedOptions {
  server: Server;
  admin: AdminRouter;
  events: CallEvents;
  logger: Logger;
  metrics: Metrics;
  /** A client whose unsent backlog exceeds this is disconnected. */
  maxBufferedBytes: number;
  roles?: readonly Role[];
  /** Ping period; a client that misses a pong is dropped. */
  pingIntervalMs?: number;
  /** The other instances (cluster.peers), read per client: `?cluster=1` relays their events too (peer-feed-relay.ts). */
  peers?: () => readonly string[];
}

const STATUS_TEXT: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden' };

/**
 * The live event feed: a WebSocket at /v1/events, authenticated like the admin API (bearer key in the upgrade's
 * Authorization header, or, for browsers, whose WebSocket cannot set headers, RFC 6750's `access_token` query
 * parameter). Each call event is serialised once and sent to every client; a client that does not keep
 * up (bufferedAmount above the limit) is terminated, so a slow wallboard never holds the gateway's memory or loop.
 */
export class EventFeed {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private readonly unsubscribe: () => void;
  private readonly alive = new WeakSet<WebSocket>();
  /** The Authorization each client connected with, to check it again when the keys change. */
  private readonly credentials = new WeakMap<WebSocket, string>();
  /** Who each client is: a tenant's key gets that tenant's calls only. */
  private readonly principals = new WeakMap<WebSocket, Principal>();
  private readonly pinger: NodeJS.Timeout;
  /** Names this feed in `feed.ready`, so that a relay of ours that reached this very instance knows it. */
  private readonly feedId = randomUUID();

  constructor(private readonly opts: EventFeedOptions) {
    opts.server.on('upgrade', this.onUpgrade);
    this.unsubscribe = opts.events.subscribe((ev) => this.broadcast(ev));
    this.pinger = setInterval(() => this.ping(), opts.pingIntervalMs ?? 30_000);
    this.pinger.unref();
  }

  get clientCount(): number {
    return this.wss.clients.size;
  }

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    // Other paths belong to other upgrade handlers (or none).
    if (url.pathname !== EVENTS_PATH) return;
    const queryToken = url.searchParams.get('access_token');
    const authorization = req.headers.authorization ?? (queryToken ? `Bearer ${queryToken}` : undefined);
    const principal = this.opts.admin.authenticate(authorization);
    if (!principal || !this.roles.includes(principal.role)) {
      const status = principal ? 403 : 401;
      socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\n${status === 401 ? 'WWW-Authenticate: Bearer\r\n' : ''}Content-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    // A peer's relay asks with FORWARDED_HEADER: it gets this instance's own calls only, never relayed further.
    const peers = url.searchParams.get('cluster') === '1' && req.headers[FORWARDED_HEADER] === undefined ? this.opts.peers?.() ?? [] : [];
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.alive.add(ws);
      this.credentials.set(ws, authorization ?? '');
      this.principals.set(ws, principal);
      this.opts.metrics.eventFeedClients.set(this.wss.clients.size);
      this.opts.logger.info({ key: principal.name, role: principal.role, clients: this.wss.clients.size }, 'event feed client connected');
      ws.on('pong', () => this.alive.add(ws));
      ws.on('error', () => ws.terminate());
      const relay = peers.length > 0
        ? new PeerFeedRelay({ peers, authorization: authorization ?? '', deliver: (text) => this.sendTo(ws, text), selfFeedId: this.feedId, logger: this.opts.logger })
        : null;
      ws.on('close', () => {
        relay?.close();
        this.opts.metrics.eventFeedClients.set(this.wss.clients.size);
      });
      // Clients only listen; anything they send is ignored.
      ws.send(JSON.stringify({ type: 'feed.ready', at: new Date().toISOString(), feedId: this.feedId, ...(relay ? { peers: peers.length } : {}) }));
    });
  };

  private get roles(): readonly Role[] {
    return this.opts.roles ?? ['admin', 'supervisor'];
  }

  /**
   * After the admin keys changed (SIGHUP): a client whose key was revoked, or no longer has a feed role, is closed
   * (1008) rather than left streaming. Returns how many were closed.
   */
  reauthenticate(): number {
    let closed = 0;
    for (const ws of this.wss.clients) {
      const principal = this.opts.admin.authenticate(this.credentials.get(ws));
      if (principal && this.roles.includes(principal.role)) {
        this.principals.set(ws, principal);
        continue;
      }
      closed++;
      ws.close(1008, 'API key revoked');
    }
    if (closed) this.opts.logger.info({ closed, clients: this.wss.clients.size - closed }, 'event feed clients closed: their API key was revoked');
    return closed;
  }

  private broadcast(ev: CallEvent): void {
    if (this.wss.clients.size === 0) return;
    const text = JSON.stringify(ev);
    for (const ws of this.wss.clients) {
      const principal = this.principals.get(ws);
      if (principal && seesTenant(principal, ev.tenant)) this.sendTo(ws, text);
    }
  }

  private sendTo(ws: WebSocket, text: string): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > this.opts.maxBufferedBytes) this.drop(ws, 'slow');
    else ws.send(text);
  }

  private drop(ws: WebSocket, reason: 'slow' | 'unresponsive'): void {
    this.opts.metrics.eventFeedDropped.inc({ reason });
    this.opts.logger.warn({ reason, bufferedAmount: ws.bufferedAmount }, 'event feed client dropped');
    // terminate(), not close(): a close frame would queue behind the backlog the client is not reading.
    ws.terminate();
  }

  private ping(): void {
    for (const ws of this.wss.clients) {
      if (!this.alive.has(ws)) {
        this.drop(ws, 'unresponsive');
        continue;
      }
      this.alive.delete(ws);
      ws.ping();
    }
  }

  async close(): Promise<void> {
    this.unsubscribe();
    clearInterval(this.pinger);
    this.opts.server.off('upgrade', this.onUpgrade);
    for (const ws of this.wss.clients) ws.close(1001, 'gateway stopping');
    // A polite close waits for the client's answer, but not for long: then the sockets are cut.
    const until = Date.now() + 1000;
    while (this.wss.clients.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.opts.metrics.eventFeedClients.set(0);
  }
}
