import { readFileSync, existsSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { configSchema, type GatewayConfig, type Secrets } from './schema.js';
import { parseOutboundCredentials, parseSipCredentials } from '../sip/digest.js';
import { looksLikeUrl, redactUrl, urlForLog } from '../observability/url-redaction.js';

/** Exit code for a configuration error (EX_CONFIG in sysexits.h). */
export const EXIT_CONFIG = 78;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

function merge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isPlain(v) && isPlain(out[k]) ? merge(out[k] as Plain, v) : v;
  return out;
}

const toEnvName = (section: string, key: string): string =>
  `WAGW_${section}_${key.replace(/([a-z0-9])([A-Z])/g, '$1_$2')}`.toUpperCase();

/** A structured value (list of objects, map) given as JSON; left as the raw string when it is not JSON, so that the
 * schema reports it with the key's name. */
function parseJsonOr(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

/**
 * Every key of every section can be set by WAGW_<SECTION>_<KEY>, e.g. http.port ← WAGW_HTTP_PORT: scalars as text,
 * lists comma-separated or as JSON, lists of objects and maps as JSON.
 */
function envOverrides(env: NodeJS.ProcessEnv, defaults: Plain): { overrides: Plain; sources: Map<string, string> } {
  const overrides: Plain = {};
  const sources = new Map<string, string>();
  for (const [section, fields] of Object.entries(defaults)) {
    if (!isPlain(fields)) continue;
    for (const [key, def] of Object.entries(fields)) {
      const name = toEnvName(section, key);
      const raw = env[name];
      if (raw === undefined) continue;
      let value: unknown = raw;
      if (typeof def === 'number') value = raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
      else if (typeof def === 'boolean') value = raw === 'true' ? true : raw === 'false' ? false : raw;
      else if ((Array.isArray(def) || isPlain(def)) && /^\s*[[{]/.test(raw)) value = parseJsonOr(raw);
      else if (Array.isArray(def)) value = raw.split(',').map((s) => s.trim()).filter(Boolean);
      ((overrides[section] ??= {}) as Plain)[key] = value;
      sources.set(`${section}.${key}`, name);
    }
  }
  return { overrides, sources };
}

function valueAt(obj: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = obj;
  for (const p of path) cur = isPlain(cur) || Array.isArray(cur) ? (cur as Record<PropertyKey, unknown>)[p] : undefined;
  return cur;
}

function readYaml(file: string): Plain {
  try {
    const doc: unknown = parseYaml(readFileSync(file, 'utf8'));
    if (doc === null || doc === undefined) return {};
    if (!isPlain(doc)) throw new ConfigError([`config file ${file}: expected a mapping at the top level`]);
    return doc;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError([`config file ${file}: ${(err as Error).message.split('\n')[0]}`]);
  }
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Files merged in order; missing optional files are skipped. */
  files?: string[];
}

/**
 * Loads config/default.yaml, then config/local.yaml (optional), then the file named by WAGW_CONFIG, then WAGW_* env
 * overrides. Every problem is reported at once, one line each, naming the key, the value (redacted where it may hold a
 * secret) and what was expected.
 */
export function loadConfig(opts: LoadOptions = {}): GatewayConfig {
  const env = opts.env ?? process.env;
  const files = opts.files ?? ['config/default.yaml', 'config/local.yaml', ...(env.WAGW_CONFIG ? [env.WAGW_CONFIG] : [])];
  let raw: Plain = {};
  for (const f of files) {
    if (!existsSync(f)) {
      if (f === env.WAGW_CONFIG) throw new ConfigError([`WAGW_CONFIG = "${f}": expected an existing YAML file`]);
      continue;
    }
    raw = merge(raw, readYaml(f));
  }
  const defaults = configSchema.parse({}) as unknown as Plain;
  const { overrides, sources } = envOverrides(env, defaults);
  raw = merge(raw, overrides);
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.map((issue) => {
    const key = issue.path.map(String).join('.');
    const given = valueAt(raw, issue.path);
    const from = sources.get(key);
    const shown = given === undefined ? '(missing)' : JSON.stringify(redacted(given, key));
    return `config error: ${key} = ${shown}${from ? ` (from ${from})` : ''}: expected ${describeExpectation(issue)}`;
  }));
}

/** Keys whose value may hold a password (store.databaseUrl = postgres://user:password@host/db): an error line shows
 * at most the URL's scheme and host. */
const CREDENTIAL_KEYS: ReadonlySet<string> = new Set(['store.databaseUrl']);

/**
 * A value as a config error line may show it. Secrets reach the config through the environment (a mistyped
 * WAGW_STORE_DATABASE_URL still holds its password), and error lines go to stderr and, on SIGHUP, to the log: values of
 * credential keys are reduced to scheme and host, and any URL carrying user info, a query or a fragment (where tokens
 * hide) anywhere in the value to scheme, host and path.
 */
function redacted(value: unknown, key: string): unknown {
  if (CREDENTIAL_KEYS.has(key)) {
    if (value === '') return value;
    return typeof value === 'string' ? redactUrl(value) : '(not shown: may hold a secret)';
  }
  if (typeof value === 'string') return looksLikeUrl(value) ? urlForLog(value) : value;
  if (Array.isArray(value)) return value.map((v, i) => redacted(v, `${key}.${i}`));
  if (isPlain(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redacted(v, key ? `${key}.${k}` : k)]));
  return value;
}

function describeExpectation(issue: { code: string; message: string; expected?: unknown; minimum?: unknown; maximum?: unknown; values?: unknown[]; keys?: string[] }): string {
  switch (issue.code) {
    case 'invalid_type': return `a value of type ${String(issue.expected)}`;
    case 'too_small': return `a value of at least ${String(issue.minimum)}`;
    case 'too_big': return `a value of at most ${String(issue.maximum)}`;
    case 'invalid_value': return `one of ${(issue.values ?? []).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'unrecognized_keys': return `no unknown keys (${(issue.keys ?? []).join(', ')})`;
    default: return issue.message;
  }
}

function secret(env: NodeJS.ProcessEnv, name: string): string {
  const file = env[`${name}_FILE`];
  if (file) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch {
      throw new ConfigError([`${name}_FILE = "${file}": expected a readable file holding the secret`]);
    }
  }
  return env[name] ?? '';
}

/**
 * Secrets: WAGW_GRAPH_TOKEN, WAGW_APP_SECRET, WAGW_VERIFY_TOKEN, WAGW_DRACHTIO_SECRET, WAGW_ADMIN_KEYS
 * ("name:role:key,…"), WAGW_SIP_CREDENTIALS ("user:password,…"), WAGW_SIP_OUTBOUND_CREDENTIALS ("host=user:password,…");
 * each may instead be read from the file named by <NAME>_FILE.
 */
export function loadSecrets(env: NodeJS.ProcessEnv = process.env): Secrets {
  const adminKeys = new Map<string, string>();
  const problems: string[] = [];
  const entries = secret(env, 'WAGW_ADMIN_KEYS').split(',').map((s) => s.trim()).filter(Boolean);
  entries.forEach((entry, i) => {
    // name:role:key, or name:reporting:tenant:key for a reporting key limited to one tenant.
    const parts = entry.split(':');
    const [name, role] = parts;
    const key = parts[parts.length - 1];
    const tenant = parts.length === 4 ? parts[2] : undefined;
    const roleOk = role !== undefined && ['admin', 'supervisor', 'reporting'].includes(role);
    if (!name || !key || parts.length < 3 || parts.length > 4 || !roleOk) {
      // Never the entry's text: a bare key (or one whose ':' misplaced the fields) would be printed. The entry's number,
      // and its name only when the fields are plainly name:role:…, say which one it is.
      const which = roleOk && name && parts.length >= 3 ? `entry ${i + 1} (name "${name}")` : `entry ${i + 1} of ${entries.length}`;
      const what = parts.length < 3 ? `has ${parts.length} field${parts.length === 1 ? '' : 's'}`
        : parts.length > 4 ? `has ${parts.length} fields` : !roleOk ? 'has no valid role' : 'has an empty name or key';
      problems.push(`config error: WAGW_ADMIN_KEYS ${which} ${what}: expected name:role:key (or name:role:tenant:key) with role admin, supervisor or reporting`);
      return;
    }
    adminKeys.set(key, tenant ? `${name}:${role}:${tenant}` : `${name}:${role}`);
  });
  // SIP digest credentials of PBX trunks: "user:password,…" (the password may contain ':', not ',').
  const sip = parseSipCredentials(secret(env, 'WAGW_SIP_CREDENTIALS'));
  problems.push(...sip.problems);
  const outbound = parseOutboundCredentials(secret(env, 'WAGW_SIP_OUTBOUND_CREDENTIALS'));
  problems.push(...outbound.problems);
  if (problems.length) throw new ConfigError(problems);
  return {
    graphToken: secret(env, 'WAGW_GRAPH_TOKEN'),
    appSecret: secret(env, 'WAGW_APP_SECRET'),
    verifyToken: secret(env, 'WAGW_VERIFY_TOKEN'),
    drachtioSecret: secret(env, 'WAGW_DRACHTIO_SECRET') || 'cymru',
    adminKeys,
    sipCredentials: sip.credentials,
    sipOutboundCredentials: outbound.credentials,
  };
}
