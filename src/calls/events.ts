import type { Call, CallState } from './call.js';
import type { CallRecord, QualitySummary } from '../store/call-record.js';

export type CallEventType = 'call.offered' | 'call.ringing' | 'call.answered' | 'call.quality' | 'call.ended';

/** One event of the live feed (/v1/events). Numbers, ids and quality only: no SDP, no secrets. */
export interface CallEvent {
  type: CallEventType;
  /** Increases by one per event of this gateway process: a consumer sees gaps and order. */
  seq: number;
  at: string;
  callId: string;
  direction: string;
  tenant: string;
  businessNumber: string;
  userWaId: string;
  userName?: string;
  sipTarget?: string;
  waCallId?: string;
  sipCallId?: string;
  state: CallState;
  quality?: QualitySummary;
  /** call.ended only. */
  outcome?: CallRecord['outcome'];
  endedBy?: CallRecord['endedBy'];
  cause?: string;
  durationSeconds?: number;
}

type Listener = (ev: CallEvent) => void;

const STATE_EVENTS: Partial<Record<CallState, CallEventType>> = {
  offered: 'call.offered',
  ringing: 'call.ringing',
  answered: 'call.answered',
};

/**
 * The one place call lifecycle events come from: the registry attaches every call it admits, and the quality
 * sampler adds periodic quality of answered calls while anyone listens. Listeners are called synchronously and must
 * not block (the WebSocket feed only queues).
 */
export class CallEvents {
  private readonly listeners = new Set<Listener>();
  private seq = 0;
  private sampler?: NodeJS.Timeout;

  get subscriberCount(): number {
    return this.listeners.size;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  attach(call: Call): void {
    // A call admitted after its first transition still announces the state it is in.
    if (STATE_EVENTS[call.state]) this.publish(call, STATE_EVENTS[call.state]!);
    call.observe((change) => {
      if (change.kind === 'ended') this.publish(call, 'call.ended', change.record);
      else if (STATE_EVENTS[change.state]) this.publish(call, STATE_EVENTS[change.state]!);
    });
  }

  /** Every intervalMs, a call.quality event per answered call, only while there are listeners. */
  startQualitySampling(liveCalls: () => Call[], intervalMs: number): void {
    this.stopQualitySampling();
    this.sampler = setInterval(() => {
      if (this.listeners.size === 0) return;
      for (const call of liveCalls()) {
        if (call.state !== 'answered') continue;
        const quality = call.currentQuality();
        if (quality) this.publish(call, 'call.quality');
      }
    }, intervalMs);
    this.sampler.unref();
  }

  stopQualitySampling(): void {
    if (this.sampler) clearInterval(this.sampler);
    this.sampler = undefined;
  }

  private publish(call: Call, type: CallEventType, record?: CallRecord): void {
    if (this.listeners.size === 0) {
      this.seq++;
      return;
    }
    const ev: CallEvent = {
      type,
      seq: ++this.seq,
      at: new Date().toISOString(),
      callId: call.id,
      direction: call.ctx.direction,
      tenant: call.ctx.tenant,
      businessNumber: call.ctx.businessNumber,
      userWaId: call.ctx.userWaId,
      userName: call.ctx.userName,
      sipTarget: call.ctx.sipTarget,
      waCallId: call.waCallId,
      sipCallId: call.sipCallId,
      state: record ? 'ended' : call.state,
    };
    if (type === 'call.quality' || type === 'call.ended') ev.quality = record?.quality ?? call.currentQuality();
    if (record) {
      ev.outcome = record.outcome;
      ev.endedBy = record.endedBy;
      ev.cause = record.cause;
      ev.durationSeconds = record.durationSeconds;
    }
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch {
        // A listener's failure is its own (the feed logs and drops its client); the call goes on.
      }
    }
  }
}
