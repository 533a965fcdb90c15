import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { encoderLoadGovernor } from '../media/encoder-load-governor.js';

/**
 * The gateway's metrics. Label values are bounded enums (direction, outcome, action, result, code class): never a
 * call id or a phone number, which would grow the series without limit.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    callsTotal: new Counter({ name: 'wagw_calls_total', help: 'Calls ended, by direction and outcome', labelNames: ['direction', 'outcome'] as const, registers }),
    activeCalls: new Gauge({ name: 'wagw_active_calls', help: 'Calls currently live', labelNames: ['direction'] as const, registers }),
    setupSeconds: new Histogram({ name: 'wagw_call_setup_seconds', help: 'Time from offer to answer', labelNames: ['direction'] as const, buckets: [0.25, 0.5, 1, 2, 4, 8, 16, 32], registers }),
    webhooks: new Counter({ name: 'wagw_webhooks_total', help: 'Webhook deliveries by result', labelNames: ['result'] as const, registers }),
    webhookEvents: new Counter({ name: 'wagw_webhook_events_total', help: 'Webhook call events by kind and result', labelNames: ['event', 'result'] as const, registers }),
    accountNotices: new Counter({ name: 'wagw_meta_account_notices_total', help: 'account_update and account_settings_update webhooks (restrictions, violations, calling settings changed at Meta), by field', labelNames: ['field'] as const, registers }),
    webhookForwards: new Counter({ name: 'wagw_webhook_forwards_total', help: 'Webhook deliveries passed on to the other gateway instances (cluster.peers), per peer, by result (ok, refused, failed)', labelNames: ['result'] as const, registers }),
    webhookMalformedItems: new Counter({ name: 'wagw_webhook_malformed_items_total', help: 'Calls, statuses or messages in signed webhooks dropped as unusable, by reason (no_phone_number_id, unusable_call, unusable_status, unusable_permission_reply)', labelNames: ['reason'] as const, registers }),
    graphRequests: new Counter({ name: 'wagw_graph_requests_total', help: 'Graph API requests by action and HTTP status', labelNames: ['action', 'status'] as const, registers }),
    graphSeconds: new Histogram({ name: 'wagw_graph_request_seconds', help: 'Graph API latency by action', labelNames: ['action'] as const, buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5], registers }),
    sipFinals: new Counter({ name: 'wagw_sip_final_responses_total', help: 'Final SIP responses received to our INVITEs, by code class', labelNames: ['class'] as const, registers }),
    unexpectedEvents: new Counter({ name: 'wagw_call_unexpected_events_total', help: 'Events that made no sense in the call state they arrived in', labelNames: ['state', 'event'] as const, registers }),
    rejectedOffers: new Counter({ name: 'wagw_unanswerable_offers_total', help: 'WhatsApp SDP offers the gateway could not answer', registers }),
    uncertainConnectsTerminated: new Counter({ name: 'wagw_uncertain_connects_terminated_total', help: 'WhatsApp calls placed by a Graph connect whose answer was lost, terminated when a webhook named them after their call had ended', registers }),
    mediaTimeouts: new Counter({ name: 'wagw_media_timeouts_total', help: 'Calls ended because a leg carried no media', labelNames: ['leg'] as const, registers }),
    rtpPortsFree: new Gauge({ name: 'wagw_rtp_ports_free', help: 'RTP ports left in the SIP-side pool', registers }),
    drachtioConnected: new Gauge({ name: 'wagw_drachtio_connected', help: '1 while connected to drachtio-server', registers }),
    rtpPackets: new Counter({ name: 'wagw_rtp_packets_total', help: 'RTP packets by leg and direction', labelNames: ['leg', 'dir'] as const, registers }),
    rtpLost: new Counter({ name: 'wagw_rtp_packets_lost_total', help: 'RTP packets lost, by leg (inbound)', labelNames: ['leg'] as const, registers }),
    sipInvitesRefused: new Counter({ name: 'wagw_sip_invites_refused_total', help: 'Inbound INVITEs (business-initiated calls) refused before any Graph request, by reason', labelNames: ['reason'] as const, registers }),
    sipDigestAuth: new Counter({ name: 'wagw_sip_digest_auth_total', help: 'SIP digest authentication of PBX INVITEs, by result (challenged, stale, accepted, rejected)', labelNames: ['result'] as const, registers }),
    businessConnectErrors: new Counter({ name: 'wagw_business_connect_errors_total', help: 'Graph connect failures of business-initiated calls, by SIP status sent to the PBX', labelNames: ['sip_status'] as const, registers }),
    permissionEvents: new Counter({ name: 'wagw_permission_events_total', help: 'Call-permission ledger events (replies, refreshes, unanswered warnings, revocations)', labelNames: ['event'] as const, registers }),
    permissionRequests: new Counter({ name: 'wagw_permission_requests_total', help: 'Call permission requests by result (sent, refused locally, Graph error)', labelNames: ['result'] as const, registers }),
    callMos: new Histogram({ name: 'wagw_call_mos', help: 'E-model MOS estimate per ended call and leg', labelNames: ['leg'] as const, buckets: [1, 2, 2.5, 3, 3.5, 4, 4.3, 4.5], registers }),
    callsOffered: new Counter({ name: 'wagw_calls_offered_total', help: 'Calls offered (the call reached state offered), by direction', labelNames: ['direction'] as const, registers }),
    callsAnswered: new Counter({ name: 'wagw_calls_answered_total', help: 'Calls answered (both sides connected), by direction', labelNames: ['direction'] as const, registers }),
    rtpJitter: new Histogram({ name: 'wagw_rtp_jitter_seconds', help: 'Interarrival jitter (RFC 3550) per ended call and leg', labelNames: ['leg'] as const, buckets: [0.005, 0.01, 0.02, 0.04, 0.08, 0.16], registers }),
    rtpRtt: new Histogram({ name: 'wagw_rtp_rtt_seconds', help: 'Round-trip time from RTCP per ended call and leg (when the peer reported one)', labelNames: ['leg'] as const, buckets: [0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8], registers }),
    rtpLate: new Counter({ name: 'wagw_rtp_packets_late_total', help: 'Packets that arrived after their playout time and were dropped by the jitter buffer', labelNames: ['leg'] as const, registers }),
    fecRecovered: new Counter({ name: 'wagw_opus_fec_recovered_total', help: 'Lost WhatsApp frames rebuilt from the next packet\'s Opus in-band FEC', registers }),
    whatsappSrtpDropped: new Counter({ name: 'wagw_whatsapp_srtp_dropped_total', help: 'SRTP/SRTCP packets from the WhatsApp side dropped (failed authentication or malformed), counted per ended call, by key exchange (dtls, sdes)', labelNames: ['key_exchange'] as const, registers }),
    sipRtpDropped: new Counter({ name: 'wagw_sip_rtp_dropped_total', help: 'Datagrams on the SIP-side RTP port dropped, counted per ended call, by reason (unexpected_source: not the latched or signalled peer; invalid: not RTP v2, or over 2 KiB)', labelNames: ['reason'] as const, registers }),
    sipRtpRelatched: new Counter({ name: 'wagw_sip_rtp_relatched_total', help: 'Times the SIP-side RTP latch moved to a new source of the PBX (NAT rebinding, media restart on another port), counted per ended call', registers }),
    mediaSendErrors: new Counter({ name: 'wagw_media_send_errors_total', help: 'Media packets the kernel refused to send, counted per ended call, by leg', labelNames: ['leg'] as const, registers }),
    callRecords: new Counter({ name: 'wagw_call_records_total', help: 'Call records by result of the write (written, failed), and records amended by a late Meta terminate (amended, amend_failed)', labelNames: ['result'] as const, registers }),
    callRecordsDeleted: new Counter({ name: 'wagw_call_records_deleted_total', help: 'Call records deleted by the retention sweep', registers }),
    eventFeedClients: new Gauge({ name: 'wagw_event_feed_clients', help: 'WebSocket clients connected to /v1/events', registers }),
    eventFeedDropped: new Counter({ name: 'wagw_event_feed_dropped_total', help: 'Event feed clients disconnected by the gateway, by reason (slow)', labelNames: ['reason'] as const, registers }),
    eventLoopLag: eventLoopLagGauge(registers),
    routingDecisions: new Counter({ name: 'wagw_routing_decisions_total', help: 'Routing decisions for user-initiated calls, by what decided (rule, default, hook, overflow) and result (route, reject)', labelNames: ['via', 'result'] as const, registers }),
    routingHook: new Counter({ name: 'wagw_routing_hook_total', help: 'HTTP routing hook requests by result (ok, timeout, error, bad_answer)', labelNames: ['result'] as const, registers }),
    sipFailovers: new Counter({ name: 'wagw_sip_failovers_total', help: 'INVITEs moved on to the next SIP target after a 5xx, timeout or unreachable target', registers }),
    holds: new Counter({ name: 'wagw_hold_events_total', help: 'Agent re-INVITEs by effect (hold, resume, media_change, refused)', labelNames: ['event'] as const, registers }),
    transfers: new Counter({ name: 'wagw_transfers_total', help: 'Blind and attended transfers (SIP REFER) by result (completed, returned, ended, refused)', labelNames: ['result'] as const, registers }),
    configReloads: new Counter({ name: 'wagw_config_reloads_total', help: 'Configuration reloads (SIGHUP) by result (applied, rejected)', labelNames: ['result'] as const, registers }),
    rtpPortsTotal: new Gauge({ name: 'wagw_rtp_ports_total', help: 'Size of the SIP-side RTP port pool', registers }),
    encoderLoadLevel: encoderLoadLevelGauge(registers),
    encoderLoadChanges: new Counter({ name: 'wagw_opus_encoder_load_changes_total', help: 'Changes of the Opus encoders\' load level, by direction (down: less encoder CPU because the media loop was over 80 % busy; up: back toward media.opusComplexity)', labelNames: ['direction'] as const, registers }),
    transcodeSeconds: new Histogram({ name: 'wagw_transcode_seconds', help: 'Mean time of one 20 ms media tick per ended call (Opus and G.711 both ways, jitter buffer, RTP send)', buckets: [0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005], registers }),
    recordings: new Counter({ name: 'wagw_recordings_total', help: 'Call recordings by result (started, completed, failed)', labelNames: ['result'] as const, registers }),
    recordingConsent: new Counter({ name: 'wagw_recording_consent_total', help: 'Recording consent steps by result (not_required, announced, explicit_yes, no_consent)', labelNames: ['result'] as const, registers }),
    recordingsDeleted: new Counter({ name: 'wagw_recordings_deleted_total', help: 'Recordings deleted, by reason (retention, admin)', labelNames: ['reason'] as const, registers }),
    streamConnects: new Counter({ name: 'wagw_stream_connects_total', help: 'Live audio stream WebSocket connection attempts by result (connected, failed)', labelNames: ['result'] as const, registers }),
    streamFramesSent: new Counter({ name: 'wagw_stream_frames_sent_total', help: 'Live audio stream frames (20 ms) sent', registers }),
    streamFramesDropped: new Counter({ name: 'wagw_stream_frames_dropped_total', help: 'Live audio stream frames (20 ms) dropped because the server was slow or unreachable', registers }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** How many complexity steps below media.opusComplexity the Opus encoders run because the media loop is busy. */
