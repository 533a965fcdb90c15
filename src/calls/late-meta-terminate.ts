import type { Call } from './call.js';
import type { CallDeps } from './deps.js';
import { withMetaDuration } from './billing.js';

/**
 * Meta's terminate webhook for a call that already ended here (the PBX or the gateway hung up). It carries Meta's
 * duration, which Meta bills by. A call still writing its record takes it there (Call.noteLateMetaTerminate); when
 * the record is already written (the webhook came after the teardown's short wait, or the call is gone from this
 * instance), the stored record is amended, so a slow webhook costs no billing data. Never throws.
 */
export function noteMetaTerminateAfterEnd(deps: CallDeps, waCallId: string, duration: number | undefined, call?: Call): void {
  call?.noteLateMetaTerminate({ duration });
  if (duration === undefined) return;
  void amendRecord(deps, waCallId, duration, call);
}

async function amendRecord(deps: CallDeps, waCallId: string, seconds: number, call?: Call): Promise<void> {
  const log = call?.logger ?? deps.logger;
  try {
    // The record is in the store once `ended` resolves; a record that already has Meta's duration stays as it is.
    if (call) await call.ended;
    const amended = await deps.store.amendByWaCallId(waCallId, (r) => withMetaDuration(r, seconds, deps.config.businessCalls));
    if (!amended) return;
    deps.metrics.callRecords.inc({ result: 'amended' });
    log.info({ callId: amended.id, waCallId, metaDurationSeconds: seconds, billablePulses: amended.billablePulses }, "Meta's duration added to the written call record");
  } catch (err) {
    deps.metrics.callRecords.inc({ result: 'amend_failed' });
    log.error({ waCallId, err: (err as Error).message }, "Meta's duration could not be added to the call record");
  }
}
