/**
 * The admin API's live calls across instances (cluster.peers): a call lives on one instance, while a supervisor's
 * request reaches any. `GET /v1/calls?cluster=1` adds every peer's live calls; a call id unknown here is looked up,
 * or hung up, on the peers. The caller's own bearer key goes along (every instance needs the same admin keys), with
 * FORWARDED_HEADER so that a peer answers from its own calls only and never asks further.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from '../observability/logger.js';
import { urlForLog } from '../observability/url-redaction.js';
import { FORWARDED_HEADER } from './webhook-forwarder.js';

/** A hang-up on a peer answers once that call's record is written: its teardown, not a network round trip. */
const CHANGE_TIMEOUT_MS = 15_000;

export interface ClusterAdminOptions {
  /** Base URLs of the other instances (cluster.peers), read per request so that a reload applies. */
  peers: () => readonly string[];
  /** For reads (cluster.forwardTimeoutMs). */
  timeoutMs: () => number;
  logger: Logger;
}

export interface PeerAnswer {
  peer: string;
  status: number;
  body: unknown;
}

export class ClusterAdmin {
  constructor(private readonly opts: ClusterAdminOptions) {}

  /** True when this request may be passed on: peers are configured and it did not come from one. */
  reaches(req: IncomingMessage): boolean {
    return this.opts.peers().length > 0 && req.headers[FORWARDED_HEADER] === undefined;
  }

  /** The same admin request on every peer, in parallel; a peer that fails or times out answers status 0. */
  async ask(req: IncomingMessage, method: string, path: string): Promise<PeerAnswer[]> {
    const headers: Record<string, string> = { [FORWARDED_HEADER]: '1' };
    if (req.headers.authorization) headers.authorization = req.headers.authorization;
    return Promise.all(this.opts.peers().map(async (base): Promise<PeerAnswer> => {
      const peer = base.replace(/\/+$/, '');
      try {
        const timeoutMs = method === 'GET' ? this.opts.timeoutMs() : CHANGE_TIMEOUT_MS;
        const res = await fetch(`${peer}${path}`, { method, headers, signal: AbortSignal.timeout(timeoutMs) });
        const text = await res.text();
        return { peer, status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
      } catch (err) {
        this.opts.logger.warn({ peer: urlForLog(peer), path, err: (err as Error).message }, 'peer instance did not answer an admin request');
        return { peer, status: 0, body: undefined };
      }
    }));
  }

  /** The first peer that answers 2xx (the one holding the call), or undefined. */
  async first(req: IncomingMessage, method: string, path: string): Promise<PeerAnswer | undefined> {
    return (await this.ask(req, method, path)).find((a) => a.status >= 200 && a.status < 300);
  }
}
