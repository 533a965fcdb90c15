import { describe, expect, it } from 'vitest';
import type { BusinessCallsConfig } from '../config/schema.js';
import type { CallRecord } from '../store/call-record.js';
import { ratePerMinute, withMetaDuration } from './billing.js';

const cfg = { ratesPerMinute: { '44': 0.06, '447': 0.09 }, defaultRatePerMinute: 0.1, currency: 'GBP' } as unknown as BusinessCallsConfig;

function record(over: Partial<CallRecord>): CallRecord {
  return {
    id: 'c1', direction: 'business_initiated', tenant: 't', phoneNumberId: '1', businessNumber: '447700900555', userWaId: '447700900123',
    offeredAt: '2026-11-26T10:00:00.000Z', answeredAt: '2026-11-26T10:00:05.000Z', endedAt: '2026-11-26T10:00:17.000Z',
    durationSeconds: 12, billablePulses: 2, estimatedCost: 0.018, currency: 'GBP', outcome: 'answered', endedBy: 'sip', cause: 'agent_hangup', ...over,
  };
}

describe('billing', () => {
  it('the longest country-code prefix sets the rate; unknown codes take the default', () => {
    expect(ratePerMinute('447700900123', cfg)).toBe(0.09);
    expect(ratePerMinute('441234567890', cfg)).toBe(0.06);
    expect(ratePerMinute('15551234567', cfg)).toBe(0.1);
  });

  it("Meta's duration of a business-initiated call resets its pulses and cost; a user-initiated call keeps cost 0", () => {
    // Meta counted 13 s where the gateway counted 12: three 6-second pulses, not two.
    expect(withMetaDuration(record({}), 13, cfg)).toMatchObject({ metaDurationSeconds: 13, billablePulses: 3, estimatedCost: 0.027, durationSeconds: 12 });
    const free = withMetaDuration(record({ direction: 'user_initiated', billablePulses: 0, estimatedCost: 0 }), 40, cfg);
    expect(free).toMatchObject({ metaDurationSeconds: 40, billablePulses: 0, estimatedCost: 0 });
  });

  it('nothing changes for an unanswered call, a record that already has it, or a nonsense duration', () => {
    expect(withMetaDuration(record({ answeredAt: undefined, outcome: 'no_answer' }), 3, cfg)).toBeUndefined();
    expect(withMetaDuration(record({ metaDurationSeconds: 12 }), 13, cfg)).toBeUndefined();
    expect(withMetaDuration(record({}), -1, cfg)).toBeUndefined();
    expect(withMetaDuration(record({}), Number.NaN, cfg)).toBeUndefined();
  });
});
