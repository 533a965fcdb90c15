/**
 * Blind transfer, kept inside the gateway (RFC 3515 / RFC 5589 §6): the agent sends REFER; we answer 202, ring the
 * Refer-To target with the same WhatsApp context headers on a second RTP leg (the WhatsApp user hears hold music
 * meanwhile), and when it answers move the bridge there, report 200 in a final NOTIFY (message/sipfrag) and hang up
 * the agent who transferred. If the target does not answer, the NOTIFY carries its failure and the call goes back to
 * the first agent (if still there) or ends, as transfer.onFailure says. Nothing is ever signalled toward WhatsApp:
 * Meta refuses re-INVITE, UPDATE and REFER on its leg.
 */
import type { TransferConfig } from '../config/routing-schema.js';
import { SipCallFailure, type SipDialog, type SipInviteOptions, type SipReferRequest } from '../sip/agent.js';
import type { Call } from './call.js';
import type { HoldControl } from './hold.js';
import type { MediaSession } from './media-session.js';

export type TransferResult = 'completed' | 'returned' | 'ended';

export interface TransferContext {
  call: Call;
  media: MediaSession;
  hold: HoldControl;
  config: TransferConfig;
  invite: (opts: SipInviteOptions) => Promise<SipDialog>;
  /** The INVITE toward the target: identity and WhatsApp context headers (the Request-URI comes from Refer-To). */
  inviteBase: Pick<SipInviteOptions, 'from' | 'headers'>;
  /** Makes the target's dialog the call's agent dialog (its BYE, REFER and re-INVITEs now count). */
  adopt(dialog: SipDialog): void;
}

const SIP_URI = /^sips?:[^\s<>]+$/i;

/** Can this REFER be taken? Returns the status to refuse it with, or undefined. */
export function referRefusal(refer: SipReferRequest): number | undefined {
  if (!SIP_URI.test(refer.referToUri)) return 400;
  // Attended transfer (Refer-To with ?Replaces=) needs the replaced dialog here; not supported.
  if (/[?&]replaces=/i.test(refer.referTo)) return 501;
  return undefined;
}

/**
 * Runs an accepted REFER to its end. `from` is the agent dialog the REFER came on. Never throws: every failure is
 * reported in the final NOTIFY and resolved as 'returned' or 'ended' (the caller ends the call for 'ended').
 */
export async function runBlindTransfer(ctx: TransferContext, refer: SipReferRequest, from: SipDialog): Promise<TransferResult> {
  const { call, media, hold, config } = ctx;
  const log = call.logger.child({ transferTo: refer.referToUri });
  log.info({ referredBy: refer.referredBy }, 'blind transfer requested by the agent');
  void from.notifyRefer(100, 'Trying', false);
  if (config.holdMusicWhileRinging) hold.setTransferRinging(true);

  const abort = new AbortController();
  // The call ending (the user hung up) cancels the INVITE at once, before the rest of the teardown.
  call.onTeardown(() => abort.abort());
  let spare: Awaited<ReturnType<MediaSession['openSpareSipLeg']>> | undefined;
  let target: SipDialog | undefined;
  try {
    spare = await media.openSpareSipLeg();
    const headers: Record<string, string | undefined> = { ...ctx.inviteBase.headers };
    if (refer.referredBy) headers['Referred-By'] = refer.referredBy;
    const dialog = (target = await ctx.invite({
      uri: refer.referToUri, from: ctx.inviteBase.from, headers, sdp: spare.offer, signal: abort.signal, timeoutMs: config.ringTimeoutMs,
      onProvisional: (status) => {
        if (status === 180 || status === 183) void from.notifyRefer(status, status === 180 ? 'Ringing' : 'Session Progress', false);
      },
    }));
    if (call.isEnded) {
      await dialog.bye();
      await media.closeSpareLeg(spare.leg);
      return 'ended';
    }
    await media.moveSipTo(spare.leg, dialog.remoteSdp);
    spare = undefined;
    target = undefined;
    ctx.adopt(dialog);
    call.sipAgent = dialog.remoteUri;
    hold.setAgentHeld(false);
    hold.setTransferRinging(false);
    await from.notifyRefer(200, 'OK', true);
    // RFC 5589: the transferor usually hangs up after the final NOTIFY; if it does not, we do.
    void from.bye({ reason: 'transferred' });
    log.info({ agent: dialog.remoteUri, sipCallId: dialog.callId }, 'transfer completed: media bridged to the new agent');
    return 'completed';
  } catch (err) {
    if (spare) await media.closeSpareLeg(spare.leg).catch(() => undefined);
    // Answered but unusable (its SDP): that dialog is not kept.
    if (target && target.active) await target.bye({ reason: 'transfer failed' });
    const f = err instanceof SipCallFailure ? err : new SipCallFailure(500, err instanceof Error ? err.message : String(err));
    hold.setTransferRinging(false);
    if (call.isEnded) return 'ended';
    await from.notifyRefer(f.status, f.reason, true);
    const back = config.onFailure === 'return' && from.active;
    log.info({ status: f.status, reason: f.reason, back }, back ? 'transfer failed: the call stays with the agent who transferred' : 'transfer failed: call ends');
    return back ? 'returned' : 'ended';
  }
}
