/**
 * The agent side of an answered call, whichever way it was placed (user-initiated, a PBX INVITE to WhatsApp,
 * click-to-call): which SIP dialog is the call's agent right now (it changes on transfer), and what its in-dialog
 * requests do — re-INVITE / UPDATE → hold / media follows (hold.ts), REFER → blind or attended transfer
 * (transfer.ts), BYE → the call ends, unless that dialog is no longer the agent or a transfer is under way.
 */
import { parseDtmfInfo } from '../sip/dtmf-info.js';
import { agentHangup, sendBye } from './agent-hangup.js';
import type { Metrics } from '../observability/metrics.js';
import type { SipDialog, SipInviteOptions } from '../sip/agent.js';
import type { TransferConfig } from '../config/routing-schema.js';
import type { Call, EndReason } from './call.js';
import type { CallDeps } from './deps.js';
import { handleAgentReinvites, HoldControl } from './hold.js';
import { generatedMelody } from './hold-music.js';
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

/**
 * The one set-up of the agent side for every call flow, once its PBX dialog is confirmed: hold music, transfer settings
 * and the INVITE toward a transfer target (`inviteBase`: the WhatsApp user as caller, the call's context headers).
 */
export function startAgentSide(
  deps: Pick<CallDeps, 'config' | 'metrics' | 'sip' | 'holdMusic'>, call: Call, media: MediaSession, dialog: SipDialog,
  inviteBase: AgentSideOptions['inviteBase'], end: (reason: EndReason) => void,
): AgentSide {
  return new AgentSide(dialog, {
    call, media, metrics: deps.metrics,
    hold: new HoldControl(media, deps.holdMusic ?? generatedMelody()),
    transfer: () => deps.config.transfer,
    invite: (o) => deps.sip.invite({ ...o, logger: call.logger }),
    inviteBase, end,
  });
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

  /**
   * The call's teardown step for the PBX side: BYE to the current agent, unless the call ended by that agent's own
   * BYE (after a transfer the one who hung up may be a previous agent: the current one still gets its BYE).
   */
  hangUp(end: EndReason): void {
    if (end.by === 'sip' && !this.dialog.active) return;
    sendBye(this.dialog, end);
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
    dialog.on('info', (info) => {
      const d = dialog === this.dialog ? parseDtmfInfo(info.contentType, info.body) : undefined;
      if (d) media.sipInfoDigit(d.digit, d.durationMs);
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
