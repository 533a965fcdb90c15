import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { AdminRequest, AdminRouter, Principal, Role } from './admin-router.js';
import { AdminHttpError, seesTenant } from './admin-router.js';
import { sendJson } from './server.js';
import { openApiDocument } from './openapi.js';
import { recordToCsvRow, CSV_HEADER } from './records-csv.js';
import type { Call } from '../calls/call.js';
import type { CallRegistry } from '../calls/registry.js';
import {
  DIRECTIONS, InvalidCursorError, OUTCOMES, recordCursor, pageSize,
  type CallRecord, type CallRecordQuery, type CallRecordStore, type Direction, type Outcome,
} from '../store/call-record.js';
import type { MetaNoticeView } from '../whatsapp/meta-notices.js';
import type { ClusterAdmin } from './cluster-admin.js';

export const ALL_ROLES: readonly Role[] = ['admin', 'supervisor', 'reporting'];
export const STAFF: readonly Role[] = ['admin', 'supervisor'];

export interface AdminApiDeps {
  store: CallRecordStore;
  registry: CallRegistry;
  /** For the status summary. */
  status: () => Record<string, unknown>;
  /** Meta's latest account notices (restrictions, violations, settings), shown to keys without a tenant only. */
  metaNotices?: () => MetaNoticeView[];
  /** Page size the CSV export walks the store with. */
  csvPageSize?: number;
  /** The other instances (cluster.peers): live calls across all of them, and a call id unknown here asked there. */
  cluster?: ClusterAdmin;
}

/**
 * The admin API's call routes (JSON under /v1): call records (list, one, CSV export), live calls with their quality,
 * hang-up, status summary, and the OpenAPI description. Role matrix: admin and supervisor read everything and may
 * hang up; reporting reads records of its own tenant only.
 */
export function registerAdminApi(admin: AdminRouter, deps: AdminApiDeps): void {
  const { store, registry } = deps;

  admin.add('GET', '/v1/openapi.json', 'public', ({ res }) => sendJson(res, 200, openApiDocument()));

  admin.add('GET', '/v1/records', ALL_ROLES, async ({ url, res, principal }) => {
    const query = recordQuery(url.searchParams, principal);
    const records = await listOr400(store, query);
    const limit = pageSize(query.limit);
    const last = records.at(-1);
    sendJson(res, 200, { records, nextCursor: records.length === limit && last ? recordCursor(last) : null });
  });

  admin.add('GET', '/v1/records.csv', ALL_ROLES, async ({ url, res, req, principal }) => {
    const query = recordQuery(url.searchParams, principal);
    await streamCsv(store, { ...query, limit: deps.csvPageSize ?? 500 }, res, () => req.destroyed || res.destroyed);
  });

  admin.add('GET', '/v1/records/:id', ALL_ROLES, async ({ params, res, principal }) => {
    const record = await store.get(params.id!);
    // Another tenant's record is as absent as a missing one: its existence is not disclosed.
    if (!record || !seesTenant(principal, record.tenant)) throw new AdminHttpError(404, 'no such call record');
    sendJson(res, 200, record);
  });

  admin.add('GET', '/v1/calls', STAFF, async ({ req, res, url, principal }) => {
    const calls = registry.list().filter((c) => seesTenant(principal, c.ctx.tenant)).map(liveCall);
    const cluster = deps.cluster;
    if (url.searchParams.get('cluster') !== '1' || !cluster?.reaches(req)) return sendJson(res, 200, { calls });
    const answers = await cluster.ask(req, 'GET', '/v1/calls');
    // A shared peer list may name this instance too: its calls are here already.
    const seen = new Set(calls.map((c) => c.id));
    for (const a of answers) {
      const theirs = a.status === 200 ? (a.body as { calls?: Array<Record<string, unknown>> } | undefined)?.calls ?? [] : [];
      for (const c of theirs.filter((x) => !seen.has(x.id))) {
        seen.add(c.id);
        calls.push({ ...c, instance: a.peer });
      }
    }
    sendJson(res, 200, { calls, peers: answers.map((a) => ({ peer: a.peer, ok: a.status === 200, ...(a.status !== 200 ? { status: a.status } : {}) })) });
  });

  /** This instance's answer, or the answer of the peer that holds the call; 404 when none does. */
  const hereOrOnPeer = async (r: AdminRequest, here: (call: Call) => Promise<unknown> | unknown): Promise<void> => {
    const call = registry.get(r.params.id!) ?? registry.byWhatsAppId(r.params.id!);
    if (call || !deps.cluster?.reaches(r.req)) return sendJson(r.res, 200, await here(liveCallOr404(registry, r.params.id!, r.principal)));
    const found = await deps.cluster.first(r.req, r.req.method ?? 'GET', r.url.pathname);
    if (!found) throw new AdminHttpError(404, 'no such live call on this instance or its peers');
    sendJson(r.res, 200, { ...(found.body as Record<string, unknown>), instance: found.peer });
  };

  admin.add('GET', '/v1/calls/:id', STAFF, (r) => hereOrOnPeer(r, liveCall));

  const hangUp = (r: AdminRequest): Promise<void> => hereOrOnPeer(r, async (call) => {
    const record = await call.end({ by: 'gateway', outcome: call.state === 'answered' ? 'answered' : 'cancelled', cause: 'admin_hangup' });
    return { ended: true, record };
  });
  admin.add('POST', '/v1/calls/:id/hangup', STAFF, hangUp);
  admin.add('DELETE', '/v1/calls/:id', STAFF, hangUp);

  admin.add('GET', '/v1/status', STAFF, ({ res, principal }) => {
    const calls = registry.list().filter((c) => seesTenant(principal, c.ctx.tenant));
    const byState: Record<string, number> = {};
    const byDirection: Record<string, number> = {};
    for (const c of calls) {
      byState[c.state] = (byState[c.state] ?? 0) + 1;
      byDirection[c.ctx.direction] = (byDirection[c.ctx.direction] ?? 0) + 1;
    }
    sendJson(res, 200, {
      ...deps.status(),
      draining: registry.draining,
      liveCalls: { total: calls.length, byState, byDirection },
      // Account-wide, so not for a key scoped to one tenant.
      ...(principal.tenant === undefined && deps.metaNotices ? { metaNotices: deps.metaNotices() } : {}),
      store: { kind: store.kind, open: store.isOpen },
    });
  });
}

