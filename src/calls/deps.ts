import type { MetaNumberSettings } from '../whatsapp/meta-settings.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { GraphClient } from '../whatsapp/graph-client.js';
import type { SipAgent } from '../sip/agent.js';
import type { CallRecordStore } from '../store/call-record.js';
import type { CallRegistry } from './registry.js';
import type { Routing } from './routing.js';
import type { MediaFactory } from './media-session.js';
import type { PermissionService } from '../whatsapp/permissions.js';
import type { GraphClients } from '../whatsapp/graph-clients.js';
import type { PbxGuard } from './pbx-guard.js';

/** Everything a call flow needs, handed over by the composition root. */
export interface CallDeps {
  config: GatewayConfig;
  logger: Logger;
  metrics: Metrics;
  graph: GraphClient;
  sip: SipAgent;
  store: CallRecordStore;
  registry: CallRegistry;
  routing: Routing;
  media: MediaFactory;
  /** The call-permission ledger (business-initiated calls); flows tell it about connected calls. */
  permissions?: PermissionService;
  /** Per webhook app Graph clients (a number's calls use its app's token); absent = `graph` for every number. */
  graphs?: GraphClients;
  /** Toll-fraud guard on PBX INVITEs (allow-list and/or SIP digest); absent = a guard without digest credentials. */
  pbxGuard?: PbxGuard;
  /** Hold music, 8 kHz mono (calls/hold-music.ts); absent = the generated melody. */
  holdMusic?: Int16Array;
  /** Calling settings Meta announced per number (account_settings_update): they override the config's. */
  metaSettings?: MetaNumberSettings;
}
