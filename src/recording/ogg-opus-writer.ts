/**
 * A stereo Ogg/Opus file written while the call goes on (RFC 7845, channel mapping family 0). Each 20 ms frame is
 * encoded as it arrives (a steady cost per tick, no burst at the checkpoint); the packets wait in memory and are laid
 * out in pages that are appended off the tick every checkpoint, so a process killed mid-call leaves a file of whole
 * pages that any Ogg/Opus reader plays (no end-of-stream page, short by at most one checkpoint). close() encodes what
 * is left, pads the encoder's lookahead out with silence and writes the end-of-stream page, whose granule position
 * trims the padding, so the decoded length is the input's to the sample.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { randomInt } from 'node:crypto';
import { Encoder } from '@evan/opus';
import { encodeWith } from '../media/opus-codec.js';
import { OggStream } from './ogg-page.js';
import { granulePerSample, opusHead, opusTags } from './opus-headers.js';

export interface OggOpusWriterOptions {
  /** 8000 (the gateway's pivot); any rate libopus takes works. */
  sampleRate: 8000 | 12000 | 16000 | 24000 | 48000;
  channels: 1 | 2;
  /** How often encoded packets are paged and appended. */
  checkpointMs: number;
  /** bit/s for all channels together. */
  bitrate?: number;
  /** KEY=value comments for OpusTags (e.g. the channel layout). */
  comments?: string[];
  /** Checkpoints that may wait for a slow disk before new pages are dropped (counted in droppedSamples). */
  maxPendingChunks?: number;
  onError?: (err: Error) => void;
}

const OPUS_GET_LOOKAHEAD = 4027;
const FRAME_MS = 20;
/** The largest Opus packet (RFC 6716 §3.2.1). */
const MAX_PACKET = 1275;
const ARENA_BYTES = 32 * 1024;

export class OggOpusWriter {
  /** Interleaved samples accepted (encoded or waiting for a whole frame). */
  samplesAccepted = 0;
  droppedSamples = 0;
  /** Bytes in the file so far (headers included). */
  bytes = 0;
  readonly preSkip: number;
  private readonly enc: Encoder;
  private readonly ogg = new OggStream(randomInt(0, 2 ** 32));
  private readonly frameSamples: number;
  private readonly frame: Int16Array;
  private fill = 0;
  /** 48 kHz samples encoded so far (the granule position reached). */
  private granule = 0n;
  private readonly granulePerFrame: bigint;
  /** Packets are copied into an arena until their page is built; a full arena is replaced, never grown. */
  private arena = new Uint8Array(ARENA_BYTES);
  private arenaOff = 0;
  private samplesInQueue = 0;
  private samplesOnDisk = 0;
  private readonly pending: { pages: Buffer; samples: number }[] = [];
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private readonly handle: Promise<FileHandle>;
  private closed: Promise<{ bytes: number; durationSeconds: number }> | null = null;
  private failed = false;

  /** Creates the file with its two header pages at once (synchronously: the call flow, not the media tick, calls this). */
  constructor(readonly path: string, private readonly opts: OggOpusWriterOptions) {
    this.enc = new Encoder({ channels: opts.channels, sample_rate: opts.sampleRate, application: 'voip' });
    this.enc.bitrate = opts.bitrate ?? 48_000;
    this.enc.complexity = 5;
    this.enc.signal = 'voice';
    // A file, not a network: no FEC bits; and silence must still advance time, so no DTX.
    this.enc.inband_fec = false;
    this.enc.dtx = false;
    this.preSkip = this.enc.ctl(OPUS_GET_LOOKAHEAD) * granulePerSample(opts.sampleRate);
    this.frameSamples = (opts.sampleRate / 1000) * FRAME_MS * opts.channels;
    this.frame = new Int16Array(this.frameSamples);
    this.granulePerFrame = BigInt(48 * FRAME_MS);

    this.ogg.packet(opusHead({ channels: opts.channels, preSkip: this.preSkip, inputSampleRate: opts.sampleRate }), 0n);
    const first = this.ogg.flush();
    this.ogg.packet(opusTags('wa-sip-gateway (libopus)', opts.comments ?? []), 0n);
    const headers = Buffer.concat([...first, ...this.ogg.flush()]);
    const fd = openSync(path, 'wx');
    try {
      writeSync(fd, headers);
    } finally {
      closeSync(fd);
    }
    this.bytes = headers.length;
    this.handle = open(path, 'r+');
    this.handle.catch((err: Error) => this.fail(err));
    this.timer = setInterval(() => void this.checkpoint(), opts.checkpointMs);
    this.timer.unref();
  }

