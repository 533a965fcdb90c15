/**
 * SRTP counter-mode keystream, computed ahead for the packets a stream is about to send or receive.
 *
 * The keystream of a packet depends only on (SSRC, ROC, SEQ), never on its data, and both our own streams and the
 * peer's advance one sequence number per packet. So one aes-128-ecb update() call fills a window of the next
 * packets' counter blocks at once: the native call and its Buffer are paid once per window instead of once per
 * packet. Whatever the window does not hold (late or reordered packets, a jump, another SSRC, a larger packet) is
 * computed on demand, exactly as before, so the output never depends on the cache.
 *
 * Row layout, `blocks` × 16 bytes per packet:
 *  - AES-CM (RFC 3711 §4.1.1): block j = E(salt ⊕ SSRC·2^64 ⊕ index·2^16 + j), j = 0…
 *  - GCM (RFC 7714 §8.1): block 0 = E(IV ‖ 1) (the tag mask), block j ≥ 1 = E(IV ‖ j+1) (the payload),
 *    IV = salt ⊕ (0x0000 ‖ SSRC ‖ ROC ‖ SEQ).
 */
import type { Cipher } from 'node:crypto';

const MAX_PACKET = 1500;
/** Longest row computed ahead; larger packets (rare for audio) are computed on demand. */
const MAX_ROW_BLOCKS = 24;
const MAX_WINDOW = 64;
const MIN_WINDOW = 2;
/** A packet at most this far behind the window is a late one: it is served on demand and the window stays. */
const REORDER = 64;

// Counter blocks are built here (JS is single-threaded) and handed to update(); never kept.
const INPUT = new ArrayBuffer(Math.max(MAX_WINDOW * MAX_ROW_BLOCKS, Math.ceil(MAX_PACKET / 16) + 1) * 16);
const INPUT_VIEW = new DataView(INPUT);
const INPUT_BYTES = Buffer.from(INPUT);

export class SrtpKeystream {
  /** After get(): the buffer and offset holding the packet's row. */
  ks: Buffer = Buffer.alloc(0);
  ksOff = 0;
  /** Rows served from the window, rows computed on demand, windows filled (for tests). */
  readonly counts = { hits: 0, onDemand: 0, fills: 0 };

  private readonly s0: number;
  private readonly s1: number;
  private readonly s2: number;
  private readonly s3: number;
  private win: Buffer = Buffer.alloc(0);
  private winSsrc = 0;
  private winBase = -1; // packet index (ROC·2^16 + SEQ) of row 0; -1: empty
  private winRows = 0;
  private winBlocks = 0;
  private winServed = 0;
  private winMaxBlocks = 0;
  private nextRows = 16;

  constructor(private readonly ecb: Cipher, salt: Buffer, private readonly gcm: boolean) {
    const s = Buffer.alloc(16);
    salt.copy(s, 0, 0, Math.min(gcm ? 12 : 14, salt.length));
    this.s0 = s.readInt32BE(0);
    this.s1 = s.readInt32BE(4);
    this.s2 = s.readInt32BE(8);
    this.s3 = s.readInt32BE(12);
  }

  /** Makes ks/ksOff point at `blocks` keystream blocks for the packet (ssrc, roc, seq). */
  get(ssrc: number, roc: number, seq: number, blocks: number): void {
    const idx = roc * 65536 + seq;
    if (this.winBase >= 0 && ssrc === this.winSsrc) {
      const k = idx - this.winBase;
      if (k >= 0 && k < this.winRows && blocks <= this.winBlocks) {
        this.ks = this.win;
        this.ksOff = k * this.winBlocks * 16;
        this.winServed++;
        if (blocks > this.winMaxBlocks) this.winMaxBlocks = blocks;
        this.counts.hits++;
        return;
      }
      if (k < 0 && k >= -REORDER) return this.onDemand(ssrc, idx, blocks);
    }
    if (blocks > MAX_ROW_BLOCKS) return this.onDemand(ssrc, idx, blocks);
    this.fill(ssrc, idx, blocks);
  }

  private onDemand(ssrc: number, idx: number, blocks: number): void {
    // Packets past MAX_PACKET are not audio, but they must still decrypt rather than overrun the shared input.
    const bytes = blocks * 16 <= INPUT_BYTES.length ? INPUT_BYTES : Buffer.alloc(blocks * 16);
    this.write(new DataView(bytes.buffer, bytes.byteOffset, blocks * 16), ssrc, idx, 1, blocks);
    this.ks = this.ecb.update(bytes.subarray(0, blocks * 16));
    this.ksOff = 0;
    this.counts.onDemand++;
  }

  private fill(ssrc: number, idx: number, blocks: number): void {
    if (this.winBase >= 0) {
      // A window used up grows the next; one abandoned early (jumps, SSRC ping-pong) shrinks it, so a stream
      // that defeats prediction costs about what on-demand computation does.
      this.nextRows = this.winServed * 2 >= this.winRows
        ? Math.min(MAX_WINDOW, this.nextRows * 2)
        : Math.max(MIN_WINDOW, this.nextRows >> 1);
    }
    const rowBlocks = Math.min(MAX_ROW_BLOCKS, Math.max(blocks, ssrc === this.winSsrc ? this.winMaxBlocks : 0));
    const rows = this.nextRows;
    this.write(INPUT_VIEW, ssrc, idx, rows, rowBlocks);
    this.win = this.ecb.update(INPUT_BYTES.subarray(0, rows * rowBlocks * 16));
    this.winSsrc = ssrc;
    this.winBase = idx;
    this.winRows = rows;
    this.winBlocks = rowBlocks;
    this.winServed = 1;
    this.winMaxBlocks = blocks;
    this.ks = this.win;
    this.ksOff = 0;
    this.counts.fills++;
  }

  /** Counter blocks for `rows` packets from index `idx` on, `blocks` per packet. */
  private write(v: DataView, ssrc: number, idx: number, rows: number, blocks: number): void {
    let o = 0;
    for (let r = 0; r < rows; r++) {
      const i = idx + r;
      // Indexes past 2^48 wrap the ROC as the 32-bit counter it is.
      const roc = Math.floor(i / 65536) >>> 0;
      const seq = i & 0xffff;
      let w0: number, w1: number, w2: number, w3: number;
      if (this.gcm) {
        w0 = this.s0 ^ (ssrc >>> 16);
        w1 = this.s1 ^ ((ssrc << 16) | (roc >>> 16));
        w2 = this.s2 ^ ((roc << 16) | seq);
        w3 = 1;
      } else {
        w0 = this.s0;
        w1 = this.s1 ^ ssrc;
        w2 = this.s2 ^ roc;
        w3 = (this.s3 ^ (seq << 16)) & 0xffff0000; // bytes 14-15 are the block counter
      }
      for (let j = 0; j < blocks; j++, o += 16) {
        v.setInt32(o, w0);
        v.setInt32(o + 4, w1);
        v.setInt32(o + 8, w2);
        v.setInt32(o + 12, w3 + j);
      }
    }
  }
}
