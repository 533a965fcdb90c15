import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The shipped default recording announcement (scripts/make-consent-announcement.sh, espeak-ng). */
export const DEFAULT_ANNOUNCEMENT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'assets', 'consent-announcement.wav');