function encoderLoadLevelGauge(registers: Registry[]): Gauge {
  return new Gauge({
    name: 'wagw_opus_encoder_load_level',
    help: 'Complexity steps the Opus encoders run below media.opusComplexity because the media event loop is busy (0: none)',
    registers,
    collect() {
      this.set(encoderLoadGovernor().level);
    },
  });
}

/**
 * Event-loop delay (perf_hooks), read and reset at each scrape: p50, p99 and max since the previous scrape. A
 * media gateway whose loop lags sends its 20 ms frames late, so this is the first place to look when MOS drops.
 */
function eventLoopLagGauge(registers: Registry[]): Gauge<'quantile'> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  return new Gauge({
    name: 'wagw_event_loop_lag_seconds',
    help: 'Event-loop delay since the previous scrape, by quantile (0.5, 0.99, max)',
    labelNames: ['quantile'] as const,
    registers,
    collect() {
      // Before the first full sample the histogram reports its initial extremes; 0 reads better than 9e9.
      const sec = (ns: number): number => (Number.isFinite(ns) && h.count > 0 ? ns / 1e9 : 0);
      this.set({ quantile: '0.5' }, sec(h.percentile(50)));
      this.set({ quantile: '0.99' }, sec(h.percentile(99)));
      this.set({ quantile: 'max' }, sec(h.max));
      h.reset();
    },
  });
}
