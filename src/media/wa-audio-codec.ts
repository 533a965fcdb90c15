/**
 * The audio codec of the WhatsApp leg. Opus/48000 always (whatsapp-calling.md §4.1). G.711 µ-law or A-law at 8000
 * when the business number has `audio.additional_codecs` set at Meta (§2.6): Meta then transcodes to the WhatsApp
 * app's Opus on its side, so with a G.711 PBX the gateway runs no Opus codec at all (a fraction of the CPU per call,
 * one codec hop fewer). Which ones we offer or accept, in preference order, is media.whatsappCodecs.
 */
export type WhatsAppCodec = 'opus' | 'PCMU' | 'PCMA';

export const WHATSAPP_CODECS: readonly WhatsAppCodec[] = ['opus', 'PCMU', 'PCMA'];

export interface WhatsAppAudio {
  codec: WhatsAppCodec;
  payloadType: number;
  /** RTP clock: 48000 for Opus, 8000 for G.711. */
  clockRate: number;
}

/** The payload types an audio m-section offers for each of our codecs (static 0 and 8 count without an rtpmap). */
export interface OfferedAudio {
  opusPt: number | null;
  pcmuPt: number | null;
  pcmaPt: number | null;
  /** The m= line's payload types, in the order the sender prefers them. */
  order: readonly number[];
}

export function audioOf(codec: WhatsAppCodec, payloadType: number): WhatsAppAudio {
  return { codec, payloadType, clockRate: codec === 'opus' ? 48000 : 8000 };
}

/** What our offer carries for `codecs` (preference order): Opus on `opusPt`, G.711 on its static payload type. */
export function offeredAudio(codecs: readonly WhatsAppCodec[], opusPt: number): WhatsAppAudio[] {
  return codecs.map((c) => audioOf(c, c === 'opus' ? opusPt : c === 'PCMU' ? 0 : 8));
}

/** RTP timestamp ticks of one 20 ms frame. */
export function ticksPerFrame(a: Pick<WhatsAppAudio, 'clockRate'>): number {
  return a.clockRate / 50;
}

function offeredPt(o: OfferedAudio, codec: WhatsAppCodec): number | null {
  return codec === 'opus' ? o.opusPt : codec === 'PCMU' ? o.pcmuPt : o.pcmaPt;
}

/** Our choice among what an offer carries: the first of `preference` it offers. */
export function chooseByPreference(o: OfferedAudio, preference: readonly WhatsAppCodec[]): WhatsAppAudio | undefined {
  for (const codec of preference) {
    const pt = offeredPt(o, codec);
    if (pt !== null) return audioOf(codec, pt);
  }
  return undefined;
}

/** What an answer to our offer picked: the first payload type of its m= line that is one of `offered`. */
export function chooseByAnswer(o: OfferedAudio, offered: readonly WhatsAppCodec[]): WhatsAppAudio | undefined {
  for (const pt of o.order) {
    const codec = offered.find((c) => offeredPt(o, c) === pt);
    if (codec) return audioOf(codec, pt);
  }
  return undefined;
}
