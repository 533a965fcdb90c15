/**
 * SIPp (Debian package sip-tester, /usr/bin/sipp) as a scripted SIP peer on loopback.
 *
 * Scenarios live in ./scenarios/*.xml:
 *   uas-answer         answer 200 with G.711 (keys codec/pt), wait for the caller's BYE (rtpEcho: echo RTP back)
 *   uas-answer-info-dtmf  answer with G.711 and no telephone-event, 200 to every INFO until the caller's BYE
 *   uas-answer-info-update  like uas-answer-info-dtmf, but the first INFO is answered only after an in-dialog UPDATE got its 200
 *   uas-answer-hangup  answer, then send BYE after durationMs
 *   uas-refuse         final failure (keys status/reason: 486 Busy Here, 603 Decline, 480 Temporarily Unavailable)
 *   uas-ring-cancel    180 and no answer; 200 to CANCEL, 487 to the INVITE
 *   uas-answer-info-reinvite  answer, then after durationMs send INFO (dtmf-relay 5) and a re-INVITE (sendonly, port+2), wait for BYE
 *   uac-invite         send INVITE sip:<service>@<remote> with an SDP offer, expect 200, ACK, wait durationMs, BYE
 *   uac-invite-late-ack  like uac-invite, but never ACK the 200: wait for the far end's BYE and answer it 200
 *   uac-cancel         send INVITE, wait for 180, CANCEL after durationMs; expect 200 (CANCEL) and 487 (INVITE), ACK
 *   uac-invite-refused send INVITE, expect the final failure given by key status (1xx optional), ACK it
 *   uac-invite-auth    like uac-invite, but expect 401 first, ACK it and resend the INVITE with digest credentials (auth)
 *   uac-invite-auth-refused  expect 401, resend with digest credentials (auth), expect the final failure of key status
 *   uas-ring-update    180, then two UPDATEs in the early dialog (no SDP → 200; SDP → key sdpstatus), 200, wait for BYE
 *   uac-invite-early-update  INVITE, after the 180 two UPDATEs (no SDP → 200; SDP → key sdpstatus), 200, ACK, -d ms, BYE
 *
 * SIPp runs with -nostdin -m <calls> and a global -timeout; the result has its exit code
 * (0 = all calls succeeded, 1 = some failed, 97/99 = other ends) and the successful/failed call counts
 * parsed from its -trace_stat CSV, plus the -trace_msg message log.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, retryOnPortInUse } from './ports.js';

export type SippScenario = 'uas-answer' | 'uas-answer-info-dtmf' | 'uas-answer-info-update' | 'uas-answer-hangup' | 'uas-refuse' | 'uas-ring-cancel' | 'uas-answer-info-reinvite' | 'uac-invite' | 'uac-invite-late-ack' | 'uac-cancel' | 'uac-invite-refused' | 'uac-invite-auth' | 'uac-invite-auth-refused'
  | 'uas-ring-update' | 'uac-invite-early-update';

export const SCENARIO_DIR = join(dirname(fileURLToPath(import.meta.url)), 'scenarios');

export type SippAvailability = { ok: true; bin: string } | { ok: false; reason: string };

export function sippAvailable(): SippAvailability {
  const bin = process.env.SIPP_BIN ?? '/usr/bin/sipp';
  try {
    accessSync(bin, constants.X_OK);
    return { ok: true, bin };
  } catch {
    return { ok: false, reason: `sipp not found at ${bin} (apt-get install sip-tester, or set SIPP_BIN)` };
  }
}

export interface SippOptions {
  scenario: SippScenario;
  /** Local SIP port (UDP); default a free one. */
  port?: number;
  /** Local media port (-mp, RTP echo port); default a free even one. */
  mediaPort?: number;
  /** Echo received RTP back (-rtp_echo). */
  rtpEcho?: boolean;
  /**
   * Template keys (%%name%% in the XML, substituted before SIPp reads it; SIPp's own -key cannot be used in a
   * status line). Defaults: codec PCMU, pt 0, status 486, reason "Busy Here", xheader "X-Test: sipp".
   */
  keys?: Record<string, string>;
  /** -d: call length for <pause/> (ms). Default 1000. */
  durationMs?: number;
  /** -m: calls before exiting. Default 1. */
  calls?: number;
  /** -timeout (seconds) — SIPp quits after this long whatever happens. Default 30. */
  timeoutSec?: number;
  /** UAC: target host:port. */
  remote?: string;
  /** -s service (user part of the Request-URI for the UAC; user in our To for UAS). Default "sipp". */
  service?: string;
  /**
   * -au/-ap: digest credentials for [authentication] (uac-invite-auth scenarios). SIPp's digest uri defaults to
   * sip:remote_ip:remote_port, not the Request-URI RFC 3261 §22.4 asks for; `uri` (-auth_uri, without "sip:") fixes it.
   */
  auth?: { username: string; password: string; uri?: string };
}

