import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { configSchema } from '../config/schema.js';
import type { ConnectEvent } from '../whatsapp/events.js';
import type { CallRecord } from '../store/call-record.js';
import { CallRegistry } from './registry.js';
import type { CallDeps } from './deps.js';
import { dispatchEvent } from './dispatch.js';

const connect: ConnectEvent = {
  kind: 'connect', phoneNumberId: '436666719526789', displayNumber: '13175551399', timestamp: Math.floor(Date.now() / 1000),
  callId: 'wacid.BUG', direction: 'USER_INITIATED', from: '16315553602', to: '13175551399', sdpType: 'offer', sdp: 'v=0\r\n',
};

/** Deps whose calls never get past setup (routing and the SDP answer never finish): for admission and deadlines. */
function stuckInSetup(maxConcurrent: number, config: object) {
  const logger = createLogger('silent');
  const registry = new CallRegistry(maxConcurrent, logger);
  const written: CallRecord[] = [];
  const deps = {
    config: configSchema.parse(config), logger, metrics: createMetrics(), registry,
    graph: { reject: vi.fn(async () => ({})) }, sip: { connected: true }, store: { write: (r: CallRecord) => { written.push(r); } },
    routing: {
      numberFor: () => ({ phoneNumberId: connect.phoneNumberId, displayNumber: connect.to, tenant: 't', sipTarget: 'sip:agent@127.0.0.1' }),
      decide: () => new Promise(() => undefined),
    },
    media: { create: () => ({ answerWhatsApp: () => new Promise(() => undefined), close: () => undefined }) },
  } as unknown as CallDeps;
  return { deps, registry, written };
}

