import type { CallingEvent } from '../whatsapp/events.js';
import type { CallDeps } from './deps.js';
import { handleTerminate, handleUserInitiatedConnect } from './user-initiated.js';
import { recordMissedCall } from './missed-call.js';
import { deliverBusinessConnect, deliverBusinessStatus, deliverBusinessTerminate } from './business-initiated.js';

/** Routes each verified, deduplicated webhook event to the flow that owns it. Never throws. */
export function dispatchEvent(deps: CallDeps, ev: CallingEvent): void {
  switch (ev.kind) {
    case 'connect':
      if (ev.direction === 'USER_INITIATED' && ev.sdpType === 'offer') {
        noteUserReachedOut(deps, ev.phoneNumberId, ev.userWaId ?? ev.from, ev.timestamp * 1000);
        if (ev.pastRingWindow || (deps.registry.wasWhatsAppTerminated(ev.callId) && !deps.registry.byWhatsAppId(ev.callId))) {
          recordMissedCall(deps, ev);
          return;
        }
        handleUserInitiatedConnect(deps, ev).catch((err: Error) => {
          deps.logger.error({ waCallId: ev.callId, err: err.message }, 'user-initiated call flow failed');
          // A bug in the flow must not leave the user's phone ringing until the setup timeout: end it (reject, record).
          void deps.registry.byWhatsAppId(ev.callId)?.end({ by: 'gateway', outcome: 'failed', cause: 'internal_error' });
        });
      } else {
        deliverBusinessConnect(deps, ev);
      }
      return;
    case 'terminate':
      if (deliverBusinessTerminate(deps, ev)) return;
      if (!deps.registry.byWhatsAppId(ev.callId)) deps.registry.keepEarlyTerminate(ev);
      handleTerminate(deps, ev.callId, ev.errorCodes, ev.duration);
      return;
    case 'status':
      deliverBusinessStatus(deps, ev);
      return;
    case 'permission_reply':
      try {
        if (deps.permissions) deps.permissions.ledger.applyReply(ev);
        else deps.logger.info({ waId: ev.userWaId }, 'call permission reply ignored: no permission ledger');
      } catch (err) {
        deps.logger.error({ waId: ev.userWaId, err: (err as Error).message }, 'call permission reply could not be stored');
      }
      return;
  }
}

/** The user's call, answered or not, opens their customer-service window (§3.5): the ledger keeps it. Never throws. */
function noteUserReachedOut(deps: CallDeps, phoneNumberId: string, waId: string, at: number): void {
  if (!deps.permissions || !/^\d+$/.test(waId)) return;
  try {
    deps.permissions.ledger.userReachedOut(phoneNumberId, waId, at);
  } catch (err) {
    deps.logger.error({ waId, err: (err as Error).message }, 'customer-service window could not be stored');
  }
}
