import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { Call, type CallContext } from './call.js';
import { CallEvents, type CallEvent } from './events.js';
import { CallRegistry } from './registry.js';

const ctx: CallContext = { direction: 'user_initiated', tenant: 't', phoneNumberId: '1', businessNumber: '13175551399', userWaId: '16315553602' };

describe('call lifecycle events and the record write', () => {
  it('a call admitted after its first transition still announces its state; each call emits ended once, after its record', async () => {
    const events = new CallEvents();
    const seen: CallEvent[] = [];
    events.subscribe((e) => seen.push(e));
    const registry = new CallRegistry(10, createLogger('silent'), events);
    const written: string[] = [];
    const call = new Call(ctx, createLogger('silent'), createMetrics(), (r) => { written.push(r.id); });
    call.transition('offered', 'connect');
    registry.add(call);
    call.transition('pre_accepted', 'ok');
    call.transition('ringing', 'invite');
    await Promise.all([call.end({ by: 'sip', outcome: 'busy', cause: 'sip_486' }), call.end({ by: 'gateway', outcome: 'failed', cause: 'late' })]);
    expect(seen.map((e) => e.type)).toEqual(['call.offered', 'call.ringing', 'call.ended']);
    expect(seen.at(-1)).toMatchObject({ outcome: 'busy', cause: 'sip_486', state: 'ended' });
    expect(written).toEqual([call.id]);
  });

  it('a record that cannot be written is logged whole and counted, and the call still ends', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({ write(c: Buffer, _e, cb) { lines.push(JSON.parse(String(c)) as Record<string, unknown>); cb(); } });
    const metrics = createMetrics();
    const call = new Call({ ...ctx, userName: 'Jane' }, createLogger('info', sink), metrics, async () => { throw new Error('disk full'); });
    call.bindIds({ waCallId: 'wacid.X' });
    call.transition('offered', 'connect');
    const record = await call.end({ by: 'gateway', outcome: 'rejected', cause: 'capacity' });
    const failed = lines.find((l) => l.msg === 'call record could not be written');
    expect(failed).toMatchObject({ err: 'disk full', record: { id: call.id, waCallId: 'wacid.X', outcome: 'rejected', cause: 'capacity', userName: 'Jane' } });
    expect(record.id).toBe(call.id);
    expect((await metrics.registry.getSingleMetric('wagw_call_records_total')!.get()).values).toEqual([expect.objectContaining({ labels: { result: 'failed' }, value: 1 })]);
    expect((await metrics.registry.getSingleMetric('wagw_calls_offered_total')!.get()).values[0]?.value).toBe(1);
  });

  it('a throwing listener neither breaks the call nor starves the other listeners', async () => {
    const events = new CallEvents();
    const seen: string[] = [];
    events.subscribe(() => { throw new Error('bad wallboard'); });
    events.subscribe((e) => seen.push(e.type));
    const registry = new CallRegistry(10, createLogger('silent'), events);
    const call = new Call(ctx, createLogger('silent'), createMetrics(), () => undefined);
    registry.add(call);
    expect(call.transition('offered', 'connect')).toBe(true);
    await call.end({ by: 'whatsapp', outcome: 'cancelled', cause: 'whatsapp_hangup' });
    expect(seen).toEqual(['call.offered', 'call.ended']);
  });
});
