import { ConfigError, EXIT_CONFIG, loadConfig, loadSecrets } from './config/load.js';
import { startGateway } from './gateway.js';

/** Composition root: configuration, then the gateway, then signal handling. No logic lives here. */
async function main(): Promise<void> {
  let config;
  let secrets;
  try {
    config = loadConfig();
    secrets = loadSecrets();
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.problems) process.stderr.write(`${line}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
  const gateway = await startGateway(config, secrets);
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
}

void main();
