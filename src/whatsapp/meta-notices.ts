/**
 * Meta's latest notices about the account and its numbers (account_update, account_settings_update; §1.7), for the
 * admin status: a calling restriction, a quality violation or a setting changed at Meta shows there with its
 * expiration, not only in a log line. One entry per kind of notice (and restriction or violation type, or number):
 * a newer notice of the same kind replaces the older one. Kept in memory, newest first, at most `max`.
 */
import type { AccountNotice } from './events.js';

export interface MetaNoticeView {
  field: AccountNotice['field'];
  kind: string;
  details: Record<string, string>;
  receivedAt: string;
}

export class RecentMetaNotices {
  private readonly byKey = new Map<string, MetaNoticeView>();

  constructor(private readonly clock: () => number = Date.now, private readonly max = 20) {}

  record(n: AccountNotice): void {
    const d = n.details;
    const key = [n.field, n.kind, d.restrictionType ?? d.violationType ?? d.phoneNumberId ?? ''].join('|');
    this.byKey.delete(key);
    this.byKey.set(key, { field: n.field, kind: n.kind, details: { ...d }, receivedAt: new Date(this.clock()).toISOString() });
    if (this.byKey.size > this.max) this.byKey.delete(this.byKey.keys().next().value!);
  }

  list(): MetaNoticeView[] {
    return [...this.byKey.values()].reverse();
  }
}
