/**
 * Starts the whole gateway against real peers for an end-to-end test: drachtio-server (built from source), the
 * Meta Cloud API double, and the gateway itself on free loopback ports. stop() checks that nothing leaked.
 */
import { expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { configSchema, type GatewayConfig, type Secrets } from '../../src/config/schema.js';
import type { DestinationStream } from 'pino';
import { createLogger } from '../../src/observability/logger.js';
import { startGateway, type RunningGateway } from '../../src/gateway.js';
import { startDrachtio, type DrachtioServer } from '../peers/drachtio.js';
import type { CallRecord } from '../../src/store/call-record.js';
import { MetaDouble, type MetaDoubleOptions, type WaUser } from '../peers/meta/index.js';
import { readWav } from '../audio/wav.js';
import { detectTone, type ToneDetection } from '../audio/goertzel.js';
import type { BaresipAgent } from '../peers/sip/baresip.js';

export const PHONE_NUMBER_ID = '436666719526789';
export const DISPLAY_NUMBER = '13175551399';
const APP_SECRET = 'e2e-app-secret';
const TOKEN = 'e2e-graph-token';

export interface E2E {
  meta: MetaDouble;
  gateway: RunningGateway;
  drachtio: DrachtioServer;
  config: GatewayConfig;
  /** The SQLite file of call records, readable after the gateway has stopped. */
  sqlitePath: string;
  /** UDP sockets open in this process (werift and RTP legs), for leak checks. */
  udpHandles(): number;
  stop(): Promise<void>;
}

function udpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
}

export interface E2EOptions {
  sipTarget: string;
  config?: Record<string, unknown>;
  meta?: Partial<MetaDoubleOptions>;
  /** Business number (E.164 digits) of both the double and the gateway; business-initiated calls need a non-US one. */
  displayNumber?: string;
  /** ms epoch clock shared by the Meta double and the gateway's permission ledger. */
  clock?: () => number;
  /** Admin API keys: key → "name:role[:tenant]". */
  adminKeys?: Record<string, string>;
  /** Secrets of config.whatsapp.apps (routing tests: several Meta apps). */
  appSecrets?: Map<string, { appSecret: string; graphToken: string }>;
  /** SIP digest credentials of PBX trunks (WAGW_SIP_CREDENTIALS): username → password. */
  sipCredentials?: Map<string, string>;
  /** What the gateway answers a PBX's 401/407 with, by target host (WAGW_SIP_OUTBOUND_CREDENTIALS). */
  sipOutboundCredentials?: Map<string, { username: string; password: string }>;
  /** Where the gateway's log lines go, at level info (or E2E_LOG_LEVEL): for tests that check a log line. */
  logSink?: DestinationStream;
}

export async function startE2E(opts: E2EOptions): Promise<E2E> {
  const drachtio = await startDrachtio();
  const displayNumber = opts.displayNumber ?? DISPLAY_NUMBER;
  const meta = new MetaDouble({
    appSecret: APP_SECRET, accessToken: TOKEN, phoneNumberId: PHONE_NUMBER_ID, displayPhoneNumber: displayNumber,
    wabaId: '366634483210360', ...(opts.clock ? { clock: opts.clock } : {}), ...opts.meta,
  });
  const { graphBaseUrl } = await meta.start();
  const overrides = opts.config ?? {};
  const sqlitePath = join(mkdtempSync(join(tmpdir(), 'wagw-e2e-')), 'gateway.sqlite');
  const config = configSchema.parse({
    http: { host: '127.0.0.1', port: 0 },
    log: { level: process.env.E2E_LOG_LEVEL ?? 'silent' },
    whatsapp: { graphBaseUrl, graphApiVersion: 'v21.0', numbers: [{ phoneNumberId: PHONE_NUMBER_ID, displayNumber, sipTarget: opts.sipTarget }], ...(overrides.whatsapp as object) },
    sip: { drachtioHost: '127.0.0.1', drachtioPort: drachtio.adminPort, ...(overrides.sip as object) },
    media: { bindAddress: '127.0.0.1', sipMediaAddress: '127.0.0.1', rtpPortMin: 23000, rtpPortMax: 23099, webrtcPortMin: 23200, webrtcPortMax: 23399, ...(overrides.media as object) },
    calls: { drainDeadlineMs: 2000, ...(overrides.calls as object) },
    store: { sqlitePath, ...(overrides.store as object) },
    ...(overrides.businessCalls ? { businessCalls: overrides.businessCalls } : {}),
    ...(overrides.routing ? { routing: overrides.routing } : {}),
    ...(overrides.hold ? { hold: overrides.hold } : {}),
    ...(overrides.transfer ? { transfer: overrides.transfer } : {}),
    ...(overrides.admin ? { admin: overrides.admin } : {}),
    ...(overrides.recording ? { recording: overrides.recording } : {}),
    ...(overrides.streaming ? { streaming: overrides.streaming } : {}),
    ...(overrides.cluster ? { cluster: overrides.cluster } : {}),
  });
  const secrets: Secrets = { graphToken: TOKEN, appSecret: APP_SECRET, verifyToken: 'v', drachtioSecret: drachtio.secret, adminKeys: new Map(Object.entries(opts.adminKeys ?? {})), ...(opts.appSecrets ? { apps: opts.appSecrets } : {}), ...(opts.sipCredentials ? { sipCredentials: opts.sipCredentials } : {}), ...(opts.sipOutboundCredentials ? { sipOutboundCredentials: opts.sipOutboundCredentials } : {}) };
  const gateway = await startGateway(config, secrets, opts.logSink ? createLogger(process.env.E2E_LOG_LEVEL ?? 'info', opts.logSink) : createLogger(config.log.level), { clock: opts.clock });
  meta.webhookUrl = `http://127.0.0.1:${gateway.http.port}/webhooks/whatsapp`;
  await gateway.sip.waitConnected(10_000);
  return {
    meta, gateway, drachtio, config, sqlitePath, udpHandles,
    async stop() {
      await gateway.drainAndStop();
      await meta.stop();
      await drachtio.stop();
    },
  };
}

