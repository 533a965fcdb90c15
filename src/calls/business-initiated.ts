import type { BusinessNumber } from '../config/schema.js';
import type { ConnectEvent, StatusEvent, TerminateEvent } from '../whatsapp/events.js';
import { GraphError, nextAllowedTime, type GraphClient } from '../whatsapp/graph-client.js';
import { SipCallFailure, type SipDialog, type SipInboundInvite } from '../sip/agent.js';
import { WA_HEADERS, waContextToSip } from '../sip/headers.js';
import { parseSdp, SdpError } from '../sip/sdp.js';
import { UnusableAnswerError } from '../media/webrtc-leg.js';
import { Call, metaDuration, type EndReason } from './call.js';
import type { CallDeps } from './deps.js';
import { admissionRefusalText } from './registry.js';
import { WhatsAppOutboundLeg } from './whatsapp-outbound.js';
import { generatedMelody, LoopingPcm } from './hold-music.js';
import type { MediaLegName } from '../media/bridge.js';
import { PbxGuard } from './pbx-guard.js';
import { startAgentSide, type AgentSide } from './agent-side.js';
import { knownNoPermission, permissionRequestContent } from '../whatsapp/permissions.js';
import { byeFor, hangUpDialog } from './agent-hangup.js';
import { withCost } from './billing.js';
import { noteMetaTerminateAfterEnd } from './late-meta-terminate.js';
import { chooseBusinessNumber, uriUser } from './business-number-choice.js';
import { sourceAllowed } from './source-allow-list.js';
import { businessNumberBlocked, COUNTRY_BLOCKED_REFUSAL } from './business-region.js';

export { sourceAllowed };

/**
 * An agent dials a WhatsApp user from the desk phone (whatsapp-calling.md §6 item 3): the PBX's INVITE passes the
 * toll-fraud guard, the country and permission checks, then the gateway offers WebRTC to WhatsApp with Graph
 * `connect`, rings the PBX (180) on RINGING, applies the answer SDP of the `connect` webhook, answers the PBX (200,
 * G.711) on ACCEPTED and bridges. Webhook events reach the call through deliver*() below, found by wacid or by the
 * biz_opaque_callback_data the `connect` carried (the SIP Call-ID; they may come before the `connect` HTTP response).
 */

/** What the PBX is told, and the record's cause. */
export interface SipRefusal {
  status: number;
  text: string;
  cause: string;
  headers?: Record<string, string>;
}

/** Per live business-initiated call: where its webhook events go. */
interface BusinessCallEvents {
  answer(sdp: string): void;
  status(status: StatusEvent['status']): void;
  terminate(ev: TerminateEvent): void;
}

const handles = new WeakMap<Call, BusinessCallEvents>();

/**
 * The INVITE handler for SipAgent.onInvite. A bug in the flow (a store or ledger error, say) must not leave its call
 * live with no record: the call is ended, which answers the INVITE and writes the record.
 */
export function businessInviteHandler(deps: CallDeps): (invite: SipInboundInvite) => Promise<void> {
  return (invite) => handleBusinessInvite(deps, invite).catch(async (err: unknown) => {
    deps.logger.error({ sipCallId: invite.callId, err: (err as Error).message }, 'business-initiated call flow failed');
    const call = deps.registry.list().find((c) => c.sipCallId === invite.callId && c.ctx.direction === 'business_initiated');
    if (call) await call.end({ by: 'gateway', outcome: 'failed', cause: 'internal_error' });
    else if (!invite.responded) invite.reject(500);
  });
}

