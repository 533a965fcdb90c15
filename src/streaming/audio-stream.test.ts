import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import type { AddressInfo } from 'node:net';
import { detectTone } from '../../test/audio/goertzel.js';
import { streamTargetSchema } from '../config/recording-schema.js';
import { AudioStream } from './audio-stream.js';

const info = { callId: '11111111-2222-3333-4444-555555555555', tenant: 'acme', direction: 'user_initiated', userWaId: '16315553602', businessNumber: '13175551399' };
const servers: WebSocketServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    for (const c of s.clients) c.terminate();
    await new Promise((r) => s.close(r));
  }
});

interface Received { text: Record<string, unknown>[]; binary: Buffer[]; sockets: ServerSocket[] }
async function server(onConnection?: (ws: ServerSocket) => void): Promise<{ url: string; got: Received; wss: WebSocketServer }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  servers.push(wss);
  await new Promise((r) => wss.once('listening', r));
  const got: Received = { text: [], binary: [], sockets: [] };
  wss.on('connection', (ws) => {
    got.sockets.push(ws);
    ws.on('message', (data, isBinary) => {
      if (isBinary) got.binary.push(data as Buffer);
      else got.text.push(JSON.parse((data as Buffer).toString('utf8')) as Record<string, unknown>);
    });
    onConnection?.(ws);
  });
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, got, wss };
}
const sine = (hz: number, n: number, start: number): Int16Array => Int16Array.from({ length: n }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * hz * (start + i)) / 8000)));
const until = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};
function channel(frames: Buffer[], channels: number, c: number): Int16Array {
  const all = Buffer.concat(frames);
  const pcm = new Int16Array(all.buffer, all.byteOffset, all.length / 2);
  return Int16Array.from({ length: pcm.length / channels }, (_, i) => pcm[i * channels + c]!);
}

