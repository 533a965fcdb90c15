import { describe, expect, it } from 'vitest';
import { MalformedWebhookError, dedupeKey, parseWebhook, type PermissionReplyEvent } from './events.js';

const envelope = (field: string, value: object) => ({ object: 'whatsapp_business_account', entry: [{ id: 'WABA', changes: [{ field, value }] }] });
const metadata = { display_phone_number: '13175551399', phone_number_id: '436666719526789' };

describe('parseWebhook', () => {
  it('reads account_update and account_settings_update as notices for the operator (§1.7), not as ignored items', () => {
    const r1 = parseWebhook(envelope('account_update', {
      event: 'ACCOUNT_RESTRICTION', restriction_info: { restriction_type: 'RESTRICTED_BUSINESS_INITIATED_CALLING', expiration: 1767225600 },
    }));
    expect(r1.notices).toEqual([{ field: 'account_update', kind: 'ACCOUNT_RESTRICTION', details: { restrictionType: 'RESTRICTED_BUSINESS_INITIATED_CALLING', expiration: '1767225600' } }]);
    expect(r1.ignored).toBe(0);
    const r2 = parseWebhook(envelope('account_settings_update', {
      type: 'phone_number_settings',
      phone_number_settings: { phone_number_id: '106540352242922', calling: { status: 'ENABLED', srtp_key_exchange_protocol: 'SDES', sip: { status: 'DISABLED' } } },
    }));
    expect(r2.notices).toEqual([{ field: 'account_settings_update', kind: 'phone_number_settings', details: { phoneNumberId: '106540352242922', status: 'ENABLED', srtpKeyExchangeProtocol: 'SDES', sipStatus: 'DISABLED' } }]);
  });

  it('rejects something that is not a WhatsApp Business envelope', () => {
    expect(() => parseWebhook({ object: 'page', entry: [] })).toThrow(MalformedWebhookError);
    expect(() => parseWebhook('hello')).toThrow(MalformedWebhookError);
  });

  it('reads a terminate with string times, mixed-case status and value-level errors', () => {
    const { events } = parseWebhook(envelope('calls', {
      metadata,
      calls: [{ id: 'wacid.1', from: '1', to: '2', event: 'terminate', timestamp: '1671644944', status: 'Failed' }],
      errors: [{ code: 138021, message: 'Media receive timeout' }],
    }));
    expect(events[0]).toMatchObject({ kind: 'terminate', callId: 'wacid.1', status: 'FAILED', errorCodes: [138021], timestamp: 1671644944 });
    expect(events[0]).not.toHaveProperty('startTime', expect.anything());
  });

  it('reads a connect without direction or contacts (Meta step-by-step sample) as user-initiated', () => {
    const { events } = parseWebhook(envelope('calls', {
      metadata, calls: [{ id: 'wacid.2', from: '16315553602', to: '13175551399', event: 'connect', timestamp: '1', session: { sdp_type: 'offer', sdp: 'v=0' } }],
    }));
    expect(events[0]).toMatchObject({ kind: 'connect', direction: 'USER_INITIATED', userWaId: '16315553602', sdp: 'v=0' });
  });

  it('reads the legacy connection.webrtc.sdp when session is absent', () => {
    const { events } = parseWebhook(envelope('calls', {
      metadata, calls: [{ id: 'wacid.3', from: '1', to: '2', event: 'connect', direction: 'BUSINESS_INITIATED', timestamp: '1', connection: { webrtc: { sdp: 'v=0 legacy' } } }],
    }));
    expect(events[0]).toMatchObject({ kind: 'connect', direction: 'BUSINESS_INITIATED', sdpType: 'answer', sdp: 'v=0 legacy' });
  });

  it('reads call statuses and ignores message statuses', () => {
    const { events, ignored } = parseWebhook(envelope('calls', {
      metadata,
      statuses: [
        { id: 'wacid.4', type: 'call', status: 'RINGING', timestamp: '5', recipient_id: '12185552828', biz_opaque_callback_data: 'gw-1' },
        { id: 'wamid.x', type: 'message', status: 'delivered', timestamp: '5' },
      ],
    }));
    expect(events).toEqual([expect.objectContaining({ kind: 'status', status: 'RINGING', bizOpaque: 'gw-1' })]);
    expect(ignored).toBe(1);
  });

  it('reads a call permission reply on field messages', () => {
    const { events } = parseWebhook(envelope('messages', {
      metadata,
      messages: [{ from: '16315553602', id: 'wamid.1', timestamp: '1767168000', type: 'interactive',
        interactive: { type: 'call_permission_reply', call_permission_reply: { response: 'accept', is_permanent: false, expiration_timestamp: '1768550400', response_source: 'user_action' } } }],
    }));
    expect(events[0]).toMatchObject({ kind: 'permission_reply', messageId: 'wamid.1', userWaId: '16315553602', response: 'accept', expiresAt: 1768550400, isPermanent: false });
  });

  it('keys a permission reply by business number and wamid, so one user answering two numbers in a second is two replies', () => {
    const reply: PermissionReplyEvent = { kind: 'permission_reply', phoneNumberId: '436666719526789', displayNumber: '13175551399',
      timestamp: 1767168000, messageId: 'wamid.1', userWaId: '16315553602', response: 'accept', isPermanent: true };
    expect(dedupeKey(reply)).toBe(dedupeKey({ ...reply }));
    expect(dedupeKey({ ...reply, phoneNumberId: '106540352242922', messageId: 'wamid.2' })).not.toBe(dedupeKey(reply));
    expect(dedupeKey({ ...reply, messageId: 'wamid.2' })).not.toBe(dedupeKey(reply));
    const { messageId: _, ...noId } = reply;
    expect(dedupeKey({ ...noId, phoneNumberId: '106540352242922' })).not.toBe(dedupeKey(noId));
    expect(dedupeKey({ ...noId, response: 'reject' })).not.toBe(dedupeKey(noId));
  });

  it('a caller with from "" is known by the contact wa_id, else the business-scoped from_user_id (§1.2)', () => {
    const call = { id: 'wacid.6', from: '', to: '13175551399', event: 'connect', timestamp: '1', session: { sdp_type: 'offer', sdp: 'v=0' } };
    const scoped = parseWebhook(envelope('calls', { metadata, calls: [{ ...call, from_user_id: 'US.13491208655302741918' }] })).events[0];
    expect(scoped).toMatchObject({ kind: 'connect', from: '', userWaId: 'US.13491208655302741918' });
    const withContact = parseWebhook(envelope('calls', { metadata, contacts: [{ wa_id: '16315553602', profile: { name: 'Jane' } }], calls: [call] })).events[0];
    expect(withContact).toMatchObject({ userWaId: '16315553602', profileName: 'Jane' });
  });

  it('hands back a value-level error webhook without calls (131044 on user-initiated calls, §1.5)', () => {
    const result = parseWebhook(envelope('calls', {
      metadata, errors: [{ code: 131044, title: 'Payment method missing', error_data: { details: 'no valid payment method' } }],
    }));
    expect(result.events).toEqual([]);
    expect(result.errors).toEqual([{ phoneNumberId: '436666719526789', code: 131044, message: 'Payment method missing', details: 'no valid payment method' }]);
  });

  it('a user-initiated connect without SDP is kept (the flow rejects it); a business-initiated one is skipped', () => {
    const call = { id: 'wacid.7', from: '16315553602', to: '13175551399', event: 'connect', timestamp: '1' };
    expect(parseWebhook(envelope('calls', { metadata, calls: [call] })).events[0]).toMatchObject({ kind: 'connect', direction: 'USER_INITIATED', sdp: '' });
    expect(parseWebhook(envelope('calls', { metadata, calls: [{ ...call, direction: 'BUSINESS_INITIATED' }] })).events).toEqual([]);
  });

  it('skips a call item without an id instead of failing the batch', () => {
    const { events, ignored, malformed } = parseWebhook(envelope('calls', { metadata, calls: [{ event: 'connect' }, { id: 'wacid.5', event: 'terminate', status: 'COMPLETED', timestamp: '2' }] }));
    expect(events).toHaveLength(1);
    expect(ignored).toBe(0);
    expect(malformed).toEqual([{ field: 'calls', reason: 'unusable_call', items: 1, ids: [] }]);
  });

  it('reports unusable items by reason (an unknown event, a status Meta does not send, a permission reply without response); ordinary messages are only ignored', () => {
    const calls = envelope('calls', {
      metadata,
      calls: [{ id: 'wacid.8', event: 'transfer', timestamp: '1' }, { id: 'wacid.9', event: 'connect', direction: 'BUSINESS_INITIATED', timestamp: '1' }],
      statuses: [{ id: 'wacid.10', type: 'call', status: 'COMPLETED', timestamp: '1' }],
    });
    expect(parseWebhook(calls).malformed).toEqual([
      { field: 'calls', reason: 'unusable_call', items: 2, ids: ['wacid.8', 'wacid.9'] },
      { field: 'calls', reason: 'unusable_status', items: 1, ids: ['wacid.10'] },
    ]);
    const messages = envelope('messages', {
      metadata,
      messages: [
        { from: '16315553602', id: 'wamid.T', timestamp: '1', type: 'text', text: { body: 'hello' } },
        { from: '16315553602', id: 'wamid.R', timestamp: '1', type: 'interactive', interactive: { type: 'call_permission_reply', call_permission_reply: { is_permanent: false } } },
      ],
    });
    const r = parseWebhook(messages);
    expect(r.events).toEqual([]);
    expect(r.ignored).toBe(1);
    expect(r.malformed).toEqual([{ field: 'messages', reason: 'unusable_permission_reply', items: 1, ids: ['wamid.R'] }]);
  });

  it('a calls or messages change without metadata.phone_number_id hands on no event and reports it as malformed', () => {
    const { events, malformed } = parseWebhook({ object: 'whatsapp_business_account', entry: [{ id: 'WABA', changes: [
      { field: 'calls', value: { metadata: { display_phone_number: '13175551399' }, calls: [{ id: 'wacid.NOPN', from: '1', to: '2', event: 'connect', timestamp: '1', session: { sdp_type: 'offer', sdp: 'v=0' } }] } },
      { field: 'calls', value: { calls: [{ id: 'wacid.NOMETA', from: '1', to: '2', event: 'terminate', timestamp: '1', status: 'COMPLETED' }] } },
      { field: 'calls', value: { metadata, calls: [{ id: 'wacid.OK', from: '1', to: '2', event: 'terminate', timestamp: '1', status: 'COMPLETED' }] } },
    ] }] });
    expect(events.map((e) => ('callId' in e ? e.callId : ''))).toEqual(['wacid.OK']);
    expect(malformed).toEqual([
      { field: 'calls', reason: 'no_phone_number_id', items: 1, ids: ['wacid.NOPN'] },
      { field: 'calls', reason: 'no_phone_number_id', items: 1, ids: ['wacid.NOMETA'] },
    ]);
  });
});
