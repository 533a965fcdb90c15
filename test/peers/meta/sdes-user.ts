/**
 * A WhatsApp user on a number set to `srtp_key_exchange_protocol: "SDES"` (fact sheet §4.5): Meta's relay seen at
 * the RTP level. One UDP socket, Meta's SDES SDP (RTP/SAVP, rtcp-mux, a=crypto AES_CM_128_HMAC_SHA1_80, Opus PT 111
 * with Meta's fmtp, telephone-event/8000 PT 126, ptime 20, no ICE/DTLS), real SRTP on the wire through the
 * gateway's SrtpContext. Its SDP handling is written here on purpose, not borrowed from the gateway's SDES leg.
 *
 * It plays a tone in Opus every 20 ms once play() is called and records what it hears, decoded to 8 kHz PCM.
 *
 *   const user = await SdesUser.create();
 *   meta.userCalls({ waId }, { offerSdp: user.offerSdp });            // user-initiated: Meta's SDES offer
 *   user.applyAnswer(meta.graph.calls.get(callId).preAcceptSdp);      // the gateway's answer
 *   const answer = await user.answerOffer(gatewayOffer);              // business-initiated: Meta's SDES answer
 *   user.play(1000); user.recording(); user.stats; await user.close();
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { IntervalFrameClock } from '../../../src/media/frame-clock.js';
import { OpusDecoder8k, OpusEncoder8k } from '../../../src/media/opus-codec.js';
import { SRTP_AES128_CM_HMAC_SHA1_80, SrtpContext } from '../../../src/media/srtp.js';

const SUITE = 'AES_CM_128_HMAC_SHA1_80';

export interface SdesUserOptions {
  /** Address the socket binds to and the SDP announces (default 127.0.0.1). */
  address?: string;
  /** The crypto tag of Meta's offer (default 1). */
  tag?: number;
  /**
   * A relay behind NAT: media is sent from a second socket, not the port the SDP announces; the gateway must follow
   * the authenticated packets there. stats.packetsAtAnnounced / packetsAtNatted say where its packets arrived.
   */
  natted?: boolean;
}

interface RemoteSdes {
  address: string;
  port: number;
  tag: number;
  key: Buffer;
  salt: Buffer;
  opusPt: number;
  dtmfPt: number | null;
}

/** Reads what this peer needs from the gateway's SDES SDP; throws on anything Meta would refuse. */
export function readGatewaySdes(sdp: string): RemoteSdes {
  const lines = sdp.split(/\r?\n/);
  const m = lines.map((l) => /^m=audio (\d+) (\S+) (.*)$/.exec(l)).find(Boolean);
  if (!m) throw new Error('gateway SDP: no m=audio');
  if (m[2] !== 'RTP/SAVP') throw new Error(`gateway SDP: ${m[2]} is not RTP/SAVP`);
  const c = lines.map((l) => /^c=IN IP4 (\S+)/.exec(l)).filter(Boolean).pop();
  if (!c) throw new Error('gateway SDP: no c=IN IP4');
  const crypto = lines.map((l) => /^a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)(\|.*)?$/.exec(l)).filter(Boolean);
  if (crypto.length !== 1) throw new Error(`gateway SDP: ${crypto.length} a=crypto lines, want exactly one`);
  if (crypto[0]![2] !== SUITE) throw new Error(`gateway SDP: suite ${crypto[0]![2]}`);
  const material = Buffer.from(crypto[0]![3]!, 'base64');
  if (material.length !== 30) throw new Error(`gateway SDP: key material is ${material.length} bytes`);
  const pt = (name: RegExp): number | null => {
    const r = lines.map((l) => /^a=rtpmap:(\d+) (\S+)/.exec(l)).find((x) => x && name.test(x[2]!));
    return r ? Number(r[1]) : null;
  };
  const opusPt = pt(/^opus\/48000/i);
  if (opusPt === null) throw new Error('gateway SDP: no opus/48000');
  return {
    address: c[1]!, port: Number(m[1]), tag: Number(crypto[0]![1]), key: material.subarray(0, 16), salt: material.subarray(16),
    opusPt, dtmfPt: pt(/^telephone-event\/8000$/i),
  };
}

export class SdesUser {
  readonly stats = { packetsIn: 0, packetsOut: 0, authFailures: 0, rtcpIn: 0, otherPayloadTypes: 0, packetsAtAnnounced: 0, packetsAtNatted: 0 };
  readonly ssrc = randomBytes(4).readUInt32BE(0);
  /** Date.now() when the gateway's first authenticated packet arrived (Meta's "first media = pickup" rule). */
  firstPacketAt: number | null = null;
  /** Where the gateway's packets came from (symmetric RTP check). */
  lastSource: { address: string; port: number } | null = null;
  private readonly key = randomBytes(30);
  private readonly tx: SrtpContext;
  private rx: SrtpContext | null = null;
  private remote: RemoteSdes | null = null;
  private readonly clock = new IntervalFrameClock(20);
  private stopClock: (() => void) | null = null;
  private readonly enc = new OpusEncoder8k();
  private readonly dec = new OpusDecoder8k();
  private readonly pcm = new Int16Array(160);
  private readonly opusOut = new Uint8Array(1500);
  private readonly decoded = new Int16Array(960);
  private readonly heard: Int16Array[] = [];
  private toneHz = 0;
  private phase = 0;
  private seq = randomBytes(2).readUInt16BE(0);
  private ts = randomBytes(4).readUInt32BE(0);
  private closed = false;

  /** The socket media is sent from: the announced one, or the NAT's other port. */
  private readonly sender: dgram.Socket;