export async function handleBusinessInvite(deps: CallDeps, invite: SipInboundInvite): Promise<void> {
  const { config, metrics, registry } = deps;
  const cfg = config.businessCalls;
  const log = deps.logger.child({ sipCallId: invite.callId, source: invite.source.address });

  const refuseEarly = (reason: string, r: Omit<SipRefusal, 'cause'>): void => {
    metrics.sipInvitesRefused.inc({ reason });
    log.warn({ status: r.status, reason, requestUri: invite.requestUri, from: invite.from.uri }, `inbound INVITE refused: ${r.text}`);
    sendRefusal(invite, { ...r, cause: reason });
  };

  // Toll-fraud guard first: nothing else (no Graph request, no log of the target's permission) for a stranger.
  const guard = deps.pbxGuard ?? (deps.pbxGuard = new PbxGuard(() => undefined));
  const verdict = guard.check({ requestUri: invite.requestUri, source: invite.source.address, authorization: invite.header('Authorization') }, cfg);
  if (!verdict.pass && 'challenge' in verdict) {
    metrics.sipDigestAuth.inc({ result: verdict.stale ? 'stale' : 'challenged' });
    log.info({ reason: verdict.reason, stale: verdict.stale }, 'inbound INVITE challenged for SIP digest credentials (401)');
    invite.reject(401, { headers: { 'WWW-Authenticate': verdict.challenge } });
    return;
  }
  if (!verdict.pass) {
    const { reason, text, detail } = verdict.refuse;
    if (detail) {
      metrics.sipDigestAuth.inc({ result: 'rejected' });
      // The username and why, never the password or the Authorization header.
      log.warn({ ...detail }, 'SIP digest authentication failed');
    }
    return refuseEarly(reason, { status: 403, text });
  }
  if (verdict.username !== undefined) metrics.sipDigestAuth.inc({ result: 'accepted' });
  const admission = registry.admissionRefusal();
  if (admission) return refuseEarly(admission, { status: 503, text: admissionRefusalText(admission), headers: { 'Retry-After': '30' } });
  const choice = chooseBusinessNumber({
    header: invite.header(WA_HEADERS.phoneNumberId), source: invite.source.address, username: verdict.username,
    callingUser: uriUser(invite.from.uri), dialedUser: uriUser(invite.requestUri),
  }, cfg, config.whatsapp.numbers);
  if ('error' in choice) return refuseEarly(choice.reason, { status: 403, text: choice.error });
  const number = deps.routing.numberFor(choice.phoneNumberId);
  if (!number) return refuseEarly('unknown_number', { status: 403, text: 'The chosen business number is not configured here' });
  const waId = waIdFromUser(choice.dialedUser);
  if (!waId) return refuseEarly('bad_target', { status: 484, text: 'Request-URI user is not an E.164 number' });
  if (businessNumberBlocked(number.displayNumber, cfg.blockedCountryCodes)) return refuseEarly(COUNTRY_BLOCKED_REFUSAL.cause, COUNTRY_BLOCKED_REFUSAL);
  // An INVITE without SDP (delayed offer, CUCM's default): our 200 OK carries the offer and the PBX's ACK the answer.
  const delayedOffer = !invite.sdp.trim();
  if (!delayedOffer) {
    try {
      parseSdp(invite.sdp, { codecs: config.sip.codecs });
    } catch (err) {
      return refuseEarly('sdp', { status: 488, text: `SDP offer unusable: ${(err as Error).message}` });
    }
  }

  const call = new Call({
    direction: 'business_initiated',
    tenant: number.tenant,
    phoneNumberId: number.phoneNumberId,
    businessNumber: number.displayNumber,
    userWaId: waId,
    sipTarget: invite.from.uri,
  }, deps.logger, metrics, (r) => deps.store.write(withCost(r, cfg)));
  call.bindIds({ sipCallId: invite.callId });
  registry.add(call);
  call.transition('offered', 'invite');
  call.logger.info({ to: waId, phoneNumberId: number.phoneNumberId, numberChosenBy: choice.via, numberRule: choice.rule, sipUser: verdict.username, from: invite.from.uri, source: invite.source.address }, 'business-initiated call requested');

  // The SIP side: a final failure while the INVITE is pending, BYE once answered; nothing when the PBX ended it.
  let refusal: SipRefusal | undefined;
  let dialog: SipDialog | undefined;
  let agent: AgentSide | undefined;
  call.onTeardown((end) => {
    if (agent) return agent.hangUp(end);
    if (dialog) return hangUpDialog(dialog, end);
    if (invite.responded) return;
    const r = refusal ?? refusalForEnd(end);
    sendRefusal(invite, r);
  });
  const fail = (reason: EndReason, r?: SipRefusal): void => {
    if (call.isEnded) return;
    if (r) refusal = r;
    void call.end(r ? { ...reason, sipStatus: r.status } : reason);
  };
  const refuse = (r: SipRefusal, outcome: EndReason['outcome'] = 'failed', graphCode?: number): void => {
    call.logger.info({ status: r.status, cause: r.cause, graphCode }, `business-initiated call refused: ${r.text}`);
    fail({ by: 'gateway', outcome, cause: r.cause, ...(graphCode !== undefined ? { graphCode } : {}) }, r);
  };
  // The signal also aborts when the drachtio connection is lost before we answered (no response can reach the PBX).
  const onCancel = (): void => fail(invite.signal.reason instanceof SipCallFailure && invite.signal.reason.status === 503
    ? { by: 'gateway', outcome: 'failed', cause: 'sip_connection_lost' }
    : { by: 'sip', outcome: 'cancelled', cause: 'pbx_cancel', sipStatus: 487 });
  if (invite.signal.aborted) return onCancel();
  invite.signal.addEventListener('abort', onCancel, { once: true });
  call.onTeardown(() => invite.signal.removeEventListener('abort', onCancel));

  const wa = new WhatsAppOutboundLeg(call, deps, graphFor(deps, number), number, waId);

  const media = deps.media.create(call);
  call.onTeardown(() => media.close());

  // Permission: the ledger, refreshed from GET call_permissions when stale or unknown.
  if (deps.permissions) {
    const view = await deps.permissions.current(number.phoneNumberId, waId);
    if (call.isEnded) return;
    if (knownNoPermission(view)) {
      const text = `No WhatsApp call permission from the user${await requestPermissionAfterRefusal(deps, number, waId)}`;
      metrics.sipInvitesRefused.inc({ reason: 'no_permission' });
      return refuse({ status: 403, text, cause: 'no_permission' }, 'rejected');
    }
    // Meta could not be asked: `connect` asks it instead (138006 if there is no permission), rather than refusing a
    // user who may have granted it, or spending one of the few permission requests on them.
    if (view.status === 'none') call.logger.warn('call permission unknown (GET call_permissions failed): trying connect');
    if (view.callsBlockedUntil !== undefined) {
      metrics.sipInvitesRefused.inc({ reason: 'call_limit' });
      return refuse(callLimitRefusal(view.callsBlockedUntil, deps.permissions.ledger.clock()), 'rejected');
    }
  }

  const setupTimer = setTimeout(() => {
    refuse({ status: 480, text: 'No answer from the WhatsApp user', cause: 'ring_timeout' }, 'no_answer');
  }, cfg.ringTimeoutMs);
  call.onTeardown(() => clearTimeout(setupTimer));

  let offerSdp: string;
  /** Our SDP in the 200 OK to the PBX: the answer to its offer, or (delayed offer) our own offer. */
  let sipSdp: string;
  try {
    offerSdp = await media.offerWhatsApp(keyExchangeFor(deps, number));
    if (call.isEnded) return;
    sipSdp = delayedOffer ? await media.sipOffer(config.sip.codecs) : await media.answerSip(invite.sdp);
  } catch (err) {
    if (err instanceof SdpError) return refuse({ status: 488, text: `SDP offer unusable: ${err.message}`, cause: 'sip_sdp_unusable' });
    call.logger.error({ err: (err as Error).message }, 'media setup failed');
    return refuse({ status: 503, text: 'Media resources unavailable', cause: 'media_setup_failed', headers: { 'Retry-After': '10' } });
  }
  if (call.isEnded) return;

  // Set when our 200 OK to the PBX is on its way: from then on the PBX leg ends with BYE, and the call was answered.
  let sipAnswering = false;
  // Events may arrive before `connect` returns: the handle exists from here on, found through biz_opaque_callback_data.
  const pickUp = async (): Promise<void> => {
    const ok = await wa.answerReady();
    if (call.isEnded) return;
    if (!ok) return refuse({ status: 500, text: 'WhatsApp media could not be set up', cause: 'whatsapp_answer_missing' });
    try {
      if (!delayedOffer) media.bridgeSip();
    } catch (err) {
      call.logger.error({ err: (err as Error).message }, 'bridge setup failed');
      return refuse({ status: 500, text: 'Media bridge could not be set up', cause: 'bridge_failed' });
    }
    try {
      sipAnswering = true;
      dialog = await invite.answer({ sdp: sipSdp });
      // Hold, re-INVITE, UPDATE, REFER and BYE from the PBX: the agent side every call direction shares. A transfer
      // target is called as a user-initiated call's agent would be: from the WhatsApp user, with the call's context.
      const ctx = waContextToSip({ callId: call.waCallId ?? '', phoneNumberId: number.phoneNumberId, waId });
      agent = startAgentSide(deps, call, media, dialog, { from: ctx.from, headers: ctx.headers }, (reason) => fail(reason));
    } catch (err) {
      if (err instanceof SipCallFailure && err.status === 487) return onCancel();
      call.logger.error({ err: (err as Error).message }, 'could not answer the PBX');
      return fail({ by: 'gateway', outcome: 'failed', cause: 'sip_answer_failed' });
    }
    if (call.isEnded) {
      // Ended (e.g. Meta's terminate) while the 200 OK was on its way: the PBX may not even have ACKed yet.
      await dialog.bye();
      return;
    }
    markAnswered('ACCEPTED');
    if (delayedOffer) {
      const answer = await dialog.ackAnswer();
      if (call.isEnded) return;
      try {
        if (!answer) throw new SdpError('malformed', 'no SDP answer in the ACK');
        media.connectSip(answer);
      } catch (err) {
        call.logger.warn({ err: (err as Error).message }, 'the PBX\'s answer to our delayed offer is unusable');
        return fail({ by: 'gateway', outcome: 'answered', cause: 'sip_sdp_unusable' });
      }
    }
    media.startWhatsAppMedia((leg) => {
      metrics.mediaTimeouts.inc({ leg });
      fail({ by: 'gateway', outcome: 'answered', cause: `media_timeout_${leg}` });
    }, (_leg, cause) => fail({ by: 'gateway', outcome: 'answered', cause }));
  };
  /** The call counts as answered from our 200 OK to the PBX on (answeredAt, duration, pulses), ACK or not. */
  const markAnswered = (event: string): void => {
    if (call.state === 'answered' || call.isEnded) return;
    if (call.state === 'offered') call.transition('ringing', 'accepted_without_ringing');
    call.transition('answered', event);
  };
  /** The user picked up (§1.4 ACCEPTED, or a terminate showing start_time): not an unanswered call, limits reset. */
  const userPickedUp = (): void => {
    if (wa.pickedUp) return;
    wa.pickedUp = true;
    clearTimeout(setupTimer);
    deps.permissions?.ledger.callConnected(number.phoneNumberId, waId, 'business_initiated');
  };
  handles.set(call, {
    answer(sdp) {
      wa.applyAnswer(media, sdp, (err) => {
        const cause = err instanceof UnusableAnswerError ? 'whatsapp_answer_unusable' : 'whatsapp_answer_failed';
        refuse({ status: 500, text: 'WhatsApp media could not be set up', cause });
      });
    },
    status(status) {
      if (call.isEnded) return;
      if (status === 'RINGING') {
        // A RINGING delivered after ACCEPTED (ordering is not guaranteed, §1.1) changes nothing.
        if (wa.pickedUp) return;
        if (call.state === 'offered') call.transition('ringing', 'RINGING');
        invite.ringing();
      } else if (status === 'ACCEPTED') {
        // Pick-up is ACCEPTED (§1.3, §1.4); the answer SDP may come before or after it: pickUp waits for it.
        if (wa.pickedUp) return;
        userPickedUp();
        pickUp().catch((err: Error) => {
          call.logger.error({ err: err.message }, 'pick-up failed');
          fail({ by: 'gateway', outcome: 'failed', cause: 'pickup_failed' });
        });
      } else if (wa.pickedUp) {
        call.logger.warn('REJECTED after ACCEPTED: ignored, the terminate ends the call');
      } else {
        // §6 item 3 and Meta's own SIP mode (§4.6: 486 = user declined) answer a declined call with 486.
        fail({ by: 'whatsapp', outcome: 'rejected', cause: 'user_declined' }, { status: 486, text: 'Declined by the WhatsApp user', cause: 'user_declined' });
      }
    },
    terminate(ev) {
      const graphCode = ev.errorCodes[0];
      const cause = graphCode !== undefined ? `whatsapp_error_${graphCode}` : 'whatsapp_hangup';
      // §1.5: start_time / duration are present only if the call was picked up (its status may say COMPLETED either way).
      if (wa.pickedUp || ev.startTime !== undefined || (ev.duration ?? 0) > 0) {
        userPickedUp();
        // Our 200 OK is out (the PBX may not have ACKed yet): the BYE follows. Before it, the PBX gets a final failure.
        if (sipAnswering) {
          markAnswered('terminate_after_answer');
          return fail({ by: 'whatsapp', outcome: 'answered', cause, graphCode, ...metaDuration(ev) });
        }
        return fail({ by: 'whatsapp', outcome: 'answered', cause, graphCode, ...metaDuration(ev) },
          { status: 480, text: 'The WhatsApp user hung up before the call was connected', cause });
      }
      fail({ by: 'whatsapp', outcome: 'no_answer', cause: graphCode !== undefined ? cause : 'not_answered', graphCode },
        { status: 480, text: 'The WhatsApp user did not answer', cause: 'not_answered' });
    },
  });

  const connected = await wa.connect(offerSdp);
  if ('error' in connected) {
    if (call.isEnded) return;
    const { refusal: r, graphCode } = await connectRefusal(deps, number, waId, connected.error);
    metrics.businessConnectErrors.inc({ sip_status: String(r.status) });
    // 138000 and 131055 are the number's set-up at Meta, which someone has to fix: logged as errors.
    const setupFault = graphCode === 138000 || graphCode === 131055;
    call.logger[setupFault ? 'error' : 'warn']({ err: (connected.error as Error).message, graphCode }, 'Graph connect failed');
    return refuse(r, graphCode === 138003 ? 'busy' : 'failed', graphCode);
  }
  call.logger.info('Graph connect accepted: the WhatsApp user is being called');
  replayEarlyTerminate(deps, call, connected.waCallId);
}

