/**
 * A gateway process killed mid-call (SIGKILL: no teardown, no finalize) leaves a recording that a standard reader
 * opens: the WAV header's sizes are rewritten at every checkpoint while the call goes on; an Ogg/Opus recording has
 * whole pages appended at every checkpoint. The gateway runs as a child process (npm start's command) against
 * drachtio-server, the Meta double, a libwebrtc user and a baresip agent.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { readWav } from '../audio/wav.js';
import { decodeOggOpus, parseOggPages } from '../audio/ogg.js';
import { detectTone } from '../audio/goertzel.js';
import { drachtioAvailable, noteSkipped, startDrachtio, type DrachtioServer, firstMissing } from '../peers/drachtio.js';
import { baresipAvailable, startBaresip, type BaresipAgent } from '../peers/sip/baresip.js';
import { freePort } from '../peers/sip/ports.js';
import { MetaDouble, WaUser } from '../peers/meta/index.js';
import { connectUserCall } from './harness.js';

const drachtio = drachtioAvailable();
const baresip = baresipAvailable();
const skipReason = firstMissing(drachtio, baresip);
if (skipReason) noteSkipped(skipReason, 2, 'recording after SIGKILL');

const PHONE_NUMBER_ID = '436666719526790';
const APP_SECRET = 'crash-app-secret';
const TOKEN = 'crash-graph-token';

let child: ChildProcess | undefined;
let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  child?.kill('SIGKILL');
  child = undefined;
  for (const c of cleanup.reverse()) await c().catch(() => {});
  cleanup = [];
});

async function poll(url: string, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(url).then((r) => r.status, () => 0);
    if (status === 200 || Date.now() > until) return status;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs a call recorded in `format` for 3.5 s of audio, then SIGKILLs the gateway; returns the tenant's folder. */
async function recordAndKill(format: 'wav' | 'ogg'): Promise<string> {
  const agent: BaresipAgent = await startBaresip({ toneHz: 440 });
  cleanup.push(() => agent.stop());
  const sip: DrachtioServer = await startDrachtio();
  cleanup.push(() => sip.stop());
  const meta = new MetaDouble({ appSecret: APP_SECRET, accessToken: TOKEN, phoneNumberId: PHONE_NUMBER_ID, displayPhoneNumber: '13175551398', wabaId: '366634483210361' });
  const { graphBaseUrl } = await meta.start();
  cleanup.push(() => meta.stop());

  const dir = mkdtempSync(join(tmpdir(), 'wagw-crash-'));
  const folder = join(dir, 'recordings');
  const httpPort = await freePort({ udp: false });
  const configFile = join(dir, 'gateway.yaml');
  // JSON is YAML.
  writeFileSync(configFile, JSON.stringify({
    http: { host: '127.0.0.1', port: httpPort },
    log: { level: 'info' },
    whatsapp: { graphBaseUrl, numbers: [{ phoneNumberId: PHONE_NUMBER_ID, displayNumber: '13175551398', sipTarget: agent.uri, tenant: 'acme' }] },
    sip: { drachtioHost: '127.0.0.1', drachtioPort: sip.adminPort },
    media: { bindAddress: '127.0.0.1', sipMediaAddress: '127.0.0.1', rtpPortMin: 25800, rtpPortMax: 25899, webrtcPortMin: 26000, webrtcPortMax: 26199 },
    store: { sqlitePath: join(dir, 'gw.sqlite') },
    recording: { policy: 'always', consent: 'none', folder, checkpointMs: 500, format },
  }));
  let logs = '';
  child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', WAGW_CONFIG: configFile, WAGW_APP_SECRET: APP_SECRET, WAGW_GRAPH_TOKEN: TOKEN, WAGW_DRACHTIO_SECRET: sip.secret },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (b: Buffer) => { logs += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { logs += b.toString(); });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child!.once('exit', (_code, signal) => resolve(signal)));
  expect(await poll(`http://127.0.0.1:${httpPort}/readyz`, 30_000)).toBe(200);
  meta.webhookUrl = `http://127.0.0.1:${httpPort}/webhooks/whatsapp`;

  const user = new WaUser({ waId: '16315553603', name: 'Crash Test' });
  cleanup.push(() => user.close());
  await connectUserCall(meta, agent, user);
  user.play({ toneHz: 1000, levelDbfs: -12 });
  await new Promise((r) => setTimeout(r, 3500));
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  child = undefined;
  expect(logs).toContain('recording started');
  expect(logs).not.toContain('recording finalized');

  return join(folder, 'acme');
}

