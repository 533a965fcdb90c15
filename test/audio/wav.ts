/**
 * 16-bit PCM WAV read/write.
 *
 *   encodeWav({ sampleRate, channels?, samples }) -> Buffer   (samples interleaved Int16)
 *   decodeWav(buffer) -> { sampleRate, channels, samples }     (only PCM 16-bit; skips unknown chunks)
 *   writeWav(path, wav) / readWav(path)                         (sync fs helpers)
 *   toMono(wav) -> Int16Array                                   (averages channels)
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface Wav {
  sampleRate: number;
  channels: number;
  /** Interleaved 16-bit samples. */
  samples: Int16Array;
}

export function encodeWav(wav: { sampleRate: number; channels?: number; samples: Int16Array }): Buffer {
  const channels = wav.channels ?? 1;
  const dataBytes = wav.samples.length * 2;
  const buf = Buffer.alloc(44 + dataBytes);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + dataBytes, 4);
  buf.write('WAVE', 8, 'ascii');
  buf.write('fmt ', 12, 'ascii');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(channels, 22);
  buf.writeUInt32LE(wav.sampleRate, 24);
  buf.writeUInt32LE(wav.sampleRate * channels * 2, 28);
  buf.writeUInt16LE(channels * 2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < wav.samples.length; i++) buf.writeInt16LE(wav.samples[i] ?? 0, 44 + i * 2);
  return buf;
}

export function decodeWav(buf: Buffer): Wav {
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let off = 12;
  let fmt: { format: number; channels: number; sampleRate: number; bits: number } | undefined;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      fmt = {
        format: buf.readUInt16LE(body),
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        bits: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!fmt) throw new Error('data chunk before fmt chunk');
      const isPcm = fmt.format === 1 || fmt.format === 0xfffe;
      if (!isPcm || fmt.bits !== 16) throw new Error(`unsupported WAV format ${fmt.format}/${fmt.bits} bit`);
      const len = Math.min(size, buf.length - body);
      const n = Math.floor(len / 2);
      const samples = new Int16Array(n);
      for (let i = 0; i < n; i++) samples[i] = buf.readInt16LE(body + i * 2);
      return { sampleRate: fmt.sampleRate, channels: fmt.channels, samples };
    }
    off = body + size + (size & 1);
  }
  throw new Error('no data chunk');
}

export function writeWav(path: string, wav: { sampleRate: number; channels?: number; samples: Int16Array }): void {
  writeFileSync(path, encodeWav(wav));
}

export function readWav(path: string): Wav {
  return decodeWav(readFileSync(path));
}

export function toMono(wav: Wav): Int16Array {
  if (wav.channels === 1) return wav.samples;
  const n = Math.floor(wav.samples.length / wav.channels);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    let acc = 0;
    for (let c = 0; c < wav.channels; c++) acc += wav.samples[i * wav.channels + c] ?? 0;
    out[i] = Math.round(acc / wav.channels);
  }
  return out;
}
