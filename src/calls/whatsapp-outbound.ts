import type { BusinessNumber } from '../config/schema.js';
import { GraphError, nextAllowedTime, type GraphClient } from '../whatsapp/graph-client.js';
import type { Call } from './call.js';
import type { CallDeps } from './deps.js';
import type { MediaSession } from './media-session.js';

/** How long a pick-up waits for the `connect` webhook's answer SDP. */
const ANSWER_WAIT_MS = 5000;

/**
 * The WhatsApp side of a call the business places (desk phone or click-to-call): Graph `connect`, the answer SDP that
 * may arrive before `connect` returns, and the hang-up with Graph `terminate`.
 */
export class WhatsAppOutboundLeg {
  /** Set once the user picked up; a call that rang the user and ends before counts as unanswered in the ledger (§3.1). */
  pickedUp = false;
  private connecting?: Promise<string | undefined>;
  /** `connect` timed out, failed with a 5xx, or succeeded without naming the call: Meta may have placed it. */
  private connectUncertain = false;
  private applied?: Promise<boolean>;
  private arrived!: (applied: Promise<boolean>) => void;
  private readonly arrival = new Promise<boolean>((resolve) => { this.arrived = (p) => resolve(p); });

  constructor(
    private readonly call: Call,
    private readonly deps: CallDeps,
    private readonly graph: GraphClient,
    private readonly number: BusinessNumber,
    private readonly waId: string,
  ) {
    call.onTeardown(async (end) => {
      const waCallId = call.waCallId ?? (await this.connecting);
      if (!waCallId) {
        if (this.connectUncertain) this.watchUncertainConnect();
        return;
      }
      // Meta counts the calls that reached the user unanswered (§3.1): not one the PBX gave up on, or we could not set
      // up, before the user's phone rang (a local revoke would then refuse calls Meta still allows).
      const reachedUser = end.stateAtEnd === 'ringing' || end.cause === 'user_declined';
      if (!this.pickedUp && reachedUser) deps.permissions?.ledger.businessCallUnanswered(number.phoneNumberId, waId);
      if (end.by === 'whatsapp') return;
      try {
        await graph.terminate(number.phoneNumberId, waCallId);
        await call.waitForLateMetaTerminate();
      } catch (err) {
        call.logger.warn({ err: (err as Error).message }, 'Graph terminate failed');
      }
    });
  }

  /** Until Meta's webhooks name the call this `connect` may have placed: then it is terminated (its user rings for nobody). */
  private watchUncertainConnect(): void {
    const { call, deps, graph, number } = this;
    call.logger.warn({ bizOpaque: this.opaque }, 'call ended while Graph connect was uncertain: a WhatsApp call it placed will be terminated');
    deps.registry.keepUncertainConnect(this.opaque, async (waCallId) => {
      deps.metrics.uncertainConnectsTerminated.inc();
      call.logger.warn({ waCallId }, 'WhatsApp call placed by an uncertain connect after its call ended: Graph terminate');
      try {
        await graph.terminate(number.phoneNumberId, waCallId);
      } catch (err) {
        call.logger.warn({ err: (err as Error).message, waCallId }, 'Graph terminate failed');
      }
    });
  }

  /** Applies the `connect` webhook's answer SDP once (duplicates are ignored); onUnusable ends the call. */
  applyAnswer(media: MediaSession, sdp: string, onUnusable: (err: unknown) => void): void {
    if (this.applied) return;
    this.applied = media.applyWhatsAppAnswer(sdp).then(() => true, (err: unknown) => {
      this.call.logger.warn({ err: (err as Error).message }, 'WhatsApp SDP answer unusable');
      onUnusable(err);
      return false;
    });
    this.arrived(this.applied);
  }

  /** True once the answer SDP is applied; false when it failed or did not come in time. */
  answerReady(): Promise<boolean> {
    return Promise.race([this.arrival, new Promise<boolean>((r) => setTimeout(() => r(false), ANSWER_WAIT_MS).unref())]);
  }

  /** biz_opaque_callback_data of this call's `connect` (see connect()). */
  private get opaque(): string {
    return (this.call.sipCallId ?? this.call.id).slice(0, 512);
  }

  /**
   * Graph `connect`: the wacid, indexed, or Meta's error. biz_opaque_callback_data is the SIP Call-ID (the fact sheet's
   * checklist, §6: the PBX side can match Meta's webhooks and records to its own call), or the gateway call id when
   * no SIP dialog exists yet (click-to-call rings the agent only after the user answered). Meta takes 512 characters.
   */
  async connect(offerSdp: string): Promise<{ waCallId?: string } | { error: unknown }> {
    let error: unknown;
    let failed = false;
    const opaque = this.opaque;
    // Webhooks may beat the `connect` response: they find the call by what it carries.
    this.deps.registry.indexBizOpaque(this.call, opaque);
    this.connecting = this.graph.connect(this.number.phoneNumberId, this.waId, offerSdp, opaque).then((id) => id, (err: unknown) => {
      error = err;
      failed = true;
      return undefined;
    });
    const waCallId = await this.connecting;
    if (failed) {
      this.connectUncertain = !(error instanceof GraphError) || error.uncertain;
      if (error instanceof GraphError && error.code === 138006) this.deps.permissions?.ledger.markNoPermission(this.number.phoneNumberId, this.waId);
      // The next INVITE to this user is refused here until then, instead of asking Meta again.
      if (error instanceof GraphError && error.code === 138012) {
        this.deps.permissions?.ledger.blockCalls(this.number.phoneNumberId, this.waId, nextAllowedTime(error.details));
      }
      return { error };
    }
    // Meta took the call without naming it: the webhooks bind the wacid through biz_opaque_callback_data.
    if (!waCallId) {
      this.connectUncertain = true;
      return {};
    }
    if (!this.call.waCallId) this.call.bindIds({ waCallId });
    this.deps.registry.indexWaCallId(this.call, waCallId);
    return { waCallId };
  }
}
