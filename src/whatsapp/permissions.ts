/**
 * The call-permission ledger (whatsapp-calling.md §1.6, §2.3–§2.5, §3.1): per business number and WhatsApp user, the
 * permission status and expiry, the permission requests sent (1 per 24 h and 2 per 7 days, both reset by any
 * connected call), and the consecutive unanswered business calls (2 → warning, 4 → revoked, as Meta does); sandbox
 * and test numbers have Meta's looser limits (SANDBOX_LIMITS).
 * It is fed by call_permission_reply webhooks, GET call_permissions and call outcomes. Time is injectable.
 */
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { PermissionEntry, PermissionStatus, PermissionStore } from '../store/permission-store.js';
import type { PermissionReplyEvent } from './events.js';
import { GraphError, type GraphClient, type PermissionRequestContent, type RemotePermission } from './graph-client.js';

export type { PermissionStatus } from '../store/permission-store.js';

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
/** Meta's limits on one business + user pair (§3.1). */
export interface PermissionLimits {
  requestsPerDay: number;
  requestsPerWeek: number;
  /** Consecutive unanswered business calls that make WhatsApp ask the user to reconsider. */
  unansweredWarning: number;
  /** ... and that revoke the permission. */
  unansweredRevoke: number;
}

export const PRODUCTION_LIMITS: PermissionLimits = { requestsPerDay: 1, requestsPerWeek: 2, unansweredWarning: 2, unansweredRevoke: 4 };
/** Sandbox and public test numbers (§3.1). */
export const SANDBOX_LIMITS: PermissionLimits = { requestsPerDay: 25, requestsPerWeek: 100, unansweredWarning: 5, unansweredRevoke: 10 };

export interface LedgerOptions {
  store: PermissionStore;
  logger: Logger;
  metrics?: Metrics;
  /** ms epoch. */
  clock?: () => number;
  /** Lifetime of a temporary permission whose reply carries no expiration_timestamp (§3.1: 7 days). */
  defaultExpiryMs?: number;
  /** Entries not synced with Meta for this long are refreshed before a call. */
  staleAfterMs?: number;
  /** The limits of a business number (default: production's for every number). */
  limitsFor?: (phoneNumberId: string) => PermissionLimits;
}

/** The ledger's view of one pair, with expiry applied. */
export interface PermissionView {
  phoneNumberId: string;
  waId: string;
  status: PermissionStatus;
  /** ms epoch. */
  expiresAt?: number;
  /** Requests sent in the last 24 h / 7 days (since the last connected call). */
  requestsLast24h: number;
  requestsLast7d: number;
  /** ms epoch when the next request is allowed; undefined = now. */
  nextRequestAt?: number;
  unanswered: number;
  lastRequestId?: string;
  /** ms epoch of the last sync with Meta. */
  syncedAt?: number;
  /** No entry, or not synced with Meta within staleAfterMs. */
  stale: boolean;
  /**
   * ms epoch until which the user's customer-service window is open as far as the gateway saw (§3.5: the user's call,
   * answered or not, the user accepting ours, the user's reply to a permission request). Free-form permission
   * requests are allowed only inside it (§2.3). Undefined = not known to be open.
   */
  serviceWindowUntil?: number;
  /**
   * ms epoch until which Meta allows no business-initiated call to this user: GET call_permissions said start_call
   * cannot be performed (its limit_expiration_time), or connect failed 138012 (§2.5, §3.1). Undefined = no such limit.
   */
  callsBlockedUntil?: number;
  /**
   * Set by PermissionService.current when GET call_permissions failed for a passing reason (timeout, 5xx, rate limit):
   * the view is only what the ledger knew, and a 'none' may just mean "never asked". A call then goes on to `connect`
   * and lets Meta decide (138006).
   */
  refreshFailed?: boolean;
}

/** A business-initiated call is refused for want of permission only when that is known, not when Meta could not be asked. */
export function knownNoPermission(v: PermissionView): boolean {
  return v.status === 'none' && !v.refreshFailed;
}

export type RequestRefusal = 'permanent_permission' | 'daily_limit' | 'weekly_limit';

