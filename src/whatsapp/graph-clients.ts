import type { GatewayConfig, Secrets } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { GraphClient } from './graph-client.js';

/**
 * One Graph client per webhook app, each with the app's own token; a number's calls use its app's client. The
 * default app ('') is the gateway's main client. Rebuilt whole on a config reload.
 */
export class GraphClients {
  private clients = new Map<string, GraphClient>();
  private appOf = new Map<string, string>();

  constructor(private readonly main: GraphClient, private readonly logger: Logger, private readonly metrics: Metrics) {}

  update(config: GatewayConfig, secrets: Secrets): void {
    const clients = new Map<string, GraphClient>();
    for (const { name } of config.whatsapp.apps) {
      const token = secrets.apps?.get(name)?.graphToken ?? '';
      clients.set(name, new GraphClient({
        baseUrl: config.whatsapp.graphBaseUrl, apiVersion: config.whatsapp.graphApiVersion, token,
        timeoutMs: config.whatsapp.graphTimeoutMs, retries: config.whatsapp.graphRetries, logger: this.logger, metrics: this.metrics,
      }));
    }
    this.clients = clients;
    this.appOf = new Map(config.whatsapp.numbers.map((n) => [n.phoneNumberId, n.app]));
  }

  forNumber(phoneNumberId: string): GraphClient {
    const app = this.appOf.get(phoneNumberId);
    return (app ? this.clients.get(app) : undefined) ?? this.main;
  }
}
