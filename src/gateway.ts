import { outboundCredentialsFor } from './sip/digest.js';
import type { GatewayConfig, Secrets } from './config/schema.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { openCallRecordStore } from './store/open-store.js';
import { RetentionSweeper } from './store/retention.js';
import { registerAdminApi, gatewayVersion } from './http/admin-api.js';
import { EventFeed } from './http/event-feed.js';
import { GraphClient } from './whatsapp/graph-client.js';
import { SipAgent } from './sip/agent.js';
import { startHttpServer, type RunningHttpServer } from './http/server.js';
import { WebhookReceiver } from './http/webhook-route.js';
import { AdminRouter } from './http/admin-router.js';
import { CallRegistry } from './calls/registry.js';
import { Routing } from './calls/routing.js';
import { MediaFactory } from './calls/media-session.js';
import { preciseTimerAvailable } from './media/precise-timer.js';
import { announcedAddress, unreachableFromMeta } from './media/webrtc-leg.js';
import { targetRefusal } from './sip/target-policy.js';
import { MetaNumberSettings } from './whatsapp/meta-settings.js';
import { RecentMetaNotices } from './whatsapp/meta-notices.js';
import { WebhookForwarder } from './http/webhook-forwarder.js';
import { ClusterAdmin } from './http/cluster-admin.js';
import { tickReadsAvailable } from './media/tick-socket.js';
import { nativeOpusFecVersion, opusFecImplementation } from './media/opus-fec.js';
import { encoderLoadGovernor, type LoadObserver } from './media/encoder-load-governor.js';
import { dispatchEvent } from './calls/dispatch.js';
import { businessInviteHandler } from './calls/business-initiated.js';
import { PbxGuard } from './calls/pbx-guard.js';
import { registerBusinessCallRoutes } from './http/business-routes.js';
import { SqlitePermissionStore } from './store/permission-store.js';
import { PermissionLedger, PermissionService, PRODUCTION_LIMITS, SANDBOX_LIMITS } from './whatsapp/permissions.js';
import type { CallDeps } from './calls/deps.js';
import { GraphClients } from './whatsapp/graph-clients.js';
import { buildWebhookApps } from './whatsapp/webhook-apps.js';
import { loadHoldMusic } from './calls/hold-music.js';
import { restartOnlyChanges, withRestartOnlyFrom } from './config/reload.js';
import type { CallRecordStore } from './store/call-record.js';
import { CallAudioService } from './recording/call-audio-service.js';
import { registerRecordingRoutes } from './http/recording-routes.js';

export interface RunningGateway {
  logger: Logger;
  metrics: Metrics;
  http: RunningHttpServer;
  admin: AdminRouter;
  deps: CallDeps;
  registry: CallRegistry;
  store: CallRecordStore;
  sip: SipAgent;
  /**
   * Applies a new, already validated configuration (SIGHUP): numbers, apps and their secrets, routing, hold and
   * transfer apply to the next call, admin API keys to the next request (feed clients of a revoked key are closed); live calls are untouched. Settings that need a restart keep their old value and
   * are listed in the result.
   */
  reload(config: GatewayConfig, secrets?: Secrets): { restartNeeded: string[] };
  drainAndStop(): Promise<void>;
}

/** Wires the parts together and starts them. Used by main.ts and by the end-to-end tests. */
export interface GatewayOptions {
  /** ms epoch clock of the permission ledger (tests move time forward). */
  clock?: () => number;
}