export class PermissionLedger {
  readonly clock: () => number;
  private readonly defaultExpiryMs: number;
  private readonly staleAfterMs: number;
  private readonly callBlocks = new Map<string, number>();

  constructor(private readonly opts: LedgerOptions) {
    this.clock = opts.clock ?? Date.now;
    this.defaultExpiryMs = opts.defaultExpiryMs ?? 7 * DAY;
    this.staleAfterMs = opts.staleAfterMs ?? 15 * 60 * 1000;
  }

  view(phoneNumberId: string, waId: string): PermissionView {
    const now = this.clock();
    const e = this.opts.store.get(phoneNumberId, waId);
    const requests = (e?.requests ?? []).filter((t) => t > now - 7 * DAY);
    const day = requests.filter((t) => t > now - DAY);
    const status = e ? effectiveStatus(e, now) : 'none';
    const v: PermissionView = {
      phoneNumberId, waId, status,
      requestsLast24h: day.length,
      requestsLast7d: requests.length,
      unanswered: e?.unanswered ?? 0,
      stale: !e || e.syncedAt === undefined || now - e.syncedAt >= this.staleAfterMs,
    };
    if (status === 'temporary' && e?.expiresAt !== undefined) v.expiresAt = e.expiresAt;
    if (e?.lastRequestId !== undefined) v.lastRequestId = e.lastRequestId;
    if (e?.syncedAt !== undefined) v.syncedAt = e.syncedAt;
    if (e?.serviceWindowUntil !== undefined && e.serviceWindowUntil > now) v.serviceWindowUntil = e.serviceWindowUntil;
    const limits = this.limits(phoneNumberId);
    const next = Math.max(
      day.length >= limits.requestsPerDay ? oldestOfLast(day, limits.requestsPerDay) + DAY : 0,
      requests.length >= limits.requestsPerWeek ? oldestOfLast(requests, limits.requestsPerWeek) + 7 * DAY : 0,
    );
    if (next > now) v.nextRequestAt = next;
    const key = `${phoneNumberId}:${waId}`;
    const blocked = this.callBlocks.get(key);
    if (blocked !== undefined && blocked > now) v.callsBlockedUntil = blocked;
    else this.callBlocks.delete(key);
    return v;
  }

  /**
   * Meta's call limit for this user is reached (kept in memory only: it is Meta's figure, asked again with the next
   * refresh, and 138012 would tell a gateway restarted meanwhile): until `until`, or for a minute when Meta named no
   * time, after which Meta is asked again.
   */
  blockCalls(phoneNumberId: string, waId: string, until = this.clock() + 60_000): void {
    if (until > this.clock()) this.callBlocks.set(`${phoneNumberId}:${waId}`, until);
  }

  /** True when a business-initiated call may be placed now, as far as the ledger knows. */
  hasPermission(phoneNumberId: string, waId: string): boolean {
    return this.view(phoneNumberId, waId).status !== 'none';
  }

  /** Why a permission request may not be sent now (checked before Meta is asked), or undefined. */
  requestRefusal(phoneNumberId: string, waId: string): RequestRefusal | undefined {
    const v = this.view(phoneNumberId, waId);
    if (v.status === 'permanent') return 'permanent_permission';
    const limits = this.limits(phoneNumberId);
    if (v.requestsLast24h >= limits.requestsPerDay) return 'daily_limit';
    if (v.requestsLast7d >= limits.requestsPerWeek) return 'weekly_limit';
    return undefined;
  }

  recordRequest(phoneNumberId: string, waId: string, messageId: string): void {
    this.update(phoneNumberId, waId, (e, now) => {
      e.requests = [...e.requests.filter((t) => t > now - 7 * DAY), now];
      e.lastRequestId = messageId;
    });
  }

  /** Meta refused a request with 138009 although the ledger allowed it: count it as used so we stop asking. */
  recordRequestLimitHit(phoneNumberId: string, waId: string): void {
    this.update(phoneNumberId, waId, (e, now) => {
      const week = e.requests.filter((t) => t > now - 7 * DAY);
      while (week.length < this.limits(phoneNumberId).requestsPerWeek) week.push(now);
      e.requests = week;
    });
  }

