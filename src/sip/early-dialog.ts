/**
 * Early dialogs (RFC 3261 §12.1: a 1xx with a To-tag, before the INVITE's final response), in both call directions:
 * our Contact on the 1xx we send, and our answer to an UPDATE (RFC 3311) that arrives in one. drachtio-srf leaves
 * both wrong: an early UPDATE to an INVITE we received gets its own 500, one to an INVITE we sent gets 200 with our
 * INVITE's SDP whatever the UPDATE carried, and drachtio-server puts a Contact only on 2xx responses.
 */
import type Srf from 'drachtio-srf';
import type { Logger } from 'pino';

/**
 * Our Contact for a 1xx that creates an early dialog (RFC 3261 §12.1.1: the UAS MUST add one; without it the PBX has
 * no remote target for an UPDATE). Built as drachtio-server builds the 2xx's: the advertised address (its external
 * IP, if set) of the transport the INVITE came in on. Undefined when drachtio did not say.
 */
export function earlyContact(req: Pick<Srf.SrfRequest, 'protocol' | 'receivedOn' | 'server'>): string | undefined {
  const protocol = req.protocol.toLowerCase();
  const port = req.receivedOn?.split(':').pop();
  const ours = (req.server?.hostport ?? '').split(',')
    .map((hp) => /^(\w+)\/(.+):(\d+)$/.exec(hp.trim()))
    .filter((m): m is RegExpExecArray => m !== null && m[1]!.toLowerCase() === protocol);
  const pick = ours.find((m) => m[3] === port) ?? ours[0];
  const hostport = pick ? `${pick[2]}:${pick[3]}` : req.receivedOn;
  if (!hostport) return undefined;
  return `<sip:${hostport}${protocol === 'udp' ? '' : `;transport=${protocol}`}>`;
}

export interface EarlyUpdateContext {
  callId: string;
  log: Logger;
  /** Our offer is still waiting for its answer: it went in the INVITE we sent, and only the 2xx answers it. */
  offerPending: boolean;
  /** Our Contact in this early dialog: UPDATE is a target refresh request, its 2xx carries one. */
  contact?: string;
}

/**
 * An UPDATE before the INVITE's final response. Without SDP (Asterisk's connected-line update while a queue member
 * rings, an RFC 4028 refresh): 200, the call rings on. With an SDP offer: refused, the session stays as offered and
 * the call goes on. No media flows to or from the PBX before the call is answered, so there is nothing to change;
 * 491 while our own offer waits for its answer (RFC 3311 §5.2: the PBX may retry, after the 2xx the confirmed dialog
 * answers it), else 488.
 */
export function answerEarlyUpdate(req: Srf.SrfRequest, res: Srf.SrfResponse, ctx: EarlyUpdateContext): void {
  const offer = (req.body ?? '').trim() !== '';
  const status = !offer ? 200 : ctx.offerPending ? 491 : 488;
  if (offer) ctx.log.info({ callId: ctx.callId, status }, `SDP offer in an UPDATE before the call was answered: refused ${status}, the call goes on`);
  else ctx.log.info({ callId: ctx.callId }, 'UPDATE without SDP before the call was answered: 200, the call keeps ringing');
  try {
    res.send(status, status === 200 && ctx.contact ? { headers: { Contact: ctx.contact } } : {});
  } catch (err) {
    ctx.log.warn({ callId: ctx.callId, err: String(err) }, 'could not answer an early UPDATE');
  }
}
