/**
 * Minimal webhook endpoint for testing the double itself (stands in for the gateway).
 *
 *   const rx = await startWebhookReceiver({ verifyToken?, status? = 200 });
 *   rx.url                       http://127.0.0.1:PORT/webhook
 *   rx.received                  ReceivedWebhook[] { headers, rawBody, json, at }
 *   await rx.waitFor(pred, timeoutMs?)   resolves with the first matching (past or future) delivery
 *   rx.onWebhook = (w) => {...}  hook called for each POST (after it was answered)
 *   GET ?hub.mode=subscribe&hub.verify_token=<verifyToken>&hub.challenge=X -> 200 "X", else 403
 *   await rx.close()
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebhookEnvelope } from './webhook-sender.js';

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  rawBody: string;
  json: WebhookEnvelope | undefined;
  at: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  status: number;
  onWebhook: ((w: ReceivedWebhook) => void) | undefined;
  waitFor(pred: (w: ReceivedWebhook) => boolean, timeoutMs?: number): Promise<ReceivedWebhook>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(opts: { verifyToken?: string; status?: number } = {}): Promise<WebhookReceiver> {
  const waiters = new Set<{ pred: (w: ReceivedWebhook) => boolean; resolve: (w: ReceivedWebhook) => void }>();
  const rx: WebhookReceiver = {
    url: '',
    received: [],
    status: opts.status ?? 200,
    onWebhook: undefined,
    waitFor(pred, timeoutMs = 5000) {
      const found = rx.received.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = {
          pred,
          resolve: (x: ReceivedWebhook): void => {
            clearTimeout(t);
            waiters.delete(w);
            resolve(x);
          },
        };
        const t = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`webhook receiver: nothing matching within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(w);
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET') {
      const ok = url.searchParams.get('hub.mode') === 'subscribe' && url.searchParams.get('hub.verify_token') === opts.verifyToken;
      res.writeHead(ok ? 200 : 403, { 'content-type': 'text/plain' });
      res.end(ok ? (url.searchParams.get('hub.challenge') ?? '') : 'forbidden');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let json: WebhookEnvelope | undefined;
      try {
        json = JSON.parse(rawBody) as WebhookEnvelope;
      } catch {
        json = undefined;
      }
      const w: ReceivedWebhook = { headers: req.headers, rawBody, json, at: Date.now() };
      rx.received.push(w);
      res.writeHead(rx.status);
      res.end('', () => {
        rx.onWebhook?.(w);
        for (const x of [...waiters]) if (x.pred(w)) x.resolve(w);
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  rx.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`;
  return rx;
}
