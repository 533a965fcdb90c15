import { randomUUID } from 'node:crypto';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { CallRecord, CallRecordingRef, Outcome, Direction, QualitySummary } from '../store/call-record.js';
import { billablePulses } from './billing.js';

export type CallState = 'new' | 'offered' | 'pre_accepted' | 'ringing' | 'answered' | 'ended';

/** Legal forward moves; `ended` is reached through end() only, from any state. */
const NEXT: Record<CallState, readonly CallState[]> = {
  new: ['offered'],
  offered: ['pre_accepted', 'ringing'],
  pre_accepted: ['ringing'],
  ringing: ['answered'],
  answered: [],
  ended: [],
};

export type Party = 'whatsapp' | 'sip' | 'gateway';

export interface EndReason {
  by: Party;
  outcome: Outcome;
  /** Machine-readable cause: e.g. 'sip_486', 'graph_138006', 'media_timeout_sip', 'drain', 'user_hangup'. */
  cause: string;
  sipStatus?: number;
  graphCode?: number;
  /** Meta's own duration of the call, from its terminate webhook (§1.5, picked-up calls only): what Meta bills by. */
  metaDurationSeconds?: number;
}

/** The part of an ending a terminate webhook tells about the call's duration, when it carries one. */
export function metaDuration(ev: { duration?: number }): Pick<EndReason, 'metaDurationSeconds'> {
  return ev.duration !== undefined && ev.duration >= 0 ? { metaDurationSeconds: ev.duration } : {};
}

export interface EndContext extends EndReason {
  /** The state the call was in when it ended: decides CANCEL vs BYE, reject vs terminate. */
  stateAtEnd: CallState;
}

type Teardown = (end: EndContext) => Promise<void> | void;

export interface CallContext {
  direction: Direction;
  tenant: string;
  phoneNumberId: string;
  businessNumber: string;
  userWaId: string;
  userName?: string;
  sipTarget?: string;
  ctaPayload?: string;
  deeplinkPayload?: string;
}

const TEARDOWN_STEP_MS = 5000;
/** How long the record waits for Meta's terminate after our own (within one teardown step's bound). */
const LATE_META_TERMINATE_WAIT_MS = 2000;

/** What a call tells its observers (the CallEvents bus): a state reached, or the record once written. */
export type CallChange = { kind: 'state'; state: CallState } | { kind: 'ended'; record: CallRecord };

/**
 * One call's state and its single teardown. Protocol work lives in the flows and legs: they register teardown steps,
 * and end() runs them exactly once, whoever asks first, then writes the call record.
 */
export class Call {
  readonly id = randomUUID();
  state: CallState = 'new';
  waCallId?: string;
  sipCallId?: string;
  logger: Logger;
  readonly offeredAt = new Date();
  answeredAt?: Date;
  quality?: QualitySummary;
  /** Who answered on the SIP side (the 200 OK's Contact URI). */
  sipAgent?: string;
  /** Set by the recording's teardown step (which runs before the record is written). */
  recording?: CallRecordingRef;
  readonly ended: Promise<CallRecord>;
  private readonly teardowns: Teardown[] = [];
  private readonly observers: ((change: CallChange) => void)[] = [];
  private qualitySource?: () => QualitySummary | undefined;
  private endStarted = false;
  private resolveEnded!: (r: CallRecord) => void;
  /** Meta's terminate for a call that was already ending (we hung up first), and the duration it stated. */
  private lateMetaTerminate?: Pick<EndReason, 'metaDurationSeconds'>;
  private lateMetaTerminateArrived?: () => void;

  constructor(
    readonly ctx: CallContext,
    baseLogger: Logger,
    private readonly metrics: Metrics,
    private readonly persist: (r: CallRecord) => Promise<void> | void,
  ) {
    this.logger = baseLogger.child({ callId: this.id });
    this.ended = new Promise((r) => { this.resolveEnded = r; });
    metrics.activeCalls.inc({ direction: ctx.direction });
  }

  get isEnded(): boolean {
    return this.endStarted;
  }

  /** Adds the WhatsApp call id or SIP Call-ID to every later log line of this call. */
  bindIds(ids: { waCallId?: string; sipCallId?: string }): void {
    if (ids.waCallId) this.waCallId = ids.waCallId;
    if (ids.sipCallId) this.sipCallId = ids.sipCallId;
    this.logger = this.logger.child(ids);
  }

  /** Moves forward if the move is legal; otherwise logs and counts it and returns false, never throws. */
  transition(to: CallState, event: string): boolean {
    if (this.endStarted || !NEXT[this.state].includes(to)) {
      this.metrics.unexpectedEvents.inc({ state: this.state, event });
      this.logger.warn({ state: this.state, to, event }, 'event ignored: makes no sense in this state');
      return false;
    }
    this.logger.info({ from: this.state, to, event }, 'call state');
    this.state = to;
    if (to === 'offered') this.metrics.callsOffered.inc({ direction: this.ctx.direction });
    if (to === 'answered') {
      this.metrics.callsAnswered.inc({ direction: this.ctx.direction });
      this.answeredAt = new Date();
      this.metrics.setupSeconds.observe({ direction: this.ctx.direction }, (this.answeredAt.getTime() - this.offeredAt.getTime()) / 1000);
    }
    this.notify({ kind: 'state', state: to });
    return true;
  }

