import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WebhookReceiver } from './webhook-route.js';
import type { AdminRouter } from './admin-router.js';

export type ReadinessChecks = () => Record<string, boolean>;

export interface HttpServerOptions {
  host: string;
  port: number;
  logger: Logger;
  metrics: Metrics;
  webhook: WebhookReceiver;
  readiness: ReadinessChecks;
  admin?: AdminRouter;
}

export interface RunningHttpServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 2 * 1024 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startHttpServer(opts: HttpServerOptions): Promise<RunningHttpServer> {
  const { logger, metrics, webhook } = opts;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = `${req.method} ${url.pathname}`;
    const handle = async (): Promise<void> => {
      switch (route) {
        case 'GET /healthz':
          return sendJson(res, 200, { status: 'alive' });
        case 'GET /readyz': {
          const checks = opts.readiness();
          const ready = Object.values(checks).every(Boolean);
          return sendJson(res, ready ? 200 : 503, { ready, checks });
        }
        case 'GET /metrics': {
          const text = await metrics.registry.metrics();
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
          return;
        }
        case 'GET /webhooks/whatsapp':
          return webhook.verifyHandshake(url.searchParams, res);
        case 'POST /webhooks/whatsapp':
          return webhook.receive(req, res);
        default: {
          // One callback URL per Meta app: /webhooks/whatsapp/<app> verifies with that app's secret only.
          const app = /^\/webhooks\/whatsapp\/([a-z0-9][a-z0-9_-]{0,62})$/.exec(url.pathname)?.[1];
          if (app !== undefined && req.method === 'GET') return webhook.verifyHandshake(url.searchParams, res, app);
          if (app !== undefined && req.method === 'POST') return webhook.receive(req, res, app);
          if (url.pathname.startsWith('/v1/') && opts.admin && (await opts.admin.handle(req, res, url))) return;
          return sendJson(res, 404, { error: 'not found' });
        }
      }
    };
    handle().catch((err: Error) => {
      logger.error({ err: err.message, route }, 'HTTP handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => { server.off('error', reject); resolve(); });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: opts.host, port }, 'HTTP server listening');
  return {
    server,
    port,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}