describe.skipIf(skipReason !== undefined)('recording survives a killed gateway process', () => {
  it('leaves a WAV that readWav and sox open, holding the user\'s tone up to about the last checkpoint', async () => {
    const tenantDir = await recordAndKill('wav');
    const wavs = readdirSync(tenantDir).filter((f) => f.endsWith('.wav'));
    expect(wavs).toHaveLength(1);
    const file = join(tenantDir, wavs[0]!);
    const wav = readWav(file);
    expect(wav).toMatchObject({ sampleRate: 8000, channels: 2 });
    // Header sizes agree with the bytes on disk: nothing but whole checkpoints.
    const raw = readFileSync(file);
    expect(raw.readUInt32LE(40)).toBe(raw.length - 44);
    expect(raw.readUInt32LE(4)).toBe(raw.length - 8);
    const seconds = wav.samples.length / 2 / 8000;
    console.log(`killed mid-call: ${seconds.toFixed(2)} s on disk after 3.5 s of audio`);
    expect(seconds).toBeGreaterThan(2.5);
    expect(seconds).toBeLessThan(4.5);
    const left = Int16Array.from({ length: wav.samples.length / 2 }, (_, i) => wav.samples[2 * i]!);
    const right = Int16Array.from({ length: wav.samples.length / 2 }, (_, i) => wav.samples[2 * i + 1]!);
    // Share of 100 ms windows with the tone in the last second on disk: robust to a glitch under load.
    const coverage = (x: Int16Array, hz: number): number => {
      let yes = 0;
      for (let i = 0; i < 10; i++) if (detectTone(x.subarray(i * 800, i * 800 + 800), 8000, hz).detected) yes++;
      return yes / 10;
    };
    expect(coverage(left.subarray(-8000), 1000)).toBeGreaterThan(0.7);
    expect(coverage(right.subarray(-8000), 440)).toBeGreaterThan(0.7);
    const sox = spawnSync('sox', ['--i', '-D', file], { encoding: 'utf8' });
    if (!sox.error) {
      expect(sox.status).toBe(0);
      expect(Number(sox.stdout.trim())).toBeCloseTo(seconds, 1);
    }
    // The sidecar still says "recording": the process never got to finalize it, and the admin API lists it as such.
    const meta2 = JSON.parse(readFileSync(file.replace(/\.wav$/, '.json'), 'utf8')) as { status: string; callId: string; tenant: string };
    expect(meta2).toMatchObject({ status: 'recording', tenant: 'acme' });
  }, 90_000);

  it('format ogg: leaves whole Ogg pages (no end-of-stream page) that decode to the user left and the agent right', async () => {
    const tenantDir = await recordAndKill('ogg');
    const files = readdirSync(tenantDir).filter((f) => f.endsWith('.opus'));
    expect(files).toHaveLength(1);
    const file = join(tenantDir, files[0]!);
    const raw = readFileSync(file);
    const pages = parseOggPages(raw);
    // Nothing but whole pages, every CRC right, and no end of stream: the process never finalized.
    expect(pages.reduce((n, p) => n + 27 + p.segments.length + p.body.length, 0)).toBe(raw.length);
    expect(pages.every((p) => p.crcOk && (p.headerType & 0x04) === 0)).toBe(true);
    const { left, right } = decodeOggOpus(raw);
    const seconds = left.length / 8000;
    console.log(`killed mid-call (ogg): ${seconds.toFixed(2)} s on disk after 3.5 s of audio, ${pages.length} pages`);
    expect(seconds).toBeGreaterThan(2.5);
    expect(seconds).toBeLessThan(4.5);
    let yes = 0;
    for (let i = 0; i < 10; i++) if (detectTone(left.subarray(-8000).subarray(i * 800, i * 800 + 800), 8000, 1000).detected) yes++;
    expect(yes).toBeGreaterThan(7);
    expect(detectTone(right.subarray(-8000), 8000, 440).detected).toBe(true);
    const opusdec = spawnSync('opusdec', ['--quiet', file, `${file}.wav`], { encoding: 'utf8' });
    if (opusdec.error) console.log('opusdec check skipped: opus-tools is not installed');
    else {
      expect(opusdec.status).toBe(0);
      const played = readWav(`${file}.wav`);
      expect(played.samples.length / played.channels / played.sampleRate).toBeCloseTo(seconds, 1);
    }
  }, 90_000);
});
