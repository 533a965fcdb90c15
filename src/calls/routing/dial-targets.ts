/**
 * Rings a route's SIP targets one after another until one answers: the next target is tried after a 5xx, a 408
 * (no final answer within the ring timeout, or an unreachable target), a transport error or a target our policy
 * refuses (never sent, sip/target-policy.ts); a 3xx redirect (call forwarding) is followed to its Contact URIs, which
 * are tried next (at most MAX_REDIRECTS times per call, each through the same target policy); a 4xx/6xx final answer
 * (busy, decline, not found...) is the callee's answer and ends the search. Round-robin routes start at the target
 * after the one the previous call started at.
 */
import { SipCallFailure, TargetNotAllowed, type SipDialog, type SipInviteOptions } from '../../sip/agent.js';

export type Invite = (opts: SipInviteOptions) => Promise<SipDialog>;

export interface DialAttempt {
  target: string;
  status: number;
  reason: string;
  /** Never sent: our target policy refused it (no PBX saw this attempt). */
  policy?: true;
}

export interface DialResult {
  dialog: SipDialog;
  target: string;
  /** Attempts that failed before the answer. */
  failed: DialAttempt[];
}

/** Thrown when no target answered: the last failure, with every attempt. */
export class DialFailure extends SipCallFailure {
  constructor(readonly attempts: DialAttempt[], last: SipCallFailure) {
    super(last.status, last.reason, last.reasonHeader);
  }
}

/** True when a failure means "this target cannot take the call now; another one may". */
export function shouldFailOver(status: number): boolean {
  return status === 408 || (status >= 500 && status < 600);
}

const rrCounters = new Map<string, number>();
/** Redirects followed per call: enough for a forward of a forward, not for a loop. */
const MAX_REDIRECTS = 3;

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
  const queue = [...targets];
  let redirects = 0;
  let last: SipCallFailure = new SipCallFailure(500, 'no SIP target');
  for (let i = 0; i < queue.length; i++) {
    const target = queue[i]!;
    if (base.signal?.aborted) throw new DialFailure(failed, new SipCallFailure(487, 'Request Terminated'));
    try {
      const dialog = await invite({ ...base, uri: target });
      return { dialog, target, failed };
    } catch (err) {
      last = err instanceof SipCallFailure ? err : new SipCallFailure(500, err instanceof Error ? err.message : String(err));
      failed.push({ target, status: last.status, reason: last.reason, ...(last instanceof TargetNotAllowed ? { policy: true as const } : {}) });
      if (last.redirectTo?.length && redirects < MAX_REDIRECTS && !base.signal?.aborted) {
        redirects++;
        queue.splice(i + 1, 0, ...last.redirectTo.filter((uri) => !queue.includes(uri)));
      }
      const next = queue[i + 1];
      const redirected = last.status >= 300 && last.status < 400 && next !== undefined;
      if (next === undefined || base.signal?.aborted || !(redirected || shouldFailOver(last.status) || last instanceof TargetNotAllowed)) break;
      onFailover?.({ target, status: last.status, reason: last.reason }, next);
    }
  }
  throw new DialFailure(failed, last);
}
