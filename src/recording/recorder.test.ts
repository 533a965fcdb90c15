/**
 * A recording whose file stops taking writes (disk full) must not be finalised as a complete one: its JSON says
 * "failed", and a recorder whose file cannot even be created leaves no recording "in progress" behind.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MediaTap } from '../media/bridge.js';
import { CallRecorder } from './recorder.js';
import { RecordingStore } from './recording-store.js';

const fsState = vi.hoisted(() => ({ failWrites: false }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    open: async (...args: Parameters<typeof real.open>) => {
      const fh = await real.open(...args);
      const write = fh.write.bind(fh) as (...a: unknown[]) => Promise<unknown>;
      // Only the audio appends fail: as a full disk would refuse them.
      (fh as { write: unknown }).write = (...a: unknown[]) => (fsState.failWrites
        ? Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }))
        : write(...a));
      return fh;
    },
  };
});

const ID = '0b7e4c1a-3f52-4d6e-9a8b-1c2d3e4f5a6b';

function setup() {
  const store = new RecordingStore(join(mkdtempSync(join(tmpdir(), 'wagw-recorder-')), 'rec'));
  let tap: MediaTap | undefined;
  const host = { addTap: (t: MediaTap) => { tap = t; return () => { tap = undefined; }; } };
  const errors: Error[] = [];
  const recorder = new CallRecorder(store, {
    id: ID, callId: ID, tenant: 'acme', userWaId: '16315553602', businessNumber: '13175551399', direction: 'user_initiated', consent: 'not_required',
  }, host, 50, { onError: (e) => errors.push(e) });
  const frames = (n: number): void => {
    const pcm = new Int16Array(160).fill(1000);
    for (let i = 0; i < n; i++) tap?.(pcm, pcm);
  };
  return { store, recorder, frames, errors };
}

afterEach(() => { fsState.failWrites = false; });

describe('CallRecorder on a failing disk', () => {
  it('a recording whose writes failed is finalised with status failed, not complete', async () => {
    const { store, recorder, frames, errors } = setup();
    expect(recorder.start()).toBe(true);
    fsState.failWrites = true;
    frames(60);
    await recorder.finalize();
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/ENOSPC/)]);
    expect(recorder.failed).toBe(true);
    expect(store.get(ID)?.status).toBe('failed');
  });

  it('a healthy recording is complete', async () => {
    const { store, recorder, frames } = setup();
    recorder.start();
    frames(60);
    const ref = await recorder.finalize();
    expect(recorder.failed).toBe(false);
    expect(store.get(ID)?.status).toBe('complete');
    expect(ref?.durationSeconds).toBeCloseTo(1.2, 3);
  });

  it('a file that cannot be created leaves its JSON failed, not "recording" for ever', () => {
    const { store, recorder } = setup();
    // The audio file exists already: the writer's exclusive create fails after the JSON was written.
    writeFileSync(store.prepare({
      id: ID, callId: ID, tenant: 'acme', userWaId: '1', businessNumber: '2', direction: 'user_initiated', format: 'wav',
      sampleRate: 8000, channels: ['user', 'agent'], consent: 'not_required', startedAt: '', status: 'recording',
    }), 'x');
    expect(() => recorder.start()).toThrow(/EEXIST/);
    expect(store.get(ID)?.status).toBe('failed');
  });
});