/** Resolves when the registry is empty (every call's teardown finished) or rejects after timeoutMs. */
export async function waitNoLiveCalls(gw: RunningGateway, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (gw.registry.size > 0) {
    if (Date.now() > until) throw new Error(`${gw.registry.size} calls still live`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** All call records, newest first (the store may be synchronous or asynchronous). */
export async function records(gw: RunningGateway): Promise<CallRecord[]> {
  return await gw.store.list();
}

/** The call record of a WhatsApp call id, waiting for the call's teardown to write it. */
export async function recordOf(gw: RunningGateway, waCallId: string, timeoutMs = 10_000): Promise<CallRecord> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = (await records(gw)).find((r) => r.waCallId === waCallId);
    if (found) return found;
    if (Date.now() > until) throw new Error(`no call record for ${waCallId}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function waitFor<T>(fn: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The tone in the middle second of a baresip agent's decoded recording (its end holds the moments after the
 * hang-up), once the recording is written; logged as `<label> hears <hz> Hz at … dBFS, SNR … dB`.
 */
export async function toneHeardByAgent(agent: Pick<BaresipAgent, 'recordings'>, hz: number, label = 'agent'): Promise<ToneDetection> {
  const wav = readWav(await waitFor(() => agent.recordings().decoded, 'baresip recording'));
  const mid = Math.floor(wav.samples.length / 2);
  const heard = wav.samples.subarray(Math.max(0, mid - wav.sampleRate / 2), mid + wav.sampleRate / 2);
  const tone = detectTone(heard, wav.sampleRate, hz);
  console.log(`${label} hears ${hz} Hz at ${tone.levelDbfs.toFixed(1)} dBFS, SNR ${tone.snrDb.toFixed(1)} dB`);
  return tone;
}

/** The tone in what a WaUser heard during its last `ms`; logged as `<label> hears <hz> Hz at … dBFS, SNR … dB`. */
export function toneHeardByUser(user: WaUser, hz: number, label = 'user', ms = 1000): ToneDetection {
  const rec = user.recording();
  const tail = rec.samples.subarray(Math.max(0, rec.samples.length - Math.round((ms / 1000) * rec.sampleRate)));
  const tone = detectTone(tail, rec.sampleRate, hz);
  console.log(`${label} hears ${hz} Hz at ${tone.levelDbfs.toFixed(1)} dBFS, SNR ${tone.snrDb.toFixed(1)} dB`);
  return tone;
}

/**
 * Once media flows, the user plays 1 kHz for 3 s; in the last second the user must hear the agent's 440 Hz, and not
 * its own 1 kHz come back.
 */
export async function userTalksAndHearsAgent(user: WaUser, label = 'user'): Promise<void> {
  await user.waitForMedia();
  user.play({ toneHz: 1000, levelDbfs: -12 });
  await new Promise((r) => setTimeout(r, 3000));
  expect(toneHeardByUser(user, 440, label).detected).toBe(true);
  expect(toneHeardByUser(user, 1000, label).detected).toBe(false);
}

/**
 * A user-initiated call up to flowing media: the user calls, the gateway accepts, the agent answers and the user's
 * media is up. Returns the WhatsApp call id.
 */
export async function connectUserCall(meta: MetaDouble, agent: Pick<BaresipAgent, 'waitEvent'>, user: WaUser): Promise<string> {
  const established = agent.waitEvent('CALL_ESTABLISHED', 15_000);
  const { callId } = await meta.userCalls(user);
  await meta.waitForAction(callId, 'accept');
  await established;
  await user.waitForMedia();
  return callId;
}
