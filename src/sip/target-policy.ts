/**
 * Where the gateway may send an INVITE. Meta's terms forbid the PSTN on any leg of a WhatsApp call (whatsapp-calling.md
 * §3.6), and targets come from many places (routes, the routing hook, an agent's REFER, click-to-call), so the one
 * check sits where every INVITE leaves (SipAgent.invite):
 *   - `user=phone` names a telephone number for a gateway to the phone network (RFC 3261 §19.1.1): refused unless
 *     sip.refuseUserPhoneTargets is off (a PBX that uses it for its own extensions);
 *   - with sip.allowedTargetHosts set, only those hosts: a name (case-insensitive), `*.example.com` for a domain's
 *     hosts, or an IPv4 address or CIDR. Empty = any host (the PBX is trusted to stay on VoIP).
 */
import { isIPv4 } from 'node:net';
import { sourceAllowed } from '../calls/source-allow-list.js';
import { uriHost } from './headers.js';

export interface TargetPolicy {
  allowedTargetHosts: readonly string[];
  refuseUserPhoneTargets: boolean;
}

/** Why an INVITE to `uri` is not allowed, or null when it is. */
export function targetRefusal(uri: string, policy: TargetPolicy): string | null {
  if (policy.refuseUserPhoneTargets && /;user=phone(?=[;?>]|$)/i.test(uri)) return 'a user=phone URI (the phone network is not allowed, §3.6)';
  if (policy.allowedTargetHosts.length === 0) return null;
  const host = uriHost(uri);
  if (!host) return 'no host in the URI';
  return policy.allowedTargetHosts.some((entry) => hostMatches(host, entry.toLowerCase())) ? null : `host ${host} is not in sip.allowedTargetHosts`;
}

function hostMatches(host: string, entry: string): boolean {
  if (entry.startsWith('*.')) return host.endsWith(entry.slice(1));
  if (isIPv4(host) && /^\d+\.\d+\.\d+\.\d+(\/\d{1,2})?$/.test(entry)) return sourceAllowed(host, [entry]);
  return host === entry;
}
