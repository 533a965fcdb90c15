/**
 * Hold and blind transfer kept inside the gateway, with real peers. Hold: a sipp agent echoing RTP puts the call on
 * hold with a re-INVITE (a=sendonly) and resumes it (a=sendrecv); the WhatsApp user (libwebrtc) hears hold music
 * in between and its own echoed tone before and after. Transfer: a sipp agent sends REFER to a baresip agent playing
 * 440 Hz; the user then hears 440 Hz, the first agent gets NOTIFY 100/180/200 (sipfrag) and a BYE, and nothing at
 * all reaches WhatsApp but media (Meta refuses re-INVITE, UPDATE and REFER). Attended transfer: the REFER's Refer-To
 * embeds ?Replaces=<consultation dialog>; a sipp target checks that our INVITE carries it decoded as a Replaces header
 * on a Request-URI without "?", and echoes the user's tone once the call is moved to it.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectTone } from '../audio/goertzel.js';
import { generateTone } from '../audio/tone.js';
import { writeWav } from '../audio/wav.js';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { sippAvailable, startSipp, type SippScenario } from '../peers/sip/sipp.js';
import { baresipAvailable, startBaresip, type BaresipAgent } from '../peers/sip/baresip.js';
import { freePort } from '../peers/sip/ports.js';
import { WaUser, type MetaDouble } from '../peers/meta/index.js';
import { decodeG711 } from '../../src/media/g711.js';
import { recordOf, startE2E, waitFor, waitNoLiveCalls, type E2E } from './harness.js';

const drachtio = drachtioAvailable();
const sipp = sippAvailable();
const baresip = baresipAvailable();
const skipReason = firstMissing(drachtio, sipp, baresip);
if (skipReason) noteSkipped(skipReason, 6, 'hold and transfer');

const HOLD_HZ = 600;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the user heard during the last `ms`, checked for each frequency. */
/** The user calls, the gateway accepts, media is up, and the user plays 1 kHz (what the agents echo or hear). */
async function callWithTone(meta: MetaDouble, user: WaUser): Promise<string> {
  const { callId } = await meta.userCalls(user);
  await meta.waitForAction(callId, 'accept');
  await user.waitForMedia();
  user.play({ toneHz: 1000, levelDbfs: -12 });
  return callId;
}

function lastHeard(user: WaUser, ms: number, ...freqs: number[]) {
  const rec = user.recording();
  const n = Math.round((ms / 1000) * rec.sampleRate);
  const tail = rec.samples.subarray(Math.max(0, rec.samples.length - n));
  return Object.fromEntries(freqs.map((f) => [f, detectTone(tail, rec.sampleRate, f)]));
}

