/**
 * DTMF carried in SIP INFO by PBXes that do not send RFC 4733 (e.g. Asterisk dtmfmode=info, Cisco): the de-facto
 * application/dtmf-relay body ("Signal=5\r\nDuration=160") and the bare application/dtmf body ("5").
 */
import { eventToDigit, type DtmfDigit } from '../media/rtp-packet.js';

export interface InfoDigit {
  digit: DtmfDigit;
  durationMs: number;
}

const DEFAULT_DURATION_MS = 100;

/** The digit an INFO carries, or undefined for any other INFO (or a signal that is not a digit, e.g. hook flash). */
export function parseDtmfInfo(contentType: string, body: string): InfoDigit | undefined {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  let signal: string | undefined;
  let duration: number | undefined;
  if (type === 'application/dtmf-relay') {
    for (const line of body.split(/\r?\n/)) {
      const m = /^\s*(signal|duration)\s*=\s*(\S+)\s*$/i.exec(line);
      if (!m) continue;
      if (m[1]!.toLowerCase() === 'signal') signal = m[2];
      else duration = Number(m[2]);
    }
  } else if (type === 'application/dtmf') {
    signal = body.trim();
  } else {
    return undefined;
  }
  const digit = signal === undefined ? null : toDigit(signal);
  if (digit === null) return undefined;
  const durationMs = duration !== undefined && Number.isFinite(duration) && duration > 0 ? Math.min(duration, 5000) : DEFAULT_DURATION_MS;
  return { digit, durationMs };
}

/** "0"-"9", "*", "#", "A"-"D", or the event numbers 10 and 11 some PBXes send for "*" and "#". */
function toDigit(signal: string): DtmfDigit | null {
  if (/^\d+$/.test(signal)) return signal.length === 1 ? (signal as DtmfDigit) : Number(signal) <= 15 ? eventToDigit(Number(signal)) : null;
  const s = signal.toUpperCase();
  return /^[*#A-D]$/.test(s) ? (s as DtmfDigit) : null;
}
