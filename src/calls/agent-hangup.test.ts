import { describe, expect, it } from 'vitest';
import { agentHangup, byeFor } from './agent-hangup.js';

describe('byeFor: the Reason on our BYE', () => {
  it('a hang-up is normal clearing (16); a failure is 41; a timer, ours or Meta\'s, is 102; the text is the cause', () => {
    expect(byeFor({ by: 'whatsapp', outcome: 'answered', cause: 'whatsapp_hangup' }).reasonHeader).toBe('Q.850;cause=16;text="WhatsApp user hung up"');
    expect(byeFor({ by: 'gateway', outcome: 'answered', cause: 'admin_hangup' }).reasonHeader).toBe('Q.850;cause=16;text="admin_hangup"');
    expect(byeFor({ by: 'whatsapp', outcome: 'answered', cause: 'whatsapp_error_138021', graphCode: 138021 }).reasonHeader).toBe('Q.850;cause=102;text="whatsapp_error_138021"');
    expect(byeFor({ by: 'whatsapp', outcome: 'answered', cause: 'whatsapp_error_131044', graphCode: 131044 }).reasonHeader).toBe('Q.850;cause=41;text="whatsapp_error_131044"');
    expect(byeFor({ by: 'gateway', outcome: 'answered', cause: 'media_timeout_sip' }).reasonHeader).toBe('Q.850;cause=102;text="media_timeout_sip"');
    expect(byeFor({ by: 'gateway', outcome: 'answered', cause: 'drain' })).toEqual({ reason: 'drain', reasonHeader: 'Q.850;cause=41;text="drain"' });
  });
});

describe('agentHangup', () => {
  it('blames the agent for its BYE, the gateway for a lost drachtio connection', () => {
    expect(agentHangup({ by: 'remote', reason: 'normal release' })).toEqual({ by: 'sip', outcome: 'answered', cause: 'agent_hangup' });
    expect(agentHangup({ by: 'remote', reason: 'drachtio connection lost', connectionLost: true })).toEqual({ by: 'gateway', outcome: 'answered', cause: 'sip_connection_lost' });
  });
});
