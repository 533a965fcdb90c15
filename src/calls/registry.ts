import type { Logger } from '../observability/logger.js';
import type { Call } from './call.js';
import { RecentKeys } from '../whatsapp/dedupe.js';
import { CallEvents } from './events.js';
import type { TerminateEvent } from '../whatsapp/events.js';

/** At most this many early terminates (for wacids a pending Graph connect may yet name) or uncertain connects are kept. */
const REMEMBERED_MAX = 1000;
/** How long an ended call's uncertain `connect` is watched for: past any ring timeout of Meta's (UNSURE, §3.2). */
const UNCERTAIN_CONNECT_MS = 3 * 60 * 1000;

export type AdmissionRefusal = 'draining' | 'capacity' | 'media_overload';

/** The reason phrase of the 503 a PBX gets for a refused INVITE. */
export function admissionRefusalText(r: AdmissionRefusal): string {
  return r === 'draining' ? 'Service draining' : r === 'capacity' ? 'Call capacity reached' : 'Media capacity reached';
}

/**
 * The live calls, found by gateway id, WhatsApp call id or SIP Call-ID; the admission rules (limit, drain); and the
 * memory of WhatsApp calls already terminated, so that a `connect` arriving after its `terminate` is never started.
 */
export class CallRegistry {
  private readonly byId = new Map<string, Call>();
  private readonly byWaId = new Map<string, Call>();
  private readonly byOpaque = new Map<string, Call>();
  private readonly terminatedWaIds = new RecentKeys(60 * 60 * 1000);
  private readonly earlyTerminates = new Map<string, TerminateEvent>();
  private readonly uncertainConnects = new Map<string, { hangUp: (waCallId: string) => Promise<void>; until: number }>();
  private drainingSince?: number;
  private readonly emptyWaiters = new Set<() => void>();
  /**
   * True while the media loop is saturated even with the encoders at their lowest complexity (the gateway wires the
   * load governor here): a new call would make every call's audio late, so it is refused like one over the limit.
   */
  mediaSaturated: () => boolean = () => false;

  constructor(
    private readonly maxConcurrent: number,
    private readonly logger: Logger,
    /** Lifecycle events of every admitted call (the live feed reads them). */
    readonly events = new CallEvents(),
  ) {}

  get size(): number {
    return this.byId.size;
  }

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  /** Why a new call may not start, or undefined when it may. */
  admissionRefusal(): AdmissionRefusal | undefined {
    if (this.draining) return 'draining';
    if (this.byId.size >= this.maxConcurrent) return 'capacity';
    if (this.mediaSaturated()) {
      this.logger.warn({ liveCalls: this.byId.size }, 'new call refused: the media loop is saturated with the Opus encoders at their lowest complexity');
      return 'media_overload';
    }
    return undefined;
  }

  add(call: Call): void {
    this.byId.set(call.id, call);
    this.events.attach(call);
    void call.ended.then(() => {
      this.byId.delete(call.id);
      if (call.waCallId && this.byWaId.get(call.waCallId) === call) this.byWaId.delete(call.waCallId);
      if (this.byId.size === 0) for (const w of this.emptyWaiters) w();
    });
  }

  indexWaCallId(call: Call, waCallId: string): void {
    this.byWaId.set(waCallId, call);
  }

  get(id: string): Call | undefined {
    return this.byId.get(id);
  }

  /** The biz_opaque_callback_data a business-initiated call's `connect` carried; Meta echoes it in that call's webhooks. */
  indexBizOpaque(call: Call, opaque: string): void {
    this.byOpaque.set(opaque, call);
    void call.ended.then(() => {
      if (this.byOpaque.get(opaque) === call) this.byOpaque.delete(opaque);
    });
  }

  /** The call whose `connect` carried this biz_opaque_callback_data (WhatsAppOutboundLeg indexes it before sending). */
  byBizOpaque(opaque: string): Call | undefined {
    return this.byOpaque.get(opaque);
  }

  byWhatsAppId(waCallId: string): Call | undefined {
    return this.byWaId.get(waCallId);
  }

  list(): Call[] {
    return [...this.byId.values()];
  }

  /**
   * True when a live call here is the one a webhook names: by wacid, or (a business-initiated call whose wacid is not
   * bound yet) by the biz_opaque_callback_data its `connect` carried.
   */
  isLiveWhatsAppCall(waCallId: string, bizOpaque?: string): boolean {
    const call = this.byWaId.get(waCallId) ?? (bizOpaque ? this.byBizOpaque(bizOpaque) : undefined);
    return call !== undefined && !call.isEnded;
  }

  markWhatsAppTerminated(waCallId: string): void {
    this.terminatedWaIds.firstSighting(waCallId);
  }

  wasWhatsAppTerminated(waCallId: string): boolean {
    return this.terminatedWaIds.has(waCallId);
  }

  /**
   * A terminate naming no call here may still be for a business-initiated call whose Graph `connect` has not returned
   * its wacid (and Meta left out biz_opaque_callback_data): kept, bounded, for takeEarlyTerminate.
   */
  keepEarlyTerminate(ev: TerminateEvent): void {
    setBounded(this.earlyTerminates, ev.callId, ev);
  }

  /** The kept terminate for this wacid, once. */
  takeEarlyTerminate(waCallId: string): TerminateEvent | undefined {
    const ev = this.earlyTerminates.get(waCallId);
    this.earlyTerminates.delete(waCallId);
    return ev;
  }

  /**
   * A business-initiated call ended while its Graph `connect` had timed out or failed with a 5xx: Meta may have placed
   * it all the same, and the user's phone may ring for nobody. A webhook naming the call by this biz_opaque_callback_data
   * (takeUncertainConnect) hands over the wacid that `hangUp` terminates. Bounded like the early terminates.
   */
  keepUncertainConnect(opaque: string, hangUp: (waCallId: string) => Promise<void>, now = Date.now()): void {
    for (const [k, v] of this.uncertainConnects) if (v.until <= now) this.uncertainConnects.delete(k);
    setBounded(this.uncertainConnects, opaque, { hangUp, until: now + UNCERTAIN_CONNECT_MS });
  }

  /** The hang-up for an ended call's uncertain `connect`, once. */
  takeUncertainConnect(opaque: string, now = Date.now()): ((waCallId: string) => Promise<void>) | undefined {
    const v = this.uncertainConnects.get(opaque);
    this.uncertainConnects.delete(opaque);
    return v && v.until > now ? v.hangUp : undefined;
  }

  /** Stops admitting calls, waits for live ones up to the deadline, then ends the rest with cause 'drain'. */
  async drain(deadlineMs: number): Promise<{ endedByDeadline: number }> {
    this.drainingSince ??= Date.now();
    this.logger.info({ liveCalls: this.byId.size, deadlineMs }, 'draining: no new calls accepted');
    if (this.byId.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadlineMs);
        this.emptyWaiters.add(() => { clearTimeout(timer); resolve(); });
      });
    }
    const rest = this.list();
    await Promise.all(rest.map((c) => c.end({ by: 'gateway', outcome: c.state === 'answered' ? 'answered' : 'failed', cause: 'drain' })));
    return { endedByDeadline: rest.length };
  }
}

/** Sets key as the newest entry, dropping the oldest once the map holds more than REMEMBERED_MAX. */
function setBounded<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > REMEMBERED_MAX) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
}