  /** Audio in the file so far, in seconds. */
  get durationSeconds(): number {
    return this.samplesOnDisk / (this.opts.channels * this.opts.sampleRate);
  }

  /** Interleaved samples; encodes each whole 20 ms frame at once. Never waits. */
  write(samples: Int16Array): void {
    if (this.closed || this.failed) return;
    let off = 0;
    while (off < samples.length) {
      const n = Math.min(samples.length - off, this.frameSamples - this.fill);
      this.frame.set(samples.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === this.frameSamples) this.encodeFrame(this.frameSamples);
      if (this.failed) return;
    }
    this.samplesAccepted += samples.length;
  }

  private encodeFrame(realSamples: number): void {
    if (this.arenaOff + MAX_PACKET > this.arena.length) {
      this.arena = new Uint8Array(ARENA_BYTES);
      this.arenaOff = 0;
    }
    let n: number;
    try {
      n = encodeWith(this.enc, this.frame, this.arena.subarray(this.arenaOff));
    } catch (err) {
      this.fail(err as Error);
      return;
    } finally {
      this.fill = 0;
    }
    this.granule += this.granulePerFrame;
    this.ogg.packet(this.arena.subarray(this.arenaOff, this.arenaOff + n), this.granule);
    this.arenaOff += n;
    this.samplesInQueue += realSamples;
  }

  /** Pages what is encoded and appends it. */
  private checkpoint(end?: { eosGranule: bigint }): Promise<void> {
    if (!this.failed && (this.ogg.queued > 0 || end)) {
      const pages = Buffer.concat(this.ogg.flush(end ? { eos: true, eosGranule: end.eosGranule } : {}));
      // The pages hold copies of the packets: the arena is free again.
      this.arenaOff = 0;
      if (!end && this.pending.length >= (this.opts.maxPendingChunks ?? 30)) {
        // The disk is far behind: keep memory bounded, lose these pages (the next ones still decode: Ogg resyncs).
        this.droppedSamples += this.samplesInQueue;
      } else {
        this.pending.push({ pages, samples: this.samplesInQueue });
      }
      this.samplesInQueue = 0;
    }
    this.writing = this.writing.then(() => this.drain()).catch((err: Error) => this.fail(err));
    return this.writing;
  }

  private async drain(): Promise<void> {
    if (this.failed || this.pending.length === 0) return;
    const fh = await this.handle;
    while (this.pending.length > 0) {
      const { pages, samples } = this.pending[0]!;
      await fh.write(pages, 0, pages.length, this.bytes);
      this.bytes += pages.length;
      this.samplesOnDisk += samples;
      this.pending.shift();
    }
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.opts.onError?.(err);
  }

  /** Final write with the end-of-stream page; idempotent. */
  close(): Promise<{ bytes: number; durationSeconds: number }> {
    this.closed ??= (async () => {
      clearInterval(this.timer);
      // Dropped pages stay in the timeline (later granules count them), so the end does too.
      const inputSamples = this.samplesAccepted / this.opts.channels;
      const eosGranule = this.preSkip + inputSamples * granulePerSample(this.opts.sampleRate);
      if (!this.failed) {
        // The partial frame and the lookahead still inside the encoder come out as padded frames.
        if (this.fill > 0) {
          const real = this.fill;
          this.frame.fill(0, this.fill);
          this.encodeFrame(real);
        }
        const padFrames = Math.ceil(this.preSkip / (48 * FRAME_MS));
        for (let i = 0; i < padFrames && !this.failed; i++) {
          this.frame.fill(0);
          this.encodeFrame(0);
        }
      }
      await this.checkpoint({ eosGranule: BigInt(Math.min(eosGranule, Number(this.granule))) });
      try {
        await (await this.handle).close();
      } catch (err) {
        this.fail(err as Error);
      }
      return { bytes: this.bytes, durationSeconds: this.durationSeconds };
    })();
    return this.closed;
  }
}
