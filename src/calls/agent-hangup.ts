import type { SipDialogEnd } from '../sip/agent.js';
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

/**
 * The BYE we send the PBX says why the call ended (RFC 3326 Reason, Q.850 cause): the WhatsApp user or an operator
 * hung up (16, normal clearing), a timer ran out (102), or the gateway gave up on the call (41, temporary failure).
 * The text is the record's cause, so the PBX's logs and ours name the same thing.
 */
export function byeFor(end: EndReason): { reason: string; reasonHeader: string } {
  const q850 = end.by === 'whatsapp' || end.by === 'sip' || end.cause === 'admin_hangup' ? 16 : /timeout/.test(end.cause) ? 102 : 41;
  return { reason: end.cause, reasonHeader: formatReasonHeader('Q.850', q850, end.by === 'whatsapp' ? 'WhatsApp user hung up' : end.cause) };
}
