import { isIPv4 } from 'node:net';
import { z } from 'zod';

/**
 * A media port: PortPool (media/port-pool.ts) refuses ports below 1024, so a lower one must fail at config load
 * (exit 78) rather than when the pools are built (exit 1).
 */
export const mediaPort = z.number().int().min(1024).max(65535);

/**
 * The address our SDP gives the PBX for RTP (c=IN IP4 …): a hostname, an IPv6 address or 0.0.0.0 (which SDP reads as
 * "hold") would let the gateway start and every call fail at its first offer.
 */
export const sipMediaAddress = z.string()
  .refine((a) => isIPv4(a) && a !== '0.0.0.0', 'an IPv4 address the PBX can send RTP to, such as 10.0.0.5 (not a hostname, IPv6 or 0.0.0.0)');

interface MediaPorts {
  rtpPortMin: number;
  rtpPortMax: number;
  webrtcPortMin: number;
  webrtcPortMax: number;
}

/**
 * Relations between the port keys: each range in order and holding an even port (both pools hand out even ports
 * only), and the two ranges apart, counting the RTCP port above each even SIP-side RTP port, or both pools would hand
 * out the same ports.
 */
export function checkMediaPorts(media: MediaPorts, ctx: z.RefinementCtx): void {
  let ordered = true;
  for (const [min, max] of [['rtpPortMin', 'rtpPortMax'], ['webrtcPortMin', 'webrtcPortMax']] as const) {
    if (media[min] > media[max]) {
      ordered = false;
      ctx.addIssue({ code: 'custom', path: ['media', max], message: `a port not below media.${min} (${media[min]})` });
    } else if (media[min] === media[max] && media[min] % 2 === 1) {
      ordered = false;
      ctx.addIssue({ code: 'custom', path: ['media', max], message: `a range holding an even port (media.${min} is the same odd port): ports are handed out in even numbers` });
    }
  }
  if (!ordered) return;
  const rtpTop = media.rtpPortMax % 2 === 0 ? media.rtpPortMax + 1 : media.rtpPortMax;
  if (media.webrtcPortMin <= rtpTop && media.rtpPortMin <= media.webrtcPortMax) {
    ctx.addIssue({
      code: 'custom', path: ['media', 'webrtcPortMin'],
      message: `a WebRTC port range (${media.webrtcPortMin}–${media.webrtcPortMax}) apart from the SIP-side RTP range media.rtpPortMin–rtpPortMax (${media.rtpPortMin}–${rtpTop}${rtpTop > media.rtpPortMax ? ', RTCP included' : ''}): both pools would hand out the same ports`,
    });
  }
}
