import { describe, expect, it } from 'vitest';
import { targetRefusal } from './target-policy.js';

describe('targetRefusal (§3.6: no PSTN on any leg)', () => {
  const any = { allowedTargetHosts: [], refuseUserPhoneTargets: true };

  it('refuses user=phone URIs by default, and lets them through when switched off', () => {
    expect(targetRefusal('sip:+442071234567@gw.example.com;user=phone', any)).toMatch(/user=phone/);
    expect(targetRefusal('<sip:+442071234567@gw.example.com;user=phone>', any)).toMatch(/user=phone/);
    expect(targetRefusal('sip:+442071234567@gw.example.com;user=phone', { ...any, refuseUserPhoneTargets: false })).toBeNull();
    expect(targetRefusal('sip:queue@pbx.example.com;transport=tcp', any)).toBeNull();
  });

  it('with allowedTargetHosts, only names, *.domain hosts and IPv4/CIDR entries listed there', () => {
    const policy = { allowedTargetHosts: ['PBX.example.com', '*.agents.example.com', '10.1.0.0/16', '192.0.2.7'], refuseUserPhoneTargets: true };
    expect(targetRefusal('sip:queue@pbx.example.com', policy)).toBeNull();
    expect(targetRefusal('sips:alice@desk-4.agents.example.com:5061;transport=tls', policy)).toBeNull();
    expect(targetRefusal('sip:bob@10.1.200.3:5080', policy)).toBeNull();
    expect(targetRefusal('sip:192.0.2.7', policy)).toBeNull();
    expect(targetRefusal('sip:x@10.2.0.1', policy)).toMatch(/not in sip.allowedTargetHosts/);
    expect(targetRefusal('sip:x@agents.example.com.evil.net', policy)).toMatch(/not in sip.allowedTargetHosts/);
    expect(targetRefusal('sip:+15550001111@pstn-gw.example.net', policy)).toMatch(/pstn-gw.example.net/);
  });
});
