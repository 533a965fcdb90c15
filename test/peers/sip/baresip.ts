/**
 * baresip (Debian 12: baresip 1.0.0) as a headless SIP agent on loopback.
 *
 * What works with this version (found by trying):
 *   - config dir via `-f <dir>` with files `config` and `accounts`; `net_interface 127.0.0.1` (the name "lo" fails);
 *   - account `<sip:agent@127.0.0.1:PORT>;regint=0;answermode=auto` answers every INVITE at once;
 *   - audio source `ausine,<Hz>` (48 kHz stereo only: ausrc_srate 48000, ausrc_channels 2; baresip resamples to 8 kHz);
 *   - audio player `aubridge,<dev>` as a null sink (no sound card needed);
 *   - the `sndfile` audio filter writes `<snd_path>/dump-<time>-dec.wav` (what it received, 8 kHz mono 16-bit)
 *     and `...-enc.wav` (what it sent);
 *   - control via `ctrl_tcp` (netstring JSON {command, params, token} → {response, ok, data, token}; events
 *     {event:true, type:'CALL_ESTABLISHED'|'CALL_CLOSED'|...}); menu commands: dial <uri>, hangup, accept,
 *     sndcode <digits> (DTMF), listcalls.
 * The aufile module of 1.0.0 is a source only (no aufile player), hence sndfile for recording.
 */
import { EventEmitter } from 'node:events';
import { accessSync, constants, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, retryOnPortInUse, waitForTcp } from './ports.js';
import { spawnTethered } from './tether.js';

export type BaresipAvailability = { ok: true; bin: string } | { ok: false; reason: string };

export function baresipAvailable(): BaresipAvailability {
  const bin = process.env.BARESIP_BIN ?? '/usr/bin/baresip';
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    return { ok: false, reason: `baresip not found at ${bin} (apt-get install baresip, or set BARESIP_BIN)` };
  }
  try {
    accessSync('/usr/lib/baresip/modules/ausine.so', constants.R_OK);
    accessSync('/usr/lib/baresip/modules/sndfile.so', constants.R_OK);
    accessSync('/usr/lib/baresip/modules/ctrl_tcp.so', constants.R_OK);
  } catch {
    return { ok: false, reason: 'baresip modules ausine/sndfile/ctrl_tcp missing in /usr/lib/baresip/modules' };
  }
  return { ok: true, bin };
}

export interface BaresipOptions {
  /** SIP user of the account (default "agent"). */
  user?: string;
  /** SIP port (UDP/TCP); default a free one. */
  sipPort?: number;
  /** ctrl_tcp port; default a free one. */
  ctrlPort?: number;
  /** Frequency of the tone it plays (ausine), default 440 Hz. */
  toneHz?: number;
  /** Codec order (default PCMU, PCMA). */
  codecs?: readonly ('PCMU' | 'PCMA')[];
  /** answermode of the account (default auto). */
  answerMode?: 'auto' | 'manual' | 'early';
  /** RTP port range (default 20 ports from a free one). */
  rtpPorts?: { min: number; max: number };
}

export interface BaresipEvent {
  type: string;
  class?: string;
  id?: string;
  peeruri?: string;
  param?: string;
  [key: string]: unknown;
}

export interface BaresipResponse {
  ok: boolean;
  data: string;
}

export interface BaresipRecording {
  /** What baresip received and decoded (8 kHz mono 16-bit WAV). */
  decoded?: string;
  /** What baresip sent (its tone after resampling). */
  encoded?: string;
}

export interface BaresipAgent {
  /** sip:<user>@127.0.0.1:<sipPort> */
  readonly uri: string;
  readonly sipPort: number;
  readonly ctrlPort: number;
  /** Where sndfile writes its WAVs. */
  readonly recordDir: string;
  readonly pid: number;
  /** ctrl_tcp events (CALL_INCOMING, CALL_ESTABLISHED, CALL_CLOSED, ...). */
  readonly events: EventEmitter<{ event: [BaresipEvent] }>;
  /** Send a menu command (e.g. "dial", "sip:x@127.0.0.1:5060"). */
  command(command: string, params?: string, timeoutMs?: number): Promise<BaresipResponse>;
  dial(uri: string): Promise<BaresipResponse>;
  hangup(): Promise<BaresipResponse>;
  accept(): Promise<BaresipResponse>;
  /** DTMF digits on the current call (RFC 4733 when negotiated). */
  sendDtmf(digits: string): Promise<BaresipResponse>;
  /** Resolves with the next event of this type (or one already seen since `since`), rejects after timeoutMs. */
  waitEvent(type: string, timeoutMs?: number): Promise<BaresipEvent>;
  /** Every event seen so far. */
  seenEvents(): BaresipEvent[];
  /** Newest recording pair (call-end closes the files; read after CALL_CLOSED). */
  recordings(): BaresipRecording;
  output(): string;
  stop(): Promise<void>;
}