export interface SippResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  successful: number;
  failed: number;
  stdout: string;
  stderr: string;
  /** Unexpected messages log (-trace_err). */
  errors: string;
  /** All SIP messages sent and received (-trace_msg). */
  messages: string;
}

export interface SippRun {
  readonly scenario: SippScenario;
  readonly port: number;
  readonly mediaPort: number;
  /** sip:<service>@127.0.0.1:<port> — where to send an INVITE to this UAS. */
  readonly uri: string;
  readonly pid: number;
  /** Resolves when SIPp exits (never rejects). */
  readonly done: Promise<SippResult>;
  /** SIP messages logged so far. */
  messages(): string;
  /** Kill SIPp (SIGTERM, then SIGKILL) if still running and return its result. */
  stop(): Promise<SippResult>;
}

const DEFAULT_KEYS: Readonly<Record<string, string>> = {
  codec: 'PCMU',
  pt: '0',
  status: '486',
  reason: 'Busy Here',
  xheader: 'X-Test: sipp',
};

function readIfExists(path: string): string {
  try {
    return existsSync(path) ? readFileSync(path, 'utf8') : '';
  } catch {
    return '';
  }
}

/** Parse SIPp's -trace_stat CSV (semicolon separated); last row's cumulative counters. */
export function parseSippStats(csv: string): { successful: number; failed: number } {
  const rows = csv.split(/\r?\n/).filter((l) => l.trim().length > 0);
  const header = rows[0]?.split(';') ?? [];
  const last = rows.length > 1 ? (rows[rows.length - 1]?.split(';') ?? []) : [];
  const col = (name: string): number => {
    const i = header.indexOf(name);
    const v = i >= 0 ? Number(last[i]) : NaN;
    return Number.isFinite(v) ? v : 0;
  };
  return { successful: col('SuccessfulCall(C)'), failed: col('FailedCall(C)') };
}

/** True once something is bound to udp 127.0.0.1:port (our own bind fails with EADDRINUSE). */
function udpInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(true);
    });
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(false)));
  });
}

export function startSipp(opts: SippOptions): Promise<SippRun> {
  return retryOnPortInUse(opts.port === undefined && opts.mediaPort === undefined, () => startSippOnce(opts));
}

