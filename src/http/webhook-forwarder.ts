/**
 * Several gateway instances behind one webhook URL (cluster.peers): behind a load balancer, Meta's delivery lands on any
 * instance, but a call lives on one. A delivery naming a call not live here is passed on to the peers byte for byte,
 * with Meta's own signature, so each peer verifies it exactly as if Meta had sent it; the FORWARDED_HEADER tells the
 * peer not to pass it on again and not to start calls from it (the receiving instance owns new user-initiated calls;
 * the peers only remember them, so that a retry of Meta's landing on a peer is a duplicate there).
 */
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { urlForLog } from '../observability/url-redaction.js';

export const FORWARDED_HEADER = 'x-wagw-forwarded';

/** Pause before each retry of a peer that did not answer or answered 5xx/429; a 4xx is final. */
const RETRY_DELAYS_MS = [200, 1000];

export interface WebhookForwarderOptions {
  /** Base URLs (http://host:port) of the other instances, read at each delivery so that a config reload applies. */
  peers: () => readonly string[];
  timeoutMs: () => number;
  logger: Logger;
  metrics: Metrics;
}

export class WebhookForwarder {
  constructor(private readonly opts: WebhookForwarderOptions) {}

  get enabled(): boolean {
    return this.opts.peers().length > 0;
  }

  /** Sends the delivery to every peer in the background; `path` is the webhook path it came on (one per Meta app). */
  forward(raw: Buffer, signature: string | undefined, path: string, why: string): void {
    const body = new Uint8Array(raw);
    for (const peer of this.opts.peers()) void this.deliver(`${peer.replace(/\/+$/, '')}${path}`, body, signature, why);
  }

  private async deliver(url: string, body: Uint8Array<ArrayBuffer>, signature: string | undefined, why: string): Promise<void> {
    const { logger, metrics } = this.opts;
    const headers: Record<string, string> = { 'content-type': 'application/json', [FORWARDED_HEADER]: '1' };
    if (signature !== undefined) headers['x-hub-signature-256'] = signature;
    let problem = '';
    for (let attempt = 0; attempt <= RETRY_DELAYS_MS.length; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[attempt - 1]));
      try {
        const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.opts.timeoutMs()) });
        await res.arrayBuffer();
        if (res.ok) {
          metrics.webhookForwards.inc({ result: 'ok' });
          logger.debug({ peer: urlForLog(url), why }, 'webhook delivery forwarded to a peer instance');
          return;
        }
        problem = `HTTP ${res.status}`;
        if (res.status < 500 && res.status !== 429) {
          metrics.webhookForwards.inc({ result: 'refused' });
          // 401: the peer checks signatures with another app secret; 404: no such webhook path there.
          logger.error({ peer: urlForLog(url), status: res.status, why }, 'peer instance refused a forwarded webhook: every instance needs the same apps and app secrets');
          return;
        }
      } catch (err) {
        problem = (err as Error).message;
      }
    }
    metrics.webhookForwards.inc({ result: 'failed' });
    logger.error({ peer: urlForLog(url), problem, why }, 'webhook delivery could not be forwarded to a peer instance: its calls may miss this event');
  }
}
