import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../observability/logger.js';
import { readBody, sendJson } from './server.js';

export type Role = 'admin' | 'supervisor' | 'reporting';

export interface Principal {
  /** The key's name (logged in audit lines); never the key itself. */
  name: string;
  role: Role;
  /** A key with a tenant sees that tenant only, whatever its role (seesTenant); undefined = every tenant. */
  tenant?: string;
}

export interface AdminRequest {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  principal: Principal;
  /** Parsed JSON body (POST/PUT/PATCH); throws a 400 AdminHttpError when it is not JSON. */
  json(): Promise<unknown>;
}

export class AdminHttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

type Handler = (r: AdminRequest) => Promise<void> | void;

interface Route {
  method: string;
  path: string;
  pattern: RegExp;
  keys: string[];
  roles: readonly Role[] | 'public';
  handler: Handler;
}

/**
 * Whether a key may see data of this tenant. A key given a tenant (name:role:tenant:key) is scoped to it whatever its
 * role: a tenant's supervisor never reads, hears or hangs up another tenant's calls.
 */
export function seesTenant(p: Principal, tenant: string): boolean {
  return p.tenant === undefined || p.tenant === tenant;
}

/** The principal public routes see when the request carried no valid key: no role's data is theirs. */
const ANONYMOUS: Principal = { name: 'anonymous', role: 'reporting', tenant: '\u0000none' };

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * The admin API under /v1: bearer keys mapped to roles, 401 (who are you?) distinct from 403 (not allowed), and an
 * audit line for every mutating request naming the key, never showing it. Feature modules add their routes.
 */
export class AdminRouter {
  private readonly routes: Route[] = [];
  private keys: { digest: Buffer; principal: Principal }[] = [];

  /** keys: key → "name:role" or "name:role:tenant" (from WAGW_ADMIN_KEYS). */
  constructor(keys: Map<string, string>, private readonly logger: Logger) {
    this.setKeys(keys);
  }

  /**
   * Replaces every key at once (SIGHUP re-reads WAGW_ADMIN_KEYS or its _FILE): a revoked key is refused from the next
   * request on.
   */
  setKeys(keys: Map<string, string>): void {
    this.keys = [...keys].map(([key, spec]) => {
      const [name = 'unnamed', role = 'reporting', tenant] = spec.split(':');
      return { digest: digest(key), principal: { name, role: role as Role, tenant } };
    });
  }

  get keyCount(): number {
    return this.keys.length;
  }

  /** pattern like '/v1/calls/:id'; roles 'public' for a route that needs no key (e.g. the OpenAPI description). */
  add(method: string, pattern: string, roles: readonly Role[] | 'public', handler: Handler): void {
    const keys: string[] = [];
    const re = new RegExp(`^${pattern.replace(/:([a-zA-Z]+)/g, (_, k: string) => { keys.push(k); return '([^/]+)'; })}$`);
    this.routes.push({ method, path: pattern, pattern: re, keys, roles, handler });
  }

  /** The registered routes (for the OpenAPI coverage test). */
  list(): { method: string; path: string; roles: readonly Role[] | 'public' }[] {
    return this.routes.map(({ method, path, roles }) => ({ method, path, roles }));
  }

  /** Comparing digests in constant time: neither the key's length nor its prefix leaks through timing. */
  authenticate(header: string | undefined): Principal | undefined {
    const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
    if (!m) return undefined;
    const d = digest(m[1]!.trim());
    let found: Principal | undefined;
    for (const k of this.keys) if (timingSafeEqual(k.digest, d)) found = k.principal;
    return found;
  }

  /** Returns false when no route matches the path (the caller answers 404). */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const pathMatches = this.routes.filter((r) => r.pattern.test(url.pathname));
    if (pathMatches.length === 0) return false;
    const route = pathMatches.find((r) => r.method === req.method);
    if (!route) {
      sendJson(res, 405, { error: 'method not allowed' });
      return true;
    }
    const principal = this.authenticate(req.headers.authorization) ?? (route.roles === 'public' ? ANONYMOUS : undefined);
    if (!principal) {
      res.setHeader('www-authenticate', 'Bearer');
      sendJson(res, 401, { error: 'missing or unknown API key' });
      return true;
    }
    const mutating = req.method !== 'GET' && req.method !== 'HEAD';
    if (route.roles !== 'public' && !route.roles.includes(principal.role)) {
      // A refused attempt to change something is worth an audit line too: who tried what.
      if (mutating) this.logger.warn({ audit: true, denied: true, key: principal.name, role: principal.role, method: req.method, path: url.pathname }, 'admin API request refused');
      sendJson(res, 403, { error: `role ${principal.role} may not ${req.method} ${url.pathname}` });
      return true;
    }
    const match = route.pattern.exec(url.pathname)!;
    let params: Record<string, string>;
    try {
      params = Object.fromEntries(route.keys.map((k, i) => [k, decodeURIComponent(match[i + 1]!)]));
    } catch {
      // A broken percent-escape (e.g. %E0%A4%A) is the client's mistake, not an internal error.
      sendJson(res, 400, { error: 'malformed percent-encoding in the request path' });
      return true;
    }
    if (mutating) {
      this.logger.info({ audit: true, key: principal.name, role: principal.role, method: req.method, path: url.pathname }, 'admin API request');
    }
    const json = async (): Promise<unknown> => {
      const body = await readBody(req, 1024 * 1024);
      if (body.length === 0) return {};
      try {
        return JSON.parse(body.toString('utf8'));
      } catch {
        throw new AdminHttpError(400, 'body is not JSON');
      }
    };
    try {
      await route.handler({ req, res, url, params, principal, json });
    } catch (err) {
      if (err instanceof AdminHttpError) sendJson(res, err.status, { error: err.message });
      else throw err;
    }
    return true;
  }
}
