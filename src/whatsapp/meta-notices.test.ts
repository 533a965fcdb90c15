import { describe, expect, it } from 'vitest';
import { RecentMetaNotices } from './meta-notices.js';

describe('RecentMetaNotices', () => {
  it('keeps the newest notice of each kind, newest first, bounded', () => {
    let now = Date.parse('2026-11-26T10:00:00Z');
    const notices = new RecentMetaNotices(() => now, 3);
    notices.record({ field: 'account_update', kind: 'ACCOUNT_RESTRICTION', details: { restrictionType: 'RESTRICTED_BUSINESS_INITIATED_CALLING', expiration: '1795700000' } });
    now += 1000;
    notices.record({ field: 'account_update', kind: 'ACCOUNT_VIOLATION', details: { violationType: 'LOW_BUSINESS_INITIATED_CALLING_QUALITY' } });
    now += 1000;
    // The same restriction again, with a later expiration: it replaces the first, and is now the newest.
    notices.record({ field: 'account_update', kind: 'ACCOUNT_RESTRICTION', details: { restrictionType: 'RESTRICTED_BUSINESS_INITIATED_CALLING', expiration: '1795800000' } });
    expect(notices.list().map((n) => [n.kind, n.details.expiration ?? n.details.violationType, n.receivedAt])).toEqual([
      ['ACCOUNT_RESTRICTION', '1795800000', '2026-11-26T10:00:02.000Z'],
      ['ACCOUNT_VIOLATION', 'LOW_BUSINESS_INITIATED_CALLING_QUALITY', '2026-11-26T10:00:01.000Z'],
    ]);
    notices.record({ field: 'account_settings_update', kind: 'phone_number_settings', details: { phoneNumberId: '1', srtpKeyExchangeProtocol: 'SDES' } });
    notices.record({ field: 'account_settings_update', kind: 'phone_number_settings', details: { phoneNumberId: '2', status: 'DISABLED' } });
    expect(notices.list().map((n) => n.details.phoneNumberId ?? n.kind)).toEqual(['2', '1', 'ACCOUNT_RESTRICTION']);
  });
});
