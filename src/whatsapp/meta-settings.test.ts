import { describe, expect, it } from 'vitest';
import { createLogger } from '../observability/logger.js';
import { parseWebhook } from './events.js';
import { MetaNumberSettings } from './meta-settings.js';

const settingsUpdate = (calling: object, phoneNumberId = '106540352242922') => parseWebhook({
  object: 'whatsapp_business_account',
  entry: [{ id: 'WABA', changes: [{ field: 'account_settings_update', value: { type: 'phone_number_settings', phone_number_settings: { phone_number_id: phoneNumberId, calling } } }] }],
}).notices[0]!;

describe('MetaNumberSettings', () => {
  it('learns a number\'s srtp_key_exchange_protocol from account_settings_update, per number', () => {
    const s = new MetaNumberSettings(createLogger('silent'));
    expect(s.keyExchange('106540352242922')).toBeUndefined();
    s.apply(settingsUpdate({ status: 'ENABLED', srtp_key_exchange_protocol: 'SDES' }));
    expect(s.keyExchange('106540352242922')).toBe('sdes');
    expect(s.keyExchange('2')).toBeUndefined();
    s.apply(settingsUpdate({ srtp_key_exchange_protocol: 'DTLS' }));
    expect(s.keyExchange('106540352242922')).toBe('dtls');
  });

  it('ignores notices that name no number or no known protocol', () => {
    const s = new MetaNumberSettings(createLogger('silent'));
    s.apply(settingsUpdate({ srtp_key_exchange_protocol: 'ZRTP' }));
    s.apply(settingsUpdate({ srtp_key_exchange_protocol: 'SDES' }, ''));
    s.apply({ field: 'account_update', kind: 'ACCOUNT_RESTRICTION', details: { phoneNumberId: '1', srtpKeyExchangeProtocol: 'SDES' } });
    expect(s.keyExchange('106540352242922')).toBeUndefined();
    expect(s.keyExchange('1')).toBeUndefined();
  });
});
