import { z } from 'zod';

/**
 * businessCalls settings for PBX trunks (issue 5): which toll-fraud guard applies to INVITEs from the PBX, the SIP
 * digest realm, and the rules choosing the business number that places a call. The credentials themselves are
 * secrets (WAGW_SIP_CREDENTIALS), never config.
 */

const cidr = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/, 'an IPv4 address or CIDR such as 10.0.0.0/8');
const prefix = z.string().regex(/^\+?\d{1,15}$/, 'leading digits such as 44 or +4420');

/** One number rule: every condition given must hold; the first matching rule (in list order) wins. */
export const numberRuleSchema = z.strictObject({
  // Per trunk: the INVITE's source address (IPv4 or CIDR) and/or the digest username it authenticated as.
  source: cidr.optional(),
  username: z.string().min(1).optional(),
  // Per prefix: leading digits of the calling party (From user) or of the dialled number (Request-URI user); '+' ignored.
  callingPrefix: prefix.optional(),
  dialedPrefix: prefix.optional(),
  // Remove dialedPrefix from the Request-URI user before reading the WhatsApp number (a PBX "tech prefix" such as 801).
  stripDialedPrefix: z.boolean().default(false),
  phoneNumberId: z.string().regex(/^\d+$/, 'a numeric Graph phone-number id'),
}).refine((r) => r.source !== undefined || r.username !== undefined || r.callingPrefix !== undefined || r.dialedPrefix !== undefined, {
  message: 'at least one of source, username, callingPrefix, dialedPrefix',
}).refine((r) => !r.stripDialedPrefix || r.dialedPrefix !== undefined, { message: 'stripDialedPrefix needs a dialedPrefix' });

export type NumberRule = z.infer<typeof numberRuleSchema>;

export const pbxTrunkFields = {
  // Toll-fraud guard for INVITEs from the PBX: allowList = allowedSources only; digest = SIP digest credentials
  // only (WAGW_SIP_CREDENTIALS); both = an allowed source that also authenticates; either = an allowed source, or
  // any source that authenticates.
  sourceGuard: z.enum(['allowList', 'digest', 'both', 'either']).default('allowList'),
  // Realm of the WWW-Authenticate challenge.
  digestRealm: z.string().regex(/^[^"\\\r\n]{1,64}$/, 'a realm of 1..64 characters without quotes').default('wa-sip-gateway'),
  // A challenge's nonce is good for this long; later the PBX gets a new challenge with stale=true.
  digestNonceTtlSeconds: z.number().int().min(10).max(3600).default(300),
  // Which business number places a call, after an X-WA-Phone-Number-Id header and before defaultPhoneNumberId.
  numberRules: z.array(numberRuleSchema).default([]),
};

/** numberRules must name configured business numbers. */
export function checkNumberRuleRefs(
  cfg: { whatsapp: { numbers: readonly { phoneNumberId: string }[] }; businessCalls: { numberRules: readonly NumberRule[]; defaultPhoneNumberId: string } },
  ctx: z.RefinementCtx,
): void {
  const ids = new Set(cfg.whatsapp.numbers.map((n) => n.phoneNumberId));
  cfg.businessCalls.numberRules.forEach((r, i) => {
    if (!ids.has(r.phoneNumberId)) ctx.addIssue({ code: 'custom', path: ['businessCalls', 'numberRules', i, 'phoneNumberId'], message: 'the phoneNumberId of one of whatsapp.numbers' });
  });
}
