import { randomBytes } from 'node:crypto';
import type { BusinessCallsConfig } from '../config/schema.js';
import { DigestAuthenticator } from '../sip/digest.js';
import { sourceAllowed } from './source-allow-list.js';

/**
 * The toll-fraud guard on INVITEs from the PBX (issue 5): the source allow-list and/or SIP digest credentials, as
 * businessCalls.sourceGuard says. Runs before anything else, so a stranger causes no Graph request and no lookup.
 */

export interface GuardRequest {
  requestUri: string;
  source: string;
  /** The Authorization header as received. */
  authorization: string | undefined;
}

export type GuardVerdict =
  | { pass: true; username?: string }
  /** 401 with this WWW-Authenticate value. */
  | { pass: false; challenge: string; stale: boolean; reason: string }
  /** 403: metric reason, the text for the PBX, and what to log (never the password or the Authorization header). */
  | { pass: false; refuse: { reason: 'source_not_allowed' | 'digest_failed'; text: string; detail?: { username: string; why: string; digestUri?: string } } };

type GuardConfig = Pick<BusinessCallsConfig, 'sourceGuard' | 'allowedSources' | 'digestRealm' | 'digestNonceTtlSeconds'>;

export class PbxGuard {
  /** Nonce key for the life of the process: a config reload (new realm or lifetime) keeps outstanding nonces good. */
  private readonly key = randomBytes(32);
  private auth: { realm: string; ttl: number; authenticator: DigestAuthenticator } | undefined;

  constructor(private readonly credentials: () => ReadonlyMap<string, string> | undefined, private readonly clock: () => number = Date.now) {}

  /** True when digest credentials are configured at all (a digest-only guard without them refuses everything). */
  get hasCredentials(): boolean {
    return (this.credentials()?.size ?? 0) > 0;
  }

  check(req: GuardRequest, cfg: GuardConfig): GuardVerdict {
    const fromAllowedSource = sourceAllowed(req.source, cfg.allowedSources);
    const notAllowed = { pass: false as const, refuse: { reason: 'source_not_allowed' as const, text: 'Source not allowed to place WhatsApp calls' } };
    switch (cfg.sourceGuard) {
      case 'allowList':
        return fromAllowedSource ? { pass: true } : notAllowed;
      case 'both':
        if (!fromAllowedSource) return notAllowed;
        return this.digest(req, cfg);
      case 'either':
        return fromAllowedSource ? { pass: true } : this.digest(req, cfg);
      case 'digest':
        return this.digest(req, cfg);
    }
  }

  private digest(req: GuardRequest, cfg: GuardConfig): GuardVerdict {
    const a = this.authenticator(cfg);
    const v = a.verify('INVITE', req.requestUri, req.authorization);
    if (v.ok) return { pass: true, username: v.username };
    if (v.challenge) return { pass: false, challenge: a.challenge(v.stale), stale: v.stale, reason: v.reason };
    return { pass: false, refuse: { reason: 'digest_failed', text: 'SIP digest authentication failed', detail: { username: v.username, why: v.reason, ...(v.digestUri !== undefined ? { digestUri: v.digestUri } : {}) } } };
  }

  private authenticator(cfg: GuardConfig): DigestAuthenticator {
    const ttl = cfg.digestNonceTtlSeconds * 1000;
    if (!this.auth || this.auth.realm !== cfg.digestRealm || this.auth.ttl !== ttl) {
      const authenticator = new DigestAuthenticator({
        realm: cfg.digestRealm, nonceTtlMs: ttl, key: this.key, clock: this.clock,
        credentials: { lookup: (u) => this.credentials()?.get(u) },
      });
      this.auth = { realm: cfg.digestRealm, ttl, authenticator };
    }
    return this.auth.authenticator;
  }
}
