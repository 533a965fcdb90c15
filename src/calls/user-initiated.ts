import type { ConnectEvent } from '../whatsapp/events.js';
import { GraphError } from '../whatsapp/graph-client.js';
import { waContextToSip } from '../sip/headers.js';
import { SipCallFailure, type SipDialog } from '../sip/agent.js';
import { UnanswerableOfferError } from '../media/webrtc-leg.js';
import { Call, metaDuration, type CallContext, type EndReason } from './call.js';
import { noteMetaTerminateAfterEnd } from './late-meta-terminate.js';
import { outcomeOfSipFailure, sipClass } from './outcomes.js';
import type { CallDeps } from './deps.js';
import type { RouteDecision } from './routing/routing-table.js';
import { DialFailure, dialTargets, targetOrder } from './routing/dial-targets.js';
import { startAgentSide, type AgentSide } from './agent-side.js';
import { byeFor, hangUpDialog } from './agent-hangup.js';

/**
 * A WhatsApp user calls the business (whatsapp-calling.md §6 item 2): answer the WebRTC offer, pre_accept at once,
 * ring the agent over SIP, accept with the same SDP on the agent's 200 OK, then bridge media.
 */
/** The least time a delivered connect gets to reach an agent, however late it came (clocks differ by a few seconds). */
const MIN_SETUP_MS = 5000;

/** The call context of a user-initiated `connect`: who calls which business number, and where it would ring. */
export function userCallContext(deps: CallDeps, ev: ConnectEvent): CallContext {
  const number = deps.routing.numberFor(ev.phoneNumberId);
  return {
    direction: 'user_initiated',
    tenant: number?.tenant ?? 'unknown',
    phoneNumberId: ev.phoneNumberId,
    businessNumber: number?.displayNumber ?? ev.displayNumber,
    userWaId: ev.userWaId ?? ev.from,
    userName: ev.profileName,
    sipTarget: number?.sipTarget,
    ctaPayload: ev.ctaPayload,
    deeplinkPayload: ev.deeplinkPayload,
  };
}