describe('AudioStream', () => {
  it('sends start, stereo frames (user left, agent right), dtmf and mark events, and stop', async () => {
    const { url, got } = await server();
    const s = new AudioStream(streamTargetSchema.parse({ url }), { ...info, route: 'sales' });
    s.start();
    await until(() => got.text.length > 0);
    for (let f = 0; f < 100; f++) s.tap(sine(1000, 160, f * 160), sine(440, 160, f * 160));
    s.dtmf('5', 120);
    s.mark('consent', { result: 'explicit_yes' });
    await s.stop('hangup');
    await until(() => got.text.some((m) => m.event === 'stop'));
    expect(got.text[0]).toMatchObject({
      event: 'start', version: 1, call: { id: info.callId, tenant: 'acme', route: 'sales', from: '16315553602' },
      media: { encoding: 'audio/l16', sampleRate: 8000, channels: 2, layout: ['user', 'agent'], frameMs: 20 },
    });
    expect(got.binary).toHaveLength(100);
    expect(got.binary[0]!.length).toBe(640);
    expect(detectTone(channel(got.binary, 2, 0), 8000, 1000).detected).toBe(true);
    expect(detectTone(channel(got.binary, 2, 0), 8000, 440).detected).toBe(false);
    expect(detectTone(channel(got.binary, 2, 1), 8000, 440).detected).toBe(true);
    expect(got.text.map((m) => m.event)).toEqual(['start', 'dtmf', 'mark', 'stop']);
    expect(got.text[1]).toMatchObject({ digit: '5', durationMs: 120, timestampMs: 2000 });
    expect(got.text[3]).toMatchObject({ reason: 'hangup', framesSent: 100, framesDropped: 0 });
  });

  it('mixes to one channel and upsamples to 16 kHz when configured', async () => {
    const { url, got } = await server();
    const s = new AudioStream(streamTargetSchema.parse({ url, sampleRate: 16000, channels: 'mixed' }), info);
    s.start();
    await until(() => got.text.length > 0);
    const quiet = new Int16Array(160);
    for (let f = 0; f < 50; f++) s.tap(sine(1000, 160, f * 160), quiet);
    for (let f = 0; f < 50; f++) s.tap(quiet, sine(440, 160, f * 160));
    await s.stop('hangup');
    await until(() => got.binary.length === 100);
    expect(got.binary[0]!.length).toBe(640);
    const mono = channel(got.binary, 1, 0);
    expect(detectTone(mono.subarray(0, 16000), 16000, 1000).detected).toBe(true);
    expect(detectTone(mono.subarray(16000, 32000), 16000, 440).detected).toBe(true);
  });

  it('drops the oldest frames when the server does not read, without blocking the caller', async () => {
    const { url, got } = await server((ws) => {
      // Stop reading after the start message: TCP backs up (after megabytes) and pings go unanswered (at once).
      setTimeout(() => (ws as unknown as { _socket: { pause(): void } })._socket.pause(), 50);
    });
    const s = new AudioStream(streamTargetSchema.parse({ url, maxInFlightBytes: 16 * 1024, maxQueueFrames: 20 }), info);
    s.start();
    await until(() => got.text.length > 0);
    await new Promise((r) => setTimeout(r, 100));
    const frame = sine(1000, 160, 0);
    let worst = 0;
    for (let f = 0; f < 500; f++) {
      const t0 = performance.now();
      s.tap(frame, frame);
      worst = Math.max(worst, performance.now() - t0);
      if (f % 10 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    expect(s.framesDropped).toBeGreaterThan(400);
    expect(s.framesSent).toBeLessThan(16 * 1024 / 640 + 20);
    expect(worst).toBeLessThan(20);
    await s.stop('hangup', 200);
  });

  it('keeps every frame for a server that reads (pings answered)', async () => {
    const { url, got } = await server();
    const s = new AudioStream(streamTargetSchema.parse({ url, maxInFlightBytes: 16 * 1024, maxQueueFrames: 50 }), info);
    s.start();
    await until(() => got.text.length > 0);
    for (let f = 0; f < 500; f++) {
      s.tap(sine(1000, 160, f * 160), sine(440, 160, f * 160));
      if (f % 5 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await s.stop('hangup');
    await until(() => got.text.some((m) => m.event === 'stop'));
    expect(s.framesDropped).toBe(0);
    expect(got.binary).toHaveLength(500);
  });

  it('never throws toward the call when the server is unreachable, and reconnects with backoff once it is back', async () => {
    const { url, wss, got } = await server();
    const port = (wss.address() as AddressInfo).port;
    await new Promise((r) => wss.close(r));
    servers.length = 0;
    const connects: string[] = [];
    const s = new AudioStream(streamTargetSchema.parse({ url, reconnectMinMs: 50, reconnectMaxMs: 200, maxQueueFrames: 10 }), info, { onConnect: (r) => connects.push(r) });
    s.start();
    for (let f = 0; f < 30; f++) s.tap(sine(1000, 160, 0), sine(440, 160, 0));
    await until(() => connects.filter((c) => c === 'failed').length >= 2);
    expect(s.framesDropped).toBe(20);
    // The server comes back on the same port: the stream reconnects and says so in a new start message.
    const back = new WebSocketServer({ port, host: '127.0.0.1' });
    servers.push(back);
    const msgs: Record<string, unknown>[] = [];
    back.on('connection', (ws) => ws.on('message', (d, bin) => { if (!bin) msgs.push(JSON.parse(String(d)) as Record<string, unknown>); }));
    await until(() => msgs.length > 0, 5000);
    expect(msgs[0]).toMatchObject({ event: 'start' });
    // Mid-call loss: the server drops the socket; the stream comes back with reconnect: true.
    for (const c of back.clients) c.terminate();
    await until(() => msgs.filter((m) => m.event === 'start').length >= 2, 5000);
    expect(msgs.filter((m) => m.event === 'start')[1]).toMatchObject({ reconnect: true });
    await s.stop('hangup');
    void got;
  });
});
