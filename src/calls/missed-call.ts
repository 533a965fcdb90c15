import type { ConnectEvent } from '../whatsapp/events.js';
import { Call } from './call.js';
import type { CallDeps } from './deps.js';
import { userCallContext } from './user-initiated.js';

/**
 * A user-initiated call that was over before the gateway could ring anyone: its `terminate` came before its `connect`
 * (webhook order is not guaranteed, §1.1), or its `connect` came after Meta's ring window (§3.2). Nothing goes to Meta
 * or the PBX, but the business still learns that the customer called (to call back): it is offered, counted and ended
 * on the event feed, and gets a record, like any call, whichever order the webhooks came in.
 */
export function recordMissedCall(deps: CallDeps, ev: ConnectEvent): void {
  const cause = ev.pastRingWindow ? 'connect_past_ring_window' : 'terminated_before_connect';
  const call = new Call(userCallContext(deps, ev), deps.logger, deps.metrics, (r) => deps.store.write(r));
  call.bindIds({ waCallId: ev.callId });
  deps.registry.events.attach(call);
  call.transition('offered', 'connect');
  call.logger.info({ cause, from: ev.from, phoneNumberId: ev.phoneNumberId }, 'missed WhatsApp call recorded: it was over before anyone could be rung');
  void call.end(ev.pastRingWindow ? { by: 'gateway', outcome: 'no_answer', cause } : { by: 'whatsapp', outcome: 'cancelled', cause });
}
