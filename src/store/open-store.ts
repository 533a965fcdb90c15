import type { CallRecordStore } from './call-record.js';
import { SqliteCallRecordStore } from './sqlite-store.js';
import { PostgresCallRecordStore } from './postgres-store.js';

export interface StoreConfig {
  sqlitePath: string;
  /** postgres://… — when set, records go to PostgreSQL instead of SQLite. */
  databaseUrl?: string;
}

/** SQLite by default (embedded, no set-up); PostgreSQL when a database URL is configured. */
export async function openCallRecordStore(cfg: StoreConfig): Promise<CallRecordStore> {
  if (cfg.databaseUrl) return PostgresCallRecordStore.open({ connectionString: cfg.databaseUrl });
  return new SqliteCallRecordStore(cfg.sqlitePath);
}