  /** A call_permission_reply webhook (§1.6). */
  applyReply(ev: PermissionReplyEvent): void {
    const log = this.opts.logger.child({ phoneNumberId: ev.phoneNumberId, waId: ev.userWaId });
    const repliedAt = ev.timestamp * 1000;
    const lastReplyAt = this.opts.store.get(ev.phoneNumberId, ev.userWaId)?.lastReplyAt;
    if (lastReplyAt !== undefined && repliedAt < lastReplyAt) {
      // Delivery order is not guaranteed (§1.1): a grant retried after the user's later revoke must not undo it.
      this.opts.metrics?.permissionEvents.inc({ event: 'reply_out_of_order' });
      log.info({ response: ev.response, repliedAt, lastReplyAt, messageId: ev.messageId }, 'call permission reply older than the one applied: ignored');
      return;
    }
    this.update(ev.phoneNumberId, ev.userWaId, (e, now) => {
      e.lastReplyAt = repliedAt;
      openServiceWindow(e, repliedAt); // the reply is the user's message
      if (ev.response === 'accept') {
        if (ev.isPermanent) {
          e.status = 'permanent';
          delete e.expiresAt;
        } else {
          e.status = 'temporary';
          // 7 days from approval (§3.1), not from arrival: the reply may be a retry days late.
          e.expiresAt = ev.expiresAt !== undefined ? ev.expiresAt * 1000 : repliedAt + this.defaultExpiryMs;
        }
        e.unanswered = 0;
      } else {
        e.status = 'none';
        delete e.expiresAt;
        // Meta's automatic revoke after 4 unanswered calls starts the count again.
        if (ev.source === 'automatic') e.unanswered = 0;
      }
      e.syncedAt = now;
    });
    this.opts.metrics?.permissionEvents.inc({ event: `reply_${ev.response}${ev.source === 'automatic' ? '_automatic' : ''}` });
    log.info({ response: ev.response, permanent: ev.isPermanent, expiresAt: ev.expiresAt, source: ev.source }, 'call permission reply');
  }

  /** The result of GET call_permissions (§2.5). */
  applyRemote(phoneNumberId: string, waId: string, remote: RemotePermission): void {
    // start_call refused for a limit: until the limit expires (a minute at least); allowed again: the remembered limit
    // is over. Meta also refuses start_call to a user who merely has no permission (§2.5): that is the status's
    // business, and must not block the call the user's grant makes possible a moment later.
    const start = remote.actions.find((a) => a.name === 'start_call');
    const limitReached = start?.limits.some((l) => l.limitExpiresAt !== undefined || (l.maxAllowed > 0 && l.currentUsage >= l.maxAllowed)) ?? false;
    if (start && !start.canPerform && (limitReached || remote.status !== 'no_permission')) {
      this.blockCalls(phoneNumberId, waId, Math.max(this.clock() + 60_000, ...start.limits.map((l) => l.limitExpiresAt ?? 0)));
    } else this.callBlocks.delete(`${phoneNumberId}:${waId}`);
    this.update(phoneNumberId, waId, (e, now) => {
      e.status = remote.status === 'no_permission' ? 'none' : remote.status;
      if (remote.status === 'temporary') e.expiresAt = remote.expiresAt ?? e.expiresAt ?? now + this.defaultExpiryMs;
      else delete e.expiresAt;
      // Meta may know of requests we do not (another system sending on the same number): adopt its higher count.
      const req = remote.actions.find((a) => a.name === 'send_call_permission_request');
      const week = e.requests.filter((t) => t > now - 7 * DAY);
      for (const l of req?.limits ?? []) {
        const windowMs = l.timePeriod === 'PT24H' ? DAY : l.timePeriod === 'P7D' ? 7 * DAY : 0;
        if (!windowMs) continue;
        const inWindow = week.filter((t) => t > now - windowMs).length;
        for (let i = inWindow; i < l.currentUsage; i++) week.push(now);
      }
      e.requests = week;
      e.syncedAt = now;
    });
  }

  /** Meta said 138006 on connect: the ledger was wrong, the user has no permission. */
  markNoPermission(phoneNumberId: string, waId: string): void {
    this.update(phoneNumberId, waId, (e, now) => {
      e.status = 'none';
      delete e.expiresAt;
      e.syncedAt = now;
    });
  }