export interface ClickToCallRequest {
  waId: string;
  /** The agent's SIP URI, rung once the WhatsApp user picked up. */
  agent: string;
  number: BusinessNumber;
}

/**
 * Click-to-call from a CRM (POST /v1/calls): the gateway calls the WhatsApp user and, when the user answers, rings the
 * agent and bridges. Resolves once Graph `connect` succeeded (the call goes on) or with the refusal (the call ended).
 * The same checks as a PBX INVITE apply, except the source guard (the admin API's key stands in for it).
 */
export async function startClickToCall(deps: CallDeps, req: ClickToCallRequest): Promise<{ call: Call } | { refusal: SipRefusal; call?: Call }> {
  const { config, metrics, registry } = deps;
  const cfg = config.businessCalls;
  const { number, waId } = req;
  const admission = registry.admissionRefusal();
  if (admission) return { refusal: { status: 503, text: admissionRefusalText(admission), cause: admission } };
  if (businessNumberBlocked(number.displayNumber, cfg.blockedCountryCodes)) return { refusal: { ...COUNTRY_BLOCKED_REFUSAL } };
  const call = new Call({
    direction: 'business_initiated', tenant: number.tenant, phoneNumberId: number.phoneNumberId,
    businessNumber: number.displayNumber, userWaId: waId, sipTarget: req.agent,
  }, deps.logger, metrics, (r) => deps.store.write(withCost(r, cfg)));
  registry.add(call);
  call.transition('offered', 'click_to_call');
  call.logger.info({ to: waId, agent: req.agent }, 'click-to-call requested');
  let refusal: SipRefusal | undefined;
  const end = (reason: EndReason): void => { void call.end(reason); };
  const refuse = (r: SipRefusal, outcome: EndReason['outcome'] = 'failed', graphCode?: number): { refusal: SipRefusal; call: Call } => {
    refusal = r;
    call.logger.info({ status: r.status, cause: r.cause, graphCode }, `click-to-call refused: ${r.text}`);
    end({ by: 'gateway', outcome, cause: r.cause, ...(graphCode !== undefined ? { graphCode } : {}) });
    return { refusal: r, call };
  };

  const wa = new WhatsAppOutboundLeg(call, deps, graphFor(deps, number), number, waId);
  let dialog: SipDialog | undefined;
  let agent: AgentSide | undefined;
  const cancelAgent = new AbortController();
  call.onTeardown((e) => {
    if (agent) return agent.hangUp(e);
    if (dialog) return hangUpDialog(dialog, e);
    cancelAgent.abort(byeFor(e).reasonHeader);
  });
  const media = deps.media.create(call);
  call.onTeardown(() => media.close());

  if (deps.permissions) {
    const view = await deps.permissions.current(number.phoneNumberId, waId);
    if (knownNoPermission(view)) return refuse({ status: 403, text: 'No WhatsApp call permission from the user', cause: 'no_permission' }, 'rejected');
    if (view.callsBlockedUntil !== undefined) return refuse(callLimitRefusal(view.callsBlockedUntil, deps.permissions.ledger.clock()), 'rejected');
  }
  // The user rings at most businessCalls.ringTimeoutMs; once they pick up, the agent's INVITE has its own ring timeout,
  // and the whole setup is bounded by both.
  const userRingTimer = setTimeout(() => {
    if (!wa.pickedUp) end({ by: 'gateway', outcome: 'no_answer', cause: 'ring_timeout' });
  }, cfg.ringTimeoutMs);
  const setupTimer = setTimeout(() => {
    end({ by: 'gateway', outcome: 'no_answer', cause: 'ring_timeout' });
  }, cfg.ringTimeoutMs + config.sip.ringTimeoutMs);
  call.onTeardown(() => {
    clearTimeout(userRingTimer);
    clearTimeout(setupTimer);
  });
  let offerSdp: string;
  try {
    offerSdp = await media.offerWhatsApp(keyExchangeFor(deps, number));
  } catch (err) {
    call.logger.error({ err: (err as Error).message }, 'media setup failed');
    return refuse({ status: 503, text: 'Media resources unavailable', cause: 'media_setup_failed' });
  }

  const onMediaTimeout = (leg: MediaLegName): void => {
    metrics.mediaTimeouts.inc({ leg });
    end({ by: 'gateway', outcome: 'answered', cause: `media_timeout_${leg}` });
  };
  const onMediaFailed = (_leg: MediaLegName, cause: string): void => end({ by: 'gateway', outcome: 'answered', cause });
  const ringAgent = async (): Promise<void> => {
    const ok = await wa.answerReady();
    if (call.isEnded) return;
    if (!ok) return end({ by: 'gateway', outcome: 'failed', cause: 'whatsapp_answer_missing' });
    const sipOffer = await media.sipOffer();
    if (call.isEnded) return;
    // The user is on the line now and the agent may ring for longer than the 20 s Meta's client waits for business
    // media (§3.2): the user hears the ringing music (transfer.holdMusicWhileRinging) or silence until the agent answers.
    media.startWhatsAppBeforeAgent(config.transfer.holdMusicWhileRinging ? new LoopingPcm(deps.holdMusic ?? generatedMelody()) : null, onMediaTimeout, onMediaFailed);
    const ctx = waContextToSip({ callId: call.waCallId ?? '', phoneNumberId: number.phoneNumberId, waId });
    try {
      dialog = await deps.sip.invite({
        uri: req.agent, from: ctx.from, headers: ctx.headers, sdp: sipOffer, signal: cancelAgent.signal,
        timeoutMs: config.sip.ringTimeoutMs,
        responseTimeoutMs: config.sip.responseTimeoutMs,
        onProvisional: (status) => call.logger.info({ status }, 'agent side provisional response'),
      });
    } catch (err) {
      if (call.isEnded) return;
      const status = err instanceof SipCallFailure ? err.status : undefined;
      call.logger.info({ status, err: (err as Error).message }, 'agent did not take the click-to-call');
      return end({ by: 'sip', outcome: status === 486 || status === 600 ? 'busy' : status === 408 || status === 480 ? 'no_answer' : 'failed', cause: status ? `sip_${status}` : 'sip_error', ...(status ? { sipStatus: status } : {}) });
    }
    call.bindIds({ sipCallId: dialog.callId });
    if (call.isEnded) {
      await dialog.bye();
      return;
    }
    // The same agent side as every other call direction: hold, re-INVITE, UPDATE, REFER, BYE.
    agent = startAgentSide(deps, call, media, dialog, { from: ctx.from, headers: ctx.headers }, end);
    try {
      media.connectSip(dialog.remoteSdp);
    } catch (err) {
      call.logger.warn({ err: (err as Error).message }, 'agent answer SDP unusable');
      return end({ by: 'gateway', outcome: 'failed', cause: 'sip_sdp_unusable' });
    }
    clearTimeout(setupTimer);
    call.transition('answered', 'agent_answered');
  };
  handles.set(call, {
    answer(sdp) {
      wa.applyAnswer(media, sdp, () => end({ by: 'gateway', outcome: 'failed', cause: 'whatsapp_answer_unusable' }));
    },
    status(status) {
      if (call.isEnded) return;
      if (status === 'RINGING') {
        if (call.state === 'offered') call.transition('ringing', 'RINGING');
      } else if (status === 'ACCEPTED') {
        if (wa.pickedUp) return;
        wa.pickedUp = true;
        if (call.state === 'offered') call.transition('ringing', 'accepted_without_ringing');
        deps.permissions?.ledger.callConnected(number.phoneNumberId, waId, 'business_initiated');
        ringAgent().catch((err: Error) => {
          call.logger.error({ err: err.message }, 'ringing the agent failed');
          end({ by: 'gateway', outcome: 'failed', cause: 'agent_setup_failed' });
        });
      } else {
        end({ by: 'whatsapp', outcome: 'rejected', cause: 'user_declined' });
      }
    },
    terminate(ev) {
      const graphCode = ev.errorCodes[0];
      // §1.5: start_time / duration mean the user picked up, even when the ACCEPTED status never came.
      if (!wa.pickedUp && (ev.startTime !== undefined || (ev.duration ?? 0) > 0)) {
        wa.pickedUp = true;
        deps.permissions?.ledger.callConnected(number.phoneNumberId, waId, 'business_initiated');
      }
      const cause = graphCode !== undefined ? `whatsapp_error_${graphCode}` : wa.pickedUp ? 'whatsapp_hangup' : 'not_answered';
      end({ by: 'whatsapp', outcome: call.state === 'answered' ? 'answered' : wa.pickedUp ? 'cancelled' : 'no_answer', cause, graphCode, ...metaDuration(ev) });
    },
  });

  const connected = await wa.connect(offerSdp);
  if ('error' in connected) {
    if (call.isEnded) return { refusal: refusal ?? { status: 500, text: 'call ended', cause: 'ended' }, call };
    const { refusal: r, graphCode } = await connectRefusal(deps, number, waId, connected.error);
    return refuse(r, graphCode === 138003 ? 'busy' : 'failed', graphCode);
  }
  call.logger.info('click-to-call: the WhatsApp user is being called');
  replayEarlyTerminate(deps, call, connected.waCallId);
  return { call };
}

