import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export type CallAction = 'connect' | 'pre_accept' | 'accept' | 'reject' | 'terminate';

/** A failed Graph request, carrying Meta's error code (§2.7, §2.8) when Meta gave one. */
export class GraphError extends Error {
  override name = 'GraphError';
  constructor(
    readonly action: string,
    readonly httpStatus: number,
    readonly code: number | undefined,
    readonly details: string | undefined,
    message: string,
    /**
     * Meta may have carried the request out all the same: this or an earlier attempt timed out, lost its connection or
     * got a 5xx (a retried `accept` then fails "already in progress" although the call is accepted).
     */
    readonly uncertain = false,
  ) {
    super(message);
  }
}

/** 138012's error_data.details names the next allowed time; Meta's wording is not fixed, so take the first unix time or ISO date. */
export function nextAllowedTime(details: string | undefined): number | undefined {
  if (!details) return undefined;
  const unix = /\b(1\d{9})\b/.exec(details);
  if (unix) return Number(unix[1]) * 1000;
  const iso = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z/.exec(details);
  return iso ? Date.parse(iso[0]) : undefined;
}

export interface GraphClientOptions {
  baseUrl: string;
  apiVersion: string;
  token: string;
  timeoutMs: number;
  retries: number;
  logger: Logger;
  metrics: Metrics;
}

interface GraphErrorBody { error?: { message?: string; code?: number; error_data?: { details?: string } } }

/**
 * Only server errors are retried (200 ms, then 400 ms, …). A 429 is a rate limit (613 on call_permissions, 138002 and
 * 138005 on calls): retrying within a second only spends more of it, so the caller gets it at once.
 */
const RETRYABLE = (status: number): boolean => status >= 500;

export class GraphClient {
  constructor(private readonly opts: GraphClientOptions) {}

  async callAction(phoneNumberId: string, action: CallAction, fields: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.request(action, 'POST', `/${phoneNumberId}/calls`, { messaging_product: 'whatsapp', action, ...fields });
  }

  preAccept(phoneNumberId: string, callId: string, sdp: string) {
    return this.callAction(phoneNumberId, 'pre_accept', { call_id: callId, session: { sdp_type: 'answer', sdp } });
  }

  accept(phoneNumberId: string, callId: string, sdp: string, bizOpaque?: string) {
    return this.callAction(phoneNumberId, 'accept', {
      call_id: callId, session: { sdp_type: 'answer', sdp }, ...(bizOpaque ? { biz_opaque_callback_data: bizOpaque } : {}),
    });
  }

  reject(phoneNumberId: string, callId: string) {
    return this.callAction(phoneNumberId, 'reject', { call_id: callId });
  }

  terminate(phoneNumberId: string, callId: string) {
    return this.callAction(phoneNumberId, 'terminate', { call_id: callId });
  }

  /**
   * Business-initiated call: returns the wacid Meta assigned. Never retried: a connect that timed out or failed with
   * a 5xx may still have rung the user, and a second one would ring them twice (or fail 138003).
   * Undefined when Meta took the call but named no id (some samples answer just {"success":true}, §2.1): the user is
   * being rung all the same, and the wacid comes with the webhooks, matched by biz_opaque_callback_data.
   */
  async connect(phoneNumberId: string, to: string, sdp: string, bizOpaque: string): Promise<string | undefined> {
    const res = await this.request('connect', 'POST', `/${phoneNumberId}/calls`, {
      messaging_product: 'whatsapp', action: 'connect', to, session: { sdp_type: 'offer', sdp }, biz_opaque_callback_data: bizOpaque,
    }, { retries: 0 });
    const calls = res.calls;
    const id = Array.isArray(calls) && typeof calls[0]?.id === 'string' ? (calls[0].id as string) : undefined;
    if (!id) this.opts.logger.warn({ bizOpaque }, 'Graph connect succeeded without a call id: the wacid will come with the webhooks');
    return id || undefined;
  }

  /** GET call_permissions (§2.5): the user's permission and the request / call limits Meta counts. */
  async callPermissions(phoneNumberId: string, userWaId: string): Promise<RemotePermission> {
    const res = await this.request('call_permissions', 'GET', `/${phoneNumberId}/call_permissions?user_wa_id=${encodeURIComponent(userWaId)}`);
    return parseCallPermissions(res);
  }

  /**
   * Sends a call permission request (§2.3 free-form interactive, §2.4 template); returns the message's wamid.
   * Not retried: a request Meta accepted counts against the 1-per-24-h limit even if its response was lost.
   */
  async sendCallPermissionRequest(phoneNumberId: string, to: string, content: PermissionRequestContent): Promise<string> {
    const body = 'templateName' in content
      ? {
        messaging_product: 'whatsapp', recipient_type: 'individual', to, type: 'template',
        template: { name: content.templateName, language: { code: content.languageCode ?? 'en' }, ...(content.components ? { components: content.components } : {}) },
      }
      : {
        messaging_product: 'whatsapp', recipient_type: 'individual', to, type: 'interactive',
        interactive: {
          type: 'call_permission_request', action: { name: 'call_permission_request' },
          ...(content.bodyText ? { body: { text: content.bodyText } } : {}),
        },
      };
    const res = await this.request('messages', 'POST', `/${phoneNumberId}/messages`, body, { retries: 0 });
    const messages = res.messages;
    const id = Array.isArray(messages) && typeof messages[0]?.id === 'string' ? (messages[0].id as string) : undefined;
    if (!id) throw new GraphError('messages', 200, undefined, undefined, 'permission request accepted without a message id');
    return id;
  }

