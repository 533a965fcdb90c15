import { describe, expect, it } from 'vitest';
import { GraphError, nextAllowedTime } from '../whatsapp/graph-client.js';
import { refusalForGraphError, sourceAllowed, targetWaId } from './business-initiated.js';
import { ratePerMinute } from './billing.js';
import { businessNumberBlocked } from './business-region.js';

describe('business-initiated call checks', () => {
  it('source allow-list: addresses and CIDRs, nothing when empty', () => {
    expect(sourceAllowed('10.1.2.3', ['10.0.0.0/8'])).toBe(true);
    expect(sourceAllowed('192.168.1.20', ['192.168.1.0/28'])).toBe(false);
    expect(sourceAllowed('127.0.0.1', ['127.0.0.1'])).toBe(true);
    expect(sourceAllowed('::ffff:127.0.0.1', ['127.0.0.1'])).toBe(true);
    expect(sourceAllowed('127.0.0.1', [])).toBe(false);
    expect(sourceAllowed('not-an-ip', ['0.0.0.0/0'])).toBe(false);
    expect(sourceAllowed('8.8.8.8', ['0.0.0.0/0'])).toBe(true);
  });

  it('Request-URI user: E.164 with or without +, separators tolerated, anything else refused', () => {
    expect(targetWaId('sip:+447700900123@gw.example.com')).toBe('447700900123');
    expect(targetWaId('sip:447700900123@10.0.0.1:5060;transport=udp')).toBe('447700900123');
    expect(targetWaId('sip:%2B44-7700-900123@gw')).toBe('447700900123');
    expect(targetWaId('sip:agent@gw')).toBeUndefined();
    expect(targetWaId('sip:0123@gw')).toBeUndefined();
    expect(targetWaId('tel:+447700900123')).toBeUndefined();
  });

  it('country of the business number (§3.4)', () => {
    const blocked = ['1', '20', '84', '234'];
    expect(businessNumberBlocked('13175551399', blocked)).toBe(true);
    expect(businessNumberBlocked('+2348012345678', blocked)).toBe(true);
    expect(businessNumberBlocked('447700900555', blocked)).toBe(false);
  });

  it('rate by the longest matching country code, else the default', () => {
    const cfg = { ratesPerMinute: { '4': 1, '44': 0.06 }, defaultRatePerMinute: 0.5 };
    expect(ratePerMinute('447700900123', cfg)).toBe(0.06);
    expect(ratePerMinute('4915112345678', cfg)).toBe(1);
    expect(ratePerMinute('5511987654321', cfg)).toBe(0.5);
  });

  it('Graph connect errors map to SIP responses (README table)', () => {
    const err = (code: number, http = 400, details?: string) => new GraphError('connect', http, code, details, `code ${code}`);
    const now = Date.UTC(2026, 0, 1);
    expect(refusalForGraphError(err(138006, 401))).toMatchObject({ status: 403 });
    const limit = refusalForGraphError(err(138012, 400, `Next call allowed after ${now / 1000 + 3600}`), now);
    expect(limit).toMatchObject({ status: 403, headers: { 'Retry-After': '3600', 'X-WA-Graph-Error': '138012' } });
    expect(limit.text).toContain('2026-01-01T01:00:00.000Z');
    expect(refusalForGraphError(err(138003)).status).toBe(403);
    expect(refusalForGraphError(err(138001)).status).toBe(404);
    expect(refusalForGraphError(err(138013)).status).toBe(403);
    expect(refusalForGraphError(err(138002, 429))).toMatchObject({ status: 503, headers: { 'Retry-After': '30' } });
    expect(refusalForGraphError(err(138005, 429))).toMatchObject({ status: 503, headers: { 'Retry-After': '300' } });
    expect(refusalForGraphError(err(138000, 401))).toMatchObject({ status: 403, cause: 'graph_connect_138000' });
    expect(refusalForGraphError(err(138014))).toMatchObject({ status: 403, cause: 'graph_connect_138014' });
    expect(refusalForGraphError(err(131030))).toMatchObject({ status: 403, cause: 'graph_connect_131030' });
    expect(refusalForGraphError(err(131055))).toMatchObject({ status: 503, cause: 'graph_connect_131055' });
    expect(refusalForGraphError(err(100))).toMatchObject({ status: 500, headers: { 'X-WA-Graph-Error': '100' } });
    expect(refusalForGraphError(new GraphError('connect', 0, undefined, undefined, 'ECONNREFUSED'))).toMatchObject({ status: 500, headers: { 'X-WA-Graph-Error': 'unreachable' } });
  });

  it('next allowed time from a unix time or an ISO date in the details', () => {
    expect(nextAllowedTime('Next call allowed after 1767225600 (unix seconds)')).toBe(1767225600_000);
    expect(nextAllowedTime('retry at 2026-01-01T00:00:00Z')).toBe(Date.UTC(2026, 0, 1));
    expect(nextAllowedTime('no time here')).toBeUndefined();
  });
});