  private constructor(private readonly socket: dgram.Socket, readonly address: string, readonly port: number, readonly tag: number, private readonly natSocket: dgram.Socket | null) {
    this.tx = new SrtpContext(SRTP_AES128_CM_HMAC_SHA1_80, this.key.subarray(0, 16), this.key.subarray(16));
    this.sender = natSocket ?? socket;
    socket.on('message', (msg, rinfo) => {
      this.stats.packetsAtAnnounced++;
      this.onMessage(msg, rinfo);
    });
    natSocket?.on('message', (msg, rinfo) => {
      this.stats.packetsAtNatted++;
      this.onMessage(msg, rinfo);
    });
  }

  static async create(opts: SdesUserOptions = {}): Promise<SdesUser> {
    const address = opts.address ?? '127.0.0.1';
    const bind = async (): Promise<dgram.Socket> => {
      const socket = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(0, address, () => resolve());
      });
      return socket;
    };
    const socket = await bind();
    const nat = opts.natted ? await bind() : null;
    return new SdesUser(socket, address, socket.address().port, opts.tag ?? 1, nat);
  }

  /** Meta's SDES offer as in the SIP sample of §4.5, with this user's key. */
  get offerSdp(): string {
    return this.sdp(this.tag);
  }

  /** Applies the gateway's answer to our offer: its key must come back under our tag. */
  applyAnswer(sdp: string): void {
    const r = readGatewaySdes(sdp);
    if (r.tag !== this.tag) throw new Error(`gateway answered crypto tag ${r.tag}, offer had ${this.tag}`);
    this.setRemote(r);
  }

  /** Answers the gateway's SDES offer (business-initiated) with Meta's SDES answer. */
  answerOffer(sdp: string): Promise<string> {
    const r = readGatewaySdes(sdp);
    this.setRemote(r);
    return Promise.resolve(this.sdp(r.tag));
  }

  /** Starts talking: a tone (Hz) at about -16 dBFS in Opus every 20 ms; 0 sends encoded silence. */
  play(toneHz: number): void {
    this.toneHz = toneHz;
    this.stopClock ??= this.clock.subscribe(() => this.tick());
  }

  /** Everything heard so far, decoded to 8 kHz in arrival order. */
  recording(): Int16Array {
    const n = this.heard.reduce((a, f) => a + f.length, 0);
    const out = new Int16Array(n);
    let off = 0;
    for (const f of this.heard) {
      out.set(f, off);
      off += f.length;
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopClock?.();
    this.stopClock = null;
    await new Promise<void>((r) => this.socket.close(() => r()));
    const nat = this.natSocket;
    if (nat) await new Promise<void>((r) => nat.close(() => r()));
  }

  private setRemote(r: RemoteSdes): void {
    this.remote = r;
    this.rx = new SrtpContext(SRTP_AES128_CM_HMAC_SHA1_80, r.key, r.salt);
  }

  private sdp(tag: number): string {
    const a = this.address;
    return [
      'v=0', `o=- ${Date.now()} 2 IN IP4 ${a}`, 's=-', `c=IN IP4 ${a}`, 't=0 0',
      `m=audio ${this.port} RTP/SAVP 111 126`,
      'a=rtcp-mux',
      `a=crypto:${tag} ${SUITE} inline:${this.key.toString('base64')}`,
      'a=rtpmap:111 opus/48000/2',
      'a=fmtp:111 maxaveragebitrate=20000;maxplaybackrate=16000;minptime=20;sprop-maxcapturerate=16000;useinbandfec=1',
      'a=rtpmap:126 telephone-event/8000',
      'a=ptime:20',
      'a=maxptime:20',
      '',
    ].join('\r\n');
  }

  private tick(): void {
    const r = this.remote;
    if (!r || this.closed) return;
    for (let i = 0; i < 160; i++) {
      this.pcm[i] = this.toneHz > 0 ? Math.round(5000 * Math.sin(this.phase)) : 0;
      this.phase += (2 * Math.PI * this.toneHz) / 8000;
    }
    this.phase %= 2 * Math.PI;
    const n = this.enc.encode(this.pcm, this.opusOut);
    const buf = Buffer.alloc(12 + n + 10);
    buf[0] = 0x80;
    buf[1] = (this.stats.packetsOut === 0 ? 0x80 : 0) | 111;
    buf.writeUInt16BE(this.seq, 2);
    buf.writeUInt32BE(this.ts, 4);
    buf.writeUInt32BE(this.ssrc, 8);
    buf.set(this.opusOut.subarray(0, n), 12);
    this.seq = (this.seq + 1) & 0xffff;
    this.ts = (this.ts + 960) >>> 0;
    const len = this.tx.protect(buf, 12 + n);
    this.sender.send(buf, 0, len, r.port, r.address);
    this.stats.packetsOut++;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (!this.rx || msg.length < 12) return;
    const pt = msg[1]! & 0x7f;
    if (pt >= 64 && pt <= 95) {
      this.stats.rtcpIn++;
      return;
    }
    const out = { payloadOffset: 0 };
    const n = this.rx.unprotect(msg, msg.length, out);
    if (n < 0) {
      this.stats.authFailures++;
      return;
    }
    this.lastSource = { address: rinfo.address, port: rinfo.port };
    this.firstPacketAt ??= Date.now();
    this.stats.packetsIn++;
    if (pt !== this.remote?.opusPt) {
      this.stats.otherPayloadTypes++;
      return;
    }
    const samples = this.dec.decode(msg.subarray(out.payloadOffset, n), this.decoded);
    if (samples > 0) this.heard.push(this.decoded.slice(0, samples));
  }
}
