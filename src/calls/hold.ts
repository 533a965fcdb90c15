/**
 * Hold, kept inside the gateway: a re-INVITE from the agent with a=sendonly or a=inactive puts the WhatsApp user on
 * hold music (packets keep flowing toward Meta, whose leg never sees a re-INVITE); a=sendrecv (or recvonly) resumes
 * the bridge. The same re-INVITE may move the agent's RTP address or change the codec: media follows. The WhatsApp
 * user also hears the music while a transfer target rings.
 */
import type { Metrics } from '../observability/metrics.js';
import type { SipDialog } from '../sip/agent.js';
import type { Logger } from '../observability/logger.js';
import { LoopingPcm } from './hold-music.js';
import type { MediaSession } from './media-session.js';

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

/** Answers the agent's re-INVITEs on this dialog (hold, resume, address or codec change); a bad offer gets 488. */
export function handleAgentReinvites(dialog: SipDialog, media: MediaSession, hold: HoldControl, metrics: Metrics, log: Logger): void {
  dialog.reinviteHandler = (offer: string): string => {
    try {
      const r = media.answerAgentReoffer(offer, dialog.localSdp);
      const wantsHold = r.direction === 'sendonly' || r.direction === 'inactive';
      if (wantsHold !== hold.agentHolds) {
        hold.setAgentHeld(wantsHold);
        metrics.holds.inc({ event: wantsHold ? 'hold' : 'resume' });
        log.info({ direction: r.direction }, wantsHold ? 'agent put the call on hold: hold music to the WhatsApp user' : 'agent resumed the call');
      } else if (r.moved || r.codecChanged) {
        metrics.holds.inc({ event: 'media_change' });
      }
      return r.sdp;
    } catch (err) {
      metrics.holds.inc({ event: 'refused' });
      log.warn({ err: (err as Error).message }, 'agent re-INVITE unusable');
      throw err;
    }
  };
}
