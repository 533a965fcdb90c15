import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqlite } from './sqlite-open.js';

describe('openSqlite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wagw-sqlite-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the directory and opens in WAL mode with synchronous=NORMAL (no fsync per commit on the media loop)', () => {
    const db = openSqlite(join(dir, 'nested', 'a.sqlite'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(1); // 0 OFF, 1 NORMAL, 2 FULL
    db.exec('CREATE TABLE t (v INTEGER)');
    db.prepare('INSERT INTO t VALUES (1)').run();
    db.close();
    // Committed data is there for the next connection.
    const again = openSqlite(join(dir, 'nested', 'a.sqlite'));
    expect(again.prepare('SELECT v FROM t').get()).toEqual({ v: 1 });
    again.close();
  });
});
