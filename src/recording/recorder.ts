/**
 * One call's recording: a media tap interleaves the user (left) and the agent (right) into a stereo WAV or Ogg/Opus
 * file written as the call goes. start() opens the file the first time and resumes after stop(); finalize() (from the call's
 * teardown) closes it and returns what the call record names.
 */
import type { MediaTap } from '../media/bridge.js';
import type { CallRecordingRef } from '../store/call-record.js';
import type { ConsentResult, RecordingFormat, RecordingMeta, RecordingStore } from './recording-store.js';
import { WavWriter } from './wav-writer.js';
import { OggOpusWriter } from './ogg-opus-writer.js';

export interface TapHost {
  addTap(tap: MediaTap): () => void;
}

export interface RecorderEvents {
  onError?: (err: Error) => void;
}

const FRAME = 160;

export interface RecordingFileSettings {
  format: RecordingFormat;
  /** Ogg/Opus only: bit/s, both channels together. */
  opusBitrate?: number;
}

interface AudioFileWriter {
  readonly path: string;
  write(samples: Int16Array): void;
  close(): Promise<{ bytes: number; durationSeconds: number }>;
}

function openWriter(path: string, f: RecordingFileSettings, checkpointMs: number, onError: (e: Error) => void): AudioFileWriter {
  if (f.format === 'ogg') {
    // The channel layout travels in the file too, for whoever gets it without its JSON.
    return new OggOpusWriter(path, { sampleRate: 8000, channels: 2, checkpointMs, bitrate: f.opusBitrate, comments: ['CHANNELS=left:user,right:agent'], onError });
  }
  const w = new WavWriter(path, { sampleRate: 8000, channels: 2, checkpointMs, onError });
  return {
    path,
    write: (s) => w.write(s),
    close: async () => {
      const { dataBytes } = await w.close();
      return { bytes: dataBytes + 44, durationSeconds: dataBytes / (2 * 2 * 8000) };
    },
  };
}

export class CallRecorder {
  private writer?: AudioFileWriter;
  private removeTap: (() => void) | null = null;
  private readonly scratch = new Int16Array(2 * FRAME);
  private finalized: Promise<CallRecordingRef | undefined> | null = null;
  private meta: RecordingMeta;
  private writeFailed = false;

  constructor(
    private readonly store: RecordingStore,
    meta: Omit<RecordingMeta, 'format' | 'sampleRate' | 'channels' | 'status' | 'startedAt'>,
    private readonly host: TapHost,
    private readonly checkpointMs: number,
    private readonly events: RecorderEvents = {},
    private readonly file: RecordingFileSettings = { format: 'wav' },
  ) {
    this.meta = { ...meta, format: file.format, sampleRate: 8000, channels: ['user', 'agent'], status: 'recording', startedAt: '' };
  }

  get recording(): boolean {
    return this.removeTap !== null;
  }

  get started(): boolean {
    return this.writer !== undefined;
  }

  get id(): string {
    return this.meta.id;
  }

  /** A write to the file failed (disk full, I/O error): what it holds is short, and its JSON says "failed". */
  get failed(): boolean {
    return this.writeFailed;
  }

  set consent(c: ConsentResult) {
    this.meta.consent = c;
  }

  /** Starts (creating the file) or resumes; false once finalized. Throws when the file cannot be created. */
  start(): boolean {
    if (this.finalized) return false;
    if (!this.writer) {
      this.meta.startedAt = new Date().toISOString();
      const path = this.store.prepare(this.meta);
      try {
        this.writer = openWriter(path, this.file, this.checkpointMs, (e) => {
          this.writeFailed = true;
          this.events.onError?.(e);
        });
      } catch (err) {
        // The JSON written by prepare() would otherwise list a recording "in progress" for ever.
        this.meta = { ...this.meta, status: 'failed', endedAt: new Date().toISOString() };
        this.store.writeMeta(this.meta);
        throw err;
      }
    }
    this.removeTap ??= this.host.addTap(this.tap);
    return true;
  }

  /** Pauses: audio until the next start() is not recorded. */
  stop(): void {
    this.removeTap?.();
    this.removeTap = null;
  }

  private readonly tap: MediaTap = (user, agent) => {
    const s = this.scratch;
    for (let i = 0; i < FRAME; i++) {
      s[2 * i] = user[i]!;
      s[2 * i + 1] = agent[i]!;
    }
    this.writer!.write(s);
  };

  /** Closes the file and completes its JSON; idempotent. undefined when recording never started. */
  finalize(): Promise<CallRecordingRef | undefined> {
    this.finalized ??= (async () => {
      this.stop();
      if (!this.writer) return undefined;
      const { bytes, durationSeconds: exact } = await this.writer.close();
      const durationSeconds = Math.round(exact * 1000) / 1000;
      const status = this.writeFailed ? 'failed' : 'complete';
      this.meta = { ...this.meta, status, endedAt: new Date().toISOString(), durationSeconds, bytes };
      this.store.writeMeta(this.meta);
      return { id: this.meta.id, file: this.writer.path, format: this.meta.format, durationSeconds, consent: this.meta.consent };
    })();
    return this.finalized;
  }
}
