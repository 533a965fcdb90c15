import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * A SQLite database for the gateway's stores: WAL, and synchronous=NORMAL. better-sqlite3 is synchronous and runs on
 * the event loop the media clock shares, so with synchronous=FULL every commit (a call record, a permission change)
 * waits for an fsync that every call's next packets wait behind: 0.47 ms per record on this VM's disk against 0.06 ms
 * (200 inserts, p50), and tens of ms on a slow network disk. In WAL mode NORMAL cannot corrupt the database; a power
 * cut may lose the last commits.
 */
export function openSqlite(path: string): Database.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}