async function connectRefusal(deps: CallDeps, number: BusinessNumber, waId: string, err: unknown): Promise<{ refusal: SipRefusal; graphCode?: number }> {
  const refusal = refusalForGraphError(err, deps.permissions?.ledger.clock() ?? Date.now());
  const graphCode = err instanceof GraphError ? err.code : undefined;
  // Meta knows of no permission although the ledger thought there was one: ask, as when the ledger had said none.
  if (graphCode === 138006) refusal.text += await requestPermissionAfterRefusal(deps, number, waId);
  return { refusal, graphCode };
}

/**
 * With businessCalls.requestPermissionOnRefusal (or the tenant's entry), a call refused for want of permission sends
 * the user a call permission request (the ledger's limits apply); returns what the refusal text adds about it.
 */
async function requestPermissionAfterRefusal(deps: CallDeps, number: BusinessNumber, waId: string): Promise<string> {
  const cfg = deps.config.businessCalls;
  if (!deps.permissions || !(cfg.requestPermissionOnRefusalByTenant[number.tenant] ?? cfg.requestPermissionOnRefusal)) return '';
  const content = permissionRequestContent(deps.permissions.ledger.view(number.phoneNumberId, waId), cfg.permissionRequestTemplate, { bodyText: cfg.permissionRequestText });
  const sent = await deps.permissions.request(number.phoneNumberId, waId, content);
  return sent.sent ? '; a call permission request was sent' : `; no permission request sent (${sent.message})`;
}