describe('dispatchEvent', () => {
  it('a user-initiated flow that throws does not leave its call live: it ends with a record and a Graph reject', async () => {
    const logger = createLogger('silent');
    const registry = new CallRegistry(10, logger);
    const written: CallRecord[] = [];
    const reject = vi.fn(async () => ({}));
    const deps = {
      config: configSchema.parse({}),
      logger, metrics: createMetrics(), registry,
      graph: { reject, terminate: vi.fn(async () => ({})) },
      sip: { connected: true },
      store: { write: (r: CallRecord) => { written.push(r); } },
      routing: {
        numberFor: () => ({ phoneNumberId: connect.phoneNumberId, displayNumber: connect.to, tenant: 't', sipTarget: 'sip:agent@127.0.0.1' }),
        decide: async () => ({ action: 'ring', route: 'r', via: 'default', targets: ['sip:agent@127.0.0.1'], ringTimeoutMs: 1000 }),
      },
      media: { create: () => { throw new Error('boom'); } },
    } as unknown as CallDeps;
    dispatchEvent(deps, connect);
    await vi.waitFor(() => expect(written).toHaveLength(1), { timeout: 2000 });
    expect(written[0]).toMatchObject({ waCallId: 'wacid.BUG', outcome: 'failed', cause: 'internal_error' });
    expect(registry.size).toBe(0);
    expect(reject).toHaveBeenCalledWith(connect.phoneNumberId, 'wacid.BUG');
  });

  it("a user's call, even one recorded as missed, opens their customer-service window in the ledger; a failing ledger does not stop the call", () => {
    const { deps } = stuckInSetup(10, {});
    const userReachedOut = vi.fn();
    Object.assign(deps, { permissions: { ledger: { userReachedOut } } });
    dispatchEvent(deps, { ...connect, callId: 'wacid.MISSED', pastRingWindow: true });
    expect(userReachedOut).toHaveBeenCalledWith(connect.phoneNumberId, connect.from, connect.timestamp * 1000);
    userReachedOut.mockImplementation(() => { throw new Error('disk full'); });
    dispatchEvent(deps, { ...connect, callId: 'wacid.LIVE' });
    expect(deps.registry.byWhatsAppId('wacid.LIVE')).toBeDefined();
  });

  it('a connect for a WhatsApp call already live here (re-delivered past the dedupe window) starts no second call', async () => {
    const logger = createLogger('silent');
    const registry = new CallRegistry(10, logger);
    const deps = {
      config: configSchema.parse({}), logger, metrics: createMetrics(), registry,
      graph: { reject: vi.fn(async () => ({})) }, sip: { connected: true }, store: { write: () => undefined },
      routing: {
        numberFor: () => ({ phoneNumberId: connect.phoneNumberId, displayNumber: connect.to, tenant: 't', sipTarget: 'sip:agent@127.0.0.1' }),
        decide: () => new Promise(() => undefined),
      },
      media: { create: () => { throw new Error('unused'); } },
    } as unknown as CallDeps;
    dispatchEvent(deps, { ...connect, callId: 'wacid.TWICE' });
    const first = registry.byWhatsAppId('wacid.TWICE');
    dispatchEvent(deps, { ...connect, callId: 'wacid.TWICE' });
    expect(registry.size).toBe(1);
    expect(registry.byWhatsAppId('wacid.TWICE')).toBe(first);
    await first!.end({ by: 'gateway', outcome: 'failed', cause: 'test' });
  });

  it('admits user-initiated calls up to calls.maxConcurrent, and refuses the one over it', async () => {
    const { deps, registry, written } = stuckInSetup(2, {});
    for (const id of ['wacid.CAP1', 'wacid.CAP2', 'wacid.CAP3']) dispatchEvent(deps, { ...connect, callId: id });
    await vi.waitFor(() => expect(written).toHaveLength(1), { timeout: 2000 });
    expect(written[0]).toMatchObject({ waCallId: 'wacid.CAP3', outcome: 'rejected', cause: 'capacity' });
    expect(registry.byWhatsAppId('wacid.CAP1')).toBeDefined();
    expect(registry.byWhatsAppId('wacid.CAP2')).toBeDefined();
    for (const c of registry.list()) await c.end({ by: 'gateway', outcome: 'failed', cause: 'test' });
  });

  it('refuses a user-initiated call with a Graph reject while the media loop is saturated, and admits the next once it is not', async () => {
    const { deps, registry, written } = stuckInSetup(10, {});
    let saturated = true;
    registry.mediaSaturated = () => saturated;
    dispatchEvent(deps, { ...connect, callId: 'wacid.OVER' });
    await vi.waitFor(() => expect(written).toHaveLength(1), { timeout: 2000 });
    expect(written[0]).toMatchObject({ waCallId: 'wacid.OVER', outcome: 'rejected', cause: 'media_overload' });
    expect(deps.graph.reject).toHaveBeenCalledWith(connect.phoneNumberId, 'wacid.OVER');
    saturated = false;
    dispatchEvent(deps, { ...connect, callId: 'wacid.AFTER' });
    expect(registry.byWhatsAppId('wacid.AFTER')).toBeDefined();
    expect(written).toHaveLength(1);
    for (const c of registry.list()) await c.end({ by: 'gateway', outcome: 'failed', cause: 'test' });
  });

  it('the setup deadline counts from the connect\'s timestamp (Meta\'s ring window), not from its late delivery', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const { deps, written } = stuckInSetup(10, { calls: { setupTimeoutMs: 45_000 } });
      dispatchEvent(deps, { ...connect, callId: 'wacid.LATE', timestamp: Math.floor(Date.now() / 1000) - 30 });
      await vi.advanceTimersByTimeAsync(14_000);
      expect(written).toHaveLength(0);
      await vi.advanceTimersByTimeAsync(2_000);
      expect(written[0]).toMatchObject({ waCallId: 'wacid.LATE', outcome: 'no_answer', cause: 'setup_timeout' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('a connect after its terminate rings nobody but is a missed call: offered and ended on the event feed, and recorded', async () => {
    const { deps, registry, written } = stuckInSetup(10, {});
    const feed: string[] = [];
    registry.events.subscribe((e) => feed.push(`${e.type}:${e.outcome ?? ''}`));
    registry.markWhatsAppTerminated('wacid.MISSED');
    dispatchEvent(deps, { ...connect, callId: 'wacid.MISSED' });
    await vi.waitFor(() => expect(written).toHaveLength(1));
    expect(written[0]).toMatchObject({ waCallId: 'wacid.MISSED', outcome: 'cancelled', endedBy: 'whatsapp', cause: 'terminated_before_connect' });
    expect(feed).toEqual(['call.offered:', 'call.ended:cancelled']);
    expect(registry.size).toBe(0);
  });
});

