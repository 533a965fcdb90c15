/**
 * An in-dialog request (INFO, NOTIFY) that leaves the PBX's own requests alone while it is pending.
 *
 * drachtio-srf looks for an UPDATE to one of our INVITEs still ringing by matching the Call-ID against every request
 * of ours in flight (drachtio-agent.js), and emits the UPDATE on the first match. An UPDATE for an established call
 * (a session-timer refresh) that arrives while our DTMF INFO or REFER NOTIFY waits for its answer is therefore emitted
 * on that INFO, where nobody listens: it is never answered, and the PBX ends the call on its 408. Dialog.request does
 * not hand out the request object, so this sends through the dialog's agent as Dialog.request does, and passes any
 * such UPDATE back to the agent's normal routing, which delivers it to the dialog by its id.
 */
import type Srf from 'drachtio-srf';

export function requestInDialog(
  dlg: Srf.Dialog,
  opts: { method: 'INFO' | 'NOTIFY'; headers?: Record<string, string>; body?: string },
): Promise<Srf.SrfResponse> {
  const { agent } = dlg;
  return new Promise((resolve, reject) => {
    try {
      agent.request(
        {
          method: opts.method,
          stackDialogId: dlg.id,
          headers: opts.headers ?? {},
          ...(opts.body !== undefined ? { body: opts.body } : {}),
          ...(dlg.auth ? { auth: dlg.auth } : {}),
          _socket: dlg.socket,
        },
        (err, req) => {
          if (err) return reject(err);
          req.on('update', (update: Srf.SrfRequest, res: Srf.SrfResponse) => agent.puntUpTheMiddleware(update, res));
          req.on('response', (res: Srf.SrfResponse) => resolve(res));
        },
      );
    } catch (err) {
      reject(err);
    }
  });
}