/** Graph `connect` errors with a fixed SIP answer (README table); 138012 carries its next allowed time. */
const CONNECT_REFUSALS: Readonly<Record<number, { status: number; text: string; retryAfter?: string }>> = {
  138006: { status: 403, text: 'No WhatsApp call permission from the user' },
  // 403 as Meta's own SIP mode answers a duplicate call (§3.2, §4.6); a PBX would read 486 as the user busy on any call.
  138003: { status: 403, text: 'A call with this WhatsApp user is already ongoing' },
  131044: { status: 403, text: 'No valid payment method on the WhatsApp Business account' },
  138001: { status: 404, text: 'WhatsApp user cannot be called' },
  138013: { status: 403, text: 'Business-initiated calling not available in this country' },
  138002: { status: 503, text: 'Concurrent call limit reached', retryAfter: '30' },
  138005: { status: 503, text: 'Call rate limit reached', retryAfter: '300' },
  138000: { status: 403, text: 'WhatsApp calling is not enabled on this business number' },
  138014: { status: 403, text: 'WhatsApp calling is temporarily disabled on this business number (low call quality)' },
  131030: { status: 403, text: 'The WhatsApp user is not in the test number\'s allowed list' },
  // A configuration fault here, not the caller's: the number is set up for Meta's SIP mode (§4.6), not the Graph API.
  131055: { status: 503, text: 'The business number is SIP-enabled at Meta: the Graph calling API is not allowed for it' },
};

