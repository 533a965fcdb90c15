export type Direction = 'user_initiated' | 'business_initiated';
export type Outcome = 'answered' | 'rejected' | 'busy' | 'no_answer' | 'cancelled' | 'failed';

export interface LegQuality {
  packetsIn: number;
  packetsOut: number;
  lost: number;
  late: number;
  jitterMs: number;
  mos: number;
}

export interface QualitySummary {
  whatsapp?: LegQuality;
  sip?: LegQuality;
}

export interface CallRecord {
  id: string;
  direction: Direction;
  tenant: string;
  phoneNumberId: string;
  businessNumber: string;
  userWaId: string;
  userName?: string;
  sipTarget?: string;
  ctaPayload?: string;
  deeplinkPayload?: string;
  waCallId?: string;
  sipCallId?: string;
  offeredAt: string;
  answeredAt?: string;
  endedAt: string;
  durationSeconds: number;
  billablePulses: number;
  outcome: Outcome;
  endedBy: 'whatsapp' | 'sip' | 'gateway';
  cause: string;
  sipStatus?: number;
  graphCode?: number;
  quality?: QualitySummary;
}

export interface CallRecordQuery {
  since?: string;
  until?: string;
  direction?: Direction;
  outcome?: Outcome;
  limit?: number;
}

/** Where call records live. One interface so that SQLite and PostgreSQL stores are interchangeable. */
export interface CallRecordStore {
  readonly isOpen: boolean;
  write(record: CallRecord): void;
  get(id: string): CallRecord | undefined;
  list(query?: CallRecordQuery): CallRecord[];
  close(): void;
}