  async request(action: string, method: 'GET' | 'POST', path: string, body?: unknown, opts: { retries?: number } = {}): Promise<Record<string, unknown>> {
    // Every Graph path starts with the phone-number id (digits): an empty or odd one would hit another endpoint.
    if (!/^\/\d+\//.test(path)) {
      this.opts.metrics.graphRequests.inc({ action, status: 'invalid_path' });
      throw new GraphError(action, 0, undefined, undefined, `Graph ${action} not sent: invalid phone number id in path ${JSON.stringify(path.split('?')[0])}`);
    }
    const url = `${this.opts.baseUrl.replace(/\/$/, '')}/${this.opts.apiVersion}${path}`;
    const retries = opts.retries ?? this.opts.retries;
    let attempt = 0;
    let uncertain = false;
    for (;;) {
      const started = performance.now();
      let status = 0;
      try {
        const res = await fetch(url, {
          method,
          headers: { authorization: `Bearer ${this.opts.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
          body: body ? JSON.stringify(body) : undefined,
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        });
        status = res.status;
        const text = await res.text();
        const parsed = safeJson(text);
        if (res.ok) return parsed ?? {};
        const err = (parsed as GraphErrorBody | undefined)?.error;
        uncertain ||= res.status >= 500;
        const graphErr = new GraphError(action, res.status, err?.code, err?.error_data?.details,
          `Graph ${action} failed: HTTP ${res.status}${err?.code !== undefined ? ` code ${err.code}` : ''}${err?.message ? ` (${err.message})` : ''}`, uncertain);
        if (!RETRYABLE(res.status) || attempt >= retries) throw graphErr;
        this.opts.logger.warn({ action, status: res.status, code: err?.code, attempt }, 'Graph request failed, retrying');
      } catch (err) {
        if (err instanceof GraphError) throw err;
        uncertain = true;
        if (attempt >= retries) {
          throw new GraphError(action, 0, undefined, undefined, `Graph ${action} failed: ${(err as Error).message}`, true);
        }
        this.opts.logger.warn({ action, err: (err as Error).message, attempt }, 'Graph request did not complete, retrying');
      } finally {
        this.opts.metrics.graphRequests.inc({ action, status: String(status || 'error') });
        this.opts.metrics.graphSeconds.observe({ action }, (performance.now() - started) / 1000);
      }
      attempt++;
      await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 1)));
    }
  }
}

export type PermissionRequestContent =
  | { bodyText?: string }
  | { templateName: string; languageCode?: string; components?: unknown[] };

export interface RemoteLimit {
  timePeriod: string;
  maxAllowed: number;
  currentUsage: number;
  /** ms epoch; present only when the limit is reached. */
  limitExpiresAt?: number;
}

export interface RemoteAction {
  name: string;
  canPerform: boolean;
  limits: RemoteLimit[];
}

/** GET call_permissions, typed. `status` keeps Meta's words (no_permission, temporary, permanent). */
export interface RemotePermission {
  status: 'no_permission' | 'temporary' | 'permanent';
  /** ms epoch; temporary only. */
  expiresAt?: number;
  actions: RemoteAction[];
}

type Json = Record<string, unknown>;
const isJson = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const numOf = (v: unknown): number | undefined => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
};

/** Defensive parse of §2.5: unknown status words count as no permission; times come in unix seconds. */
export function parseCallPermissions(res: Json): RemotePermission {
  const perm = isJson(res.permission) ? res.permission : {};
  const word = typeof perm.status === 'string' ? perm.status.toLowerCase() : '';
  const status = word === 'temporary' || word === 'permanent' ? word : 'no_permission';
  const out: RemotePermission = { status, actions: [] };
  const exp = numOf(perm.expiration_time);
  if (status === 'temporary' && exp !== undefined) out.expiresAt = exp * 1000;
  for (const a of Array.isArray(res.actions) ? res.actions : []) {
    if (!isJson(a) || typeof a.action_name !== 'string') continue;
    const limits: RemoteLimit[] = [];
    for (const l of Array.isArray(a.limits) ? a.limits : []) {
      if (!isJson(l)) continue;
      const limit: RemoteLimit = {
        timePeriod: typeof l.time_period === 'string' ? l.time_period : '',
        maxAllowed: numOf(l.max_allowed) ?? 0,
        currentUsage: numOf(l.current_usage) ?? 0,
      };
      const le = numOf(l.limit_expiration_time);
      if (le !== undefined) limit.limitExpiresAt = le * 1000;
      limits.push(limit);
    }
    out.actions.push({ name: a.action_name, canPerform: a.can_perform_action === true, limits });
  }
  return out;
}

function safeJson(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
