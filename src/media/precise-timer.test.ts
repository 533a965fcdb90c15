import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { createOneShotTimer, preciseTimerAvailable, type OneShotTimer } from './precise-timer.js';

const addonPath = fileURLToPath(new URL('../../build/Release/udp_batch.node', import.meta.url));

/** Arms `timer` n times for `delayMs` and returns how late each expiry ran (ms, negative = early). */
async function lateness(make: (fn: () => void) => OneShotTimer, delayMs: number, n: number): Promise<number[]> {
  const out: number[] = [];
  let resolve: () => void = () => undefined;
  let due = 0;
  const timer = make(() => {
    out.push(performance.now() - due);
    resolve();
  });
  for (let i = 0; i < n; i++) {
    const fired = new Promise<void>((r) => { resolve = r; });
    due = performance.now() + delayMs;
    timer.arm(delayMs);
    await fired;
  }
  timer.close();
  return out;
}

/** Runs a script in a fresh Node with the addon at `lib`; returns its exit status and output. */
function runNode(script: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['-e', `const lib = require(${JSON.stringify(addonPath)});\n${script}`], { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('createOneShotTimer', () => {
  it('is the kernel timer on Linux (the addon is built by npm ci; its absence is a failure here, not a skip)', () => {
    if (process.platform !== 'linux') return;
    expect(preciseTimerAvailable()).toBe(true);
    const t = createOneShotTimer(() => undefined);
    expect(t.kind).toBe('timerfd');
    t.close();
    const fallback = createOneShotTimer(() => undefined, false);
    expect(fallback.kind).toBe('setTimeout');
    fallback.close();
  });

  for (const precise of [true, false]) {
    it(`fires once per arm; re-arming replaces, disarm cancels (${precise ? 'timerfd' : 'setTimeout'})`, async () => {
      const late = await lateness((fn) => createOneShotTimer(fn, precise), 2.5, 10);
      expect(late).toHaveLength(10);
      // The kernel timer never fires before its deadline. setTimeout can, by up to a millisecond (libuv's loop time
      // is whole milliseconds), which is why the frame clock re-arms on an early wake-up.
      if (precise) for (const l of late) expect(l).toBeGreaterThanOrEqual(0);

      let fired = 0;
      const t = createOneShotTimer(() => fired++, precise);
      t.arm(5);
      t.arm(30); // replaces the 5 ms expiry
      await new Promise((r) => setTimeout(r, 15));
      expect(fired).toBe(0);
      await new Promise((r) => setTimeout(r, 40));
      expect(fired).toBe(1);
      t.arm(5);
      t.disarm();
      await new Promise((r) => setTimeout(r, 20));
      expect(fired).toBe(1);
      t.close();
    });
  }

  it.runIf(process.platform === 'linux')('runs microtasks right after its callback, as a timer does', () => {
    const r = runNode(`
      const order = [];
      const t = lib.timerCreate(() => {
        order.push('tick');
        queueMicrotask(() => order.push('microtask'));
        process.nextTick(() => order.push('nextTick'));
        setImmediate(() => { order.push('immediate'); lib.timerClose(t); console.log(order.join(',')); });
      });
      lib.timerArm(t, 1000);`);
    expect(r.out.trim()).toBe('tick,nextTick,microtask,immediate');
    expect(r.status).toBe(0);
  });

  it.runIf(process.platform === 'linux')('keeps the process alive only while armed; a closed handle is refused', () => {
    const armed = runNode(`const t = lib.timerCreate(() => { console.log('fired'); lib.timerClose(t); }); lib.timerArm(t, 50000);`);
    expect(armed.out.trim()).toBe('fired');
    const disarmed = runNode(`const t = lib.timerCreate(() => console.log('fired')); lib.timerArm(t, 50000); lib.timerDisarm(t);`);
    expect(disarmed.out.trim()).toBe('');
    expect(disarmed.status).toBe(0);
    const closed = runNode(`const t = lib.timerCreate(() => console.log('fired')); lib.timerClose(t); console.log(lib.timerArm(t, 1000), lib.timerClose(t));`);
    expect(closed.out.trim()).toBe('-9 -9'); // EBADF, no crash
    const unclosed = runNode(`const t = lib.timerCreate(() => console.log('fired'));`); // dropped without close: exits
    expect(unclosed.status).toBe(0);
  });

  it.runIf(process.platform === 'linux')("a throwing callback reaches 'uncaughtException' instead of vanishing", () => {
    const r = runNode(`
      process.on('uncaughtException', (e) => { console.log('caught', e.message); process.exit(3); });
      const t = lib.timerCreate(() => { throw new Error('boom'); });
      lib.timerArm(t, 1000);`);
    expect(r.out.trim()).toBe('caught boom');
    expect(r.status).toBe(3);
  });

  it.runIf(process.platform === 'linux')('a worker thread (a media plane) that ends with its timer armed exits cleanly', async () => {
    const worker = new Worker(`
      const lib = require(${JSON.stringify(addonPath)});
      const { parentPort } = require('node:worker_threads');
      const t = lib.timerCreate(() => parentPort.postMessage('fired'));
      lib.timerArm(t, 1000);
      const u = lib.timerCreate(() => undefined);
      lib.timerArm(u, 60_000_000);
      parentPort.on('message', () => process.exit(0));`, { eval: true });
    const fired = await new Promise((r) => worker.once('message', r));
    expect(fired).toBe('fired');
    worker.postMessage('exit');
    const code = await new Promise((r) => worker.once('exit', r));
    expect(code).toBe(0);
  });
});
