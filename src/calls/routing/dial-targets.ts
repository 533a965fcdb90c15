/**
 * Rings a route's SIP targets one after another until one answers: the next target is tried after a 5xx, a 408
 * (no final answer within the ring timeout, or an unreachable target), a transport error or a target our policy
 * refuses (never sent, sip/target-policy.ts); a 4xx/6xx final answer
 * (busy, decline, not found...) is the callee's answer and ends the search. Round-robin routes start at the target
 * after the one the previous call started at.
 */
import { SipCallFailure, TargetNotAllowed, type SipDialog, type SipInviteOptions } from '../../sip/agent.js';

export type Invite = (opts: SipInviteOptions) => Promise<SipDialog>;

export interface DialAttempt {
  target: string;
  status: number;
  reason: string;
}

export interface DialResult {
  dialog: SipDialog;
  target: string;
  /** Attempts that failed before the answer. */
  failed: DialAttempt[];
}

/** Thrown when no target answered: the last failure, with every attempt. */
export class DialFailure extends SipCallFailure {
  constructor(readonly attempts: DialAttempt[], readonly last: SipCallFailure) {
    super(last.status, last.reason, last.reasonHeader);
  }
}

/** True when a failure means "this target cannot take the call now; another one may". */
export function shouldFailOver(status: number): boolean {
  return status === 408 || (status >= 500 && status < 600);
}

const rrCounters = new Map<string, number>();

/** The order to try targets in: as configured (failover) or rotated one step per call (round_robin). */
export function targetOrder(route: { route: string; targets: readonly string[]; strategy: 'failover' | 'round_robin' }): string[] {
  if (route.strategy === 'failover' || route.targets.length < 2) return [...route.targets];
  const n = rrCounters.get(route.route) ?? 0;
  rrCounters.set(route.route, (n + 1) % route.targets.length);
  const k = n % route.targets.length;
  return [...route.targets.slice(k), ...route.targets.slice(0, k)];
}

export async function dialTargets(
  invite: Invite,
  targets: readonly string[],
  base: Omit<SipInviteOptions, 'uri'>,
  onFailover?: (attempt: DialAttempt, next: string) => void,
): Promise<DialResult> {
  const failed: DialAttempt[] = [];
  let last: SipCallFailure = new SipCallFailure(500, 'no SIP target');
  for (let i = 0; i < targets.length; i++) {
    const target = targets[i]!;
    if (base.signal?.aborted) throw new DialFailure(failed, new SipCallFailure(487, 'Request Terminated'));
    try {
      const dialog = await invite({ ...base, uri: target });
      return { dialog, target, failed };
    } catch (err) {
      last = err instanceof SipCallFailure ? err : new SipCallFailure(500, err instanceof Error ? err.message : String(err));
      failed.push({ target, status: last.status, reason: last.reason });
      const next = targets[i + 1];
      if (next === undefined || base.signal?.aborted || !(shouldFailOver(last.status) || last instanceof TargetNotAllowed)) break;
      onFailover?.({ target, status: last.status, reason: last.reason }, next);
    }
  }
  throw new DialFailure(failed, last);
}
