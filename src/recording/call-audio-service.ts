/**
 * Recording and live streaming of calls, per the tenant's (and route's) settings. attach() runs when media starts
 * flowing to WhatsApp: it opens the live stream, plays the consent announcement before the user hears the agent,
 * waits for the explicit yes where required, and starts the recorder under the 'always' policy. Every step is undone
 * by the call's teardown (call.onTeardown), whatever the ending. The admin API starts and stops recording mid-call.
 */
import type { GatewayConfig } from '../config/schema.js';
import { recordingPolicyFor, streamTargetFor, type RecordingPolicy } from '../config/recording-schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Bridge, BridgeDtmfEvent, PcmSource } from '../media/bridge.js';
import type { Call } from '../calls/call.js';
import { loadHoldMusic } from '../calls/hold-music.js';
import { AudioStream } from '../streaming/audio-stream.js';
import { runConsent, type ConsentOutcome } from './consent.js';
import { CallRecorder } from './recorder.js';
import { RecordingStore, type ConsentResult } from './recording-store.js';
import { DEFAULT_ANNOUNCEMENT } from './announcement.js';

/** What attach() needs of the call's media session. */
export interface CallMedia {
  readonly activeBridge: Bridge | undefined;
  readonly onHold: boolean;
  readonly routeName?: string;
}

interface LiveCall {
  call: Call;
  policy: RecordingPolicy;
  consent: ConsentOutcome | 'pending';
  recorder?: CallRecorder;
  stream?: AudioStream;
}

export type RecordingControlResult =
  | { ok: true; recording: boolean; id: string }
  | { ok: false; status: 404 | 409 | 500; error: string };

export class CallAudioService {
  readonly store: RecordingStore;
  private readonly live = new Map<string, LiveCall>();
  private readonly announcements = new Map<string, Int16Array>();
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(private readonly config: () => GatewayConfig, private readonly logger: Logger, private readonly metrics: Metrics) {
    this.store = new RecordingStore(config().recording.folder);
  }

  isLive(callId: string): boolean {
    return this.live.has(callId);
  }

  /** Called once media flows toward WhatsApp. Never throws: recording and streaming must not fail the call. */
  attach(call: Call, media: CallMedia): void {
    const bridge = media.activeBridge;
    if (!bridge || call.isEnded || this.live.has(call.id)) return;
    const cfg = this.config();
    const policy = recordingPolicyFor(cfg.recording, call.ctx.tenant);
    const target = streamTargetFor(cfg.streaming, call.ctx.tenant, media.routeName);
    if (policy.policy === 'off' && !target) return;
    const entry: LiveCall = { call, policy, consent: 'pending' };
    this.live.set(call.id, entry);
    const log = call.logger;
    const cleanups: (() => void)[] = [];

    if (target) {
      const stream = new AudioStream(target.target, {
        callId: call.id, waCallId: call.waCallId, tenant: call.ctx.tenant, route: media.routeName, direction: call.ctx.direction,
        userWaId: call.ctx.userWaId, userName: call.ctx.userName, businessNumber: call.ctx.businessNumber, sipTarget: call.ctx.sipTarget,
      }, {
        onDropped: (n) => this.metrics.streamFramesDropped.inc(n),
        onSent: (n) => this.metrics.streamFramesSent.inc(n),
        onConnect: (result) => this.metrics.streamConnects.inc({ result }),
        log: (level, msg, fields) => log[level]({ stream: target.name, ...fields }, msg),
      });
      entry.stream = stream;
      stream.start();
      cleanups.push(bridge.addTap(stream.tap));
      const onDtmf = (ev: BridgeDtmfEvent): void => stream.dtmf(ev.digit, ev.durationMs);
      bridge.on('dtmf', onDtmf);
      cleanups.push(() => bridge.off('dtmf', onDtmf));
    }

    if (policy.policy !== 'off') {
      entry.recorder = new CallRecorder(this.store, {
        id: call.id, callId: call.id, tenant: call.ctx.tenant, waCallId: call.waCallId, userWaId: call.ctx.userWaId,
        businessNumber: call.ctx.businessNumber, direction: call.ctx.direction, consent: 'not_required',
      }, bridge, cfg.recording.checkpointMs, {
        onError: (err) => {
          this.metrics.recordings.inc({ result: 'failed' });
          log.error({ err: err.message }, 'recording write failed: the call goes on unrecorded');
        },
      }, { format: policy.format, opusBitrate: cfg.recording.opusBitrate });
    }

    call.onTeardown(async () => {
      for (const c of cleanups) c();
      this.live.delete(call.id);
      const tasks: Promise<unknown>[] = [];
      if (entry.stream) tasks.push(entry.stream.stop('call_ended'));
      if (entry.recorder) {
        tasks.push(entry.recorder.finalize().then((ref) => {
          if (!ref) return;
          call.recording = ref;
          // A recording whose writes failed was counted as failed then; it is not also a completed one.
          if (entry.recorder!.failed) {
            log.warn({ recording: ref.id, durationSeconds: ref.durationSeconds }, 'recording finalized short: a write to its file failed');
            return;
          }
          this.metrics.recordings.inc({ result: 'completed' });
          log.info({ recording: ref.id, durationSeconds: ref.durationSeconds }, 'recording finalized');
        }, (err: Error) => log.error({ err: err.message }, 'recording could not be finalized')));
      }
      await Promise.all(tasks);
    });

    if (policy.policy === 'off') return;
    if (policy.consent === 'none') {
      this.consentDone(entry, 'not_required');
      return;
    }
    const announcement = this.announcement(policy.announcementFile);
    void runConsent(policy, announcement, {
      play: (source: PcmSource | null) => {
        // Hold music set by the agent meanwhile wins over the end of the announcement.
        if (source === null && media.onHold) return;
        bridge.setSipSource(source);
      },
      onDigit: (listener) => {
        const l = (ev: BridgeDtmfEvent): void => { if (ev.from === 'whatsapp') listener(ev.digit); };
        bridge.on('dtmf', l);
        return () => bridge.off('dtmf', l);
      },
      mark: (name) => entry.stream?.mark(name),
      ended: call.ended,
    }).then((outcome) => this.consentDone(entry, outcome), (err: Error) => {
      log.error({ err: err.message }, 'consent step failed: recording disabled for this call');
      this.consentDone(entry, 'no_consent');
    });
  }

