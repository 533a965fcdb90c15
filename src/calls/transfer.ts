/**
 * Transfer, kept inside the gateway (RFC 3515 / RFC 5589): the agent sends REFER; we answer 202, ring the Refer-To
 * target with the same WhatsApp context headers on a second RTP leg (the WhatsApp user hears hold music
 * meanwhile), and when it answers move the bridge there, report 200 in a final NOTIFY (message/sipfrag) and hang up
 * the agent who transferred. If the target does not answer, the NOTIFY carries its failure and the call goes back to
 * the first agent (if still there) or ends, as transfer.onFailure says. Nothing is ever signalled toward WhatsApp:
 * Meta refuses re-INVITE, UPDATE and REFER on its leg.
 *
 * Blind (§6) and attended (§7) transfer are the same flow for us, the transferee: in attended transfer the Refer-To
 * URI embeds `?Replaces=<consultation dialog>` (RFC 3891), which becomes a header of our INVITE (RFC 3261 §19.1.5);
 * the target's UA matches it to its consultation call with the transferring agent, answers us and ends that call.
 */
import type { TransferConfig } from '../config/routing-schema.js';
import { SipCallFailure, type SipDialog, type SipInviteOptions, type SipReferRequest } from '../sip/agent.js';
import { parseReferTo, parseReplaces } from '../sip/refer-to.js';
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

/**
 * Embedded Refer-To headers we copy into the INVITE. Replaces is the point of attended transfer; Require (e.g.
 * `replaces`: fail rather than ring as a new call) and Accept-/Reject-Contact (callee capabilities, RFC 3841) only
 * narrow what the target accepts. Anything else (Call-ID, From, To, Via, CSeq, Content-*, Route, ...) is the SIP
 * stack's or could redirect or spoof the call, so it is dropped.
 */
const COPIED_HEADERS: ReadonlyMap<string, string> = new Map([
  ['replaces', 'Replaces'],
  ['require', 'Require'],
  ['accept-contact', 'Accept-Contact'],
  ['a', 'Accept-Contact'],
  ['reject-contact', 'Reject-Contact'],
  ['j', 'Reject-Contact'],
]);

/** Where a REFER sends the call: the INVITE's Request-URI and the headers taken from Refer-To. */
export interface TransferTarget {
  uri: string;
  /** Copied embedded headers, decoded (canonical names). */
  headers: Record<string, string>;
  /** The Replaces value when this is an attended transfer. */
  replaces?: string;
  /** Embedded header names that were not copied (logged). */
  dropped: string[];
}

export type TransferPlan = { ok: true; target: TransferTarget } | { ok: false; status: number; reason: string; detail: string };

/** Can this REFER be taken, and where to? A refusal carries the status, a reason phrase and a detail for the log. */
export function planTransfer(refer: SipReferRequest): TransferPlan {
  const parsed = parseReferTo(refer.referTo);
  if (!parsed.ok) return { ok: false, status: 400, reason: 'Bad Refer-To', detail: parsed.reason };
  if (!SIP_URI.test(parsed.uri)) return { ok: false, status: 400, reason: 'Bad Refer-To', detail: `Refer-To is not a SIP URI: ${JSON.stringify(parsed.uri.slice(0, 80))}` };
  const target: TransferTarget = { uri: parsed.uri, headers: {}, dropped: [] };
  for (const h of parsed.headers) {
    const name = COPIED_HEADERS.get(h.name.toLowerCase());
    if (!name) {
      target.dropped.push(h.name);
      continue;
    }
    if (name === 'Replaces') {
      if (target.replaces !== undefined) return { ok: false, status: 400, reason: 'Malformed Replaces', detail: 'Refer-To embeds more than one Replaces' };
      const r = parseReplaces(h.value);
      if (!r.ok) return { ok: false, status: 400, reason: 'Malformed Replaces', detail: r.reason };
      target.replaces = h.value;
    }
    if (h.value === '') continue;
    // Repeated headers (Require=a&Require=b) are one comma-separated list (RFC 3261 §7.3.1).
    target.headers[name] = target.headers[name] === undefined ? h.value : `${target.headers[name]}, ${h.value}`;
  }
  return { ok: true, target };
}

/**
 * Runs an accepted REFER to its end. `from` is the agent dialog the REFER came on, `target` what planTransfer made
 * of its Refer-To. Never throws: every failure is reported in the final NOTIFY and resolved as 'returned' or 'ended'
 * (the caller ends the call for 'ended').
 */
export async function runTransfer(ctx: TransferContext, refer: SipReferRequest, target: TransferTarget, from: SipDialog): Promise<TransferResult> {
  const { call, media, hold, config } = ctx;
  const kind = target.replaces === undefined ? 'blind' : 'attended';
  const log = call.logger.child({ transferTo: target.uri, transfer: kind });
  log.info({ referredBy: refer.referredBy, replaces: target.replaces, droppedHeaders: target.dropped.length > 0 ? target.dropped : undefined }, `${kind} transfer requested by the agent`);
  void from.notifyRefer(100, 'Trying', false);
  if (config.holdMusicWhileRinging) hold.setTransferRinging(true);

  const abort = new AbortController();
  // The call ending (the user hung up) cancels the INVITE at once, before the rest of the teardown.
  call.onTeardown(() => abort.abort());
  let spare: Awaited<ReturnType<MediaSession['openSpareSipLeg']>> | undefined;
  let answered: SipDialog | undefined;
  try {
    spare = await media.openSpareSipLeg();
    const headers: Record<string, string | undefined> = { ...ctx.inviteBase.headers, ...target.headers };
    if (refer.referredBy) headers['Referred-By'] = refer.referredBy;
    const dialog = (answered = await ctx.invite({
      uri: target.uri, from: ctx.inviteBase.from, headers, sdp: spare.offer, signal: abort.signal, timeoutMs: config.ringTimeoutMs,
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
    answered = undefined;
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
    if (answered && answered.active) await answered.bye({ reason: 'transfer failed' });
    const f = err instanceof SipCallFailure ? err : new SipCallFailure(500, err instanceof Error ? err.message : String(err));
    hold.setTransferRinging(false);
    if (call.isEnded) return 'ended';
    await from.notifyRefer(f.status, f.reason, true);
    const back = config.onFailure === 'return' && from.active;
    log.info({ status: f.status, reason: f.reason, back }, back ? 'transfer failed: the call stays with the agent who transferred' : 'transfer failed: call ends');
    return back ? 'returned' : 'ended';
  }
}
