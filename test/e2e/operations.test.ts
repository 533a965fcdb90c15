/**
 * Operations on real calls (sipp agent through drachtio, libwebrtc WhatsApp user through the Meta double): the event
 * feed, the admin API's live view and hang-up, the metrics a call leaves behind, and the record written when the
 * gateway is drained mid-call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { WebSocket } from 'ws';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { sippAvailable, startSipp, type SippRun } from '../peers/sip/sipp.js';
import { freePort } from '../peers/sip/ports.js';
import { WaUser } from '../peers/meta/index.js';
import { recordOf, startE2E, waitFor, waitNoLiveCalls, type E2E } from './harness.js';
import type { CallEvent } from '../../src/calls/events.js';
import type { CallRecord } from '../../src/store/call-record.js';
import { SqliteCallRecordStore } from '../../src/store/sqlite-store.js';
import { PostgresCallRecordStore } from '../../src/store/postgres-store.js';
import type { CallRecordStore } from '../../src/store/call-record.js';
import { postgresAvailable, startPostgres, type PostgresServer } from '../peers/postgres.js';

const drachtio = drachtioAvailable();
const sipp = sippAvailable();
const skipReason = firstMissing(drachtio, sipp);
const pg = postgresAvailable();
const pgSkipReason = skipReason ?? (pg.ok ? undefined : pg.reason);
if (skipReason) noteSkipped(skipReason, 3, 'operations (event feed, admin API, metrics, drain) on SQLite');
if (pgSkipReason) noteSkipped(pgSkipReason, 3, 'operations (event feed, admin API, metrics, drain) on PostgreSQL');

const KEYS = { admin: 'e2e-admin-key-1', supervisor: 'e2e-super-key-2' };
type Msg = CallEvent | { type: 'feed.ready' };

describe.skipIf(skipReason !== undefined)('operations on real calls, records in SQLite', () => operations('sqlite'));
describe.skipIf(pgSkipReason !== undefined)('operations on real calls, records in PostgreSQL', () => operations('postgres'));

function operations(storeKind: 'sqlite' | 'postgres'): void {
  let e2e: E2E;
  let pgServer: PostgresServer | undefined;
  let databaseUrl = '';
  let agent: SippRun;
  let feed: WebSocket;
  const events: Msg[] = [];
  const users: WaUser[] = [];
  let base = '';
  const api = (path: string, key: string = KEYS.admin, method = 'GET') => fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${key}` } });

  /** An answered call with two-way media: the user plays a tone, the agent (sipp) echoes it. */
  async function answeredCall(extra: { ctaPayload?: string } = {}): Promise<{ callId: string; user: WaUser }> {
    const user = new WaUser({ waId: '16315553602', name: 'Jane Doe' });
    users.push(user);
    const { callId } = await e2e.meta.userCalls(user, extra);
    await e2e.meta.waitForAction(callId, 'accept');
    await user.waitForMedia();
    user.play({ toneHz: 800, levelDbfs: -14, durationMs: 2500 });
    return { callId, user };
  }

  beforeAll(async () => {
    // One agent answers the three calls of this file, echoing their audio.
    if (storeKind === 'postgres') {
      pgServer = await startPostgres();
      databaseUrl = await pgServer.createDatabase('wagw_operations');
    }
    const port = await freePort({ tcp: false });
    agent = await startSipp({ scenario: 'uas-answer', port, service: 'agent', rtpEcho: true, calls: 3, timeoutSec: 200 });
    e2e = await startE2E({
      sipTarget: agent.uri,
      adminKeys: { [KEYS.admin]: 'ops:admin', [KEYS.supervisor]: 'lead:supervisor' },
      config: { admin: { eventQualityIntervalMs: 500 }, ...(databaseUrl ? { store: { databaseUrl } } : {}) },
    });
    expect(e2e.gateway.store.kind).toBe(storeKind);
    base = `http://127.0.0.1:${e2e.gateway.http.port}`;
    feed = new WebSocket(`ws://127.0.0.1:${e2e.gateway.http.port}/v1/events`, { headers: { authorization: `Bearer ${KEYS.supervisor}` } });
    feed.on('message', (d) => events.push(JSON.parse(String(d)) as Msg));
    await waitFor(() => events.some((e) => e.type === 'feed.ready') || undefined, 'feed ready');
  }, 60_000);
  afterAll(async () => {
    feed?.terminate();
    await e2e?.stop();
    await agent?.stop();
    await pgServer?.stop();
    await Promise.all(users.map((u) => u.close()));
  });

  it('an answered call: feed events in order, live quality in the API, metrics with the expected names and labels, a full record', async () => {
    const { callId } = await answeredCall({ ctaPayload: 'spring-promo' });
    await new Promise((r) => setTimeout(r, 2000));

    const live = (await (await api('/v1/calls', KEYS.supervisor)).json()) as { calls: { state: string; waCallId: string; quality: { whatsapp: { packetsIn: number }; sip: { packetsIn: number } } }[] };
    expect(live.calls).toHaveLength(1);
    expect(live.calls[0]).toMatchObject({ state: 'answered', waCallId: callId });
    expect(live.calls[0]!.quality.whatsapp.packetsIn).toBeGreaterThan(20);
    expect(live.calls[0]!.quality.sip.packetsIn).toBeGreaterThan(20);
    const status = (await (await api('/v1/status')).json()) as { drachtioConnected: boolean; liveCalls: { byState: Record<string, number> } };
    // The media above crossed sockets read on the media tick (the default, with the addon npm ci builds).
    expect(status).toMatchObject({ drachtioConnected: true, liveCalls: { byState: { answered: 1 } }, mediaTickReads: true, mediaClock: 'timerfd' });
    // A stranger sprays the SIP-side RTP range with RTP and with oversized junk: dropped, counted, the call goes on.
    const stranger = createSocket('udp4');
    await new Promise<void>((r) => stranger.bind(0, '127.0.0.1', () => r()));
    const fakeRtp = Buffer.alloc(172);
    fakeRtp[0] = 0x80;
    for (let port = e2e.config.media.rtpPortMin; port <= e2e.config.media.rtpPortMax; port += 2) {
      stranger.send(fakeRtp, port, '127.0.0.1');
      stranger.send(Buffer.alloc(3000, 0x80), port, '127.0.0.1');
    }
    await new Promise((r) => setTimeout(r, 300));
    stranger.close();

    await e2e.meta.userHangsUp(callId);
    await waitNoLiveCalls(e2e.gateway);
    const record = await recordOf(e2e.gateway, callId);
    expect(record).toMatchObject({
      direction: 'user_initiated', outcome: 'answered', endedBy: 'whatsapp', cause: 'whatsapp_hangup', userWaId: '16315553602',
      userName: 'Jane Doe', businessNumber: e2e.config.whatsapp.numbers[0]!.displayNumber, ctaPayload: 'spring-promo',
      billablePulses: 0, estimatedCost: 0, sipTarget: expect.stringMatching(/^sip:agent@127\.0\.0\.1:\d+$/),
      sipAgent: expect.stringMatching(/^sip:/), sipCallId: expect.any(String), answeredAt: expect.any(String),
    });
    expect(record.durationSeconds).toBeGreaterThan(1.5);
    expect(record.quality?.whatsapp?.mos).toBeGreaterThan(1);
    expect(record.quality?.sip?.packetsIn).toBeGreaterThan(50);
    expect(await (await api(`/v1/records/${record.id}`)).json()).toEqual(record);

    // The feed: this call's events in order, quality while answered, the end with its outcome.
    await waitFor(() => events.some((e) => e.type === 'call.ended' && e.waCallId === callId) || undefined, 'call.ended on the feed');
    const mine = events.filter((e): e is CallEvent => e.type !== 'feed.ready' && e.callId === record.id);
    const types = mine.map((e) => e.type).filter((t) => t !== 'call.quality');
    expect(types).toEqual(['call.offered', 'call.ringing', 'call.answered', 'call.ended']);
    const q = mine.filter((e) => e.type === 'call.quality');
    expect(q.length).toBeGreaterThanOrEqual(2);
    const at = (t: string) => mine.findIndex((e) => e.type === t);
    expect(mine.findIndex((e) => e.type === 'call.quality')).toBeGreaterThan(at('call.answered'));
    expect(mine.length - 1 - [...mine].reverse().findIndex((e) => e.type === 'call.quality')).toBeLessThan(at('call.ended'));
    expect(mine.map((e) => e.seq)).toEqual([...mine.map((e) => e.seq)].sort((a, b) => a - b));
    expect(mine.at(-1)).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp', cause: 'whatsapp_hangup', sipCallId: record.sipCallId });

    // Metrics: names and bounded labels after exactly one answered call.
    const text = await (await fetch(`${base}/metrics`)).text();
    const value = (series: string): number | undefined => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line ? Number(line.slice(series.length + 1)) : undefined;
    };
    expect(value('wagw_calls_total{direction="user_initiated",outcome="answered"}')).toBe(1);
    expect(value('wagw_calls_offered_total{direction="user_initiated"}')).toBe(1);
    expect(value('wagw_calls_answered_total{direction="user_initiated"}')).toBe(1);
    expect(value('wagw_active_calls{direction="user_initiated"}')).toBe(0);
    expect(value('wagw_call_setup_seconds_count{direction="user_initiated"}')).toBe(1);
    expect(value('wagw_graph_requests_total{action="pre_accept",status="200"}')).toBe(1);
    expect(value('wagw_graph_requests_total{action="accept",status="200"}')).toBe(1);
    expect(value('wagw_graph_request_seconds_count{action="accept"}')).toBe(1);
    expect(value('wagw_webhooks_total{result="ok"}')).toBeGreaterThanOrEqual(2);
    expect(value('wagw_sip_rtp_dropped_total{reason="unexpected_source"}')).toBeGreaterThanOrEqual(1);
    expect(value('wagw_sip_rtp_dropped_total{reason="invalid"}')).toBeGreaterThanOrEqual(1);
    expect(value('wagw_webhook_events_total{event="connect",result="accepted"}')).toBe(1);
    expect(value('wagw_webhook_events_total{event="terminate",result="accepted"}')).toBe(1);
    expect(value('wagw_sip_final_responses_total{class="2xx"}')).toBe(1);
    for (const leg of ['whatsapp', 'sip']) {
      expect(value(`wagw_rtp_packets_total{leg="${leg}",dir="in"}`)).toBeGreaterThan(50);
      expect(value(`wagw_rtp_packets_total{leg="${leg}",dir="out"}`)).toBeGreaterThan(50);
      expect(value(`wagw_rtp_packets_lost_total{leg="${leg}"}`)).toBeGreaterThanOrEqual(0);
      expect(value(`wagw_call_mos_count{leg="${leg}"}`)).toBe(1);
      expect(value(`wagw_rtp_jitter_seconds_count{leg="${leg}"}`)).toBe(1);
    }
    expect(value('wagw_transcode_seconds_count')).toBe(1);
    expect(value('wagw_transcode_seconds_sum')).toBeGreaterThan(0);
    expect(value('wagw_call_records_total{result="written"}')).toBe(1);
    expect(value('wagw_rtp_ports_free')).toBe(value('wagw_rtp_ports_total'));
    expect(value('wagw_drachtio_connected')).toBe(1);
    expect(value('wagw_event_feed_clients')).toBe(1);
    expect(value('wagw_event_loop_lag_seconds{quantile="0.99"}')).toBeGreaterThanOrEqual(0);
    // Bounded labels: no call id, WhatsApp id or phone number in any label value.
    for (const line of text.split('\n').filter((l) => l.startsWith('wagw_'))) {
      for (const v of [record.id, callId, record.userWaId, record.businessNumber, record.sipCallId!]) expect(line).not.toContain(v);
    }
  }, 60_000);

  it('a supervisor hangs up a live call: the agent gets BYE, WhatsApp gets terminate, the record says admin_hangup', async () => {
    const byes = () => agent.messages().split('BYE sip:').length - 1;
    const byesBefore = byes();
    const { callId } = await answeredCall();
    const res = await api(`/v1/calls/${callId}/hangup`, KEYS.supervisor, 'POST');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { record: CallRecord };
    expect(body.record).toMatchObject({ outcome: 'answered', endedBy: 'gateway', cause: 'admin_hangup', waCallId: callId });
    const terminate = await e2e.meta.waitForAction(callId, 'terminate');
    expect(terminate.status).toBe(200);
    await waitFor(() => byes() > byesBefore || undefined, 'BYE at the agent');
    expect((await recordOf(e2e.gateway, callId)).cause).toBe('admin_hangup');
    expect(e2e.meta.errors).toEqual([]);
  }, 60_000);

  it('draining mid-call ends the call at the deadline and still writes its record; the feed sees the end', async () => {
    const { callId } = await answeredCall();
    expect(e2e.gateway.registry.list()[0]?.state).toBe('answered');
    const closed = new Promise<number>((r) => feed.once('close', (code) => r(code)));
    await e2e.gateway.drainAndStop();
    expect(await closed).toBe(1001);
    // A new connection to the same store: what was written survived the stop.
    const store: CallRecordStore = storeKind === 'postgres' ? await PostgresCallRecordStore.open({ connectionString: databaseUrl }) : new SqliteCallRecordStore(e2e.sqlitePath);
    try {
      const [record] = (await store.list({ limit: 1000 })).filter((r) => r.waCallId === callId);
      expect(record).toMatchObject({ outcome: 'answered', endedBy: 'gateway', cause: 'drain', answeredAt: expect.any(String) });
      expect(record!.quality?.whatsapp?.packetsIn).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
    expect(events.find((e) => e.type === 'call.ended' && e.waCallId === callId)).toMatchObject({ cause: 'drain', outcome: 'answered' });
    await e2e.meta.waitForAction(callId, 'terminate');
  }, 60_000);
}
