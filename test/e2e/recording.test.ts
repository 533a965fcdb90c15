/**
 * Recording with real peers: a WhatsApp user (libwebrtc, 1 kHz) calls, a baresip agent answers (440 Hz). The
 * recording has the user in the left channel and the agent in the right, for the call's duration; the consent
 * announcement reaches the user before the agent's audio; with the explicit-yes policy and no digit (the libwebrtc
 * user cannot send DTMF; the yes path is unit-tested in src/recording/call-audio-service.test.ts) nothing is
 * recorded; the admin API lists, streams and deletes recordings by role and tenant, with audit lines.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { decodeWav, readWav } from '../audio/wav.js';
import { decodeOggOpus, parseOggPages } from '../audio/ogg.js';
import { detectTone } from '../audio/goertzel.js';
import { onsetIndex } from '../audio/xcorr.js';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { baresipAvailable, startBaresip, type BaresipAgent } from '../peers/sip/baresip.js';
import { WaUser } from '../peers/meta/index.js';
import { connectUserCall, recordOf, startE2E, waitNoLiveCalls, type E2E } from './harness.js';
import type { GatewayConfig } from '../../src/config/schema.js';
import type { CallRecord } from '../../src/store/call-record.js';

const drachtio = drachtioAvailable();
const baresip = baresipAvailable();
const skipReason = firstMissing(drachtio, baresip);
if (skipReason) noteSkipped(skipReason, 6, 'recording');

const KEYS = { 'k-admin': 'ops:admin', 'k-sup': 'desk:supervisor', 'k-rep': 'bi:reporting:default', 'k-rep-other': 'bi2:reporting:brand-b' };

function channels(samples: Int16Array): { left: Int16Array; right: Int16Array } {
  const n = samples.length / 2;
  const left = new Int16Array(n);
  const right = new Int16Array(n);
  for (let i = 0; i < n; i++) { left[i] = samples[2 * i]!; right[i] = samples[2 * i + 1]!; }
  return { left, right };
}

/** Share of 100 ms windows in which the tone is present: robust to a short glitch, still fails on real breakage. */
function toneCoverage(samples: Int16Array, rate: number, hz: number): number {
  const w = rate / 10;
  let yes = 0;
  let n = 0;
  for (let i = 0; i + w <= samples.length; i += w, n++) if (detectTone(samples.subarray(i, i + w), rate, hz).detected) yes++;
  return n > 0 ? yes / n : 0;
}

/** Index of the first 100 ms window (from `from`) where the tone is present. */
function toneOnset(samples: Int16Array, rate: number, hz: number, from = 0): number {
  const w = rate / 10;
  for (let i = from; i + w <= samples.length; i += w / 2) if (detectTone(samples.subarray(i, i + w), rate, hz).detected) return i;
  return -1;
}

