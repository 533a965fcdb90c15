// npm's install step (and scripts/test.sh when build/ is missing): builds the batched UDP addon (native/udp_batch.c)
// with the node-gyp that npm ships. The gateway runs without it (media sockets are then read on arrival instead of
// on the media tick), so a machine without a compiler gets a warning, not a failed install.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

if (process.platform !== 'linux') {
  console.warn('build-native: not Linux; media sockets will be read on arrival (no batched UDP addon)');
  process.exit(0);
}
// Inside npm's lifecycle npm says where its node-gyp is; run by hand, look beside this Node's npm.
const prefix = dirname(dirname(process.execPath));
const bundled = [join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')].find((p) => existsSync(p));
const gypJs = process.env.npm_config_node_gyp ?? bundled;
const args = ['rebuild'];
// Node's own headers when this Node has them (Debian's, the official images'), so node-gyp downloads nothing.
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/node_api.h'))) args.push(`--nodedir=${prefix}`);
const [cmd, argv] = gypJs ? [process.execPath, [gypJs, ...args]] : ['node-gyp', args];
const run = spawnSync(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
if (run.status === 0) {
  console.log('build-native: built build/Release/udp_batch.node');
} else {
  const why = run.error ? run.error.message : (run.stderr ?? '').split('\n').filter((l) => /ERR!|error/.test(l)).slice(0, 5).join('\n');
  console.warn(`build-native: WARNING: the batched UDP addon did not build; media sockets will be read on arrival.\n${why}`);
}
