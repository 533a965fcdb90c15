import type { SipDialog, SipDialogEnd } from '../sip/agent.js';
import { formatReasonHeader } from '../sip/headers.js';
import type { EndReason } from './call.js';

/**
 * How an answered call ends when its PBX dialog ended from the far side: the agent's BYE, or the drachtio connection
 * lost (no BYE can pass either way any more; the gateway ends the call, and the record must not blame the agent).
 */
export function agentHangup(end: SipDialogEnd): EndReason {
  return end.connectionLost
    ? { by: 'gateway', outcome: 'answered', cause: 'sip_connection_lost' }
    : { by: 'sip', outcome: 'answered', cause: 'agent_hangup' };
}

/** Meta's codes for a call it ended on a timer (§2.8): 138007 connect timeout, 138021 media receive timeout. */
const META_TIMEOUTS = new Set([138007, 138021]);

/**
 * The BYE we send the PBX says why the call ended (RFC 3326 Reason, Q.850 cause): the WhatsApp user or an operator
 * hung up (16, normal clearing), a timer ran out, ours or Meta's (102), or the call failed (41, temporary failure).
 * The text is the record's cause, so the PBX's logs and ours name the same thing.
 */
export function byeFor(end: EndReason): { reason: string; reasonHeader: string } {
  const hungUp = end.graphCode === undefined && (end.by === 'whatsapp' || end.by === 'sip' || end.cause === 'admin_hangup');
  const timedOut = /timeout/.test(end.cause) || (end.graphCode !== undefined && META_TIMEOUTS.has(end.graphCode));
  const q850 = hungUp ? 16 : timedOut ? 102 : 41;
  return { reason: end.cause, reasonHeader: formatReasonHeader('Q.850', q850, end.cause === 'whatsapp_hangup' ? 'WhatsApp user hung up' : end.cause) };
}

/**
 * The teardown of a PBX dialog that has no agent side (yet, or because setting it up failed): BYE with the call's
 * Reason, unless the PBX ended the call itself.
 */
export function hangUpDialog(dialog: SipDialog, end: EndReason): void {
  if (end.by !== 'sip') sendBye(dialog, end);
}

/**
 * BYE with the call's Reason, its answer not awaited: the teardown steps after it (media closed, ports released, Graph
 * terminate to the WhatsApp user) must not wait out SipDialog's BYE timeout (5 s) for a PBX host that went silent
 * (down, or its packets dropped: no ICMP error ends the BYE early). bye() never rejects and logs a BYE left unanswered.
 */
export function sendBye(dialog: SipDialog, end: EndReason): void {
  void dialog.bye(byeFor(end));
}