/** Decode netstrings ("<len>:<payload>,") from a stream. */
class NetstringDecoder {
  private buf = Buffer.alloc(0);
  push(chunk: Buffer): string[] {
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: string[] = [];
    for (;;) {
      const colon = this.buf.indexOf(0x3a);
      if (colon < 0) break;
      const len = Number(this.buf.subarray(0, colon).toString('ascii'));
      if (!Number.isInteger(len) || len < 0) {
        this.buf = Buffer.alloc(0);
        break;
      }
      if (this.buf.length < colon + 1 + len + 1) break;
      out.push(this.buf.subarray(colon + 1, colon + 1 + len).toString('utf8'));
      this.buf = this.buf.subarray(colon + 1 + len + 1);
    }
    return out;
  }
}

export function startBaresip(opts: BaresipOptions = {}): Promise<BaresipAgent> {
  return retryOnPortInUse(opts.sipPort === undefined && opts.ctrlPort === undefined && opts.rtpPorts === undefined, () => startBaresipOnce(opts));
}

async function startBaresipOnce(opts: BaresipOptions): Promise<BaresipAgent> {
  const avail = baresipAvailable();
  if (!avail.ok) throw new Error(avail.reason);
  const user = opts.user ?? 'agent';
  if (!/^[A-Za-z0-9+._-]+$/.test(user)) throw new Error(`bad baresip user ${user}`);
  // baresip also listens for SIP over TLS on the port above its SIP port.
  const sipPort = opts.sipPort ?? (await freePort({ span: 2 }));
  const ctrlPort = opts.ctrlPort ?? (await freePort({ udp: false }));
  let rtp = opts.rtpPorts;
  if (!rtp) {
    const base = await freePort({ tcp: false, even: true, span: 21 });
    rtp = { min: base, max: base + 20 };
  }
  const toneHz = opts.toneHz ?? 440;
  const dir = mkdtempSync(join(tmpdir(), 'wagw-baresip-'));
  const recordDir = join(dir, 'rec');
  mkdirSync(recordDir);
  const codecs = (opts.codecs ?? ['PCMU', 'PCMA']).map((c) => `${c}/8000/1`).join(',');
  writeFileSync(
    join(dir, 'config'),
    [
      'poll_method\t\tepoll',
      `sip_listen\t\t127.0.0.1:${sipPort}`,
      'net_interface\t\t127.0.0.1',
      'call_local_timeout\t120',
      'call_max_calls\t\t4',
      'audio_buffer\t\t40',
      'audio_player\t\taubridge,wagwnull',
      `audio_source\t\tausine,${toneHz}`,
      'audio_alert\t\taubridge,wagwalert',
      'ausrc_srate\t\t48000',
      'ausrc_channels\t\t2',
      `rtp_ports\t\t${rtp.min}-${rtp.max}`,
      'module_path\t\t/usr/lib/baresip/modules',
      'module\t\t\tg711.so',
      'module\t\t\tausine.so',
      'module\t\t\taubridge.so',
      'module\t\t\tsndfile.so',
      'module\t\t\tctrl_tcp.so',
      'module_tmp\t\taccount.so',
      'module_app\t\tmenu.so',
      `snd_path\t\t${recordDir}`,
      `ctrl_tcp_listen\t\t127.0.0.1:${ctrlPort}`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'accounts'),
    `<sip:${user}@127.0.0.1:${sipPort}>;regint=0;answermode=${opts.answerMode ?? 'auto'};audio_codecs=${codecs}\n`,
  );

  const child = spawnTethered(avail.bin, ['-f', dir], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }, dir);
  let out = '';
  const append = (b: Buffer): void => {
    // Drop the status-line spam ("[0:00:01] audio=0/0 (bit/s)\r").
    out += b.toString('utf8').replace(/\[\d+:\d\d:\d\d\] audio=[^\r\n]*\r?/g, '');
    if (out.length > 500_000) out = out.slice(-250_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));
  const killHook = (): void => {
    if (!exited) child.kill('SIGKILL');
  };
  process.once('exit', killHook);

  const events = new EventEmitter<{ event: [BaresipEvent] }>();
  const seen: BaresipEvent[] = [];
  const waiting = new Map<string, (r: BaresipResponse) => void>();
  let token = 0;
  let sock: Socket | undefined;

  const stop = async (): Promise<void> => {
    sock?.destroy();
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, 2000);
      await exitPromise;
      clearTimeout(t);
    }
    process.off('exit', killHook);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const deadline = Date.now() + 10_000;
    while (!out.includes('baresip is ready') && !exited && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (exited || !out.includes('baresip is ready')) throw new Error(`baresip did not start:\n${out.slice(-3000)}`);
    await waitForTcp(ctrlPort, '127.0.0.1', 5000);
    const s = connect(ctrlPort, '127.0.0.1');
    sock = s;
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('error', reject);
    });
    s.on('error', () => undefined);
    const dec = new NetstringDecoder();
    s.on('data', (chunk: Buffer) => {
      for (const msg of dec.push(chunk)) {
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(msg) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (obj.event === true) {
          const ev = obj as unknown as BaresipEvent;
          seen.push(ev);
          events.emit('event', ev);
        } else if (obj.response === true && typeof obj.token === 'string') {
          const cb = waiting.get(obj.token);
          waiting.delete(obj.token);
          cb?.({ ok: obj.ok === true, data: typeof obj.data === 'string' ? obj.data : '' });
        }
      }
    });
  } catch (err) {
    await stop();
    throw err;
  }

  const command = (cmd: string, params = '', timeoutMs = 3000): Promise<BaresipResponse> =>
    new Promise((resolve, reject) => {
      if (!sock || sock.destroyed) {
        reject(new Error('baresip ctrl_tcp not connected'));
        return;
      }
      const t = `t${++token}`;
      const timer = setTimeout(() => {
        waiting.delete(t);
        reject(new Error(`baresip command ${cmd} timed out`));
      }, timeoutMs);
      waiting.set(t, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      const body = JSON.stringify({ command: cmd, params, token: t });
      sock.write(`${Buffer.byteLength(body)}:${body},`);
    });

  const waitEvent = (type: string, timeoutMs = 5000): Promise<BaresipEvent> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        events.off('event', on);
        reject(new Error(`baresip: no ${type} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (ev: BaresipEvent): void => {
        if (ev.type !== type) return;
        clearTimeout(timer);
        events.off('event', on);
        resolve(ev);
      };
      events.on('event', on);
    });

  const recordings = (): BaresipRecording => {
    const files = readdirSync(recordDir)
      .filter((f) => f.endsWith('.wav'))
      .map((f) => ({ f, t: statSync(join(recordDir, f)).mtimeMs }))
      .sort((a, b) => a.t - b.t || a.f.localeCompare(b.f));
    const r: BaresipRecording = {};
    for (const { f } of files) {
      if (f.endsWith('-dec.wav')) r.decoded = join(recordDir, f);
      if (f.endsWith('-enc.wav')) r.encoded = join(recordDir, f);
    }
    return r;
  };

  if (child.pid === undefined) throw new Error('baresip has no pid');
  return {
    uri: `sip:${user}@127.0.0.1:${sipPort}`,
    sipPort,
    ctrlPort,
    recordDir,
    pid: child.pid,
    events,
    command,
    dial: (uri) => command('dial', uri),
    hangup: () => command('hangup'),
    accept: () => command('accept'),
    sendDtmf: (digits) => {
      if (!/^[0-9*#A-D]+$/.test(digits)) return Promise.reject(new Error(`bad DTMF digits ${digits}`));
      return command('sndcode', digits);
    },
    waitEvent,
    seenEvents: () => [...seen],
    recordings,
    output: () => out,
    stop,
  };
}