/** The SIP response the PBX gets for a Graph `connect` error (README table). */
export function refusalForGraphError(err: unknown, now = Date.now()): SipRefusal {
  const code = err instanceof GraphError ? err.code : undefined;
  const codeHeader = { 'X-WA-Graph-Error': code !== undefined ? String(code) : err instanceof GraphError && err.httpStatus ? `http_${err.httpStatus}` : 'unreachable' };
  if (code === 138012) {
    const r = callLimitRefusal(nextAllowedTime(err instanceof GraphError ? err.details : undefined), now);
    return { ...r, cause: 'graph_connect_138012', headers: { ...codeHeader, ...r.headers } };
  }
  const fixed = code !== undefined ? CONNECT_REFUSALS[code] : undefined;
  if (fixed) {
    const headers = fixed.retryAfter ? { ...codeHeader, 'Retry-After': fixed.retryAfter } : codeHeader;
    return { status: fixed.status, text: fixed.text, cause: `graph_connect_${code}`, headers };
  }
  return { status: 500, text: `Graph connect failed${code !== undefined ? ` (code ${code})` : ''}`, cause: code !== undefined ? `graph_connect_${code}` : 'graph_connect_failed', headers: codeHeader };
}

/** Meta's limit on connected business-initiated calls to this user is reached (§3.1): 403 and when to try again. */
function callLimitRefusal(next: number | undefined, now: number): SipRefusal & { headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  if (next !== undefined) headers['Retry-After'] = String(Math.max(1, Math.ceil((next - now) / 1000)));
  const when = next !== undefined ? `; next call allowed at ${new Date(next).toISOString()}` : '';
  return { status: 403, text: `Daily business-initiated call limit reached${when}`, cause: 'call_limit', headers };
}


