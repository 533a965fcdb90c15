import { describe, expect, it } from 'vitest';
import type { SipReferRequest } from '../sip/agent.js';
import { planTransfer } from './transfer.js';

function refer(referTo: string): SipReferRequest {
  return { referTo, referToUri: '', header: () => undefined, accept: () => undefined, reject: () => undefined };
}

describe('planTransfer', () => {
  it('blind: the Refer-To URI, no extra headers', () => {
    expect(planTransfer(refer('<sip:agent2@pbx:5080>'))).toEqual({ ok: true, target: { uri: 'sip:agent2@pbx:5080', headers: {}, dropped: [] } });
  });

  it('attended: Replaces (decoded once) and other safe headers become INVITE headers; the URI loses its ?part', () => {
    const plan = planTransfer(refer('<sip:agent2@pbx?Replaces=cons-77%40pbx%3Bto-tag%3Daa%3Bfrom-tag%3Dbb&Require=replaces&Accept-Contact=*%3Baudio>'));
    expect(plan).toEqual({
      ok: true,
      target: {
        uri: 'sip:agent2@pbx',
        headers: { Replaces: 'cons-77@pbx;to-tag=aa;from-tag=bb', Require: 'replaces', 'Accept-Contact': '*;audio' },
        replaces: 'cons-77@pbx;to-tag=aa;from-tag=bb',
        dropped: [],
      },
    });
  });

  it('never copies headers the SIP stack owns or that could redirect the call', () => {
    const plan = planTransfer(refer(
      '<sip:agent2@pbx?replaces=c%3Bto-tag%3D1%3Bfrom-tag%3D2&Call-ID=evil&From=%3Csip%3Ax%40y%3E&To=z&Via=v&CSeq=1%20INVITE&Content-Type=text%2Fplain&Route=%3Csip%3Aevil%3E&Contact=c&Max-Forwards=1>',
    ));
    expect(plan.ok).toBe(true);
    if (!plan.ok) return;
    expect(plan.target.headers).toEqual({ Replaces: 'c;to-tag=1;from-tag=2' });
    expect(plan.target.dropped).toEqual(['Call-ID', 'From', 'To', 'Via', 'CSeq', 'Content-Type', 'Route', 'Contact', 'Max-Forwards']);
  });

  it('repeated Require values become one list', () => {
    const plan = planTransfer(refer('<sip:a@b?Require=replaces&Require=100rel>'));
    expect(plan.ok && plan.target.headers).toEqual({ Require: 'replaces, 100rel' });
  });

  it.each([
    ['<sip:a@b?Replaces=abc%3Bto-tag%3D1>', 'Malformed Replaces'],
    ['<sip:a@b?Replaces=>', 'Malformed Replaces'],
    ['<sip:a@b?Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2&Replaces=b%3Bto-tag%3D1%3Bfrom-tag%3D2>', 'Malformed Replaces'],
    ['<sip:a@b?Replaces=abc%ZZ>', 'Bad Refer-To'],
    ['<tel:+441234>', 'Bad Refer-To'],
    ['<>', 'Bad Refer-To'],
  ])('refuses %s with 400 %s and a detail for the log', (referTo, reason) => {
    const plan = planTransfer(refer(referTo));
    expect(plan).toMatchObject({ ok: false, status: 400, reason });
    expect(!plan.ok && plan.detail.length).toBeGreaterThan(5);
  });
});
