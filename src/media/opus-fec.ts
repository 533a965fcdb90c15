/**
 * An Opus decoder (8 kHz mono) that can use in-band FEC: when a packet is lost and the next one has already
 * arrived, libopus rebuilds the lost frame from the LBRR copy the sender put in the next packet
 * (opus_decode(..., decode_fec = 1)), which sounds far better than concealment alone.
 *
 * @evan/opus's native addon exposes no decode_fec. createOpusFecDecoder() therefore takes the system's libopus
 * through the media addon (opus-fec-native.ts) when libopus.so.0 is there, and otherwise OpusFecDecoder8k below,
 * which runs the package's own libopus WebAssembly build (same shipped files), instantiated here so that
 * opus_decode can be called with every argument. One module instance serves every wasm decoder in the process;
 * buffers in its memory are reused, so a frame costs no allocation. Decoding on wasm costs 1.3-1.7x the CPU of
 * native libopus per frame (README, "Opus FEC/PLC decoding on native libopus").
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { OpusFecDecoderBase, type OpusFecDecoder } from './opus-fec-decoder.js';
import { NativeOpusFecDecoder8k, nativeOpusFecVersion } from './opus-fec-native.js';
import { MAX_FRAME_SAMPLES, PCM_RATE } from './opus-codec.js';

export type { OpusFecDecoder } from './opus-fec-decoder.js';

interface OpusWasm {
  memory: WebAssembly.Memory;
  malloc(n: number): number;
  free(p: number): void;
  opus_decoder_get_size(channels: number): number;
  opus_decoder_init(st: number, rate: number, channels: number): number;
  opus_decode(st: number, data: number, len: number, pcm: number, frameSize: number, decodeFec: number): number;
  _initialize?: () => void;
}

interface Module {
  wasm: OpusWasm;
  packetPtr: number;
  pcmPtr: number;
  /** Views of the wasm memory, rebuilt when it grows (the old ArrayBuffer is detached then). */
  buf: ArrayBuffer | null;
  u8: Uint8Array;
  i16: Int16Array;
}

function views(m: Module): Module {
  if (m.buf !== m.wasm.memory.buffer) {
    m.buf = m.wasm.memory.buffer;
    m.u8 = new Uint8Array(m.buf);
    m.i16 = new Int16Array(m.buf);
  }
  return m;
}

const MAX_PACKET = 1500;
let mod: Module | null | undefined;

/** SIMD probe from the package: the smallest module using a v128 instruction. */
const SIMD_PROBE = Uint8Array.of(0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 10, 9, 1, 7, 0, 65, 0, 253, 15, 26, 11);

function load(): Module | null {
  if (mod !== undefined) return mod;
  try {
    const require = createRequire(import.meta.url);
    const dir = join(dirname(require.resolve('@evan/opus/package.json')), 'wasm');
    const file = join(dir, WebAssembly.validate(SIMD_PROBE) ? 'simd.wasm' : 'opus.wasm');
    const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file)), {
      wasi_snapshot_preview1: { fd_seek: () => 0, fd_write: () => 0, fd_close: () => 0, proc_exit: () => undefined },
      env: { emscripten_notify_memory_growth: () => undefined },
    });
    const wasm = instance.exports as unknown as OpusWasm;
    wasm._initialize?.();
    mod = { wasm, packetPtr: wasm.malloc(MAX_PACKET), pcmPtr: wasm.malloc(MAX_FRAME_SAMPLES * 2), buf: null, u8: new Uint8Array(0), i16: new Int16Array(0) };
  } catch {
    mod = null;
  }
  return mod;
}

/** True when the wasm build loaded. */
export function opusWasmFecAvailable(): boolean {
  return load() !== null;
}

/** Which libopus createOpusFecDecoder() uses: the system's ('native'), the wasm build, or none (no FEC decoding). */
export function opusFecImplementation(): 'native' | 'wasm' | null {
  if (nativeOpusFecVersion() !== null) return 'native';
  return load() !== null ? 'wasm' : null;
}

/** True when FEC decoding is available (native or wasm). */
export function opusFecAvailable(): boolean {
  return opusFecImplementation() !== null;
}

/** A FEC-capable decoder on native libopus when available, else on the wasm build; throws when neither is. */
export function createOpusFecDecoder(): OpusFecDecoder {
  return opusFecImplementation() === 'native' ? new NativeOpusFecDecoder8k() : new OpusFecDecoder8k();
}

export { nativeOpusFecVersion };

export class OpusFecDecoder8k extends OpusFecDecoderBase {
  private readonly m: Module;
  private st: number;

  constructor() {
    super();
    const m = load();
    if (!m) throw new Error('Opus wasm build not available: no FEC decoding');
    this.m = m;
    this.st = m.wasm.malloc(m.wasm.opus_decoder_get_size(1));
    const rc = m.wasm.opus_decoder_init(this.st, PCM_RATE, 1);
    if (rc < 0) throw new Error(`opus_decoder_init failed (${rc})`);
  }

  /** Frees the decoder state in the shared wasm memory; the decoder is unusable afterwards. */
  destroy(): void {
    if (this.st) this.m.wasm.free(this.st);
    this.st = 0;
  }

  protected run(packet: Uint8Array | null, length: number, frameSize: number, fec: 0 | 1, out: Int16Array): number {
    const { wasm, packetPtr, pcmPtr } = this.m;
    if (!this.st) throw new Error('Opus decoder destroyed');
    if (packet) {
      if (length > MAX_PACKET) throw new RangeError('Opus packet too large');
      const u8 = views(this.m).u8;
      for (let i = 0; i < length; i++) u8[packetPtr + i] = packet[i]!;
    }
    const n = wasm.opus_decode(this.st, packet ? packetPtr : 0, packet ? length : 0, pcmPtr, Math.min(frameSize, out.length), fec);
    if (n < 0) throw new Error(`opus_decode failed (${n})`);
    // opus_decode may have grown the memory: take the views afterwards.
    const i16 = views(this.m).i16;
    const base = pcmPtr >> 1;
    for (let i = 0; i < n; i++) out[i] = i16[base + i]!;
    return n;
  }
}
