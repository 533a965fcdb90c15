/**
 * Spawn a test peer that cannot outlive the test process: a small bash watchdog starts the program, forwards
 * SIGTERM/SIGINT to it, and kills it when this Node process disappears (even by SIGKILL, when no exit hook runs).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const WATCHDOG = [
  'parent=$1; shift',
  '"$@" & child=$!',
  'trap \'kill -TERM $child 2>/dev/null; wait $child; exit 143\' TERM INT',
  'while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5 & wait $!; done',
  'if kill -0 "$child" 2>/dev/null; then kill -TERM "$child" 2>/dev/null; sleep 1; kill -KILL "$child" 2>/dev/null; fi',
  'wait "$child"; rc=$?',
  // The parent is gone: nobody else will remove the peer's temp dir.
  'if ! kill -0 "$parent" 2>/dev/null && [ -n "$TETHER_RMDIR" ]; then rm -rf -- "$TETHER_RMDIR"; fi',
  'exit $rc',
].join('\n');

/**
 * Like child_process.spawn(bin, args, opts), but the program dies with this process. SIGTERM to the result stops it.
 * `cleanupDir` is removed by the watchdog when it outlives this process.
 */
export function spawnTethered(bin: string, args: readonly string[], opts: SpawnOptions = {}, cleanupDir?: string): ChildProcess {
  const env = { ...(opts.env ?? process.env), TETHER_RMDIR: cleanupDir ?? '' };
  return spawn('/bin/bash', ['-c', WATCHDOG, 'tether', String(process.pid), bin, ...args], { ...opts, env });
}
