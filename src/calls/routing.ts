import type { BusinessNumber, GatewayConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { RoutingTable, type RouteDecision } from './routing/routing-table.js';
import { askRoutingHook, type HookContext } from './routing/routing-hook.js';

export interface RoutingOptions {
  /** Wall clock for business hours; tests inject one. */
  clock?: () => Date;
  metrics?: Metrics;
  logger?: Logger;
}

/**
 * Which business number a webhook concerns, and where its calls go: the current RoutingTable (swapped whole on a
 * config reload; calls already routed keep their decision) plus the optional HTTP routing hook.
 */
export class Routing {
  private table: RoutingTable;
  clock: () => Date;

  constructor(config: GatewayConfig, private readonly opts: RoutingOptions = {}) {
    this.table = new RoutingTable(config);
    this.clock = opts.clock ?? (() => new Date());
  }

  /** Replaces the routing table (config reload). */
  update(config: GatewayConfig): void {
    this.table = new RoutingTable(config);
  }

  numberFor(phoneNumberId: string): BusinessNumber | undefined {
    return this.table.number(phoneNumberId);
  }

  /**
   * Decides where a user-initiated call rings. The hook (if configured) has the last word within its deadline;
   * on timeout, error or an unusable answer the static decision stands.
   */
  async decide(number: BusinessNumber, call: Omit<HookContext, 'staticRoute' | 'phoneNumberId' | 'displayNumber' | 'tenant'>): Promise<RouteDecision> {
    const table = this.table;
    const { metrics, logger } = this.opts;
    const picked = table.staticRoute(number, call);
    const hook = table.hookFor(number);
    let decision: RouteDecision | undefined;
    if (hook) {
      const result = await askRoutingHook(hook, {
        ...call, phoneNumberId: number.phoneNumberId, displayNumber: number.displayNumber, tenant: number.tenant, staticRoute: picked.route,
      });
      metrics?.routingHook.inc({ result: result.ok ? 'ok' : result.reason });
      if (!result.ok) {
        logger?.warn({ waCallId: call.waCallId, reason: result.reason, detail: result.detail }, 'routing hook failed: static rule used');
      } else if (result.decision.kind === 'reject') {
        decision = { action: 'reject', via: 'hook', cause: 'hook_reject' };
      } else if (result.decision.kind === 'targets') {
        decision = { action: 'route', via: 'hook', ...table.resolve(picked.route), targets: result.decision.targets, strategy: 'failover' };
      } else if (table.hasRoute(result.decision.route)) {
        decision = table.decide(result.decision.route, 'hook', this.clock());
      } else {
        metrics?.routingHook.inc({ result: 'bad_answer' });
        logger?.warn({ waCallId: call.waCallId, route: result.decision.route }, 'routing hook named an unknown route: static rule used');
      }
    }
    decision ??= table.decide(picked.route, picked.via, this.clock());
    metrics?.routingDecisions.inc({ via: decision.via, result: decision.action });
    return decision;
  }
}