describe.skipIf(skipReason !== undefined)('recording with consent (libwebrtc user, baresip agent)', () => {
  let agent: BaresipAgent;
  let e2e: E2E;
  let folder: string;
  let logLines: string[];
  const api = (path: string, key: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${e2e.gateway.http.port}${path}`, { ...init, headers: { authorization: `Bearer ${key}` } });
  const withRecording = (recording: Partial<GatewayConfig['recording']>): void => {
    e2e.gateway.reload({ ...e2e.config, recording: { ...e2e.config.recording, ...recording } });
  };

  /** One call: the user plays 1 kHz from media start for `seconds`, then hangs up; returns the record and what the user heard. */
  async function call(seconds: number, during?: (waCallId: string) => Promise<void>): Promise<{ record: CallRecord; heard: ReturnType<WaUser['recording']> }> {
    const user = new WaUser({ waId: '16315553602', name: 'Jane Doe' });
    try {
      const callId = await connectUserCall(e2e.meta, agent, user);
      user.play({ toneHz: 1000, levelDbfs: -12 });
      if (during) await during(callId);
      else await new Promise((r) => setTimeout(r, seconds * 1000));
      const heard = user.recording();
      const closed = agent.waitEvent('CALL_CLOSED', 10_000);
      await e2e.meta.userHangsUp(callId);
      await closed;
      await waitNoLiveCalls(e2e.gateway);
      return { record: await recordOf(e2e.gateway, callId), heard };
    } finally {
      await user.close();
    }
  }

  beforeAll(async () => {
    agent = await startBaresip({ toneHz: 440 });
    folder = join(mkdtempSync(join(tmpdir(), 'wagw-rec-e2e-')), 'recordings');
    e2e = await startE2E({ sipTarget: agent.uri, adminKeys: KEYS, config: {
      // Media ports of this suite only (below the ephemeral range), so suites running together never compete.
      media: { rtpPortMin: 25000, rtpPortMax: 25099, webrtcPortMin: 25200, webrtcPortMax: 25399 },
      recording: { policy: 'always', consent: 'none', folder, checkpointMs: 500 },
    } });
    // Audit lines are checked in the gateway's own log.
    logLines = [];
    const child = e2e.gateway.logger.child({});
    void child;
    const info = e2e.gateway.logger.info.bind(e2e.gateway.logger);
    e2e.gateway.logger.info = ((obj: unknown, msg?: string) => { logLines.push(JSON.stringify({ obj, msg })); return info(obj as object, msg); }) as typeof e2e.gateway.logger.info;
  }, 60_000);
  afterAll(async () => {
    await e2e?.stop();
    await agent?.stop();
  });

  it('records the user in the left channel and the agent in the right, for the call\'s duration; the record names the file', async () => {
    const { record } = await call(4);
    expect(record.outcome).toBe('answered');
    expect(record.recording).toMatchObject({ id: record.id, format: 'wav', consent: 'not_required' });
    const file = record.recording!.file;
    expect(file).toBe(join(folder, 'default', `${record.id}.wav`));
    const wav = readWav(file);
    expect(wav).toMatchObject({ sampleRate: 8000, channels: 2 });
    const { left, right } = channels(wav.samples);
    const seconds = left.length / 8000;
    console.log(`recording ${seconds.toFixed(2)} s, call ${record.durationSeconds} s`);
    expect(Math.abs(seconds - record.durationSeconds)).toBeLessThan(0.5);
    expect(record.recording!.durationSeconds).toBeCloseTo(seconds, 2);
    // The middle two seconds: the user's 1 kHz left, the agent's 440 Hz right, and neither leaks into the other side.
    const mid = Math.floor(left.length / 2);
    const l = left.subarray(mid - 8000, mid + 8000);
    const r = right.subarray(mid - 8000, mid + 8000);
    console.log(`left 1 kHz SNR ${detectTone(l, 8000, 1000).snrDb.toFixed(1)} dB, right 440 Hz SNR ${detectTone(r, 8000, 440).snrDb.toFixed(1)} dB; leaks ${detectTone(l, 8000, 440).snrDb.toFixed(1)} / ${detectTone(r, 8000, 1000).snrDb.toFixed(1)} dB`);
    expect(toneCoverage(l, 8000, 1000)).toBeGreaterThan(0.8);
    expect(detectTone(l, 8000, 440).detected).toBe(false);
    expect(toneCoverage(r, 8000, 440)).toBeGreaterThan(0.8);
    expect(detectTone(r, 8000, 1000).detected).toBe(false);
    const sox = spawnSync('sox', ['--i', '-D', file], { encoding: 'utf8' });
    if (sox.status === 0 || sox.error === undefined) {
      expect(sox.status).toBe(0);
      expect(Number(sox.stdout.trim())).toBeCloseTo(seconds, 1);
    }
  }, 60_000);

  it('admin API: lists by role and tenant, streams the WAV (audit-logged), deletes (admin only, audit-logged)', async () => {
    const [rec] = (await e2e.gateway.store.list()).filter((r) => r.recording);
    const id = rec!.recording!.id;
    const list = async (key: string, q = '') => (await (await api(`/v1/recordings${q}`, key)).json()) as { recordings: { id: string; tenant: string; status: string }[] };
    expect((await list('k-admin')).recordings.map((r) => r.id)).toContain(id);
    expect((await list('k-rep')).recordings.map((r) => r.id)).toContain(id);
    expect((await list('k-rep')).recordings.find((r) => r.id === id)).toMatchObject({ tenant: 'default', status: 'complete' });
    expect((await list('k-rep-other')).recordings).toEqual([]);
    expect((await api('/v1/recordings?tenant=default', 'k-rep-other')).status).toBe(403);
    expect((await api(`/v1/recordings/${id}`, 'k-rep-other')).status).toBe(404);
    expect((await api(`/v1/recordings/${id}/audio`, 'k-rep-other')).status).toBe(404);
    expect((await api('/v1/recordings', 'nope')).status).toBe(401);

    const res = await api(`/v1/recordings/${id}/audio`, 'k-rep');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/wav');
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.equals(readFileSync(rec!.recording!.file))).toBe(true);
    expect(decodeWav(body).channels).toBe(2);
    expect(logLines.some((l) => l.includes('recording downloaded') && l.includes('"key":"bi"') && l.includes(id))).toBe(true);

    expect((await api(`/v1/recordings/${id}`, 'k-sup', { method: 'DELETE' })).status).toBe(403);
    expect((await api(`/v1/recordings/${id}`, 'k-rep', { method: 'DELETE' })).status).toBe(403);
    const del = await api(`/v1/recordings/${id}`, 'k-admin', { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(existsSync(rec!.recording!.file)).toBe(false);
    expect((await api(`/v1/recordings/${id}`, 'k-admin')).status).toBe(404);
    expect(logLines.some((l) => l.includes('recording deleted') && l.includes('"key":"ops"') && l.includes(id))).toBe(true);
  }, 30_000);

  it('plays the consent announcement to the user before the agent\'s audio reaches them', async () => {
    withRecording({ consent: 'announce' });
    const { record, heard } = await call(7);
    expect(record.recording).toMatchObject({ consent: 'announced' });
    const rate = heard.sampleRate;
    const speech = onsetIndex(heard.samples, rate, { thresholdDbfs: -45, windowMs: 20 });
    const tone = toneOnset(heard.samples, rate, 440);
    console.log(`user hears the announcement at ${(speech / rate).toFixed(2)} s and the agent at ${(tone / rate).toFixed(2)} s`);
    expect(speech).toBeGreaterThanOrEqual(0);
    expect(tone).toBeGreaterThan(speech);
    // The shipped announcement lasts 4 s: the agent is heard only after it.
    expect((tone - speech) / rate).toBeGreaterThan(3.5);
    expect(toneCoverage(heard.samples.subarray(tone, tone + rate), rate, 440)).toBeGreaterThan(0.7);
    // The recording starts once consent is obtained (announced): it holds the agent from its start, not the announcement.
    const { right } = channels(readWav(record.recording!.file).samples);
    expect(toneCoverage(right.subarray(4000, 12000), 8000, 440)).toBeGreaterThan(0.7);
    expect(record.recording!.durationSeconds).toBeLessThan(record.durationSeconds - 3.5);
  }, 60_000);

  it('explicit-yes policy and no digit: the call goes on, nothing is recorded', async () => {
    withRecording({ consent: 'explicit', consentTimeoutMs: 1000 });
    const before = (await (await api('/v1/recordings', 'k-admin')).json()) as { recordings: unknown[] };
    const { record, heard } = await call(7);
    expect(record).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp' });
    expect(record.recording).toBeUndefined();
    expect(existsSync(join(folder, 'default', `${record.id}.wav`))).toBe(false);
    const after = (await (await api('/v1/recordings', 'k-admin')).json()) as { recordings: unknown[] };
    expect(after.recordings.length).toBe(before.recordings.length);
    // Unrecorded, the call still bridged after the announcement and the wait for a digit.
    expect(toneCoverage(heard.samples.subarray(-2 * heard.sampleRate), heard.sampleRate, 440)).toBeGreaterThan(0.8);
    const metrics = await (await fetch(`http://127.0.0.1:${e2e.gateway.http.port}/metrics`)).text();
    expect(metrics).toMatch(/wagw_recording_consent_total\{result="no_consent"\} 1/);
  }, 60_000);

  it('on demand: POST …/recording/start and …/stop mid-call record only the time between (staff only)', async () => {
    withRecording({ policy: 'on_demand', consent: 'none' });
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const post = async (id: string, what: string, key = 'k-sup') => api(`/v1/calls/${id}/recording/${what}`, key, { method: 'POST' });
    const { record } = await call(0, async (waCallId) => {
      await sleep(1000);
      expect(await (await api(`/v1/calls/${waCallId}/recording`, 'k-sup')).json()).toMatchObject({ recording: false, consent: 'not_required', streaming: false });
      expect((await post(waCallId, 'start', 'k-rep')).status).toBe(403);
      const started = await post(waCallId, 'start');
      expect(started.status).toBe(200);
      expect(await started.json()).toMatchObject({ recording: true });
      await sleep(2000);
      expect((await post(waCallId, 'stop')).status).toBe(200);
      expect(await (await api(`/v1/calls/${waCallId}/recording`, 'k-sup')).json()).toMatchObject({ recording: false });
      await sleep(1500);
    });
    expect(record.durationSeconds).toBeGreaterThan(4);
    // About the 2 s between start and stop (HTTP round trips on either side).
    expect(record.recording!.durationSeconds).toBeGreaterThan(1.7);
    expect(record.recording!.durationSeconds).toBeLessThan(2.5);
    expect((await post(record.id, 'start')).status).toBe(404);
  }, 60_000);

  it('format ogg: an Ogg/Opus file with the user left and the agent right, for the call\'s duration; downloaded as audio/ogg', async () => {
    withRecording({ policy: 'always', consent: 'none', format: 'ogg' });
    const { record } = await call(3);
    expect(record.recording).toMatchObject({ id: record.id, format: 'ogg' });
    const file = record.recording!.file;
    expect(file).toBe(join(folder, 'default', `${record.id}.opus`));
    const bytes = readFileSync(file);
    const pages = parseOggPages(bytes);
    expect(pages.every((p) => p.crcOk)).toBe(true);
    expect(pages[pages.length - 1]!.headerType & 0x04).toBe(0x04); // end of stream
    const { left, right, channels: n } = decodeOggOpus(bytes);
    expect(n).toBe(2);
    const seconds = left.length / 8000;
    console.log(`ogg recording ${seconds.toFixed(2)} s (${bytes.length} bytes), call ${record.durationSeconds} s`);
    expect(Math.abs(seconds - record.durationSeconds)).toBeLessThan(0.5);
    expect(record.recording!.durationSeconds).toBeCloseTo(seconds, 2);
    const mid = Math.floor(left.length / 2);
    const l = left.subarray(mid - 8000, mid + 8000);
    const r = right.subarray(mid - 8000, mid + 8000);
    console.log(`ogg: left 1 kHz SNR ${detectTone(l, 8000, 1000).snrDb.toFixed(1)} dB, right 440 Hz SNR ${detectTone(r, 8000, 440).snrDb.toFixed(1)} dB`);
    expect(toneCoverage(l, 8000, 1000)).toBeGreaterThan(0.8);
    expect(detectTone(l, 8000, 440).detected).toBe(false);
    expect(toneCoverage(r, 8000, 440)).toBeGreaterThan(0.8);
    expect(detectTone(r, 8000, 1000).detected).toBe(false);

    const res = await api(`/v1/recordings/${record.id}/audio`, 'k-rep');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/ogg');
    expect(res.headers.get('content-disposition')).toContain(`${record.id}.opus`);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    const listed = (await (await api('/v1/recordings', 'k-rep')).json()) as { recordings: { id: string; format: string }[] };
    expect(listed.recordings.find((x) => x.id === record.id)).toMatchObject({ format: 'ogg' });
    const opusinfo = spawnSync('opusinfo', [file], { encoding: 'utf8' });
    if (opusinfo.error === undefined) {
      expect(opusinfo.status).toBe(0);
      expect(opusinfo.stdout).toMatch(/Channels: 2/);
    }
    const del = await api(`/v1/recordings/${record.id}`, 'k-admin', { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(existsSync(file)).toBe(false);
  }, 60_000);
});
