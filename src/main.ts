import { ConfigError, EXIT_CONFIG, loadConfig, loadSecrets } from './config/load.js';
import { startGateway } from './gateway.js';
import { loadAppSecrets } from './config/app-secrets.js';

/** Composition root: configuration, then the gateway, then signal handling. No logic lives here. */
async function main(): Promise<void> {
  let config;
  let secrets;
  try {
    config = loadConfig();
    secrets = { ...loadSecrets(), apps: loadAppSecrets(config) };
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.problems) process.stderr.write(`${line}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
  let gateway;
  try {
    gateway = await startGateway(config, secrets);
  } catch (err) {
    // E.g. the PostgreSQL store unreachable at start: one clear line (never the database URL), then exit.
    process.stderr.write(`gateway could not start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    gateway.logger.info({ signal }, 'shutting down: draining calls');
    gateway.drainAndStop().then(() => process.exit(0), (err: Error) => {
      gateway.logger.error({ err: err.message }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // SIGHUP: reload the configuration as a whole; if any of it is invalid, log every problem and keep the old one.
  process.on('SIGHUP', () => {
    if (stopping) return;
    try {
      const next = loadConfig();
      gateway.reload(next, { ...loadSecrets(), apps: loadAppSecrets(next) });
    } catch (err) {
      gateway.metrics.configReloads.inc({ result: 'rejected' });
      const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
      gateway.logger.error({ problems }, 'configuration reload refused: the running configuration is kept');
    }
  });
}

void main();