/** A live call by gateway or WhatsApp id; another tenant's is as absent as a missing one for a tenant's key. */
export function liveCallOr404(registry: CallRegistry, id: string, principal: Principal): Call {
  const call = registry.get(id) ?? registry.byWhatsAppId(id);
  if (!call || call.isEnded || !seesTenant(principal, call.ctx.tenant)) throw new AdminHttpError(404, 'no such live call');
  return call;
}

export function liveCall(c: Call): Record<string, unknown> {
  const now = Date.now();
  return {
    id: c.id,
    state: c.state,
    direction: c.ctx.direction,
    tenant: c.ctx.tenant,
    businessNumber: c.ctx.businessNumber,
    userWaId: c.ctx.userWaId,
    userName: c.ctx.userName,
    sipTarget: c.ctx.sipTarget,
    sipAgent: c.sipAgent,
    waCallId: c.waCallId,
    sipCallId: c.sipCallId,
    offeredAt: c.offeredAt.toISOString(),
    answeredAt: c.answeredAt?.toISOString(),
    durationSeconds: c.answeredAt ? Math.round((now - c.answeredAt.getTime()) / 100) / 10 : 0,
    quality: c.currentQuality() ?? null,
  };
}

const isDirection = (v: string): v is Direction => (DIRECTIONS as readonly string[]).includes(v);
const isOutcome = (v: string): v is Outcome => (OUTCOMES as readonly string[]).includes(v);

function time(params: URLSearchParams, name: string): string | undefined {
  const v = params.get(name);
  if (v === null || v === '') return undefined;
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw new AdminHttpError(400, `${name} must be an ISO 8601 time such as 2025-01-31T00:00:00Z`);
  return new Date(ms).toISOString();
}

/** Filters from the query string; a tenant key's own tenant is imposed, another tenant asked for is a 403. */
export function recordQuery(params: URLSearchParams, principal: Principal): CallRecordQuery {
  const q: CallRecordQuery = {};
  q.since = time(params, 'since');
  q.until = time(params, 'until');
  const direction = params.get('direction');
  if (direction) {
    if (!isDirection(direction)) throw new AdminHttpError(400, `direction must be one of ${DIRECTIONS.join(', ')}`);
    q.direction = direction;
  }
  const outcome = params.get('outcome');
  if (outcome) {
    if (!isOutcome(outcome)) throw new AdminHttpError(400, `outcome must be one of ${OUTCOMES.join(', ')}`);
    q.outcome = outcome;
  }
  const number = params.get('number');
  if (number) q.number = number.replace(/^\+/, '');
  const tenant = params.get('tenant') || undefined;
  if (principal.tenant !== undefined) {
    if (tenant !== undefined && tenant !== principal.tenant) throw new AdminHttpError(403, `key ${principal.name} may read tenant ${principal.tenant} only`);
    q.tenant = principal.tenant;
  } else if (tenant !== undefined) {
    q.tenant = tenant;
  }
  const limit = params.get('limit');
  if (limit) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1) throw new AdminHttpError(400, 'limit must be a positive integer (at most 1000)');
    q.limit = n;
  }
  const cursor = params.get('cursor');
  if (cursor) q.cursor = cursor;
  return q;
}

async function listOr400(store: CallRecordStore, q: CallRecordQuery): Promise<CallRecord[]> {
  try {
    return await store.list(q);
  } catch (err) {
    if (err instanceof InvalidCursorError) throw new AdminHttpError(400, err.message);
    throw err;
  }
}

/**
 * Walks the store page by page and writes each page's rows as they come, waiting for the client to drain when the
 * socket's buffer is full: memory stays at one page whatever the number of records.
 */
async function streamCsv(store: CallRecordStore, query: CallRecordQuery, res: ServerResponse, gone: () => boolean): Promise<void> {
  // The first page is read before the status line, so a bad cursor is still a clean 400.
  let page = await listOr400(store, query);
  res.writeHead(200, {
    'content-type': 'text/csv; charset=utf-8',
    'content-disposition': 'attachment; filename="call-records.csv"',
    'cache-control': 'no-store',
  });
  const write = async (chunk: string): Promise<void> => {
    if (res.write(chunk) || res.destroyed) return;
    await new Promise<void>((resolve) => {
      const done = (): void => { res.off('drain', done); res.off('close', done); resolve(); };
      res.on('drain', done);
      res.on('close', done);
    });
  };
  await write(`${CSV_HEADER}\r\n`);
  const limit = pageSize(query.limit);
  for (;;) {
    if (gone()) return;
    if (page.length > 0) await write(page.map(recordToCsvRow).join(''));
    const last = page.at(-1);
    if (page.length < limit || !last) break;
    page = await store.list({ ...query, cursor: recordCursor(last) });
  }
  res.end();
}

let version: string | undefined;
/** The package version, read once. */
export function gatewayVersion(): string {
  if (version === undefined) {
    try {
      version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
