/**
 * The toll-fraud guard with SIP digest credentials and the choice of business number by trunk and prefix, end to end:
 * sipp as the PBX answering the gateway's 401 with digest credentials (sipp's [authentication], -au/-ap) through
 * drachtio-server, the Meta double behind Graph. Right credentials reach Graph `connect`; a wrong password gets 403,
 * a log line and a metric, and no Graph request at all.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { drachtioAvailable, noteSkipped, firstMissing } from '../peers/drachtio.js';
import { sippAvailable, startSipp, type SippRun, type SippScenario } from '../peers/sip/sipp.js';
import { PHONE_NUMBER_ID, startE2E, waitFor, waitNoLiveCalls, type E2E } from './harness.js';

const drachtio = drachtioAvailable();
const sipp = sippAvailable();
const skipReason = firstMissing(drachtio, sipp);
const TESTS = 5;
if (skipReason) noteSkipped(skipReason, TESTS, 'business-initiated digest auth and number choice');

/** A second business number, configured on the gateway but unknown to the double (its Graph requests fail). */
const OTHER_NUMBER_ID = '100000000000042';
let userSeq = 0;
const newUser = (): string => `4477009${String(300 + userSeq++).padStart(5, '0')}`;

describe.skipIf(skipReason !== undefined)('business-initiated: SIP digest guard and business number choice (sipp → gateway → Meta double)', () => {
  let e2e: E2E;
  let run: SippRun | undefined;

  const dial = async (service: string, scenario: SippScenario, auth?: { username: string; password: string }, keys: Record<string, string> = {}, durationMs = 1000): Promise<SippRun> => {
    const remote = `127.0.0.1:${e2e.drachtio.sipPort}`;
    // The digest covers the Request-URI (RFC 3261 §22.4), which SIPp only uses when told (-auth_uri).
    run = await startSipp({ scenario, service, remote, keys, durationMs, timeoutSec: 25, ...(auth ? { auth: { ...auth, uri: `${service}@${remote}` } } : {}) });
    return run;
  };
  const metric = async (name: string, labels: Record<string, string>): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${e2e.gateway.http.port}/metrics`)).text();
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    const line = text.split('\n').find((l) => l.startsWith(name) && want.every((w) => l.includes(w)));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  const requestsFor = (waId: string) => e2e.meta.requests.filter((r) => r.query.user_wa_id === waId || (r.body as { to?: string } | undefined)?.to === waId);

  beforeAll(async () => {
    e2e = await startE2E({
      sipTarget: 'sip:unused@127.0.0.1:5999',
      displayNumber: '447700900555',
      sipCredentials: new Map([['pbx-main', 'right-pass'], ['pbx-other', 'other-pass']]),
      config: {
        whatsapp: { numbers: [
          { phoneNumberId: PHONE_NUMBER_ID, displayNumber: '447700900555', sipTarget: 'sip:unused@127.0.0.1:5999' },
          { phoneNumberId: OTHER_NUMBER_ID, displayNumber: '447700900666', sipTarget: 'sip:unused@127.0.0.1:5999' },
        ] },
        businessCalls: {
          // 127.0.0.1 is not on the list: with `digest`, credentials alone decide.
          sourceGuard: 'digest', allowedSources: ['10.0.0.0/8'], digestRealm: 'e2e-gw',
          defaultPhoneNumberId: OTHER_NUMBER_ID,
          numberRules: [
            { username: 'pbx-main', phoneNumberId: PHONE_NUMBER_ID },
            { dialedPrefix: '801', stripDialedPrefix: true, phoneNumberId: PHONE_NUMBER_ID },
          ],
        },
      },
    });
  }, 60_000);
  afterEach(async () => {
    await run?.stop();
    run = undefined;
    await waitNoLiveCalls(e2e.gateway);
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  it('right credentials: 401 with a Digest challenge, then the authenticated INVITE reaches Graph connect and the call is answered', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId, name: 'Ann' }, { permission: 'permanent' });
    const challengedBefore = await metric('wagw_sip_digest_auth_total', { result: 'challenged' });
    const acceptedBefore = await metric('wagw_sip_digest_auth_total', { result: 'accepted' });
    const sip = await dial(`+${waId}`, 'uac-invite-auth', { username: 'pbx-main', password: 'right-pass' }, {}, 1500);
    const placed = await e2e.meta.waitForConnect(waId);
    const messages = sip.messages();
    expect(messages).toMatch(/SIP\/2.0 401/);
    expect(messages).toMatch(/WWW-Authenticate: Digest realm="e2e-gw", nonce="[^"]+", qop="auth", algorithm=MD5/i);
    expect(messages).toMatch(/Authorization: Digest username="pbx-main"/i);
    await waitFor(() => sip.messages().includes('SIP/2.0 180') || undefined, '180 Ringing at the PBX');
    await e2e.meta.userAnswers(placed.id);
    const result = await sip.done;
    expect(result.successful).toBe(1);
    // The username rule picked the number the double knows.
    expect(e2e.meta.requests.find((r) => r.op === 'connect' && (r.body as { to?: string }).to === waId)?.phoneNumberId).toBe(PHONE_NUMBER_ID);
    expect(await metric('wagw_sip_digest_auth_total', { result: 'challenged' })).toBe(challengedBefore + 1);
    expect(await metric('wagw_sip_digest_auth_total', { result: 'accepted' })).toBe(acceptedBefore + 1);
  });

  it('a wrong password: 403 after the challenge, a metric, and no Graph request at all', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'permanent' });
    const before = e2e.meta.requests.length;
    const rejectedBefore = await metric('wagw_sip_digest_auth_total', { result: 'rejected' });
    const refusedBefore = await metric('wagw_sip_invites_refused_total', { reason: 'digest_failed' });
    const result = await (await dial(waId, 'uac-invite-auth-refused', { username: 'pbx-main', password: 'wrong-pass' }, { status: '403' })).done;
    expect(result.successful).toBe(1);
    expect(result.messages).toMatch(/SIP\/2.0 401/);
    expect(result.messages).toMatch(/SIP\/2.0 403/);
    expect(result.messages).toMatch(/Warning: 399 wa-sip-gateway "SIP digest authentication failed"/);
    expect(e2e.meta.requests.length).toBe(before);
    expect(await metric('wagw_sip_digest_auth_total', { result: 'rejected' })).toBe(rejectedBefore + 1);
    expect(await metric('wagw_sip_invites_refused_total', { reason: 'digest_failed' })).toBe(refusedBefore + 1);
  });

  it('a digest computed over another URI than the Request-URI (SIPp without -auth_uri) is refused: it could be replayed', async () => {
    const waId = newUser();
    const before = e2e.meta.requests.length;
    const remote = `127.0.0.1:${e2e.drachtio.sipPort}`;
    run = await startSipp({ scenario: 'uac-invite-auth-refused', service: waId, remote, keys: { status: '403' }, timeoutSec: 25, auth: { username: 'pbx-main', password: 'right-pass' } });
    const result = await run.done;
    expect(result.successful).toBe(1);
    expect(result.messages).toMatch(new RegExp(`uri="sip:${remote.replace(/\./g, '\\.')}"`));
    expect(e2e.meta.requests.length).toBe(before);
  });

  it('no credentials at all: every INVITE gets 401 and nothing reaches Graph', async () => {
    const waId = newUser();
    e2e.meta.addUser({ waId }, { permission: 'permanent' });
    const before = e2e.meta.requests.length;
    const result = await (await dial(waId, 'uac-invite-refused', undefined, { status: '401' })).done;
    expect(result.successful).toBe(1);
    expect(result.messages).toMatch(/WWW-Authenticate: Digest realm="e2e-gw"/i);
    expect(e2e.meta.requests.length).toBe(before);
  });

  it('business number by prefix: 801 + number is stripped and placed from the rule’s number; no rule → the default number', async () => {
    const viaPrefix = newUser();
    e2e.meta.addUser({ waId: viaPrefix }, { permission: 'permanent' });
    const sip = await dial(`801${viaPrefix}`, 'uac-invite-auth-refused', { username: 'pbx-other', password: 'other-pass' }, { status: '486' });
    const placed = await e2e.meta.waitForConnect(viaPrefix);
    expect(e2e.meta.requests.find((r) => r.op === 'connect' && (r.body as { to?: string }).to === viaPrefix)?.phoneNumberId).toBe(PHONE_NUMBER_ID);
    await e2e.meta.userDeclines(placed.id);
    expect((await sip.done).successful).toBe(1);
    await waitNoLiveCalls(e2e.gateway);

    // Same trunk, no prefix: no rule applies, so the default (a number the double does not know) places the call.
    const viaDefault = newUser();
    e2e.meta.addUser({ waId: viaDefault }, { permission: 'permanent' });
    // The double does not know that number: GET call_permissions fails, the ledger knows no permission → 403.
    expect((await (await dial(viaDefault, 'uac-invite-auth-refused', { username: 'pbx-other', password: 'other-pass' }, { status: '403' })).done).successful).toBe(1);
    const seen = requestsFor(viaDefault);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((r) => r.phoneNumberId === OTHER_NUMBER_ID)).toBe(true);
  });
});
