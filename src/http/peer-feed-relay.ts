/**
 * The event feed across instances (cluster.peers): a wallboard connected to one instance with `?cluster=1` also gets
 * the call events of every peer, each marked with the `instance` it came from. Per such client, one WebSocket to
 * each peer's own feed, opened with the client's bearer key (every instance has the same admin keys, and the peer
 * applies that key's tenant) and FORWARDED_HEADER, so a peer streams its own calls only and never relays further.
 * A peer connection that drops is reopened while the client stays; the client leaving closes them all.
 */
import { WebSocket } from 'ws';
import type { Logger } from '../observability/logger.js';
import { urlForLog } from '../observability/url-redaction.js';
import { FORWARDED_HEADER } from './webhook-forwarder.js';

const RECONNECT_MS = 2000;

export interface PeerFeedRelayOptions {
  /** Base URLs (http://host:port) of the other instances. */
  peers: readonly string[];
  /** The client's Authorization, passed on as is. */
  authorization: string;
  /** One peer event, already marked with its instance, for the client. */
  deliver: (text: string) => void;
  /** This instance's own feed id: a shared peer list may name this instance, whose events the client has already. */
  selfFeedId: string;
  logger: Logger;
  reconnectMs?: number;
}

export class PeerFeedRelay {
  private readonly sockets = new Set<WebSocket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Peers whose feed is failing now: logged once per outage, not at every retry. */
  private readonly failing = new Set<string>();
  private closed = false;

  constructor(private readonly opts: PeerFeedRelayOptions) {
    for (const peer of opts.peers) this.open(peer.replace(/\/+$/, ''));
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
  }

  private open(peer: string): void {
    if (this.closed) return;
    const ws = new WebSocket(`${peer.replace(/^http/, 'ws')}/v1/events`, {
      headers: { authorization: this.opts.authorization, [FORWARDED_HEADER]: '1' },
    });
    this.sockets.add(ws);
    // Refused: the peer does not take the key, or it is this instance; either way not asked again.
    let refused = false;
    ws.on('message', (data) => {
      if (refused) return;
      let ev: unknown;
      try {
        ev = JSON.parse(String(data));
      } catch {
        return;
      }
      if (typeof ev !== 'object' || ev === null) return;
      if ((ev as { type?: unknown }).type === 'feed.ready') {
        if ((ev as { feedId?: unknown }).feedId !== this.opts.selfFeedId) return;
        refused = true;
        ws.terminate();
        return;
      }
      this.opts.deliver(JSON.stringify({ ...ev, instance: peer }));
    });
    ws.on('open', () => this.failing.delete(peer));
    ws.on('unexpected-response', (_req, res) => {
      // 401/403: the peer does not know this key (every instance needs the same admin keys); retrying cannot help.
      refused = true;
      this.opts.logger.warn({ peer: urlForLog(peer), status: res.statusCode }, 'peer refused the event feed: its events are not relayed');
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err) => {
      if (refused || this.failing.has(peer)) return;
      this.failing.add(peer);
      this.opts.logger.warn({ peer: urlForLog(peer), err: err.message }, 'peer event feed failed: retrying');
    });
    ws.on('close', () => {
      this.sockets.delete(ws);
      if (this.closed || refused) return;
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.open(peer);
      }, this.opts.reconnectMs ?? RECONNECT_MS);
      t.unref();
      this.timers.add(t);
    });
  }
}
