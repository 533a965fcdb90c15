/**
 * A 16-bit PCM WAV file written while the call goes on. Frames are copied into one-second chunks in memory (the media
 * tick never touches the disk); chunks are appended off the tick, and after each append the RIFF and data sizes in
 * the header are rewritten, so a process killed mid-call leaves a file every reader opens, short by at most one
 * checkpoint. close() writes what is left and the final sizes.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

export interface WavFormat {
  sampleRate: number;
  channels: number;
}

/** The 44-byte canonical header for `dataBytes` of audio. */
export function wavHeader(f: WavFormat, dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(f.channels, 22);
  h.writeUInt32LE(f.sampleRate, 24);
  h.writeUInt32LE(f.sampleRate * f.channels * 2, 28);
  h.writeUInt16LE(f.channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

export interface WavWriterOptions extends WavFormat {
  /** How often buffered audio is appended and the header sizes rewritten. */
  checkpointMs: number;
  /** Chunks that may wait for a slow disk before new audio is dropped (counted in droppedSamples). */
  maxPendingChunks?: number;
  onError?: (err: Error) => void;
}

const HEADER_BYTES = 44;

export class WavWriter {
  /** Interleaved samples written to the file or waiting for it. */
  samplesAccepted = 0;
  droppedSamples = 0;
  private dataBytes = 0;
  private readonly chunkSamples: number;
  private chunk: Int16Array;
  private fill = 0;
  private readonly free: Int16Array[] = [];
  private readonly pending: { buf: Int16Array; len: number }[] = [];
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private handle: Promise<FileHandle>;
  private closed: Promise<{ dataBytes: number }> | null = null;
  private failed = false;

  /** Creates the file with its header at once (synchronously: the call flow, not the media tick, calls this). */
  constructor(readonly path: string, private readonly opts: WavWriterOptions) {
    const fd = openSync(path, 'wx');
    try {
      writeSync(fd, wavHeader(opts, 0));
    } finally {
      closeSync(fd);
    }
    this.handle = open(path, 'r+');
    this.handle.catch((err: Error) => this.fail(err));
    this.chunkSamples = opts.sampleRate * opts.channels;
    this.chunk = new Int16Array(this.chunkSamples);
    this.timer = setInterval(() => this.checkpoint(), opts.checkpointMs);
    this.timer.unref();
  }

  get format(): WavFormat {
    return { sampleRate: this.opts.sampleRate, channels: this.opts.channels };
  }

  /** Audio written to disk so far, in seconds. */
  get durationSeconds(): number {
    return this.dataBytes / (2 * this.opts.channels * this.opts.sampleRate);
  }

  /** Copies interleaved samples; never waits and, once warmed up, never allocates. */
  write(samples: Int16Array): void {
    if (this.closed || this.failed) return;
    let off = 0;
    while (off < samples.length) {
      const n = Math.min(samples.length - off, this.chunkSamples - this.fill);
      this.chunk.set(off === 0 && n === samples.length ? samples : samples.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === this.chunkSamples) this.rotate();
    }
    this.samplesAccepted += samples.length;
  }

  private rotate(): void {
    if (this.fill === 0) return;
    if (this.pending.length >= (this.opts.maxPendingChunks ?? 30)) {
      // The disk is far behind: keep memory bounded, lose this chunk.
      this.droppedSamples += this.fill;
      this.fill = 0;
      return;
    }
    this.pending.push({ buf: this.chunk, len: this.fill });
    this.chunk = this.free.pop() ?? new Int16Array(this.chunkSamples);
    this.fill = 0;
  }

  /** Appends what is buffered and rewrites the header sizes. */
  private checkpoint(): Promise<void> {
    this.rotate();
    this.writing = this.writing.then(() => this.drain()).catch((err: Error) => this.fail(err));
    return this.writing;
  }

  private async drain(): Promise<void> {
    if (this.failed || this.pending.length === 0) return;
    const fh = await this.handle;
    while (this.pending.length > 0) {
      const { buf, len } = this.pending[0]!;
      const bytes = Buffer.from(buf.buffer, buf.byteOffset, len * 2);
      await fh.write(bytes, 0, bytes.length, HEADER_BYTES + this.dataBytes);
      this.dataBytes += bytes.length;
      this.pending.shift();
      this.free.push(buf);
    }
    const sizes = Buffer.alloc(4);
    sizes.writeUInt32LE(36 + this.dataBytes, 0);
    await fh.write(sizes, 0, 4, 4);
    sizes.writeUInt32LE(this.dataBytes, 0);
    await fh.write(sizes, 0, 4, 40);
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.opts.onError?.(err);
  }

  /** Final write; idempotent. Resolves with the audio bytes in the file. */
  close(): Promise<{ dataBytes: number }> {
    this.closed ??= (async () => {
      clearInterval(this.timer);
      await this.checkpoint();
      try {
        await (await this.handle).close();
      } catch (err) {
        this.fail(err as Error);
      }
      return { dataBytes: this.dataBytes };
    })();
    return this.closed;
  }
}
