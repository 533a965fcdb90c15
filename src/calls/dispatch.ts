import type { CallingEvent } from '../whatsapp/events.js';
import type { CallDeps } from './deps.js';
import { handleTerminate, handleUserInitiatedConnect } from './user-initiated.js';

/** Routes each verified, deduplicated webhook event to the flow that owns it. Never throws. */
export function dispatchEvent(deps: CallDeps, ev: CallingEvent): void {
  switch (ev.kind) {
    case 'connect':
      if (ev.direction === 'USER_INITIATED' && ev.sdpType === 'offer') {
        handleUserInitiatedConnect(deps, ev).catch((err: Error) => deps.logger.error({ waCallId: ev.callId, err: err.message }, 'user-initiated call flow failed'));
      } else {
        deps.logger.info({ waCallId: ev.callId, direction: ev.direction }, 'business-initiated connect for a call not placed here: ignored');
      }
      return;
    case 'terminate':
      handleTerminate(deps, ev.callId, ev.errorCodes);
      return;
    case 'status':
    case 'permission_reply':
      deps.logger.info({ kind: ev.kind }, 'event noted: business-initiated calling is not enabled in this build');
      return;
  }
}
