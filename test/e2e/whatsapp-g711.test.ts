/**
 * G.711 toward WhatsApp (media.whatsappCodecs): a number with audio.additional_codecs at Meta gets PCMU/PCMA in the
 * user's offer beside Opus, and the gateway takes µ-law, so that a G.711 desk phone's audio passes with no Opus codec
 * on either side of the bridge. Real peers: libwebrtc as the user, baresip as the agent, drachtio-server between.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drachtioAvailable, firstMissing, noteSkipped } from '../peers/drachtio.js';
import { baresipAvailable, startBaresip, type BaresipAgent } from '../peers/sip/baresip.js';
import { WaUser } from '../peers/meta/index.js';
import { parseAudioPayloadTypes } from '../../src/media/webrtc-leg.js';
import { records, recordOf, startE2E, toneHeardByAgent, userTalksAndHearsAgent, waitFor, waitNoLiveCalls, type E2E } from './harness.js';
const skipReason = firstMissing(drachtioAvailable(), baresipAvailable());
if (skipReason) noteSkipped(skipReason, 2, 'G.711 toward WhatsApp');

describe.skipIf(skipReason !== undefined)('G.711 toward WhatsApp (audio.additional_codecs at Meta)', () => {
  let agent: BaresipAgent;
  let e2e: E2E;

  beforeAll(async () => {
    agent = await startBaresip({ toneHz: 440 });
    e2e = await startE2E({
      sipTarget: agent.uri,
      displayNumber: '447700900555',
      meta: { allowG711: true },
      config: { media: { whatsappCodecs: ['PCMU', 'PCMA', 'opus'] }, businessCalls: { allowedSources: ['127.0.0.1'] } },
    });
  }, 60_000);
  afterAll(async () => {
    await e2e?.stop();
    await agent?.stop();
  });

  it('answers the user in µ-law and carries 1 kHz to the agent and 440 Hz to the user with no Opus in the gateway', async () => {
    const { meta, gateway } = e2e;
    const user = new WaUser({ waId: '16315553602', name: 'Jane Doe', g711: true });
    try {
      const established = agent.waitEvent('CALL_ESTABLISHED', 15_000);
      const { callId, offerSdp } = await meta.userCalls(user);
      expect(parseAudioPayloadTypes(offerSdp)).toMatchObject({ opusPt: 111, pcmuPt: 0, pcmaPt: 8 });
      expect((await meta.waitForAction(callId, 'accept')).status).toBe(200);
      const call = meta.graph.calls.get(callId)!;
      // Meta's double checked both SDPs against its rules (G.711 allowed by the number's settings); accept = pre_accept.
      expect(parseAudioPayloadTypes(call.preAcceptSdp!)).toMatchObject({ order: [0, 126], opusPt: null });
      expect(call.acceptSdp).toBe(call.preAcceptSdp);
      await established;
      await userTalksAndHearsAgent(user, 'user (user-initiated, G.711 both legs)');

      const live = await waitFor(() => gateway.registry.list()[0], 'live call');
      expect(live.state).toBe('answered');

      const closed = agent.waitEvent('CALL_CLOSED', 10_000);
      await meta.userHangsUp(callId);
      await closed;
      await waitNoLiveCalls(gateway);
      expect((await toneHeardByAgent(agent, 1000)).detected).toBe(true);
      const record = await recordOf(gateway, callId);
      expect(record).toMatchObject({ outcome: 'answered', endedBy: 'whatsapp', quality: { whatsapp: { codec: 'PCMU' }, sip: { codec: 'PCMU' } } });
      expect(record.quality?.whatsapp?.packetsIn).toBeGreaterThan(100);
      expect(record.quality?.whatsapp?.lost).toBe(0);
    } finally {
      await user.close();
    }
  }, 60_000);

  it('offers G.711 first when the desk phone dials the user, follows the user\'s µ-law answer and carries audio both ways', async () => {
    const { meta, gateway, drachtio: d } = e2e;
    const user = new WaUser({ waId: '447700900123', name: 'Bob', g711: true });
    try {
      meta.addUser(user, { permission: 'temporary' });
      const established = agent.waitEvent('CALL_ESTABLISHED', 20_000);
      await agent.dial(`sip:+447700900123@127.0.0.1:${d.sipPort}`);
      const placed = await meta.waitForConnect('447700900123');
      expect(parseAudioPayloadTypes(placed.offerSdp)).toMatchObject({ order: [0, 8, 111, 126] });
      await waitFor(() => gateway.registry.list()[0]?.state === 'ringing' || undefined, 'RINGING reached the call');
      await meta.userAnswers(placed.id);
      await established;
      await userTalksAndHearsAgent(user, 'user (business-initiated, G.711 both legs)');

      const closed = agent.waitEvent('CALL_CLOSED', 10_000);
      await agent.hangup();
      await closed;
      await waitNoLiveCalls(gateway);
      expect((await toneHeardByAgent(agent, 1000, 'agent (business-initiated, G.711)')).detected).toBe(true);
      const record = (await records(gateway)).find((r) => r.waCallId === placed.id);
      expect(record).toMatchObject({ direction: 'business_initiated', outcome: 'answered', quality: { whatsapp: { codec: 'PCMU' } } });
      expect(meta.errors).toEqual([]);
    } finally {
      await user.close();
    }
  }, 60_000);
});
