import { readFileSync } from 'node:fs';
import { ConfigError } from './load.js';
import type { GatewayConfig } from './schema.js';

/** One webhook app's secrets. */
export interface AppSecrets {
  appSecret: string;
  graphToken: string;
}

/** WAGW_APP_SECRET_BRAND_A for app "brand-a". */
export const appEnvName = (base: 'WAGW_APP_SECRET' | 'WAGW_GRAPH_TOKEN', app: string): string =>
  `${base}_${app.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;

function read(env: NodeJS.ProcessEnv, name: string, problems: string[]): string {
  const file = env[`${name}_FILE`];
  if (file) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch {
      problems.push(`${name}_FILE = "${file}": expected a readable file holding the secret`);
      return '';
    }
  }
  const v = env[name] ?? '';
  if (v === '') problems.push(`${name}: expected the secret in the environment (or ${name}_FILE)`);
  return v;
}

/**
 * The secrets of every app in whatsapp.apps, from the environment only (never from config files): each must be
 * set. All problems are reported together. Values are never part of an error message.
 */
export function loadAppSecrets(config: GatewayConfig, env: NodeJS.ProcessEnv = process.env): Map<string, AppSecrets> {
  const problems: string[] = [];
  const out = new Map<string, AppSecrets>();
  for (const { name } of config.whatsapp.apps) {
    out.set(name, {
      appSecret: read(env, appEnvName('WAGW_APP_SECRET', name), problems),
      graphToken: read(env, appEnvName('WAGW_GRAPH_TOKEN', name), problems),
    });
  }
  if (problems.length) throw new ConfigError(problems.map((p) => `config error: ${p}`));
  return out;
}
