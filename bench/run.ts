/**
 * `npm run bench`: the codec floor and the whole media path, written to bench/results/<name>-<date>.json.
 * Arguments are passed through to the media-path run: [calls=20] [seconds=10] [complexity=5] [fec=1].
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runCodecFloor } from './codec-floor.js';
import { runMediaPath } from './media-path.js';
import { opusFastPath } from '../src/media/opus-codec.js';

const [calls = '20', seconds = '10', complexity = '5', fec = '1'] = process.argv.slice(2);
const dir = fileURLToPath(new URL('./results/', import.meta.url));
mkdirSync(dir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const meta = { node: process.version, platform: `${process.platform}-${process.arch}`, opusFastPath, at: new Date().toISOString() };

const codec = runCodecFloor();
writeFileSync(`${dir}codec-floor-${stamp}.json`, JSON.stringify({ ...meta, results: codec }, null, 2));
console.table(codec);

const path = await runMediaPath(Number(calls), Number(seconds), Number(complexity), fec !== '0');
writeFileSync(`${dir}media-path-${stamp}.json`, JSON.stringify({ ...meta, ...path }, null, 2));
console.log(JSON.stringify(path, null, 2));
process.exit(0);