// -------------------------------------------------------------------------------------------------------------
// Webhook events of business-initiated calls (dispatch.ts routes them here)

/** Meta's srtp_key_exchange_protocol for the number as its last settings webhook said, else the config's. */
function keyExchangeFor(deps: CallDeps, number: BusinessNumber): 'dtls' | 'sdes' | undefined {
  return deps.metaSettings?.keyExchange(number.phoneNumberId) ?? number.whatsappKeyExchange;
}

/** Graph requests for a number carry its own Meta app's token (several apps may share one gateway). */
function graphFor(deps: CallDeps, number: BusinessNumber): GraphClient {
  return deps.graphs?.forNumber(number.phoneNumberId) ?? deps.graph;
}

function findCall(deps: CallDeps, waCallId: string, bizOpaque: string | undefined): Call | undefined {
  let call = deps.registry.byWhatsAppId(waCallId);
  if (!call && bizOpaque) {
    const byOpaque = deps.registry.byBizOpaque(bizOpaque);
    if (byOpaque && byOpaque.ctx.direction === 'business_initiated' && !byOpaque.isEnded) {
      call = byOpaque;
      if (!call.waCallId) call.bindIds({ waCallId });
      deps.registry.indexWaCallId(call, waCallId);
    }
  }
  return call?.ctx.direction === 'business_initiated' ? call : undefined;
}