export async function startGateway(config: GatewayConfig, secrets: Secrets, logger = createLogger(config.log.level), opts: GatewayOptions = {}): Promise<RunningGateway> {
  const metrics = createMetrics();
  const store = await openCallRecordStore(config.store);
  const registry = new CallRegistry(config.calls.maxConcurrent, logger);
  // deps.config: follows reloads.
  registry.mediaSaturated = () => deps.config.media.refuseCallsWhenSaturated && encoderLoadGovernor().saturatedAbove(deps.config.media.saturationBusyPercent / 100);
  const graph = new GraphClient({
    baseUrl: config.whatsapp.graphBaseUrl, apiVersion: config.whatsapp.graphApiVersion, token: secrets.graphToken,
    timeoutMs: config.whatsapp.graphTimeoutMs, retries: config.whatsapp.graphRetries, logger, metrics,
  });
  const sip = new SipAgent({
    host: config.sip.drachtioHost, port: config.sip.drachtioPort, secret: secrets.drachtioSecret, logger,
    targetRefusal: (uri) => targetRefusal(uri, deps.config.sip),
    // Read per INVITE, so a reload with new secrets applies to the next one.
    outboundCredentials: (uri) => outboundCredentialsFor(uri, currentSecrets.sipOutboundCredentials ?? new Map()),
  });
  sip.on('connected', () => metrics.drachtioConnected.set(1));
  sip.on('disconnected', () => metrics.drachtioConnected.set(0));
  metrics.drachtioConnected.set(0);
  const media = new MediaFactory(config, metrics);
  if (config.media.tickReads && !tickReadsAvailable()) {
    logger.warn('media.tickReads is on but the batched UDP addon (build/Release/udp_batch.node) did not load: media sockets are read on arrival, which costs more CPU per call; run npm ci with python3, make and g++ present');
  } else {
    logger.info({ tickReads: config.media.tickReads }, config.media.tickReads ? 'media sockets are read on the media tick' : 'media sockets are read on arrival');
  }
  const announced = announcedAddress(config.media);
  const unreachable = unreachableFromMeta(announced);
  if (unreachable) logger.warn({ announced: announced ?? null }, `WhatsApp media candidates announce an address Meta's relays cannot reach (${unreachable}): set media.publicAddress`);
  if (!preciseTimerAvailable()) logger.warn('the media addon gives no timerfd here: the 20 ms media clock runs on setTimeout, so ticks start 1–2 ms late');
  const onEncoderLoad: LoadObserver = (level, previous, utilization) => {
    metrics.encoderLoadChanges.inc({ direction: level > previous ? 'down' : 'up' });
    const fields = { level, loopBusyPercent: Math.round(utilization * 100), maxComplexity: config.media.opusComplexity };
    if (level > 0) logger.warn(fields, 'media event loop busy: Opus encoders run below media.opusComplexity');
    else logger.info(fields, 'media event loop calm: Opus encoders back at media.opusComplexity');
  };
  encoderLoadGovernor().onChange = onEncoderLoad;
  const opusImpl = opusFecImplementation();
  if (opusImpl === 'native') logger.info(`Opus decoding (FEC/PLC) on native ${nativeOpusFecVersion()}`);
  else logger.warn(`libopus.so.0 not found (Debian package libopus0) or the media addon not built: Opus with FEC/PLC is decoded ${opusImpl === 'wasm' ? 'on the WebAssembly build, ~3-12 µs more CPU per 20 ms frame' : 'without FEC (no wasm build either)'}`);
  const permissionStore = new SqlitePermissionStore(config.store.sqlitePath);
  const ledger = new PermissionLedger({
    store: permissionStore, logger, metrics, clock: opts.clock,
    defaultExpiryMs: config.businessCalls.permissionDefaultExpirySeconds * 1000, staleAfterMs: config.businessCalls.permissionStaleSeconds * 1000,
    // deps.config: follows reloads.
    limitsFor: (phoneNumberId) => (deps.config.whatsapp.numbers.find((n) => n.phoneNumberId === phoneNumberId)?.sandbox ? SANDBOX_LIMITS : PRODUCTION_LIMITS),
  });
  const graphs = new GraphClients(graph, logger, metrics);
  graphs.update(config, secrets);
  const permissions = new PermissionService(ledger, (phoneNumberId) => graphs.forNumber(phoneNumberId), logger, metrics);
  const routing = new Routing(config, { metrics, logger, ...(opts.clock ? { clock: () => new Date(opts.clock!()) } : {}) });
  const holdMusic = (c: GatewayConfig): Int16Array => loadHoldMusic(c.hold.musicFile, c.hold.gainDb, (m) => logger.warn(m));
  const metaSettings = new MetaNumberSettings(logger);
  const metaNotices = new RecentMetaNotices();
  const deps: CallDeps = { config, logger, metrics, graph, sip, store, registry, routing, media, permissions, graphs, metaSettings, holdMusic: holdMusic(config) };
  let currentSecrets = secrets;
  let webhookApps = buildWebhookApps(config, secrets);
  // Digest credentials are read per INVITE, so a reload with new secrets applies to the next one.
  deps.pbxGuard = new PbxGuard(() => currentSecrets.sipCredentials, opts.clock);
  if (config.businessCalls.sourceGuard !== 'allowList' && !deps.pbxGuard.hasCredentials) {
    logger.warn({ sourceGuard: config.businessCalls.sourceGuard }, 'businessCalls.sourceGuard uses SIP digest but WAGW_SIP_CREDENTIALS is empty: no PBX can authenticate');
  }
  sip.onInvite(businessInviteHandler(deps));
  if (!secrets.appSecret) logger.warn('WAGW_APP_SECRET is empty: every webhook will fail its signature check');
  const webhook = new WebhookReceiver({
    appSecret: secrets.appSecret, verifyToken: secrets.verifyToken, maxAgeSeconds: config.whatsapp.webhookMaxAgeSeconds,
    userConnectMaxAgeSeconds: config.whatsapp.userConnectMaxAgeSeconds,
    logger, metrics, onEvent: (ev) => dispatchEvent(deps, ev), apps: () => webhookApps,
    onNotice: (n) => {
      metaSettings.apply(n);
      metaNotices.record(n);
    },
    isLiveCall: (waCallId, bizOpaque) => registry.isLiveWhatsAppCall(waCallId, bizOpaque),
    forwarder: new WebhookForwarder({ peers: () => deps.config.cluster.peers, timeoutMs: () => deps.config.cluster.forwardTimeoutMs, logger, metrics }),
  });
  const admin = new AdminRouter(secrets.adminKeys, logger);
  const startedAt = Date.now();
  registerAdminApi(admin, {
    store, registry, metaNotices: () => metaNotices.list(),
    cluster: new ClusterAdmin({ peers: () => deps.config.cluster.peers, timeoutMs: () => deps.config.cluster.forwardTimeoutMs, logger }),
    status: () => ({
      version: gatewayVersion(), uptimeSeconds: Math.round((Date.now() - startedAt) / 1000), drachtioConnected: sip.connected,
      rtpPortsFree: media.pool.free, eventFeedClients: feed?.clientCount ?? 0,
      mediaTickReads: deps.config.media.tickReads && tickReadsAvailable(),
      mediaClock: preciseTimerAvailable() ? 'timerfd' : 'setTimeout',
    }),
  });
  const http = await startHttpServer({
    host: config.http.host, port: config.http.port, logger, metrics, webhook, admin,
    readiness: () => ({ drachtio: sip.connected, store: store.isOpen, accepting: !registry.draining }),
  });
  const feed: EventFeed | undefined = new EventFeed({
    server: http.server, admin, events: registry.events, logger, metrics, maxBufferedBytes: config.admin.eventClientMaxBufferedBytes,
    peers: () => deps.config.cluster.peers,
  });
  registry.events.startQualitySampling(() => registry.list(), config.admin.eventQualityIntervalMs);
  const retention = new RetentionSweeper(store, {
    days: config.store.retentionDays, intervalMs: config.store.retentionSweepMinutes * 60_000, logger,
    onDeleted: (n) => metrics.callRecordsDeleted.inc(n),
  });
  retention.start();
  registerBusinessCallRoutes(admin, deps);
  // Recording with consent and live audio streams (issue 9): settings are read per call, so a reload applies to the next one.
  const callAudio = new CallAudioService(() => deps.config, logger, metrics);
  media.onMediaStarted = (call, session) => callAudio.attach(call, session);
  registerRecordingRoutes(admin, { audio: callAudio, registry, logger, metrics });
  callAudio.startRetention();
  sip.start();
  let stopping: Promise<void> | undefined;

  return {
    logger, metrics, http, admin, deps, registry, store, sip,
    reload(next, nextSecrets) {
      const restartNeeded = restartOnlyChanges(deps.config, next);
      const applied = withRestartOnlyFrom(deps.config, next);
      currentSecrets = nextSecrets ?? currentSecrets;
      routing.update(applied);
      graphs.update(applied, currentSecrets);
      webhookApps = buildWebhookApps(applied, currentSecrets);
      // Admin keys (WAGW_ADMIN_KEYS or its _FILE): a revoked key is refused from now on, by the API and the event feed.
      if (nextSecrets) {
        admin.setKeys(nextSecrets.adminKeys);
        feed.reauthenticate();
      }
      deps.holdMusic = holdMusic(applied);
      deps.config = applied;
      metrics.configReloads.inc({ result: 'applied' });
      logger.info({ numbers: applied.whatsapp.numbers.length, routes: Object.keys(applied.routing.routes).length, adminKeys: admin.keyCount, liveCalls: registry.size, restartNeeded },
        restartNeeded.length ? 'configuration reloaded; some changes need a restart' : 'configuration reloaded');
      return { restartNeeded };
    },
    drainAndStop() {
      stopping ??= (async () => {
        sip.draining = true;
        await registry.drain(config.calls.drainDeadlineMs);
        // After the drain, so that feed clients see the drained calls end; before http.close(), which waits for sockets.
        registry.events.stopQualitySampling();
        await feed.close();
        await retention.stop();
        callAudio.stopRetention();
        await http.close();
        await sip.stop();
        media.close();
        // Another gateway in this process (tests) may have taken the thread's governor since.
        if (encoderLoadGovernor().onChange === onEncoderLoad) encoderLoadGovernor().onChange = null;
        await store.close();
        permissionStore.close();
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}