  /** Any connected call, either direction, resets both request windows (§3.1); a business call resets the unanswered run. */
  callConnected(phoneNumberId: string, waId: string, direction: 'user_initiated' | 'business_initiated'): void {
    this.update(phoneNumberId, waId, (e, now) => {
      e.requests = [];
      if (direction === 'business_initiated') {
        e.unanswered = 0;
        openServiceWindow(e, now); // the user accepted our call (§3.5)
      }
    });
  }

  /** The user reached out at `at` (ms epoch): a call of theirs, answered or not, opens the 24 h service window (§3.5). */
  userReachedOut(phoneNumberId: string, waId: string, at: number): void {
    this.update(phoneNumberId, waId, (e) => openServiceWindow(e, at));
  }

  /** A business-initiated call the user did not answer or rejected: 2 in a row → warning, 4 → revoked (§3.1). */
  businessCallUnanswered(phoneNumberId: string, waId: string): number {
    const { unansweredWarning, unansweredRevoke } = this.limits(phoneNumberId);
    let count = 0;
    this.update(phoneNumberId, waId, (e) => {
      e.unanswered += 1;
      count = e.unanswered;
      if (count >= unansweredRevoke) {
        e.status = 'none';
        delete e.expiresAt;
        e.unanswered = 0;
      }
    });
    const log = this.opts.logger.child({ phoneNumberId, waId });
    if (count === unansweredWarning) {
      this.opts.metrics?.permissionEvents.inc({ event: 'unanswered_warning' });
      log.warn({ unanswered: count }, 'business calls unanswered in a row: WhatsApp asks the user to reconsider the permission');
    } else if (count >= unansweredRevoke) {
      this.opts.metrics?.permissionEvents.inc({ event: 'auto_revoked' });
      log.warn({ unanswered: count }, 'business calls unanswered in a row: call permission revoked');
    }
    return count;
  }

  limits(phoneNumberId: string): PermissionLimits {
    return this.opts.limitsFor?.(phoneNumberId) ?? PRODUCTION_LIMITS;
  }

  private update(phoneNumberId: string, waId: string, change: (e: PermissionEntry, now: number) => void): void {
    const now = this.clock();
    const e: PermissionEntry = this.opts.store.get(phoneNumberId, waId) ?? {
      phoneNumberId, waId, status: 'none', requests: [], unanswered: 0, updatedAt: now,
    };
    change(e, now);
    e.updatedAt = now;
    this.opts.store.put(e);
  }
}

function openServiceWindow(e: PermissionEntry, at: number): void {
  e.serviceWindowUntil = Math.max(e.serviceWindowUntil ?? 0, at + DAY);
}

/** The oldest of the `limit` newest times: once it leaves its window, one more request fits again. */
function oldestOfLast(times: number[], limit: number): number {
  return [...times].sort((a, b) => a - b)[times.length - limit]!;
}

function effectiveStatus(e: PermissionEntry, now: number): PermissionStatus {
  // No webhook is sent when a temporary permission expires (§1.6): the ledger expires it itself.
  if (e.status === 'temporary' && (e.expiresAt === undefined || e.expiresAt <= now)) return 'none';
  return e.status;
}

/**
 * What a permission request the caller left open sends: free-form inside the user's customer-service window (§2.3:
 * allowed only there), the configured template outside it (§2.4: works anywhere), else free-form as the only choice.
 */
export function permissionRequestContent(view: Pick<PermissionView, 'serviceWindowUntil'>, template: string, freeForm: PermissionRequestContent): PermissionRequestContent {
  return template && view.serviceWindowUntil === undefined ? { templateName: template } : freeForm;
}

export type PermissionRequestResult =
  | { sent: true; messageId: string }
  | { sent: false; refusal: RequestRefusal | 'graph_error'; nextRequestAt?: number; graphCode?: number; message: string };

/** The ledger plus the Graph requests that feed it: refresh before a call, and sending permission requests. */
export class PermissionService {
  /** `graph`: one client, or the client of a business number (its own Meta app's token when several apps are set up). */
  constructor(readonly ledger: PermissionLedger, graph: GraphClient | ((phoneNumberId: string) => GraphClient), private readonly logger: Logger, private readonly metrics?: Metrics) {
    this.graphFor = typeof graph === 'function' ? graph : () => graph;
  }

