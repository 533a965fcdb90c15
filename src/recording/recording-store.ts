/**
 * Where recordings live: <folder>/<tenant>/<call id>.wav (or .opus) with <call id>.json beside it (who, when, how long, consent).
 * The JSON is written when recording starts and again when it is finalized, so a file left by a killed process is
 * still listed (status "recording"). Ids are call ids (UUIDs): nothing from a request reaches a path unchecked.
 */
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, type ReadStream } from 'node:fs';
import { join } from 'node:path';

export type RecordingFormat = 'wav' | 'ogg';

/** File extension and media type per format (RFC 7845 §9: Ogg/Opus is audio/ogg, .opus). */
export const RECORDING_FILE: Record<RecordingFormat, { ext: string; contentType: string }> = {
  wav: { ext: 'wav', contentType: 'audio/wav' },
  ogg: { ext: 'opus', contentType: 'audio/ogg' },
};

/** A meta without a known format is a WAV (as every recording was before Ogg/Opus). */
export const formatOf = (meta: { format?: string }): RecordingFormat => (meta.format === 'ogg' ? 'ogg' : 'wav');

export type ConsentResult = 'not_required' | 'announced' | 'explicit_yes';

export interface RecordingMeta {
  id: string;
  callId: string;
  tenant: string;
  waCallId?: string;
  userWaId: string;
  businessNumber: string;
  direction: string;
  format: RecordingFormat;
  sampleRate: number;
  /** Channel 0 (left) = the WhatsApp user, channel 1 (right) = the agent. */
  channels: ['user', 'agent'];
  consent: ConsentResult;
  startedAt: string;
  endedAt?: string;
  durationSeconds?: number;
  bytes?: number;
  status: 'recording' | 'complete' | 'failed';
}

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Tenant names become folder names: anything but [a-z0-9_-] is replaced, and '.'-only names cannot occur. */
export function tenantFolder(tenant: string): string {
  const t = tenant.toLowerCase().replace(/[^a-z0-9_-]/g, '_');
  return t === '' ? '_' : t;
}

export class RecordingStore {
  constructor(readonly folder: string) {}

  isId(id: string): boolean {
    return ID.test(id);
  }

  /** `audio` is the file of `format`; `wav` and `opus` name both possible files (delete removes either). */
  pathsFor(tenant: string, id: string, format: RecordingFormat = 'wav'): { dir: string; audio: string; wav: string; opus: string; json: string } {
    if (!ID.test(id)) throw new Error(`not a recording id: ${id}`);
    const dir = join(this.folder, tenantFolder(tenant));
    return { dir, audio: join(dir, `${id}.${RECORDING_FILE[format].ext}`), wav: join(dir, `${id}.wav`), opus: join(dir, `${id}.opus`), json: join(dir, `${id}.json`) };
  }

  /** Creates the tenant folder; returns the audio path to write. */
  prepare(meta: RecordingMeta): string {
    const p = this.pathsFor(meta.tenant, meta.id, formatOf(meta));
    mkdirSync(p.dir, { recursive: true });
    this.writeMeta(meta);
    return p.audio;
  }

  /** Atomic replace: a reader never sees half a JSON file. */
  writeMeta(meta: RecordingMeta): void {
    const p = this.pathsFor(meta.tenant, meta.id);
    writeFileSync(`${p.json}.tmp`, JSON.stringify(meta, null, 1));
    renameSync(`${p.json}.tmp`, p.json);
  }

  /** Every recording, newest first; a tenant given = that tenant's only. */
  list(tenant?: string): RecordingMeta[] {
    if (!existsSync(this.folder)) return [];
    const tenants = tenant !== undefined ? [tenantFolder(tenant)] : readdirSync(this.folder);
    const out: RecordingMeta[] = [];
    for (const t of tenants) {
      const dir = join(this.folder, t);
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const n of names) {
        if (!n.endsWith('.json')) continue;
        const meta = this.readMeta(join(dir, n));
        if (meta && (tenant === undefined || meta.tenant === tenant)) out.push(meta);
      }
    }
    return out.sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0));
  }

  get(id: string): RecordingMeta | undefined {
    if (!ID.test(id) || !existsSync(this.folder)) return undefined;
    for (const t of readdirSync(this.folder)) {
      const meta = this.readMeta(join(this.folder, t, `${id}.json`));
      if (meta) return meta;
    }
    return undefined;
  }

  /** The audio file as a stream and its size, or undefined when it is gone. */
  open(meta: RecordingMeta): { stream: ReadStream; size: number } | undefined {
    const { audio } = this.pathsFor(meta.tenant, meta.id, formatOf(meta));
    try {
      const size = statSync(audio).size;
      return { stream: createReadStream(audio), size };
    } catch {
      return undefined;
    }
  }

  delete(meta: RecordingMeta): boolean {
    const p = this.pathsFor(meta.tenant, meta.id);
    let removed = false;
    for (const f of [p.wav, p.opus, p.json]) {
      try {
        unlinkSync(f);
        removed = true;
      } catch {
        /* already gone */
      }
    }
    return removed;
  }

  /** Deletes recordings started before the cutoff (ms epoch); returns how many. Live ones are never touched. */
  deleteStartedBefore(cutoffMs: number, live: (id: string) => boolean = () => false): number {
    let n = 0;
    for (const meta of this.list()) {
      if (Date.parse(meta.startedAt) < cutoffMs && !live(meta.id) && this.delete(meta)) n++;
    }
    return n;
  }

  private readMeta(path: string): RecordingMeta | undefined {
    try {
      const m = JSON.parse(readFileSync(path, 'utf8')) as RecordingMeta;
      return typeof m.id === 'string' && ID.test(m.id) && typeof m.tenant === 'string' ? m : undefined;
    } catch {
      return undefined;
    }
  }
}
