import { describe, expect, it } from 'vitest';
import { numberRuleSchema } from '../config/pbx-trunk-schema.js';
import { chooseBusinessNumber, uriUser } from './business-number-choice.js';

const numbers = [{ phoneNumberId: '111' }, { phoneNumberId: '222' }, { phoneNumberId: '333' }, { phoneNumberId: '444' }];
const rules = [
  { source: '10.1.0.0/16', phoneNumberId: '222' },
  { username: 'pbx-b', phoneNumberId: '333' },
  { callingPrefix: '+4420', phoneNumberId: '444' },
  { dialedPrefix: '801', stripDialedPrefix: true, phoneNumberId: '333' },
  { dialedPrefix: '49', source: '10.2.0.0/16', phoneNumberId: '444' },
].map((r) => numberRuleSchema.parse(r));
const cfg = { numberRules: rules, defaultPhoneNumberId: '111' };
const input = { source: '192.0.2.1', callingUser: '+15550001111', dialedUser: '+447700900123' };

describe('chooseBusinessNumber', () => {
  it('the header first, even over a matching rule; an unknown id in it is refused', () => {
    expect(chooseBusinessNumber({ ...input, source: '10.1.2.3', header: '333' }, cfg, numbers)).toMatchObject({ phoneNumberId: '333', via: 'header' });
    expect(chooseBusinessNumber({ ...input, header: '999' }, cfg, numbers)).toMatchObject({ reason: 'unknown_number' });
  });

  it('a trunk the rules tie to a tenant cannot use the header to place a call from another tenant\'s number', () => {
    const tenanted = [{ phoneNumberId: '111', tenant: 'a' }, { phoneNumberId: '222', tenant: 'a' }, { phoneNumberId: '333', tenant: 'b' }, { phoneNumberId: '444', tenant: 'b' }];
    // Trunk 10.1/16 is tied to 222 (tenant a): 111 (a) is fine, 333 (b) is refused.
    expect(chooseBusinessNumber({ ...input, source: '10.1.2.3', header: '111' }, cfg, tenanted)).toMatchObject({ phoneNumberId: '111', via: 'header' });
    expect(chooseBusinessNumber({ ...input, source: '10.1.2.3', header: '333' }, cfg, tenanted)).toMatchObject({ reason: 'number_not_allowed' });
    expect(chooseBusinessNumber({ ...input, username: 'pbx-b', header: '444' }, cfg, tenanted)).toMatchObject({ phoneNumberId: '444' });
    // A trunk no rule names (rules by prefix only do not name a trunk) may pick any number.
    expect(chooseBusinessNumber({ ...input, callingUser: '+442071234567', header: '111' }, cfg, tenanted)).toMatchObject({ phoneNumberId: '111' });
  });

  it('per trunk: by source CIDR, or by the digest username', () => {
    expect(chooseBusinessNumber({ ...input, source: '10.1.2.3' }, cfg, numbers)).toEqual({ phoneNumberId: '222', via: 'rule', rule: 0, dialedUser: '+447700900123' });
    expect(chooseBusinessNumber({ ...input, username: 'pbx-b' }, cfg, numbers)).toMatchObject({ phoneNumberId: '333', rule: 1 });
    expect(chooseBusinessNumber({ ...input, username: 'pbx-c' }, cfg, numbers)).toMatchObject({ phoneNumberId: '111', via: 'default' });
  });

  it('per prefix: the calling party, or the dialled number (optionally stripped of a tech prefix)', () => {
    expect(chooseBusinessNumber({ ...input, callingUser: '+442071234567' }, cfg, numbers)).toMatchObject({ phoneNumberId: '444', rule: 2 });
    expect(chooseBusinessNumber({ ...input, callingUser: '442071234567' }, cfg, numbers)).toMatchObject({ phoneNumberId: '444' });
    expect(chooseBusinessNumber({ ...input, dialedUser: '801447700900123' }, cfg, numbers)).toEqual({ phoneNumberId: '333', via: 'rule', rule: 3, dialedUser: '447700900123' });
  });

  it('all conditions of a rule must hold; rules apply in list order', () => {
    expect(chooseBusinessNumber({ ...input, dialedUser: '+4915112345678' }, cfg, numbers)).toMatchObject({ via: 'default' });
    expect(chooseBusinessNumber({ ...input, source: '10.2.0.9', dialedUser: '+4915112345678' }, cfg, numbers)).toMatchObject({ phoneNumberId: '444', rule: 4 });
    // Rule 0 (source) comes before rule 2 (calling prefix) when both match.
    expect(chooseBusinessNumber({ ...input, source: '10.1.0.5', callingUser: '+442071234567' }, cfg, numbers)).toMatchObject({ phoneNumberId: '222', rule: 0 });
  });

  it('no rule: the default, else the only number, else a refusal', () => {
    expect(chooseBusinessNumber(input, { numberRules: [], defaultPhoneNumberId: '' }, [{ phoneNumberId: '111' }])).toMatchObject({ phoneNumberId: '111', via: 'only' });
    expect(chooseBusinessNumber(input, { numberRules: [], defaultPhoneNumberId: '' }, numbers)).toMatchObject({ reason: 'no_business_number' });
  });

  it('a rule needs a condition, and stripping needs a dialled prefix', () => {
    expect(numberRuleSchema.safeParse({ phoneNumberId: '1' }).success).toBe(false);
    expect(numberRuleSchema.safeParse({ callingPrefix: '44', stripDialedPrefix: true, phoneNumberId: '1' }).success).toBe(false);
  });

  it('uriUser: the decoded user part, or empty', () => {
    expect(uriUser('sip:%2B447700900123@gw;transport=udp')).toBe('+447700900123');
    expect(uriUser('<sips:pbx@10.0.0.1:5061>')).toBe('pbx');
    expect(uriUser('sip:gw.example')).toBe('');
  });
});
