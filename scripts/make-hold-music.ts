/**
 * Writes assets/hold-music.wav, the shipped default hold music: the generated melody of src/calls/hold-music.ts as an
 * 8 kHz mono 16-bit WAV (64 KB). Run: npx tsx scripts/make-hold-music.ts
 */
import { writeFileSync } from 'node:fs';
import { DEFAULT_HOLD_MUSIC, generatedMelody } from '../src/calls/hold-music.js';

const pcm = generatedMelody();
const data = Buffer.alloc(pcm.length * 2);
pcm.forEach((s, i) => data.writeInt16LE(s, i * 2));
const header = Buffer.alloc(44);
header.write('RIFF', 0, 'ascii');
header.writeUInt32LE(36 + data.length, 4);
header.write('WAVE', 8, 'ascii');
header.write('fmt ', 12, 'ascii');
header.writeUInt32LE(16, 16);
header.writeUInt16LE(1, 20); // PCM
header.writeUInt16LE(1, 22); // mono
header.writeUInt32LE(8000, 24);
header.writeUInt32LE(16000, 28);
header.writeUInt16LE(2, 32);
header.writeUInt16LE(16, 34);
header.write('data', 36, 'ascii');
header.writeUInt32LE(data.length, 40);
writeFileSync(DEFAULT_HOLD_MUSIC, Buffer.concat([header, data]));
console.log(`wrote ${DEFAULT_HOLD_MUSIC} (${44 + data.length} bytes)`);
