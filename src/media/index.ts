/** The media plane's public surface, for calls/ and main.ts. */
export { Bridge, type BridgeOptions, type BridgeEvents, type BridgeDtmfEvent, type LegQuality, type MediaLegName, type SipMediaLeg, type WhatsAppMediaLeg } from './bridge.js';
export { DtmfReceiver, DtmfSender, type DtmfDigitEvent } from './dtmf.js';
export { IntervalFrameClock, ManualFrameClock, sharedFrameClock, type FrameClock } from './frame-clock.js';
export { decodeG711, encodeG711, G711_PAYLOAD_TYPE, type G711Law } from './g711.js';
export { JitterBuffer, JB_EMPTY, JB_LOST, type JitterBufferOptions } from './jitter-buffer.js';
export { OpusDecoder8k, OpusEncoder8k, opusFastPath, type OpusEncoderOptions } from './opus-codec.js';
export { PortPool, PortPoolExhaustedError } from './port-pool.js';
export { RtpLeg, type RtpLegOptions, type RtpLegStats, type RtpAddress } from './rtp-leg.js';
export { digitToEvent, eventToDigit, type DtmfDigit, type RtpHeader } from './rtp-packet.js';
export { estimateMos, RtpReceiveStats } from './stats.js';
export { silentLogger, type MediaLogger } from './types.js';
export {
  MediaSetupError, parseAudioPayloadTypes, UnanswerableOfferError, UnusableAnswerError, WebRtcLeg,
  type ReceivedRtpInfo, type SendRtpParams, type WebRtcLegOptions, type WebRtcLegState,
} from './webrtc-leg.js';