export async function handleUserInitiatedConnect(deps: CallDeps, ev: ConnectEvent): Promise<void> {
  const { registry, logger, metrics } = deps;
  // Each business number's calls use its own app's Graph token.
  const graph = deps.graphs?.forNumber(ev.phoneNumberId) ?? deps.graph;
  const log = logger.child({ waCallId: ev.callId });
  // A connect after its terminate never gets here: dispatch records it as a missed call (missed-call.ts).
  if (registry.byWhatsAppId(ev.callId)) {
    // Meta re-delivers a connect it thinks timed out (§1.1); the call already in hand carries on.
    log.info('connect for a call already live here: ignored');
    return;
  }
  const number = deps.routing.numberFor(ev.phoneNumberId);
  const call = new Call(userCallContext(deps, ev), logger, metrics, (r) => deps.store.write(r));
  call.bindIds({ waCallId: ev.callId });
  // Asked before this call joins the registry, which would otherwise count it against itself.
  const refusal = registry.admissionRefusal();
  registry.add(call);
  registry.indexWaCallId(call, ev.callId);
  call.transition('offered', 'connect');
  call.logger.info({ from: ev.from, to: ev.to, phoneNumberId: ev.phoneNumberId }, 'WhatsApp call offered');
  call.logger.debug({ sdp: ev.sdp }, 'WhatsApp SDP offer');

  // Until Graph `accept` succeeds the WhatsApp side is ended with `reject`, afterwards with `terminate`;
  // nothing is sent when the user's side ended the call.
  let accepted = false;
  let accepting: Promise<boolean> | undefined;
  let acceptError: unknown;
  call.onTeardown(async (end) => {
    if (end.by === 'whatsapp') return;
    // An `accept` still in flight decides: once Meta has taken it, only `terminate` ends the call (a reject would fail
    // and leave the user connected to nothing).
    if (accepting) accepted = await accepting;
    // An `accept` that timed out or got a 5xx may have been taken all the same (its answer was lost): terminate first,
    // and reject only if Meta says there is nothing to terminate.
    const maybeAccepted = !accepted && acceptError instanceof GraphError && acceptError.uncertain;
    let action: 'terminate' | 'reject' = accepted || maybeAccepted ? 'terminate' : 'reject';
    const send = (a: typeof action) => (a === 'terminate' ? graph.terminate(ev.phoneNumberId, ev.callId) : graph.reject(ev.phoneNumberId, ev.callId));
    try {
      await send(action).catch((err: unknown) => {
        if (!maybeAccepted) throw err;
        action = 'reject';
        return send(action);
      });
      if (action === 'terminate') await call.waitForLateMetaTerminate();
    } catch (err) {
      call.logger.warn({ err: (err as Error).message, action }, 'Graph hang-up failed');
    }
  });

  const fail = (reason: EndReason): void => { void call.end(reason); };
  if (refusal) return fail({ by: 'gateway', outcome: 'rejected', cause: refusal });
  if (!number) return fail({ by: 'gateway', outcome: 'failed', cause: 'no_route' });
  if (!deps.sip.connected) return fail({ by: 'gateway', outcome: 'failed', cause: 'sip_unavailable' });

  // Meta's 30–60 s to accept run from the connect (§3.2), not from its delivery: a late delivery has less of them left.
  const setupMs = Math.max(Math.min(MIN_SETUP_MS, deps.config.calls.setupTimeoutMs), deps.config.calls.setupTimeoutMs - Math.max(0, Date.now() - ev.timestamp * 1000));
  const setupTimer = setTimeout(() => fail({ by: 'gateway', outcome: 'no_answer', cause: 'setup_timeout' }), setupMs);
  call.onTeardown(() => clearTimeout(setupTimer));
  void call.ended.then(() => clearTimeout(setupTimer));

  // Routing (a hook may take its time) runs while the answer and pre_accept go out: pre_accept at once lets ICE and
  // DTLS finish during ringing, so the agent's first words are not clipped (§4.7, §6 item 2).
  type Routed = { route: RouteDecision } | { err: Error };
  let verdict: Routed | undefined;
  const routed: Promise<Routed> = deps.routing.decide(number, {
    waCallId: ev.callId, from: call.ctx.userWaId, name: ev.profileName, ctaPayload: ev.ctaPayload, deeplinkPayload: ev.deeplinkPayload,
  }).then((route) => ({ route }), (err: unknown) => ({ err: err instanceof Error ? err : new Error(String(err)) }))
    .then((r) => (verdict = r));
  /** The route, or undefined once the call was failed for the routing's refusal or error. */
  const routeOf = (r: Routed): Extract<RouteDecision, { action: 'route' }> | undefined => {
    if ('err' in r) {
      call.logger.error({ err: r.err.message }, 'routing failed');
      fail({ by: 'gateway', outcome: 'failed', cause: 'no_route' });
      return undefined;
    }
    if (r.route.action === 'reject') {
      call.logger.info({ via: r.route.via, cause: r.route.cause }, 'routing rejected the call');
      fail({ by: 'gateway', outcome: 'rejected', cause: r.route.cause });
      return undefined;
    }
    return r.route;
  };

  const media = deps.media.create(call);
  call.onTeardown(() => media.close());
  try {
    await media.answerWhatsApp(ev.sdp);
  } catch (err) {
    if (err instanceof UnanswerableOfferError) {
      metrics.rejectedOffers.inc();
      call.logger.warn({ err: err.message }, 'WhatsApp SDP offer cannot be answered');
      return fail({ by: 'gateway', outcome: 'failed', cause: 'unanswerable_offer' });
    }
    call.logger.error({ err: (err as Error).message }, 'media setup failed');
    return fail({ by: 'gateway', outcome: 'failed', cause: 'media_setup_failed' });
  }
  if (call.isEnded) return;
  // Static rules have decided by now: a call they refuse needs no pre_accept.
  if (verdict && !routeOf(verdict)) return;
  const answerSdp = media.whatsAppSdp;

  try {
    await graph.preAccept(ev.phoneNumberId, ev.callId, answerSdp);
  } catch (err) {
    // pre_accept only starts the media early. After an attempt Meta may have carried out (timeout, 5xx) the retry's
    // refusal ("already in progress") says nothing against the call: ring the agent, and let accept decide.
    if (!(err instanceof GraphError && err.uncertain)) return fail(graphFailure(call, 'pre_accept', err));
    call.logger.warn({ err: err.message, graphCode: err.code }, 'pre_accept uncertain: ringing the agent, accept will tell');
  }
  if (!call.transition('pre_accepted', 'pre_accept_ok')) return;

  const decided = await routed;
  if (call.isEnded) return;
  const route = routeOf(decided);
  if (!route) return;
  const targets = targetOrder(route);
  call.logger.info({ route: route.route, via: route.via, targets, codecs: route.codecs, ringTimeoutMs: route.ringTimeoutMs }, 'call routed');
  media.routeName = route.route;

  const sipCtx = waContextToSip({
    callId: ev.callId, phoneNumberId: ev.phoneNumberId, waId: call.ctx.userWaId,
    userName: ev.profileName, ctaPayload: ev.ctaPayload, deeplinkPayload: ev.deeplinkPayload,
  });
  const headers: Record<string, string | undefined> = { ...sipCtx.headers, 'X-WA-Route': route.route };
  if (route.recording !== 'pbx_default') headers['X-WA-Recording'] = route.recording;
  const cancel = new AbortController();
  let dialog: SipDialog | undefined;
  let agent: AgentSide | undefined;
  call.onTeardown((end) => {
    if (agent) return agent.hangUp(end);
    if (dialog) return hangUpDialog(dialog, end);
    if (end.by !== 'sip') cancel.abort(byeFor(end).reasonHeader);
  });
  let sipOffer: string;
  try {
    sipOffer = await media.sipOffer(route.codecs);
  } catch (err) {
    call.logger.error({ err: (err as Error).message }, 'no RTP port for the agent side');
    return fail({ by: 'gateway', outcome: 'failed', cause: 'rtp_ports_exhausted' });
  }
  if (call.isEnded) return;
  call.transition('ringing', 'invite_sent');
  try {
    const answered = await dialTargets((o) => deps.sip.invite(o), targets, {
      from: sipCtx.from,
      headers,
      sdp: sipOffer,
      signal: cancel.signal,
      timeoutMs: route.ringTimeoutMs,
      responseTimeoutMs: deps.config.sip.responseTimeoutMs,
      logger: call.logger,
      onProvisional: (status) => call.logger.info({ status }, 'agent side provisional response'),
    }, (failed, next) => {
      metrics.sipFinals.inc({ class: sipClass(failed.status) });
      metrics.sipFailovers.inc();
      call.logger.warn({ target: failed.target, status: failed.status, reason: failed.reason, next }, 'SIP target failed: trying the next one');
    });
    dialog = answered.dialog;
    call.ctx.sipTarget = answered.target;
  } catch (err) {
    if (call.isEnded) return;
    if (err instanceof DialFailure && err.attempts.length > 0 && err.attempts.every((a) => a.policy)) {
      // Our own policy refused every target (target-policy.ts): no INVITE left the gateway, the PBX refused nothing.
      call.logger.warn({ reason: err.reason }, 'no SIP target allowed by policy');
      return fail({ by: 'gateway', outcome: 'failed', cause: 'target_not_allowed' });
    }
    if (err instanceof SipCallFailure) {
      metrics.sipFinals.inc({ class: sipClass(err.status) });
      call.logger.info({ status: err.status, reason: err.reason }, 'agent side refused the call');
      return fail({ by: 'sip', outcome: outcomeOfSipFailure(err.status), cause: `sip_${err.status}`, sipStatus: err.status });
    }
    call.logger.error({ err: (err as Error).message }, 'SIP INVITE failed');
    return fail({ by: 'gateway', outcome: 'failed', cause: 'sip_error' });
  }
  metrics.sipFinals.inc({ class: '2xx' });
  call.bindIds({ sipCallId: dialog.callId });
  call.sipAgent = dialog.remoteUri;
  if (call.isEnded) {
    // The WhatsApp side went away while the 200 OK was on its way: the teardown already ran, hang up this dialog.
    await dialog.bye();
    return;
  }
  agent = startAgentSide(deps, call, media, dialog, { from: sipCtx.from, headers }, fail);

  try {
    media.connectSip(dialog.remoteSdp);
  } catch (err) {
    call.logger.warn({ err: (err as Error).message }, 'agent answer SDP unusable');
    return fail({ by: 'gateway', outcome: 'failed', cause: 'sip_sdp_unusable' });
  }
  accepting = graph.accept(ev.phoneNumberId, ev.callId, answerSdp).then(() => true, (err: unknown) => {
    acceptError = err;
    return false;
  });
  if (!(await accepting)) return fail(graphFailure(call, 'accept', acceptError));
  accepted = true;
  if (call.isEnded) return;
  call.transition('answered', 'accept_ok');
  deps.permissions?.ledger.callConnected(ev.phoneNumberId, call.ctx.userWaId, 'user_initiated');
  clearTimeout(setupTimer);
  // Meta treats the first media packet as the pickup, so WhatsApp gets nothing before `accept` returned 200.
  media.startWhatsAppMedia((leg) => {
    metrics.mediaTimeouts.inc({ leg });
    fail({ by: 'gateway', outcome: 'answered', cause: `media_timeout_${leg}` });
  }, (_leg, cause) => fail({ by: 'gateway', outcome: 'answered', cause }));
}

