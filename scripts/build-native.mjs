// npm's install step: builds the batched UDP addon (native/udp_batch.c) with the node-gyp that npm ships.
// The gateway runs without it (media sockets are then read on arrival instead of on the media tick), so a
// machine without a compiler gets a warning, not a failed install.
import { spawnSync } from 'node:child_process';

if (process.platform !== 'linux') {
  console.warn('build-native: not Linux; media sockets will be read on arrival (no batched UDP addon)');
  process.exit(0);
}
const gypJs = process.env.npm_config_node_gyp;
const [cmd, args] = gypJs ? [process.execPath, [gypJs, 'rebuild']] : ['node-gyp', ['rebuild']];
const run = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
if (run.status === 0) {
  console.log('build-native: built build/Release/udp_batch.node');
} else {
  const why = run.error ? run.error.message : (run.stderr ?? '').split('\n').filter((l) => /ERR!|error/.test(l)).slice(0, 5).join('\n');
  console.warn(`build-native: WARNING: the batched UDP addon did not build; media sockets will be read on arrival.\n${why}`);
}
