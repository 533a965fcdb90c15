/**
 * The one place that decides which leg carries a call's media toward WhatsApp (whatsapp-calling.md §4.2, §4.5):
 * Meta's offer decides for user-initiated calls (UDP/TLS/RTP/SAVPF with a fingerprint → WebRtcLeg; RTP/SAVP with
 * a=crypto → SdesLeg), and config media.whatsappKeyExchange decides what we offer on business-initiated calls
 * (it must match the number's srtp_key_exchange_protocol setting at Meta).
 */
import { SdesLeg } from './sdes-leg.js';
import { isSdesSdp } from './sdes.js';
import { WebRtcLeg, type WebRtcLegOptions } from './webrtc-leg.js';

export type WhatsAppKeyExchange = 'dtls' | 'sdes';
export type WhatsAppLeg = WebRtcLeg | SdesLeg;

/** The key exchange an SDP from Meta asks for; anything not SDES is left to the DTLS leg to accept or refuse. */
export function keyExchangeOf(sdp: string): WhatsAppKeyExchange {
  return isSdesSdp(sdp) ? 'sdes' : 'dtls';
}

/** Answers Meta's offer with the leg it asks for; throws UnanswerableOfferError or MediaSetupError. */
export function answerWhatsAppOffer(offerSdp: string, opts: WebRtcLegOptions): Promise<WhatsAppLeg> {
  return keyExchangeOf(offerSdp) === 'sdes' ? SdesLeg.answer(offerSdp, opts) : WebRtcLeg.answer(offerSdp, opts);
}

/** Our offer toward Meta (business-initiated); the leg's setRemoteAnswer() applies Meta's answer. */
export function offerWhatsAppLeg(keyExchange: WhatsAppKeyExchange, opts: WebRtcLegOptions): Promise<WhatsAppLeg> {
  return keyExchange === 'sdes' ? SdesLeg.offer(opts) : WebRtcLeg.offer(opts);
}

export function whatsAppLegKeyExchange(leg: WhatsAppLeg): WhatsAppKeyExchange {
  return leg instanceof SdesLeg ? 'sdes' : 'dtls';
}
