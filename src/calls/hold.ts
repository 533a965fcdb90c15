/**
 * Hold, kept inside the gateway: an offer from the agent (re-INVITE, UPDATE, or the answer to our offer after an
 * offerless re-INVITE) with a=sendonly, a=inactive or c=0.0.0.0 puts the WhatsApp user on hold music (packets keep
 * flowing toward Meta, whose leg never sees a re-INVITE); a=sendrecv (or recvonly) resumes the bridge. The same offer
 * may move the agent's RTP address or change the codec: media follows. The WhatsApp user also hears the music while a
 * transfer target rings. Both call directions (user- and business-initiated, click-to-call) use this through AgentSide.
 */
import type { Metrics } from '../observability/metrics.js';
import type { SipDialog } from '../sip/agent.js';
import type { Logger } from '../observability/logger.js';
import { LoopingPcm } from './hold-music.js';
import type { AgentMediaChange, MediaSession } from './media-session.js';

export class HoldControl {
  private agentHeld = false;
  private transferRinging = false;

  constructor(private readonly media: MediaSession, private readonly music: Int16Array) {}

  get agentHolds(): boolean {
    return this.agentHeld;
  }

  setAgentHeld(held: boolean): void {
    this.agentHeld = held;
    this.apply();
  }

  setTransferRinging(ringing: boolean): void {
    this.transferRinging = ringing;
    this.apply();
  }

  private apply(): void {
    const want = this.agentHeld || this.transferRinging;
    // Each hold starts the music from its beginning.
    if (want && !this.media.onHold) this.media.setHoldSource(new LoopingPcm(this.music));
    else if (!want && this.media.onHold) this.media.setHoldSource(null);
  }
}

/**
 * Answers the agent's offers on this dialog — re-INVITE or UPDATE (hold, resume, address or codec change; a bad offer
 * gets 488) — and offerless re-INVITEs: our offer goes in the 200 OK and the agent's answer, from the ACK, is followed
 * the same way. Hold is a direction of sendonly or inactive, or c=0.0.0.0 (RFC 3264 §8.4).
 */
export function handleAgentReinvites(dialog: SipDialog, media: MediaSession, hold: HoldControl, metrics: Metrics, log: Logger): void {
  const follow = (r: AgentMediaChange): void => {
    const wantsHold = r.direction === 'sendonly' || r.direction === 'inactive';
    if (wantsHold !== hold.agentHolds) {
      hold.setAgentHeld(wantsHold);
      metrics.holds.inc({ event: wantsHold ? 'hold' : 'resume' });
      log.info({ direction: r.direction }, wantsHold ? 'agent put the call on hold: hold music to the WhatsApp user' : 'agent resumed the call');
    } else if (r.moved || r.codecChanged) {
      metrics.holds.inc({ event: 'media_change' });
    }
  };
  dialog.reinviteHandler = (offer: string): string => {
    try {
      const r = media.answerAgentReoffer(offer, dialog.localSdp);
      follow(r);
      return r.sdp;
    } catch (err) {
      metrics.holds.inc({ event: 'refused' });
      log.warn({ err: (err as Error).message }, 'agent re-INVITE unusable');
      throw err;
    }
  };
  dialog.offerlessHandler = {
    offer: () => media.agentOfferlessOffer(dialog.localSdp),
    applyAnswer: (answer) => {
      try {
        follow(media.applyAgentAnswer(answer));
      } catch (err) {
        // Too late to refuse (the ACK completed the transaction): media stays as it was.
        metrics.holds.inc({ event: 'refused' });
        log.warn({ err: (err as Error).message }, 'agent answer to our offer (offerless re-INVITE) unusable: media unchanged');
      }
    },
  };
}