/**
 * Ordering is not guaranteed (§1.1): Meta's terminate may beat the Graph `connect` response that names the wacid. With
 * biz_opaque_callback_data it found the call anyway; without, it was kept by the registry and ends the call now.
 */
function replayEarlyTerminate(deps: CallDeps, call: Call, waCallId: string | undefined): void {
  const ev = waCallId ? deps.registry.takeEarlyTerminate(waCallId) : undefined;
  if (!ev || call.isEnded) return;
  call.logger.info({ status: ev.status, startTime: ev.startTime, errors: ev.errorCodes }, 'WhatsApp call terminated before Graph connect returned');
  handles.get(call)?.terminate(ev);
}

/** A webhook naming a call placed by an ended call's uncertain `connect` (WhatsAppOutboundLeg): that call is terminated. */
function hangUpUncertainConnect(deps: CallDeps, ev: ConnectEvent | StatusEvent): boolean {
  const hangUp = ev.bizOpaque ? deps.registry.takeUncertainConnect(ev.bizOpaque) : undefined;
  if (!hangUp) return false;
  void hangUp(ev.callId);
  return true;
}

/** The `connect` webhook with the user's SDP answer (§1.3): media setup, not pick-up. */
export function deliverBusinessConnect(deps: CallDeps, ev: ConnectEvent): void {
  const call = findCall(deps, ev.callId, ev.bizOpaque);
  const handle = call && handles.get(call);
  if (!call || !handle) {
    if (hangUpUncertainConnect(deps, ev)) return;
    deps.logger.info({ waCallId: ev.callId }, 'business-initiated connect for a call not placed here: ignored');
    return;
  }
  if (ev.sdpType !== 'answer') {
    call.logger.warn({ sdpType: ev.sdpType }, 'business-initiated connect without an SDP answer: ignored');
    return;
  }
  handle.answer(ev.sdp);
}

/** RINGING / ACCEPTED / REJECTED (§1.4). */
export function deliverBusinessStatus(deps: CallDeps, ev: StatusEvent): void {
  const call = findCall(deps, ev.callId, ev.bizOpaque);
  const handle = call && handles.get(call);
  if (!call || !handle) {
    if (hangUpUncertainConnect(deps, ev)) return;
    deps.logger.info({ waCallId: ev.callId, status: ev.status }, 'call status for a call not live here');
    return;
  }
  call.logger.info({ status: ev.status }, 'WhatsApp call status');
  handle.status(ev.status);
}

/** Returns false when the terminate is not for a live business-initiated call (the user-initiated flow takes it). */
export function deliverBusinessTerminate(deps: CallDeps, ev: TerminateEvent): boolean {
  const call = findCall(deps, ev.callId, ev.bizOpaque);
  const handle = call && handles.get(call);
  if (!call || !handle) return false;
  deps.registry.markWhatsAppTerminated(ev.callId);
  call.logger.info({ status: ev.status, startTime: ev.startTime, errors: ev.errorCodes }, 'WhatsApp call terminated');
  if (call.isEnded) noteMetaTerminateAfterEnd(deps, ev.callId, ev.duration, call);
  else handle.terminate(ev);
  return true;
}

// -------------------------------------------------------------------------------------------------------------
// Checks and helpers

function sendRefusal(invite: SipInboundInvite, r: SipRefusal): void {
  const text = r.text.replace(/["\\]/g, '');
  invite.reject(r.status, {
    reasonHeader: { protocol: 'SIP', cause: r.status, text },
    headers: { Warning: `399 wa-sip-gateway "${text}"`, ...r.headers },
  });
}

/** The SIP status for an ending that set no explicit refusal. */
function refusalForEnd(end: EndReason): SipRefusal {
  if (end.sipStatus) return { status: end.sipStatus, text: end.cause, cause: end.cause };
  if (end.cause === 'drain') return { status: 503, text: 'Service draining', cause: end.cause, headers: { 'Retry-After': '30' } };
  return { status: 500, text: end.cause, cause: end.cause };
}

/** The WhatsApp user's number from the Request-URI user part: E.164 with or without '+', visual separators allowed. */
export function targetWaId(requestUri: string): string | undefined {
  return /^\s*sips?:/i.test(requestUri) ? waIdFromUser(uriUser(requestUri)) : undefined;
}

/** E.164 digits from a (decoded) URI user part. */
export function waIdFromUser(user: string): string | undefined {
  const digits = user.replace(/[\s().-]/g, '').replace(/^\+/, '');
  return /^[1-9]\d{5,14}$/.test(digits) ? digits : undefined;
}