describe.skipIf(skipReason !== undefined)('hold and transfer inside the gateway', () => {
  let e2e: E2E;
  let agent2: BaresipAgent;
  let agentPort: number;

  beforeAll(async () => {
    agentPort = await freePort({ tcp: false });
    const musicFile = join(mkdtempSync(join(tmpdir(), 'wagw-hold-')), 'hold.wav');
    writeWav(musicFile, { sampleRate: 8000, samples: generateTone({ freqHz: HOLD_HZ, sampleRate: 8000, durationMs: 2000, levelDbfs: -12 }) });
    agent2 = await startBaresip({ toneHz: 440, user: 'agent2' });
    e2e = await startE2E({ sipTarget: `sip:agent1@127.0.0.1:${agentPort}`, config: {
      hold: { musicFile }, transfer: { onFailure: 'return', ringTimeoutMs: 8000 },
      // Below the ephemeral range (32768+) where peers pick their free ports, and apart from other suites' gateways.
      media: { rtpPortMin: 22000, rtpPortMax: 22099, webrtcPortMin: 22200, webrtcPortMax: 22399 },
    } });
  }, 60_000);
  afterAll(async () => {
    await e2e?.stop();
    await agent2?.stop();
  });

  it('hold music reaches the WhatsApp user during hold; the agent\'s echo comes back after resume', async () => {
    const { meta, gateway } = e2e;
    const agent = await startSipp({
      scenario: 'uas-answer-hold-resume' as SippScenario, port: agentPort, service: 'agent1', rtpEcho: true, timeoutSec: 40,
      keys: { holdafter: '4000', holdfor: '5000' },
    });
    const user = new WaUser({ waId: '447700900456', name: 'Ola Hold' });
    try {
      const callId = await callWithTone(meta, user);
      await sleep(2000);
      const before = lastHeard(user, 800, 1000, HOLD_HZ);
      expect(before[1000]!.detected).toBe(true);
      expect(before[HOLD_HZ]!.detected).toBe(false);

      const holds = async (event: string) => (await gateway.metrics.holds.get()).values.find((v) => v.labels.event === event)?.value ?? 0;
      for (let i = 0; i < 100 && (await holds('hold')) < 1; i++) await sleep(100);
      expect(await holds('hold')).toBe(1);
      await sleep(1500);
      const during = lastHeard(user, 1000, 1000, HOLD_HZ);
      console.log(`on hold: ${HOLD_HZ} Hz at ${during[HOLD_HZ]!.levelDbfs.toFixed(1)} dBFS, echo 1 kHz SNR ${during[1000]!.snrDb.toFixed(1)} dB`);
      expect(during[HOLD_HZ]!.detected).toBe(true);
      expect(during[1000]!.detected).toBe(false);
      expect(gateway.registry.byWhatsAppId(callId)?.state).toBe('answered');

      for (let i = 0; i < 100 && (await holds('resume')) < 1; i++) await sleep(100);
      expect(await holds('resume')).toBe(1);
      await sleep(1500);
      const after = lastHeard(user, 800, 1000, HOLD_HZ);
      expect(after[1000]!.detected).toBe(true);
      expect(after[HOLD_HZ]!.detected).toBe(false);

      // Nothing but media went to WhatsApp: pre_accept and accept, and no other Graph call.
      expect(meta.requests.filter((r) => r.callId === callId).map((r) => r.op)).toEqual(['pre_accept', 'accept']);
      await meta.userHangsUp(callId);
      await waitNoLiveCalls(gateway);
      expect(await recordOf(gateway, callId)).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp' });
      const result = await agent.done;
      expect(result.messages).toMatch(/a=recvonly/);
      expect(result.failed).toBe(0);
    } finally {
      await agent.stop();
      await user.close();
    }
  }, 60_000);

  it('a REFER from the agent moves the call to a second agent whose tone reaches the WhatsApp user', async () => {
    const { meta, gateway } = e2e;
    const agent1 = await startSipp({
      scenario: 'uas-answer-refer' as SippScenario, port: agentPort, service: 'agent1', rtpEcho: true, timeoutSec: 40,
      keys: { referafter: '3500', referto: agent2.uri },
    });
    const user = new WaUser({ waId: '447700900789', name: 'Tom Transfer' });
    try {
      const established = agent2.waitEvent('CALL_ESTABLISHED', 20_000);
      const callId = await callWithTone(meta, user);
      await sleep(2000);
      const before = lastHeard(user, 800, 1000, 440);
      expect(before[1000]!.detected).toBe(true);
      expect(before[440]!.detected).toBe(false);

      await established;
      const a1 = await agent1.done;
      expect(a1.messages).toMatch(/SIP\/2.0 202/);
      expect(a1.messages).toMatch(/Event: refer/);
      expect(a1.messages).toContain('SIP/2.0 100 Trying');
      expect(a1.messages).toContain('SIP/2.0 200 OK\r\n');
      expect(a1.messages).toMatch(/BYE sip:/);
      expect(a1.failed).toBe(0);
      await sleep(1500);
      const after = lastHeard(user, 1000, 1000, 440);
      console.log(`after transfer: 440 Hz at ${after[440]!.levelDbfs.toFixed(1)} dBFS, SNR ${after[440]!.snrDb.toFixed(1)} dB`);
      expect(after[440]!.detected).toBe(true);
      expect(after[1000]!.detected).toBe(false);
      const live = gateway.registry.byWhatsAppId(callId);
      expect(live?.state).toBe('answered');
      expect(live?.sipAgent).toContain('agent2');
      expect(meta.requests.filter((r) => r.callId === callId).map((r) => r.op)).toEqual(['pre_accept', 'accept']);

      const closed = agent2.waitEvent('CALL_CLOSED', 10_000);
      await meta.userHangsUp(callId);
      await closed;
      await waitNoLiveCalls(gateway);
      const record = await recordOf(gateway, callId);
      expect(record).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp' });
      expect(record.sipAgent).toContain('agent2');
      expect((await gateway.metrics.transfers.get()).values.find((v) => v.labels.result === 'completed')?.value).toBe(1);
    } finally {
      await agent1.stop();
      await user.close();
    }
  }, 60_000);
  it('a transfer whose target refuses (486) leaves the call with the first agent, as transfer.onFailure says', async () => {
    const { meta, gateway } = e2e;
    const refuser = await startSipp({ scenario: 'uas-refuse', service: 'busy', keys: { status: '486', reason: 'Busy Here' }, timeoutSec: 30 });
    const agent1 = await startSipp({
      scenario: 'uas-answer-refer-fail' as SippScenario, port: agentPort, service: 'agent1', rtpEcho: true, timeoutSec: 40,
      keys: { referafter: '2500', referto: refuser.uri },
    });
    const user = new WaUser({ waId: '447700900790', name: 'Fay Fail' });
    const returned = async () => (await gateway.metrics.transfers.get()).values.find((v) => v.labels.result === 'returned')?.value ?? 0;
    try {
      const callId = await callWithTone(meta, user);
      for (let i = 0; i < 100 && (await returned()) < 1; i++) await sleep(100);
      expect(await returned()).toBe(1);
      expect((await refuser.done).messages).toMatch(/SIP\/2.0 486/);
      await sleep(1500);
      const after = lastHeard(user, 800, 1000, HOLD_HZ);
      expect(after[1000]!.detected).toBe(true);
      expect(after[HOLD_HZ]!.detected).toBe(false);
      expect(gateway.registry.byWhatsAppId(callId)?.state).toBe('answered');
      expect(agent1.messages()).toContain('SIP/2.0 486 Busy Here');
      await meta.userHangsUp(callId);
      await waitNoLiveCalls(gateway);
      const a1 = await agent1.done;
      expect(a1.messages).toMatch(/BYE sip:/);
      expect(a1.failed).toBe(0);
      expect(await recordOf(gateway, callId)).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp' });
    } finally {
      await agent1.stop();
      await refuser.stop();
      await user.close();
    }
  }, 60_000);
  it('a re-INVITE that moves the agent\'s RTP address and changes the codec makes media follow', async () => {
    const { meta, gateway } = e2e;
    const newPort = await freePort({ tcp: false, even: true, span: 2 });
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(newPort, '127.0.0.1', () => r()));
    const pts = new Map<number, number>();
    const heard: number[] = [];
    const pcm = new Int16Array(1600);
    sock.on('message', (msg, rinfo) => {
      const pt = msg[1]! & 0x7f;
      pts.set(pt, (pts.get(pt) ?? 0) + 1);
      if (pt === 8) {
        const n = decodeG711('PCMA', msg, 12, msg.length - 12, pcm);
        for (let i = 0; i < n; i++) heard.push(pcm[i]!);
      }
      sock.send(msg, rinfo.port, rinfo.address); // echo from the new address
    });
    const agent = await startSipp({
      scenario: 'uas-answer-reinvite-move' as SippScenario, port: agentPort, service: 'agent1', rtpEcho: true, timeoutSec: 40,
      keys: { holdafter: '3000', newport: String(newPort), newcodec: 'PCMA', newpt: '8' },
    });
    const user = new WaUser({ waId: '447700900791', name: 'Mo Move' });
    const changes = async () => (await gateway.metrics.holds.get()).values.find((v) => v.labels.event === 'media_change')?.value ?? 0;
    try {
      const callId = await callWithTone(meta, user);
      for (let i = 0; i < 100 && (await changes()) < 1; i++) await sleep(100);
      expect(await changes()).toBe(1);
      await sleep(1500);
      expect(pts.get(8) ?? 0).toBeGreaterThan(40);
      expect(pts.get(0) ?? 0).toBe(0);
      expect(detectTone(Int16Array.from(heard.slice(-8000)), 8000, 1000).detected).toBe(true);
      expect(lastHeard(user, 800, 1000)[1000]!.detected).toBe(true);
      expect(agent.messages()).toMatch(/a=rtpmap:8 PCMA\/8000/);
      await meta.userHangsUp(callId);
      await waitNoLiveCalls(gateway);
      expect((await agent.done).failed).toBe(0);
    } finally {
      sock.close();
      await agent.stop();
      await user.close();
    }
  }, 60_000);
  it('attended transfer: Refer-To ?Replaces= becomes the Replaces header of the INVITE to the second agent, who then has the call', async () => {
    const { meta, gateway } = e2e;
    // The consultation dialog between agent1 and agent2 (made up: sipp agent2 only checks that it arrives intact).
    const replaces = 'cons-4711@pbx.example;to-tag=tt-99;from-tag=ff-42';
    const completed = async () => (await gateway.metrics.transfers.get()).values.find((v) => v.labels.result === 'completed')?.value ?? 0;
    const completedBefore = await completed();
    const udpBefore = e2e.udpHandles();
    // agent2 echoes RTP and agent1 does not: the user hears its own tone only once agent2 has the media.
    const agent2s = await startSipp({
      scenario: 'uas-answer-replaces' as SippScenario, service: 'agent2', rtpEcho: true, timeoutSec: 40,
      keys: { replacesre: replaces.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') },
    });
    const agent1 = await startSipp({
      scenario: 'uas-answer-refer' as SippScenario, port: agentPort, service: 'agent1', rtpEcho: false, timeoutSec: 40,
      keys: { referafter: '3500', referto: `${agent2s.uri}?Replaces=${encodeURIComponent(replaces)}` },
    });
    const user = new WaUser({ waId: '447700900792', name: 'Ada Attended' });
    try {
      const callId = await callWithTone(meta, user);
      await sleep(2000);
      expect(lastHeard(user, 800, 1000)[1000]!.detected).toBe(false);

      const a1 = await agent1.done;
      expect(a1.messages).toContain(`Refer-To: <${agent2s.uri}?Replaces=cons-4711%40pbx.example%3Bto-tag%3Dtt-99%3Bfrom-tag%3Dff-42>`);
      expect(a1.messages).toMatch(/SIP\/2.0 202/);
      expect(a1.messages).toContain('SIP/2.0 100 Trying');
      expect(a1.messages).toContain('SIP/2.0 180 Ringing');
      expect(a1.messages).toContain('SIP/2.0 200 OK\r\n');
      expect(a1.messages).toMatch(/BYE sip:/);
      expect(a1.failed).toBe(0);

      // sipp's check_it already failed agent2's call unless both matched; its 200 echoes what it saw.
      const seen = agent2s.messages();
      expect(seen).toContain(`INVITE ${agent2s.uri} SIP/2.0`);
      expect(seen).toContain(`Replaces: ${replaces}\r\n`);
      expect(seen).toMatch(/X-Seen-Replaces: *cons-4711@pbx\.example;to-tag=tt-99;from-tag=ff-42\r\n/);
      expect(seen).toMatch(/Referred-By: <sip:agent1@/);
      expect(seen).toMatch(/X-WA-Call-Id: /i);

      await sleep(1500);
      const after = lastHeard(user, 1000, 1000, HOLD_HZ);
      console.log(`after attended transfer: echoed 1 kHz at ${after[1000]!.levelDbfs.toFixed(1)} dBFS, SNR ${after[1000]!.snrDb.toFixed(1)} dB`);
      expect(after[1000]!.detected).toBe(true);
      expect(after[HOLD_HZ]!.detected).toBe(false);
      const live = gateway.registry.byWhatsAppId(callId);
      expect(live?.state).toBe('answered');
      expect(live?.sipAgent).toContain('agent2');
      expect(meta.requests.filter((r) => r.callId === callId).map((r) => r.op)).toEqual(['pre_accept', 'accept']);

      await meta.userHangsUp(callId);
      await waitNoLiveCalls(gateway);
      const a2 = await agent2s.done;
      expect(a2.messages).toMatch(/BYE sip:/);
      expect(a2.failed).toBe(0);
      expect(a2.successful).toBe(1);
      const record = await recordOf(gateway, callId);
      expect(record).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp' });
      expect(record.sipAgent).toContain('agent2');
      expect(await completed()).toBe(completedBefore + 1);
      expect(gateway.deps.media.pool.used).toBe(0);
    } finally {
      await agent1.stop();
      await agent2s.stop();
      await user.close();
    }
    await waitFor(() => e2e.udpHandles() <= udpBefore || undefined, 'UDP sockets to close', 5000);
  }, 60_000);

  it('a Refer-To with a malformed Replaces (no from-tag) is refused 400 and the call stays with the agent', async () => {
    const { meta, gateway } = e2e;
    const refused = async () => (await gateway.metrics.transfers.get()).values.find((v) => v.labels.result === 'refused')?.value ?? 0;
    const refusedBefore = await refused();
    const agent1 = await startSipp({
      scenario: 'uas-answer-refer-refused' as SippScenario, port: agentPort, service: 'agent1', rtpEcho: true, timeoutSec: 30,
      keys: { referafter: '1500', referto: 'sip:agent2@127.0.0.1:5999?Replaces=cons-1%40pbx%3Bto-tag%3Dt1' },
    });
    const user = new WaUser({ waId: '447700900793', name: 'Max Malformed' });
    try {
      const callId = await callWithTone(meta, user);
      const agentBefore = gateway.registry.byWhatsAppId(callId)?.sipAgent;
      expect(agentBefore).toBeTruthy();
      for (let i = 0; i < 100 && (await refused()) <= refusedBefore; i++) await sleep(100);
      expect(await refused()).toBe(refusedBefore + 1);
      await sleep(1000);
      expect(agent1.messages()).toContain('SIP/2.0 400 Malformed Replaces');
      expect(lastHeard(user, 800, 1000)[1000]!.detected).toBe(true);
      expect(gateway.registry.byWhatsAppId(callId)?.sipAgent).toBe(agentBefore);
      await meta.userHangsUp(callId);
      await waitNoLiveCalls(gateway);
      expect((await agent1.done).failed).toBe(0);
      expect(gateway.deps.media.pool.used).toBe(0);
    } finally {
      await agent1.stop();
      await user.close();
    }
  }, 60_000);
});
