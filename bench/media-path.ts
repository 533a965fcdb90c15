/**
 * Whole-call CPU cost of the media path as built (werift's RTP/SRTP path + Bridge + RtpLeg), per call-second,
 * measured in a child process that holds only the gateway side. The parent plays N WhatsApp users (werift
 * peers configured ICE-lite, like Meta's relays, sending pre-encoded 20 ms Opus) and one UDP echo standing in
 * for the PBX (like `sipp -rtp_echo`).
 *
 *   npx tsx bench/media-path.ts [calls=20] [seconds=10] [complexity=5] [fec=1]
 *   BENCH_PROFILE=/tmp/media.cpuprofile npx tsx bench/media-path.ts   # steady-state CPU profile of the gateway side
 */
import dgram from 'node:dgram';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket, type RTCRtpTransceiver } from 'werift';
import { OpusEncoder8k } from '../src/media/opus-codec.js';
import type { WorkerReply, WorkerRequest } from './media-path-worker.js';

export interface MediaPathResult {
  calls: number;
  seconds: number;
  complexity: number;
  fec: boolean;
  cpuMsPerCallSecond: number;
  cpuPercentOfOneCore: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  packetsPerCallSecond: { waIn: number; waOut: number; sipIn: number; sipOut: number };
  skippedTicks: number;
}

export async function runMediaPath(calls = 20, seconds = 10, complexity = 5, fec = true): Promise<MediaPathResult> {
  const worker = fork(fileURLToPath(new URL('./media-path-worker.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const waiters = new Map<string, (m: WorkerReply) => void>();
  worker.on('message', (m: WorkerReply) => {
    const key = 'id' in m ? `${m.type}:${m.id}` : m.type;
    waiters.get(key)?.(m);
    waiters.delete(key);
  });
  const request = <T extends WorkerReply>(msg: WorkerRequest, key: string): Promise<T> =>
    new Promise((resolve) => {
      waiters.set(key, (m) => resolve(m as T));
      worker.send(msg);
    });
  const waitFor = <T extends WorkerReply>(key: string): Promise<T> => new Promise((resolve) => waiters.set(key, (m) => resolve(m as T)));

  const echo = dgram.createSocket('udp4');
  await new Promise<void>((r) => echo.bind(0, '127.0.0.1', () => r()));
  echo.on('message', (m, rinfo) => echo.send(m, rinfo.port, rinfo.address));

  // 50 pre-encoded 20 ms frames of a tone, looped.
  const enc = new OpusEncoder8k({ complexity: 5 });
  const frames: Buffer[] = [];
  const buf = new Uint8Array(1500);
  for (let f = 0; f < 50; f++) {
    const pcm = new Int16Array(160);
    for (let i = 0; i < 160; i++) pcm[i] = Math.round(6000 * Math.sin((2 * Math.PI * 1000 * (f * 160 + i)) / 8000));
    frames.push(Buffer.from(buf.subarray(0, enc.encode(pcm, buf))));
  }

  const peers: Array<{ pc: RTCPeerConnection; t: RTCRtpTransceiver; seq: number; ts: number }> = [];
  for (let id = 0; id < calls; id++) {
    const pc = new RTCPeerConnection({
      iceLite: true, iceServers: [], iceUseIpv6: false, iceInterfaceAddresses: { udp4: '127.0.0.1' }, iceAdditionalHostAddresses: ['127.0.0.1'],
      codecs: {
        audio: [
          new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 }),
          new RTCRtpCodecParameters({ mimeType: 'audio/telephone-event', clockRate: 8000, channels: 1, payloadType: 126 }),
        ],
        video: [],
      },
    });
    const t = pc.addTransceiver('audio', { direction: 'sendrecv' });
    await pc.setLocalDescription(await pc.createOffer());
    const connected = waitFor(`connected:${id}`);
    const ans = await request<{ type: 'answer'; id: number; sdp: string }>(
      { type: 'offer', id, sdp: pc.localDescription!.sdp, echoPort: echo.address().port, complexity, fec }, `answer:${id}`);
    await pc.setRemoteDescription({ type: 'answer', sdp: ans.sdp });
    await connected;
    peers.push({ pc, t, seq: 0, ts: 0 });
  }

  let frame = 0;
  const timer = setInterval(() => {
    const payload = frames[frame++ % frames.length]!;
    for (const p of peers) {
      const header = new RtpHeader({ payloadType: 111, sequenceNumber: p.seq++ & 0xffff, timestamp: (p.ts += 960) >>> 0, ssrc: 0 });
      p.t.sender.sendRtp(new RtpPacket(header, payload)).catch(() => {});
    }
  }, 20);

  await new Promise((r) => setTimeout(r, 2000));
  const m = await request<Extract<WorkerReply, { type: 'measured' }>>({ type: 'measure', seconds }, 'measured');
  clearInterval(timer);
  await request({ type: 'stop' }, 'stopped');
  await Promise.all(peers.map((p) => p.pc.close()));
  echo.close();

  const callSeconds = m.calls * m.seconds;
  return {
    calls: m.calls, seconds: round(m.seconds), complexity, fec,
    cpuMsPerCallSecond: round(m.cpuMs / callSeconds),
    cpuPercentOfOneCore: round((m.cpuMs / (m.seconds * 1000)) * 100),
    lagP50Ms: round(m.lagP50Ms), lagP99Ms: round(m.lagP99Ms), lagMaxMs: round(m.lagMaxMs),
    packetsPerCallSecond: {
      waIn: round(m.packetsInWa / callSeconds), waOut: round(m.packetsOutWa / callSeconds),
      sipIn: round(m.packetsInSip / callSeconds), sipOut: round(m.packetsOutSip / callSeconds),
    },
    skippedTicks: m.skippedTicks,
  };
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [calls = '20', seconds = '10', complexity = '5', fec = '1'] = process.argv.slice(2);
  runMediaPath(Number(calls), Number(seconds), Number(complexity), fec !== '0').then(
    (r) => {
      console.log(JSON.stringify({ node: process.version, ...r }, null, 2));
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
