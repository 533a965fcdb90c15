/**
 * The agent side of an answered call: which SIP dialog is the call's agent right now (it changes on transfer), and
 * what its in-dialog requests do — re-INVITE → hold / media follows (hold.ts), REFER → blind or
 * attended transfer (transfer.ts), BYE → the call ends, unless that dialog is no longer the agent or a transfer is under way.
 */
import { agentHangup } from './agent-hangup.js';
import type { Metrics } from '../observability/metrics.js';
import type { SipDialog, SipInviteOptions } from '../sip/agent.js';
import type { TransferConfig } from '../config/routing-schema.js';
import type { Call, EndReason } from './call.js';
import { handleAgentReinvites, type HoldControl } from './hold.js';
import type { MediaSession } from './media-session.js';
import { planTransfer, runTransfer } from './transfer.js';

export interface AgentSideOptions {
  call: Call;
  media: MediaSession;
  hold: HoldControl;
  metrics: Metrics;
  transfer: () => TransferConfig;
  invite: (opts: SipInviteOptions) => Promise<SipDialog>;
  inviteBase: Pick<SipInviteOptions, 'from' | 'headers'>;
  end(reason: EndReason): void;
}

export class AgentSide {
  private dialog: SipDialog;
  private transferring = false;

  constructor(first: SipDialog, private readonly opts: AgentSideOptions) {
    this.dialog = first;
    this.watch(first);
    // DTMF as SIP INFO (PBX without telephone-event) goes to whoever is the agent now.
    opts.media.setSipInfoSender((contentType, body) => this.dialog.sendInfo(contentType, body));
  }

  get current(): SipDialog {
    return this.dialog;
  }

  /** Teardown: hang up whoever is the agent now. */
  bye(): Promise<void> {
    return this.dialog.bye();
  }

  private watch(dialog: SipDialog): void {
    const { call, media, hold, metrics } = this.opts;
    handleAgentReinvites(dialog, media, hold, metrics, call.logger);
    dialog.on('ended', (end) => {
      if (end.by !== 'remote' || dialog !== this.dialog) return;
      // A transferor commonly hangs up right after 202 or the first NOTIFY: the transfer decides what happens.
      if (this.transferring) return;
      this.opts.end(agentHangup(end));
    });
    dialog.on('refer', (refer) => {
      if (dialog !== this.dialog || call.isEnded) return refer.reject(481);
      if (this.transferring) return refer.reject(491);
      const plan = planTransfer(refer);
      if (!plan.ok) {
        metrics.transfers.inc({ result: 'refused' });
        call.logger.warn({ referTo: refer.referTo, status: plan.status, detail: plan.detail }, `REFER refused: ${plan.reason}`);
        return refer.reject(plan.status, plan.reason);
      }
      refer.accept();
      this.transferring = true;
      void runTransfer({
        call, media, hold, config: this.opts.transfer(), invite: this.opts.invite, inviteBase: this.opts.inviteBase,
        adopt: (d) => {
          this.dialog = d;
          this.watch(d);
        },
      }, refer, plan.target, dialog).then((result) => {
        this.transferring = false;
        metrics.transfers.inc({ result });
        if (result === 'ended' && !call.isEnded) this.opts.end({ by: 'gateway', outcome: 'answered', cause: 'transfer_failed' });
        else if (result === 'returned' && !this.dialog.active) this.opts.end({ by: 'sip', outcome: 'answered', cause: 'agent_hangup' });
      });
    });
  }
}
