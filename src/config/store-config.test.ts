import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './load.js';

const DEFAULT = ['config/default.yaml'];

describe('store and admin configuration', () => {
  it('defaults: SQLite, records kept forever, quality events every 5 s, 1 MiB feed backlog', () => {
    const cfg = loadConfig({ env: {}, files: DEFAULT });
    expect(cfg.store).toEqual({ sqlitePath: 'data/gateway.sqlite', databaseUrl: '', retentionDays: 0, retentionSweepMinutes: 60 });
    expect(cfg.admin).toEqual({ eventQualityIntervalMs: 5000, eventClientMaxBufferedBytes: 1048576 });
  });

  it('the database URL and retention come from the environment', () => {
    const cfg = loadConfig({ env: { WAGW_STORE_DATABASE_URL: 'postgres://gw@db.internal:5432/calls', WAGW_STORE_RETENTION_DAYS: '90' }, files: DEFAULT });
    expect(cfg.store.databaseUrl).toBe('postgres://gw@db.internal:5432/calls');
    expect(cfg.store.retentionDays).toBe(90);
  });

  it('a database URL that is not postgres:// is a config error naming the key', () => {
    let problems: string[] = [];
    try {
      loadConfig({ env: { WAGW_STORE_DATABASE_URL: 'mysql://x/y' }, files: DEFAULT });
    } catch (err) {
      if (err instanceof ConfigError) problems = err.problems;
    }
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^config error: store\.databaseUrl .*WAGW_STORE_DATABASE_URL.*postgres:\/\//);
  });
});
