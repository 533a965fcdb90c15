import type { SipDialogEnd } from '../sip/agent.js';
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
