/**
 * What Meta's account_settings_update webhooks (§1.7) have told us about each business number's calling settings,
 * for the settings that change what we send. Today: srtp_key_exchange_protocol (§2.6), which our business-initiated
 * offers must match or the call fails, so a switch at Meta takes effect with the next call instead of after an
 * operator edits the config. Kept in memory: after a restart the config (whatsapp.numbers[].whatsappKeyExchange,
 * media.whatsappKeyExchange) speaks until the next notice.
 */
import type { Logger } from '../observability/logger.js';
import type { AccountNotice } from './events.js';

export type KeyExchange = 'dtls' | 'sdes';

export class MetaNumberSettings {
  private readonly keyExchanges = new Map<string, KeyExchange>();

  constructor(private readonly logger: Logger) {}

  apply(n: AccountNotice): void {
    const { phoneNumberId, srtpKeyExchangeProtocol } = n.details;
    const kx = srtpKeyExchangeProtocol?.toLowerCase();
    if (n.field !== 'account_settings_update' || !phoneNumberId || (kx !== 'dtls' && kx !== 'sdes')) return;
    if (this.keyExchanges.get(phoneNumberId) === kx) return;
    this.keyExchanges.set(phoneNumberId, kx);
    this.logger.info({ phoneNumberId, keyExchange: kx }, 'business-initiated offers for this number follow Meta\'s srtp_key_exchange_protocol from now on');
  }

  /** The key exchange Meta last announced for the number, if it did. */
  keyExchange(phoneNumberId: string): KeyExchange | undefined {
    return this.keyExchanges.get(phoneNumberId);
  }
}
