/**
 * One immutable snapshot of the routing configuration: which route a user-initiated call takes (rules by CTA or
 * deep-link payload, else the number's default route), whether the route is open now (business hours, holidays),
 * and what happens outside hours. A reload builds a new table; calls already routed keep what they were given.
 */
import type { BusinessNumber, GatewayConfig } from '../../config/schema.js';
import type { RouteConfig, RoutingHookConfig, Schedule } from '../../config/routing-schema.js';
import type { G711Codec } from '../../sip/sdp.js';
import { isOpen } from './business-hours.js';

export interface CallFacts {
  ctaPayload?: string | undefined;
  deeplinkPayload?: string | undefined;
}

/** A route ready to dial. */
export interface ResolvedRoute {
  route: string;
  targets: string[];
  strategy: 'failover' | 'round_robin';
  codecs: G711Codec[];
  ringTimeoutMs: number;
  recording: RouteConfig['recording'];
}

export type Via = 'rule' | 'default' | 'hook' | 'overflow';

export type RouteDecision =
  | ({ action: 'route'; via: Via } & ResolvedRoute)
  | { action: 'reject'; via: Via; cause: 'outside_hours' | 'hook_reject' };

/** The implicit route of a number configured with the legacy single sipTarget. */
export const legacyRouteName = (phoneNumberId: string): string => `number-${phoneNumberId}`;

export class RoutingTable {
  private readonly numbers: Map<string, BusinessNumber>;
  private readonly routes: Map<string, RouteConfig>;
  private readonly schedules: Map<string, Schedule>;

  constructor(readonly config: GatewayConfig) {
    this.numbers = new Map(config.whatsapp.numbers.map((n) => [n.phoneNumberId, n]));
    this.routes = new Map(Object.entries(config.routing.routes));
    this.schedules = new Map(Object.entries(config.routing.schedules));
    for (const n of config.whatsapp.numbers) {
      if (n.sipTarget !== undefined) {
        this.routes.set(legacyRouteName(n.phoneNumberId), {
          targets: [n.sipTarget], strategy: 'failover', outsideHours: { action: 'reject' }, recording: 'pbx_default',
        });
      }
    }
  }

  number(phoneNumberId: string): BusinessNumber | undefined {
    return this.numbers.get(phoneNumberId);
  }

  hookFor(number: BusinessNumber): RoutingHookConfig | undefined {
    return number.hook ?? this.config.routing.hook;
  }

  /** The route the static rules pick, before business hours: a matching rule, else the number's default. */
  staticRoute(number: BusinessNumber, facts: CallFacts): { route: string; via: Via } {
    for (const r of number.rules) {
      const ctaOk = r.ctaPayload === undefined || r.ctaPayload === facts.ctaPayload;
      const deepOk = r.deeplinkPayload === undefined || r.deeplinkPayload === facts.deeplinkPayload;
      if (ctaOk && deepOk) return { route: r.route, via: 'rule' };
    }
    return { route: number.route ?? legacyRouteName(number.phoneNumberId), via: 'default' };
  }

  hasRoute(name: string): boolean {
    return this.routes.has(name);
  }

  /** Applies the route's business hours at `now`: open → the route; closed → reject or the overflow route. */
  decide(routeName: string, via: Via, now: Date): RouteDecision {
    const route = this.routes.get(routeName);
    if (!route) throw new Error(`unknown route ${routeName}`);
    const schedule = route.hours !== undefined ? this.schedules.get(route.hours) : undefined;
    if (schedule && !isOpen(schedule, now)) {
      if (route.outsideHours.action === 'route' && route.outsideHours.route !== undefined) {
        return { action: 'route', via: 'overflow', ...this.resolve(route.outsideHours.route) };
      }
      return { action: 'reject', via, cause: 'outside_hours' };
    }
    return { action: 'route', via, ...this.resolve(routeName) };
  }

  /** A route's dialling parameters, with the global defaults filled in. */
  resolve(routeName: string): ResolvedRoute {
    const route = this.routes.get(routeName);
    if (!route) throw new Error(`unknown route ${routeName}`);
    return {
      route: routeName,
      targets: [...route.targets],
      strategy: route.strategy,
      codecs: [...(route.codecs ?? this.config.sip.codecs)],
      ringTimeoutMs: route.ringTimeoutMs ?? this.config.sip.ringTimeoutMs,
      recording: route.recording,
    };
  }
}
