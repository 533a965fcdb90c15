import type { LegQuality } from '../media/bridge.js';

export type Direction = 'user_initiated' | 'business_initiated';
export type Outcome = 'answered' | 'rejected' | 'busy' | 'no_answer' | 'cancelled' | 'failed';

export const DIRECTIONS: readonly Direction[] = ['user_initiated', 'business_initiated'];
export const OUTCOMES: readonly Outcome[] = ['answered', 'rejected', 'busy', 'no_answer', 'cancelled', 'failed'];

/** Per-leg media quality, as the bridge measures it: one definition for the media path and the record. */
export type { LegQuality } from '../media/bridge.js';

export interface QualitySummary {
  whatsapp?: LegQuality;
  sip?: LegQuality;
}

/**
 * One call, written once when it ended. New fields are optional so that records written by older builds still
 * read back as CallRecord.
 */
export interface CallRecord {
  id: string;
  direction: Direction;
  tenant: string;
  phoneNumberId: string;
  businessNumber: string;
  userWaId: string;
  userName?: string;
  /** The SIP URI the gateway rang (user-initiated) or that placed the call (business-initiated). */
  sipTarget?: string;
  /** Who answered on the SIP side: the URI of the 200 OK's Contact (or To) header, when a dialog was established. */
  sipAgent?: string;
  ctaPayload?: string;
  deeplinkPayload?: string;
  waCallId?: string;
  sipCallId?: string;
  offeredAt: string;
  answeredAt?: string;
  endedAt: string;
  durationSeconds: number;
  /** Meta's own duration, from its terminate webhook (it bills by this one); added later when that webhook came after the record. */
  metaDurationSeconds?: number;
  billablePulses: number;
  /** Estimated charge by Meta; 0 for user-initiated calls, which are free (§3.5). */
  estimatedCost?: number;
  /** ISO 4217 code of estimatedCost. */
  currency?: string;
  outcome: Outcome;
  endedBy: 'whatsapp' | 'sip' | 'gateway';
  cause: string;
  sipStatus?: number;
  graphCode?: number;
  quality?: QualitySummary;
  /** The call's recording (src/recording), when one was made. */
  recording?: CallRecordingRef;
}

/** What a call record says about its recording: the id the admin API serves it under, and its file. */
export interface CallRecordingRef {
  id: string;
  file: string;
  /** wav: 16-bit PCM (.wav); ogg: Opus in Ogg (.opus). */
  format: 'wav' | 'ogg';
  durationSeconds: number;
  /** How consent was obtained: not required by policy, announced, or an explicit DTMF yes. */
  consent: 'not_required' | 'announced' | 'explicit_yes';
}

export interface CallRecordQuery {
  /** offeredAt >= since (ISO 8601). */
  since?: string;
  /** offeredAt < until (ISO 8601). */
  until?: string;
  direction?: Direction;
  outcome?: Outcome;
  tenant?: string;
  /** The user's wa_id or the business number (E.164 digits). */
  number?: string;
  /** Opaque position returned by the previous page (see recordCursor). */
  cursor?: string;
  /** Page size: default 100, at most 1000. */
  limit?: number;
}

/**
 * Where call records live. One interface so that SQLite and PostgreSQL stores are interchangeable. Records come
 * back newest first (offeredAt, then id, descending), which is the order cursors walk.
 */
export interface CallRecordStore {
  /** 'sqlite' | 'postgres': for the status summary and metrics labels. */
  readonly kind: string;
  readonly isOpen: boolean;
  /** Writes the record unless one with the same id exists: a record is written exactly once. */
  write(record: CallRecord): Promise<void>;
  get(id: string): Promise<CallRecord | undefined>;
  list(query?: CallRecordQuery): Promise<CallRecord[]>;
  /**
   * Rewrites the newest record of this WhatsApp call id with what `revise` returns (undefined: leave it as it is).
   * For facts that arrive after the record was written, such as Meta's own duration; returns the stored record, or
   * undefined when none changed.
   */
  amendByWaCallId(waCallId: string, revise: (r: CallRecord) => CallRecord | undefined): Promise<CallRecord | undefined>;
  /** Deletes records offered before the cutoff (ISO 8601); returns how many. */
  deleteOfferedBefore(cutoff: string): Promise<number>;
  close(): Promise<void>;
}

export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;

export function pageSize(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_PAGE;
  return Math.max(1, Math.min(MAX_PAGE, Math.floor(limit)));
}

/** The cursor that continues after this record. */
export function recordCursor(r: Pick<CallRecord, 'offeredAt' | 'id'>): string {
  return Buffer.from(JSON.stringify([r.offeredAt, r.id])).toString('base64url');
}

export class InvalidCursorError extends Error {}

export function decodeCursor(cursor: string): { offeredAt: string; id: string } {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string' && !Number.isNaN(Date.parse(v[0]))) {
      return { offeredAt: v[0], id: v[1] };
    }
  } catch {
    /* fall through */
  }
  throw new InvalidCursorError('cursor is not one this API returned');
}
