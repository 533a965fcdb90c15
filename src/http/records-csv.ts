import type { CallRecord, LegQuality } from '../store/call-record.js';

type Column = [name: string, value: (r: CallRecord) => string | number | undefined];

const leg = (side: 'whatsapp' | 'sip', field: keyof LegQuality) => (r: CallRecord): string | number | undefined => r.quality?.[side]?.[field];

/** The export's columns, in order. Adding one at the end keeps existing spreadsheets working. */
const COLUMNS: Column[] = [
  ['id', (r) => r.id],
  ['direction', (r) => r.direction],
  ['tenant', (r) => r.tenant],
  ['phone_number_id', (r) => r.phoneNumberId],
  ['business_number', (r) => r.businessNumber],
  ['user_wa_id', (r) => r.userWaId],
  ['user_name', (r) => r.userName],
  ['sip_target', (r) => r.sipTarget],
  ['sip_agent', (r) => r.sipAgent],
  ['wa_call_id', (r) => r.waCallId],
  ['sip_call_id', (r) => r.sipCallId],
  ['offered_at', (r) => r.offeredAt],
  ['answered_at', (r) => r.answeredAt],
  ['ended_at', (r) => r.endedAt],
  ['duration_seconds', (r) => r.durationSeconds],
  ['billable_pulses', (r) => r.billablePulses],
  ['estimated_cost', (r) => r.estimatedCost],
  ['currency', (r) => r.currency],
  ['outcome', (r) => r.outcome],
  ['ended_by', (r) => r.endedBy],
  ['cause', (r) => r.cause],
  ['sip_status', (r) => r.sipStatus],
  ['graph_code', (r) => r.graphCode],
  ['whatsapp_mos', leg('whatsapp', 'mos')],
  ['whatsapp_jitter_ms', leg('whatsapp', 'jitterMs')],
  ['whatsapp_packets_lost', leg('whatsapp', 'lost')],
  ['sip_mos', leg('sip', 'mos')],
  ['sip_jitter_ms', leg('sip', 'jitterMs')],
  ['sip_packets_lost', leg('sip', 'lost')],
  ['cta_payload', (r) => r.ctaPayload],
  ['deeplink_payload', (r) => r.deeplinkPayload],
  ['whatsapp_codec', leg('whatsapp', 'codec')],
  ['sip_codec', leg('sip', 'codec')],
  ['meta_duration_seconds', (r) => r.metaDurationSeconds],
];

export const CSV_HEADER = COLUMNS.map(([name]) => name).join(',');

/**
 * RFC 4180 quoting. Text that a spreadsheet would run as a formula (=, +, -, @ first: profile names and CTA payloads
 * come from WhatsApp users) gets a leading apostrophe.
 */
export function csvField(v: string | number | undefined): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  let s = v;
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n']/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function recordToCsvRow(r: CallRecord): string {
  return `${COLUMNS.map(([, value]) => csvField(value(r))).join(',')}\r\n`;
}
