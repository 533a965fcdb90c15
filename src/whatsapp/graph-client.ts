import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export type CallAction = 'connect' | 'pre_accept' | 'accept' | 'reject' | 'terminate';

/** A failed Graph request, carrying Meta's error code (§2.7, §2.8) when Meta gave one. */
export class GraphError extends Error {
  override name = 'GraphError';
  constructor(
    readonly action: string,
    readonly httpStatus: number,
    readonly code: number | undefined,
    readonly details: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

export interface GraphClientOptions {
  baseUrl: string;
  apiVersion: string;
  token: string;
  timeoutMs: number;
  retries: number;
  logger: Logger;
  metrics: Metrics;
}

interface GraphErrorBody { error?: { message?: string; code?: number; error_data?: { details?: string } } }

const RETRYABLE = (status: number): boolean => status === 429 || status >= 500;

export class GraphClient {
  constructor(private readonly opts: GraphClientOptions) {}

  async callAction(phoneNumberId: string, action: CallAction, fields: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.request(action, 'POST', `/${phoneNumberId}/calls`, { messaging_product: 'whatsapp', action, ...fields });
  }

  preAccept(phoneNumberId: string, callId: string, sdp: string) {
    return this.callAction(phoneNumberId, 'pre_accept', { call_id: callId, session: { sdp_type: 'answer', sdp } });
  }

  accept(phoneNumberId: string, callId: string, sdp: string, bizOpaque?: string) {
    return this.callAction(phoneNumberId, 'accept', {
      call_id: callId, session: { sdp_type: 'answer', sdp }, ...(bizOpaque ? { biz_opaque_callback_data: bizOpaque } : {}),
    });
  }

  reject(phoneNumberId: string, callId: string) {
    return this.callAction(phoneNumberId, 'reject', { call_id: callId });
  }

  terminate(phoneNumberId: string, callId: string) {
    return this.callAction(phoneNumberId, 'terminate', { call_id: callId });
  }

  /** Business-initiated call: returns the wacid Meta assigned. */
  async connect(phoneNumberId: string, to: string, sdp: string, bizOpaque: string): Promise<string> {
    const res = await this.callAction(phoneNumberId, 'connect', { to, session: { sdp_type: 'offer', sdp }, biz_opaque_callback_data: bizOpaque });
    const calls = res.calls;
    const id = Array.isArray(calls) && typeof calls[0]?.id === 'string' ? (calls[0].id as string) : undefined;
    if (!id) throw new GraphError('connect', 200, undefined, undefined, 'connect succeeded without a call id');
    return id;
  }

  async request(action: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
    const url = `${this.opts.baseUrl.replace(/\/$/, '')}/${this.opts.apiVersion}${path}`;
    let attempt = 0;
    for (;;) {
      const started = performance.now();
      let status = 0;
      try {
        const res = await fetch(url, {
          method,
          headers: { authorization: `Bearer ${this.opts.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
          body: body ? JSON.stringify(body) : undefined,
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        });
        status = res.status;
        const text = await res.text();
        const parsed = safeJson(text);
        if (res.ok) return parsed ?? {};
        const err = (parsed as GraphErrorBody | undefined)?.error;
        const graphErr = new GraphError(action, res.status, err?.code, err?.error_data?.details,
          `Graph ${action} failed: HTTP ${res.status}${err?.code !== undefined ? ` code ${err.code}` : ''}${err?.message ? ` (${err.message})` : ''}`);
        if (!RETRYABLE(res.status) || attempt >= this.opts.retries) throw graphErr;
        this.opts.logger.warn({ action, status: res.status, code: err?.code, attempt }, 'Graph request failed, retrying');
      } catch (err) {
        if (err instanceof GraphError) throw err;
        if (attempt >= this.opts.retries) {
          throw new GraphError(action, 0, undefined, undefined, `Graph ${action} failed: ${(err as Error).message}`);
        }
        this.opts.logger.warn({ action, err: (err as Error).message, attempt }, 'Graph request did not complete, retrying');
      } finally {
        this.opts.metrics.graphRequests.inc({ action, status: String(status || 'error') });
        this.opts.metrics.graphSeconds.observe({ action }, (performance.now() - started) / 1000);
      }
      attempt++;
      await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 1)));
    }
  }
}

function safeJson(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
