/** What Meta charges for a business-initiated call (§3.5); user-initiated calls are free. */
import type { BusinessCallsConfig } from '../config/schema.js';
import type { CallRecord, Direction } from '../store/call-record.js';

/** Price per minute by the callee's country calling code (longest prefix), billed in 6-second pulses (§3.5). */
export function ratePerMinute(waId: string, cfg: Pick<BusinessCallsConfig, 'ratesPerMinute' | 'defaultRatePerMinute'>): number {
  let best: string | undefined;
  for (const code of Object.keys(cfg.ratesPerMinute)) {
    if (waId.startsWith(code) && (!best || code.length > best.length)) best = code;
  }
  return best !== undefined ? cfg.ratesPerMinute[best]! : cfg.defaultRatePerMinute;
}

/** Meta bills business-initiated calls in 6-second pulses, fractions rounded up (§3.5); user-initiated calls are free. */
export function billablePulses(direction: Direction, seconds: number): number {
  return direction === 'business_initiated' ? Math.ceil(seconds / 6) : 0;
}

export function withCost(r: CallRecord, cfg: BusinessCallsConfig): CallRecord {
  const perPulse = ratePerMinute(r.userWaId, cfg) / 10;
  r.estimatedCost = Math.round(r.billablePulses * perPulse * 10_000) / 10_000;
  r.currency = cfg.currency;
  return r;
}

/**
 * The record once Meta's own duration of the call is known: Meta bills by it, so a business-initiated call's pulses
 * and cost follow it. Undefined when there is nothing to change: the call was never answered, or the record has it.
 */
export function withMetaDuration(r: CallRecord, seconds: number, cfg: BusinessCallsConfig): CallRecord | undefined {
  if (!r.answeredAt || r.metaDurationSeconds !== undefined || !(seconds >= 0)) return undefined;
  const amended: CallRecord = { ...r, metaDurationSeconds: seconds, billablePulses: billablePulses(r.direction, seconds) };
  return r.direction === 'business_initiated' ? withCost(amended, cfg) : amended;
}