  private readonly graphFor: (phoneNumberId: string) => GraphClient;

  /** The ledger's view, refreshed from GET call_permissions when stale or without permission. Never throws. */
  async current(phoneNumberId: string, waId: string, opts: { force?: boolean } = {}): Promise<PermissionView> {
    const v = this.ledger.view(phoneNumberId, waId);
    // "No permission" is asked again after a minute (the user may have granted it from the business profile), but
    // not on every INVITE: GET call_permissions is rate limited (613).
    const recentlySynced = v.syncedAt !== undefined && this.ledger.clock() - v.syncedAt < 60_000;
    if (!opts.force && !v.stale && (v.status !== 'none' || recentlySynced)) return v;
    try {
      const remote = await this.graphFor(phoneNumberId).callPermissions(phoneNumberId, waId);
      this.ledger.applyRemote(phoneNumberId, waId, remote);
      this.metrics?.permissionEvents.inc({ event: 'refreshed' });
    } catch (err) {
      this.metrics?.permissionEvents.inc({ event: 'refresh_failed' });
      this.logger.warn({ phoneNumberId, waId, err: (err as Error).message }, 'GET call_permissions failed: using the local ledger');
      // Only a passing failure (timeout, 5xx, rate limit) leaves the answer open; a 4xx says this request is wrong.
      const passing = !(err instanceof GraphError) || err.uncertain || err.httpStatus === 429 || err.code === 613;
      return passing ? { ...this.ledger.view(phoneNumberId, waId), refreshFailed: true } : this.ledger.view(phoneNumberId, waId);
    }
    return this.ledger.view(phoneNumberId, waId);
  }

  /** Sends a call permission request if the local limits allow; Meta is never asked when they do not. */
  async request(phoneNumberId: string, waId: string, content: PermissionRequestContent): Promise<PermissionRequestResult> {
    const log = this.logger.child({ phoneNumberId, waId });
    const refusal = this.ledger.requestRefusal(phoneNumberId, waId);
    if (refusal) {
      const v = this.ledger.view(phoneNumberId, waId);
      this.metrics?.permissionRequests.inc({ result: `refused_${refusal}` });
      log.info({ refusal, nextRequestAt: v.nextRequestAt }, 'call permission request refused locally');
      return { sent: false, refusal, ...(v.nextRequestAt !== undefined ? { nextRequestAt: v.nextRequestAt } : {}), message: refusalText(refusal, this.ledger.limits(phoneNumberId)) };
    }
    try {
      const messageId = await this.graphFor(phoneNumberId).sendCallPermissionRequest(phoneNumberId, waId, content);
      this.ledger.recordRequest(phoneNumberId, waId, messageId);
      this.metrics?.permissionRequests.inc({ result: 'sent' });
      log.info({ messageId }, 'call permission request sent');
      return { sent: true, messageId };
    } catch (err) {
      const code = err instanceof GraphError ? err.code : undefined;
      if (code === 138009) this.ledger.recordRequestLimitHit(phoneNumberId, waId);
      if (code === 138017) this.ledger.applyRemote(phoneNumberId, waId, { status: 'permanent', actions: [] });
      this.metrics?.permissionRequests.inc({ result: 'graph_error' });
      log.warn({ err: (err as Error).message, graphCode: code }, 'call permission request failed');
      return { sent: false, refusal: 'graph_error', ...(code !== undefined ? { graphCode: code } : {}), message: (err as Error).message };
    }
  }
}

export function refusalText(r: RequestRefusal, limits: PermissionLimits = PRODUCTION_LIMITS): string {
  const count = (n: number): string => (n === 1 ? 'one call permission request' : `${n === 2 ? 'two' : n} call permission requests`);
  switch (r) {
    case 'permanent_permission': return 'the user already granted a permanent permission';
    case 'daily_limit': return `${count(limits.requestsPerDay)} per 24 hours already sent`;
    case 'weekly_limit': return `${count(limits.requestsPerWeek)} in 7 days already sent`;
  }
}
