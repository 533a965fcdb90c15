import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import type { BusinessNumber } from '../config/schema.js';
import type { GraphClient } from '../whatsapp/graph-client.js';
import { Call } from './call.js';
import type { CallDeps } from './deps.js';
import { CallRegistry } from './registry.js';
import { WhatsAppOutboundLeg } from './whatsapp-outbound.js';

describe('WhatsAppOutboundLeg', () => {
  it('a Graph connect answered {"success":true} without an id is a placed call: the webhook names it, the hang-up terminates it', async () => {
    const logger = createLogger('silent');
    const registry = new CallRegistry(10, logger);
    const call = new Call({ direction: 'business_initiated', tenant: 't', phoneNumberId: 'P', businessNumber: '447700900555', userWaId: '14085551234' }, logger, createMetrics(), () => undefined);
    registry.add(call);
    const terminate = vi.fn(async () => ({}));
    const graph = { connect: vi.fn(async () => undefined), terminate } as unknown as GraphClient;
    const leg = new WhatsAppOutboundLeg(call, { registry, logger } as unknown as CallDeps, graph, { phoneNumberId: 'P' } as BusinessNumber, '14085551234');
    const placed = await leg.connect('v=0\r\n');
    expect(placed).not.toHaveProperty('error');
    // The connect webhook carries biz_opaque_callback_data = call.id and binds the wacid (business-initiated findCall).
    call.bindIds({ waCallId: 'wacid.LATE' });
    await call.end({ by: 'sip', outcome: 'cancelled', cause: 'caller_cancel' });
    expect(terminate).toHaveBeenCalledWith('P', 'wacid.LATE');
  });

  it('counts a call as unanswered in the permission ledger only once it rang the user or the user declined', async () => {
    const logger = createLogger('silent');
    const registry = new CallRegistry(10, logger);
    const unanswered = vi.fn(() => 1);
    const deps = { registry, logger, permissions: { ledger: { businessCallUnanswered: unanswered } } } as unknown as CallDeps;
    const graph = { connect: vi.fn(async () => 'wacid.X'), terminate: vi.fn(async () => ({})) } as unknown as GraphClient;
    const place = async (ring: boolean, end: { cause: string; outcome: 'cancelled' | 'rejected' | 'failed' }): Promise<void> => {
      const call = new Call({ direction: 'business_initiated', tenant: 't', phoneNumberId: 'P', businessNumber: '447700900555', userWaId: '14085551234' }, logger, createMetrics(), () => undefined);
      registry.add(call);
      call.transition('offered', 'invite');
      const leg = new WhatsAppOutboundLeg(call, deps, graph, { phoneNumberId: 'P' } as BusinessNumber, '14085551234');
      await leg.connect('v=0\r\n');
      if (ring) call.transition('ringing', 'RINGING');
      await call.end({ by: end.outcome === 'rejected' ? 'whatsapp' : 'sip', ...end });
    };
    await place(false, { outcome: 'cancelled', cause: 'pbx_cancel' }); // the PBX gave up before the user's phone rang
    await place(false, { outcome: 'failed', cause: 'whatsapp_answer_unusable' });
    expect(unanswered).not.toHaveBeenCalled();
    await place(true, { outcome: 'cancelled', cause: 'pbx_cancel' });
    await place(false, { outcome: 'rejected', cause: 'user_declined' });
    expect(unanswered).toHaveBeenCalledTimes(2);
  });
});