async function startSippOnce(opts: SippOptions): Promise<SippRun> {
  const avail = sippAvailable();
  if (!avail.ok) throw new Error(avail.reason);
  const port = opts.port ?? (await freePort({ tcp: false }));
  // RTP, RTCP, and the port a re-INVITE moves to (+2) with its RTCP.
  const mediaPort = opts.mediaPort ?? (await freePort({ tcp: false, even: true, span: 4 }));
  const service = opts.service ?? 'sipp';
  const dir = mkdtempSync(join(tmpdir(), 'wagw-sipp-'));
  const scenarioFile = join(dir, `${opts.scenario}.xml`);
  const statFile = join(dir, 'stats.csv');
  const msgFile = join(dir, 'messages.log');
  const errFile = join(dir, 'errors.log');
  const keys: Record<string, string> = { ...DEFAULT_KEYS, ...(opts.keys ?? {}) };
  const template = readFileSync(join(SCENARIO_DIR, `${opts.scenario}.xml`), 'utf8');
  writeFileSync(
    scenarioFile,
    template.replace(/%%([a-z_]+)%%/g, (m: string, name: string) => {
      const v = keys[name];
      if (v === undefined) throw new Error(`sipp scenario ${opts.scenario}: no value for key ${name}`);
      if (/[\r\n<>&]/.test(v)) throw new Error(`sipp scenario key ${name}: value must not contain CR/LF or XML specials`);
      return v;
    }),
  );

  const args = [
    '-sf', scenarioFile,
    '-i', '127.0.0.1',
    '-mi', '127.0.0.1',
    '-p', String(port),
    '-mp', String(mediaPort),
    '-t', 'u1',
    '-m', String(opts.calls ?? 1),
    '-d', String(opts.durationMs ?? 1000),
    '-s', service,
    '-timeout', `${opts.timeoutSec ?? 30}s`,
    '-timeout_error',
    '-nostdin',
    '-nr',
    '-trace_stat', '-stf', statFile, '-fd', '1',
    '-trace_msg', '-message_file', msgFile,
    '-trace_err', '-error_file', errFile,
  ];
  if (opts.rtpEcho) args.push('-rtp_echo');
  if (opts.auth) args.push('-au', opts.auth.username, '-ap', opts.auth.password);
  if (opts.auth?.uri) args.push('-auth_uri', opts.auth.uri);
  if (opts.remote) args.push(opts.remote);

  const child = spawn(avail.bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => {
    stdout += b.toString('utf8');
    if (stdout.length > 1_000_000) stdout = stdout.slice(-500_000);
  });
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString('utf8');
  });
  let exited = false;
  // The working directory goes when SIPp exits: messages() then answers from the final log, not from a deleted file
  // (a call SIPp ends itself, e.g. on our BYE, could otherwise vanish from messages() between two polls).
  let finalMessages: string | undefined;
  const done = new Promise<SippResult>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      // SIPp names the stat file itself when -stf is not honoured; fall back to any .csv in the dir.
      let csv = readIfExists(statFile);
      if (!csv) {
        const alt = readdirSync(dir).find((f) => f.endsWith('.csv'));
        if (alt) csv = readIfExists(join(dir, alt));
      }
      const counts = parseSippStats(csv);
      const result: SippResult = {
        exitCode: code,
        signal,
        ...counts,
        stdout,
        stderr,
        errors: readIfExists(errFile),
        messages: readIfExists(msgFile),
      };
      finalMessages = result.messages;
      rmSync(dir, { recursive: true, force: true });
      resolve(result);
    });
  });
  const killHook = (): void => {
    if (!exited) child.kill('SIGKILL');
  };
  process.once('exit', killHook);
  void done.then(() => process.off('exit', killHook));

  // Wait until SIPp has bound its SIP port (or died).
  const deadline = Date.now() + 5000;
  while (!exited && !(await udpInUse(port))) {
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (exited) {
    const r = await done;
    const why = r.stderr || r.stdout.slice(-2000);
    throw new Error(`sipp exited at start (code ${r.exitCode}): ${why}`);
  }
  if (child.pid === undefined) throw new Error('sipp has no pid');

  return {
    scenario: opts.scenario,
    port,
    mediaPort,
    uri: `sip:${service}@127.0.0.1:${port}`,
    pid: child.pid,
    done,
    messages: () => finalMessages ?? readIfExists(msgFile),
    stop: async () => {
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(() => {
          if (!exited) child.kill('SIGKILL');
        }, 2000);
        const r = await done;
        clearTimeout(t);
        return r;
      }
      return done;
    },
  };
}