  /** Observers never break the call: a throwing observer is logged and skipped. */
  observe(listener: (change: CallChange) => void): void {
    this.observers.push(listener);
  }

  private notify(change: CallChange): void {
    for (const o of this.observers) {
      try {
        o(change);
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'call observer failed');
      }
    }
  }

  /** The media session registers where live quality comes from; the admin API and event feed read it here. */
  setQualitySource(source: () => QualitySummary | undefined): void {
    this.qualitySource = source;
  }

  /** Quality so far: live while media flows, the final summary once the media session closed. */
  currentQuality(): QualitySummary | undefined {
    if (this.quality) return this.quality;
    try {
      return this.qualitySource?.();
    } catch {
      return undefined;
    }
  }

  /**
   * Meta's terminate webhook for this call after it began ending: when the gateway or the PBX hung up, Meta's own
   * duration (what it bills by, §1.5) arrives only now, and still goes into the record.
   */
  noteLateMetaTerminate(ev: { duration?: number }): void {
    if (this.lateMetaTerminate) return;
    this.lateMetaTerminate = this.answeredAt ? metaDuration(ev) : {};
    this.lateMetaTerminateArrived?.();
  }

  /**
   * A teardown step that ended an answered call with Graph `terminate` waits here for Meta's terminate, which follows
   * within a second or so; bounded, so a webhook that never comes costs the record its Meta duration, nothing more.
   */
  async waitForLateMetaTerminate(): Promise<void> {
    if (this.lateMetaTerminate || !this.answeredAt) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, LATE_META_TERMINATE_WAIT_MS);
      this.lateMetaTerminateArrived = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  onTeardown(step: Teardown): void {
    this.teardowns.push(step);
  }

  /** Ends the call once; later calls return the same record. Teardown steps run newest first, each bounded in time. */
  end(reason: EndReason): Promise<CallRecord> {
    if (this.endStarted) return this.ended;
    this.endStarted = true;
    const end: EndContext = { ...reason, stateAtEnd: this.state };
    this.state = 'ended';
    void this.runTeardown(end);
    return this.ended;
  }

  private async runTeardown(end: EndContext): Promise<void> {
    const endedAt = new Date();
    for (const step of this.teardowns.reverse()) {
      try {
        await Promise.race([
          Promise.resolve().then(() => step(end)),
          new Promise((_, reject) => setTimeout(() => reject(new Error('teardown step timed out')), TEARDOWN_STEP_MS).unref()),
        ]);
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'teardown step failed');
      }
    }
    const record = this.toRecord(end, endedAt);
    try {
      await this.persist(record);
      this.metrics.callRecords.inc({ result: 'written' });
    } catch (err) {
      this.metrics.callRecords.inc({ result: 'failed' });
      // The record is not lost: the whole of it goes to the log, from which it can be replayed.
      this.logger.error({ err: (err as Error).message, record }, 'call record could not be written');
    }
    this.metrics.activeCalls.dec({ direction: this.ctx.direction });
    this.metrics.callsTotal.inc({ direction: this.ctx.direction, outcome: end.outcome });
    this.logger.info({ outcome: end.outcome, cause: end.cause, endedBy: end.by, stateAtEnd: end.stateAtEnd, durationSeconds: record.durationSeconds }, 'call ended');
    this.notify({ kind: 'ended', record });
    this.resolveEnded(record);
  }

  private toRecord(end: EndContext, endedAt: Date): CallRecord {
    const durationSeconds = this.answeredAt ? Math.max(0, (endedAt.getTime() - this.answeredAt.getTime()) / 1000) : 0;
    const metaDurationSeconds = end.metaDurationSeconds ?? this.lateMetaTerminate?.metaDurationSeconds;
    return {
      id: this.id,
      ...this.ctx,
      waCallId: this.waCallId,
      sipCallId: this.sipCallId,
      offeredAt: this.offeredAt.toISOString(),
      answeredAt: this.answeredAt?.toISOString(),
      endedAt: endedAt.toISOString(),
      durationSeconds: Math.round(durationSeconds * 1000) / 1000,
      // By Meta's own duration when its terminate told it: Meta bills by that one.
      billablePulses: billablePulses(this.ctx.direction, metaDurationSeconds ?? durationSeconds),
      ...(metaDurationSeconds !== undefined ? { metaDurationSeconds } : {}),
      ...(this.ctx.direction === 'user_initiated' ? { estimatedCost: 0 } : {}),
      sipAgent: this.sipAgent,
      outcome: end.outcome,
      endedBy: end.by,
      cause: end.cause,
      sipStatus: end.sipStatus,
      graphCode: end.graphCode,
      quality: this.quality,
      ...(this.recording ? { recording: this.recording } : {}),
    };
  }
}
