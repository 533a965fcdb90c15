/**
 * Media self-tests of the Meta double: the wrtc WhatsApp user against werift (the gateway's WebRTC stack) with and
 * without a=ice-lite, and a business-initiated call where the simulated device answers with real wrtc media.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { RTCPeerConnection, RTCRtpCodecParameters } from 'werift';
import { MetaDouble } from './peers/meta/meta-double.js';
import { WaUser } from './peers/meta/wa-user.js';
import { startWebhookReceiver } from './peers/meta/webhook-receiver.js';
import { staticMetaAnswer, validateBusinessSdp } from './peers/meta/sdp.js';
import { detectTone } from './audio/goertzel.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('WaUser <-> werift', () => {
  for (const iceLite of [true, false]) {
    test(`werift answers the Meta-like offer and receives RTP (offer ice-lite=${iceLite})`, async () => {
      const user = new WaUser({ waId: '16315553602', iceLite });
      const pc = new RTCPeerConnection({
        codecs: { audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 })] },
      });
      cleanups.push(async () => {
        await pc.close();
        await user.close();
      });
      let rtp = 0;
      pc.onTransceiverAdded.subscribe((t) => {
        t.onTrack.subscribe((track) => {
          track.onReceiveRtp.subscribe(() => rtp++);
        });
      });
      const offer = await user.createOffer();
      expect(offer.includes('a=ice-lite\r\n')).toBe(iceLite);
      await pc.setRemoteDescription({ type: 'offer', sdp: offer });
      await pc.setLocalDescription(await pc.createAnswer());
      await new Promise((r) => setTimeout(r, 200));
      await user.applyAnswer(pc.localDescription!.sdp);
      user.play({ toneHz: 1000, durationMs: 2000 });
      await user.waitConnected(8000);
      const t0 = Date.now();
      while (rtp < 10 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
      expect(rtp).toBeGreaterThanOrEqual(10);
    });
  }
});

describe('business-initiated call with wrtc media', () => {
  test('gateway-like offer -> device answers via connect webhook -> RINGING -> pick-up -> ACCEPTED; 1 kHz both ways', async () => {
    const rx = await startWebhookReceiver();
    const meta = new MetaDouble({
      appSecret: 's', accessToken: 't', phoneNumberId: '106540352242922', displayPhoneNumber: '447700900555', wabaId: '1', webhookUrl: rx.url,
    });
    const { graphBaseUrl } = await meta.start();
    const user = new WaUser({ waId: '14085551234', name: 'Bob' });
    const biz = new WaUser({ waId: 'business-media', iceLite: false }); // stands in for the gateway's media leg
    cleanups.push(async () => {
      await meta.stop();
      await rx.close();
      await user.close();
      await biz.close();
    });
    meta.addUser(user, { permission: 'temporary' });
    const offer = await biz.createOffer();
    expect(validateBusinessSdp(offer, { role: 'offer' }).errors).toEqual([]);
    const res = await fetch(`${graphBaseUrl}/v21.0/106540352242922/calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer t' },
      body: JSON.stringify({ messaging_product: 'whatsapp', to: '14085551234', action: 'connect', session: { sdp_type: 'offer', sdp: offer }, biz_opaque_callback_data: 'leg-9' }),
    });
    expect(res.status).toBe(200);
    const callId = ((await res.json()) as { calls: Array<{ id: string }> }).calls[0]!.id;
    expect((await meta.waitForConnect('14085551234')).id).toBe(callId);
    const connect = await rx.waitFor((w) => w.json?.entry[0]?.changes[0]?.value.calls?.[0]?.event === 'connect');
    const answer = connect.json!.entry[0]!.changes[0]!.value.calls![0]!.session!;
    expect(answer.sdp_type).toBe('answer');
    expect(answer.sdp).toMatch(/a=setup:active/);
    expect(answer.sdp).toMatch(/a=rtpmap:111 opus\/48000\/2/);
    await biz.applyAnswer(answer.sdp);
    await rx.waitFor((w) => w.json?.entry[0]?.changes[0]?.value.statuses?.[0]?.status === 'RINGING');
    await meta.userAnswers(callId);
    await user.waitConnected(5000);
    await biz.waitForMedia(5000);
    const h = biz.play({ toneHz: 1000, durationMs: 1000 });
    user.play({ toneHz: 1500, durationMs: 1000 });
    const started = await h.startedAt;
    await h.done;
    await new Promise((r) => setTimeout(r, 200));
    const rec = user.recording();
    const i = rec.indexAt(started + 300);
    expect(detectTone(rec.samples.subarray(i, i + 19200), 48000, 1000).detected).toBe(true);
    const back = biz.recording();
    const j = back.indexAt(started + 300);
    expect(detectTone(back.samples.subarray(j, j + 19200), 48000, 1500).detected).toBe(true);
    const timeline = meta.timeline().filter((e) => e.callId === callId).map((e) => e.what);
    expect(timeline).toEqual(['connect', 'connect', 'RINGING', 'ACCEPTED']);
    expect(meta.errors).toEqual([]);
  });
});

describe('media watchdog (§3.2)', () => {
  test('accepted call without business media -> terminate FAILED with 138021 after mediaStartTimeoutMs', async () => {
    const rx = await startWebhookReceiver();
    const meta = new MetaDouble({
      appSecret: 's', accessToken: 't', phoneNumberId: '1', displayPhoneNumber: '447700900555', wabaId: '2', webhookUrl: rx.url, mediaStartTimeoutMs: 800,
    });
    const { graphBaseUrl } = await meta.start();
    const user = new WaUser({ waId: '16315553602' });
    cleanups.push(async () => {
      await meta.stop();
      await rx.close();
      await user.close();
    });
    const { callId, offerSdp } = await meta.userCalls(user);
    const sdp = staticMetaAnswer(offerSdp); // nobody behind it: ICE never completes, no RTP
    const res = await fetch(`${graphBaseUrl}/v21.0/1/calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer t' },
      body: JSON.stringify({ messaging_product: 'whatsapp', call_id: callId, action: 'accept', session: { sdp_type: 'answer', sdp } }),
    });
    expect(res.status).toBe(200);
    const t0 = Date.now();
    const term = await rx.waitFor((w) => w.json?.entry[0]?.changes[0]?.value.calls?.[0]?.event === 'terminate', 5000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    const v = term.json!.entry[0]!.changes[0]!.value;
    expect(v.calls![0]!.status).toBe('FAILED');
    expect(v.calls![0]!.start_time).toMatch(/^\d+$/);
    expect(v.errors?.[0]?.code).toBe(138021);
    expect(meta.graph.calls.get(callId)!.state).toBe('ended');
  });
});