  private consentDone(entry: LiveCall, outcome: ConsentOutcome): void {
    const { call, policy } = entry;
    entry.consent = outcome;
    if (outcome === 'call_ended' || call.isEnded) return;
    this.metrics.recordingConsent.inc({ result: outcome });
    entry.stream?.mark('consent', { result: outcome });
    call.logger.info({ consent: outcome, policy: policy.policy }, 'recording consent');
    if (outcome === 'no_consent') {
      if (policy.onNoConsent === 'end_call') void call.end({ by: 'gateway', outcome: 'answered', cause: 'recording_consent_refused' });
      return;
    }
    if (entry.recorder) entry.recorder.consent = outcome as ConsentResult;
    if (policy.policy === 'always') this.startRecorder(entry);
  }

  private startRecorder(entry: LiveCall): RecordingControlResult {
    const rec = entry.recorder!;
    const first = !rec.started;
    try {
      if (!rec.start()) return { ok: false, status: 409, error: 'the call is ending' };
    } catch (err) {
      this.metrics.recordings.inc({ result: 'failed' });
      entry.call.logger.error({ err: (err as Error).message }, 'recording could not start');
      return { ok: false, status: 500, error: 'recording could not start' };
    }
    if (first) this.metrics.recordings.inc({ result: 'started' });
    entry.stream?.mark('recording_started');
    entry.call.logger.info({ recording: rec.id }, first ? 'recording started' : 'recording resumed');
    return { ok: true, recording: true, id: rec.id };
  }

  /** Admin API: start (or resume) recording a live call. */
  start(callId: string): RecordingControlResult {
    const entry = this.live.get(callId);
    if (!entry || entry.call.isEnded) return { ok: false, status: 404, error: 'no live call with media here, or recording is off for its tenant' };
    if (!entry.recorder) return { ok: false, status: 409, error: `recording is off for tenant ${entry.call.ctx.tenant}` };
    if (entry.consent === 'pending') return { ok: false, status: 409, error: 'consent is still being asked' };
    if (entry.consent === 'no_consent') return { ok: false, status: 409, error: 'the user did not consent to recording' };
    return this.startRecorder(entry);
  }

  /** Admin API: pause recording (a later start resumes the same file). */
  stop(callId: string): RecordingControlResult {
    const entry = this.live.get(callId);
    if (!entry?.recorder || entry.call.isEnded) return { ok: false, status: 404, error: 'no live call being recorded here' };
    entry.recorder.stop();
    entry.stream?.mark('recording_stopped');
    entry.call.logger.info({ recording: entry.recorder.id }, 'recording stopped');
    return { ok: true, recording: false, id: entry.recorder.id };
  }

  /** State for the live-call view. */
  state(callId: string): { recording: boolean; consent: string; streaming: boolean } | undefined {
    const e = this.live.get(callId);
    return e ? { recording: e.recorder?.recording ?? false, consent: e.consent, streaming: e.stream !== undefined } : undefined;
  }

  private announcement(file: string): Int16Array {
    const path = file || DEFAULT_ANNOUNCEMENT;
    let pcm = this.announcements.get(path);
    if (!pcm) {
      // Same reader as hold music; an unusable file falls back to a tone sequence rather than to silence.
      pcm = loadHoldMusic(path, 0, (m) => this.logger.warn(m.replace('hold music', 'recording announcement')));
      this.announcements.set(path, pcm);
    }
    return pcm;
  }

  /** Retention: deletes recordings older than recording.retentionDays now and every sweep interval. */
  startRetention(): void {
    const cfg = this.config().recording;
    if (cfg.retentionDays <= 0) return;
    const sweep = (): void => {
      try {
        const n = this.store.deleteStartedBefore(Date.now() - this.config().recording.retentionDays * 86_400_000, (id) => this.live.has(id));
        if (n > 0) {
          this.metrics.recordingsDeleted.inc({ reason: 'retention' }, n);
          this.logger.info({ deleted: n }, 'recording retention sweep');
        }
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, 'recording retention sweep failed');
      }
    };
    sweep();
    this.sweepTimer = setInterval(sweep, cfg.retentionSweepMinutes * 60_000);
    this.sweepTimer.unref();
  }

  stopRetention(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }
}
