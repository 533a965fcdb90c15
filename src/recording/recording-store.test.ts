import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomUUID } from 'node:crypto';
import { RecordingStore, tenantFolder, type RecordingMeta } from './recording-store.js';
import { configSchema } from '../config/schema.js';
import { recordingPolicyFor, streamTargetFor } from '../config/recording-schema.js';

function meta(tenant: string, startedAt: string): RecordingMeta {
  return {
    id: randomUUID(), callId: '', tenant, userWaId: '1', businessNumber: '2', direction: 'user_initiated', format: 'wav',
    sampleRate: 8000, channels: ['user', 'agent'], consent: 'announced', startedAt, status: 'complete',
  };
}

describe('RecordingStore', () => {
  it('keeps tenants apart, lists newest first, deletes by age except live calls', () => {
    const store = new RecordingStore(join(mkdtempSync(join(tmpdir(), 'wagw-rs-')), 'rec'));
    expect(store.list()).toEqual([]);
    const a = meta('acme', '2026-01-01T00:00:00.000Z');
    const b = meta('acme', '2026-03-01T00:00:00.000Z');
    const c = meta('brand-b', '2026-02-01T00:00:00.000Z');
    for (const m of [a, b, c]) writeFileSync(store.prepare(m), 'RIFF');
    expect(store.list().map((m) => m.id)).toEqual([b.id, c.id, a.id]);
    expect(store.list('acme').map((m) => m.id)).toEqual([b.id, a.id]);
    expect(store.list('nobody')).toEqual([]);
    expect(store.get(c.id)?.tenant).toBe('brand-b');
    const cutoff = Date.parse('2026-02-15T00:00:00Z');
    expect(store.deleteStartedBefore(cutoff, (id) => id === c.id)).toBe(1);
    expect(store.list().map((m) => m.id)).toEqual([b.id, c.id]);
    expect(existsSync(store.pathsFor('acme', a.id).wav)).toBe(false);
  });

  it('never turns a request into a path outside the folder', () => {
    const store = new RecordingStore('/tmp/nowhere');
    expect(store.get('../../etc/passwd')).toBeUndefined();
    expect(() => store.pathsFor('acme', '../x')).toThrow(/not a recording id/);
    expect(tenantFolder('../..')).toBe('_____');
    expect(tenantFolder('Brand A/1')).toBe('brand_a_1');
  });
});

describe('recording and streaming settings', () => {
  it('applies tenant overrides over the defaults, and a route\'s stream target over its tenant\'s', () => {
    const cfg = configSchema.parse({
      recording: { policy: 'off', tenants: { acme: { policy: 'always', consent: 'explicit' } } },
      streaming: { targets: { a: { url: 'ws://a' }, b: { url: 'wss://b', sampleRate: 16000 } }, tenants: { acme: 'a' }, routes: { sales: 'b' } },
    });
    expect(recordingPolicyFor(cfg.recording, 'acme')).toMatchObject({ policy: 'always', consent: 'explicit', consentDigits: '1', onNoConsent: 'proceed_unrecorded' });
    expect(recordingPolicyFor(cfg.recording, 'other')).toMatchObject({ policy: 'off', consent: 'announce' });
    expect(streamTargetFor(cfg.streaming, 'acme')?.name).toBe('a');
    expect(streamTargetFor(cfg.streaming, 'acme', 'sales')).toMatchObject({ name: 'b', target: { sampleRate: 16000, channels: 'separate' } });
    expect(streamTargetFor(cfg.streaming, 'other', 'support')).toBeUndefined();
  });

  it('refuses a stream mapping to an undefined target and a non-ws URL', () => {
    const r = configSchema.safeParse({ streaming: { targets: { a: { url: 'http://a' } }, tenants: { acme: 'missing' } } });
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toContain('streaming.targets.a.url');
    expect(paths).toContain('streaming.tenants.acme');
  });
});