function graphFailure(call: Call, action: string, err: unknown): EndReason {
  const code = err instanceof GraphError ? err.code : undefined;
  call.logger.error({ action, err: (err as Error).message, graphCode: code, httpStatus: err instanceof GraphError ? err.httpStatus : undefined }, `Graph ${action} failed`);
  return { by: 'gateway', outcome: 'failed', cause: code !== undefined ? `graph_${action}_${code}` : `graph_${action}_failed`, graphCode: code };
}

/** A `terminate` webhook: the user hung up, or Meta ended the call (timeouts, errors). */
export function handleTerminate(deps: CallDeps, waCallId: string, errorCodes: number[], duration?: number): void {
  deps.registry.markWhatsAppTerminated(waCallId);
  const call = deps.registry.byWhatsAppId(waCallId);
  if (!call) deps.logger.info({ waCallId }, 'terminate for a call not live here');
  if (!call || call.isEnded) return noteMetaTerminateAfterEnd(deps, waCallId, duration, call);
  const answered = call.state === 'answered';
  const graphCode = errorCodes[0];
  void call.end({
    by: 'whatsapp',
    outcome: answered ? 'answered' : 'cancelled',
    cause: graphCode !== undefined ? `whatsapp_error_${graphCode}` : 'whatsapp_hangup',
    graphCode,
    ...(answered ? metaDuration({ duration }) : {}),
  });
}
