/**
 * Helpers of the routing end-to-end tests: a Graph front that sends each phone-number id to its own Meta double
 * (several Meta apps behind one graph.facebook.com), and a tiny routing-hook server.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestServer {
  url: string;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function close(server: Server): Promise<void> {
  return new Promise((r) => { server.closeAllConnections(); server.close(() => r()); });
}

async function body(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const c of req) s += (c as Buffer).toString('utf8');
  return s;
}

/** Forwards /vNN.0/<pnid>/... to backendFor(pnid) (read per request, so a double started later can be named). */
export async function startGraphFront(backendFor: (phoneNumberId: string) => string): Promise<TestServer> {
  const server = createServer((req, res) => {
    void (async () => {
      const pnid = /^\/v\d+\.\d+\/([^/?]+)/.exec(req.url ?? '')?.[1] ?? '';
      const text = await body(req);
      const headers: Record<string, string> = {};
      for (const h of ['authorization', 'content-type']) if (typeof req.headers[h] === 'string') headers[h] = req.headers[h] as string;
      const r = await fetch(backendFor(pnid) + (req.url ?? ''), { method: req.method ?? 'GET', headers, ...(req.method === 'POST' ? { body: text } : {}) });
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
      res.end(await r.text());
    })().catch((err: Error) => { res.writeHead(502); res.end(err.message); });
  });
  return { url: await listen(server), close: () => close(server) };
}

export type HookBehaviour = { kind: 'answer'; body: unknown } | { kind: 'slow'; ms: number } | { kind: 'error'; status: number };

/** The routing hook: records what it was sent and behaves as `behaviour` says. */
export async function startHookServer(): Promise<TestServer & { behaviour: HookBehaviour; requests: unknown[] }> {
  const state = { behaviour: { kind: 'error', status: 500 } as HookBehaviour, requests: [] as unknown[] };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void body(req).then((text) => {
      state.requests.push(JSON.parse(text));
      const b = state.behaviour;
      if (b.kind === 'slow') {
        setTimeout(() => { if (!res.destroyed) res.end('{"action":"reject"}'); }, b.ms);
        return;
      }
      if (b.kind === 'error') {
        res.writeHead(b.status);
        res.end('hook failure');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(b.body));
    });
  });
  const url = await listen(server);
  return Object.assign(state, { url: `${url}/route`, close: () => close(server) });
}
