import type { AdminRouter, Principal, Role } from './admin-router.js';
import { AdminHttpError } from './admin-router.js';
import { sendJson } from './server.js';
import type { CallDeps } from '../calls/deps.js';
import { startClickToCall } from '../calls/business-initiated.js';
import { businessNumberBlocked, COUNTRY_BLOCKED_REFUSAL } from '../calls/business-region.js';
import type { BusinessNumber } from '../config/schema.js';
import { permissionRequestContent, type PermissionView } from '../whatsapp/permissions.js';
import type { PermissionRequestContent } from '../whatsapp/graph-client.js';

const STAFF: readonly Role[] = ['admin', 'supervisor'];
const ALL: readonly Role[] = ['admin', 'supervisor', 'reporting'];

/**
 * Admin API for business-initiated calling: send a call permission request (free-form text or a template), read
 * the permission ledger of one user, and click-to-call. The local limits are checked before Meta is asked (429 with the next allowed time).
 */
export function registerBusinessCallRoutes(admin: AdminRouter, deps: CallDeps): void {
  admin.add('POST', '/v1/permission-requests', STAFF, async (r) => {
    const permissions = deps.permissions;
    if (!permissions) throw new AdminHttpError(503, 'permission ledger not available');
    const body = asObject(await r.json());
    const waId = waIdOf(body.to);
    const number = numberFor(deps, optionalString(body.phoneNumberId, 'phoneNumberId'), r.principal);
    // §3.4: permission features exist only where business-initiated calling does; refused as the call paths refuse.
    if (businessNumberBlocked(number.displayNumber, deps.config.businessCalls.blockedCountryCodes)) {
      const blocked = COUNTRY_BLOCKED_REFUSAL;
      sendJson(r.res, blocked.status, { sent: false, error: blocked.text, refusal: blocked.cause, cause: blocked.cause });
      return;
    }
    const text = optionalString(body.body, 'body');
    const template = optionalString(body.template, 'template');
    if (text && template) throw new AdminHttpError(400, 'give either body (free-form text) or template, not both');
    if (text && text.length > 1024) throw new AdminHttpError(400, 'body must be at most 1024 characters');
    const language = optionalString(body.language, 'language');
    const content: PermissionRequestContent = template ? { templateName: template, ...(language ? { languageCode: language } : {}) } : text ? { bodyText: text }
      : permissionRequestContent(permissions.ledger.view(number.phoneNumberId, waId), deps.config.businessCalls.permissionRequestTemplate, {});
    const result = await permissions.request(number.phoneNumberId, waId, content);
    if (result.sent) {
      sendJson(r.res, 202, { sent: true, messageId: result.messageId, permission: viewJson(permissions.ledger.view(number.phoneNumberId, waId)) });
      return;
    }
    const status = result.refusal === 'permanent_permission' ? 409 : result.refusal === 'graph_error' ? 502 : 429;
    if (result.nextRequestAt !== undefined) r.res.setHeader('retry-after', String(Math.max(1, Math.ceil((result.nextRequestAt - permissions.ledger.clock()) / 1000))));
    sendJson(r.res, status, {
      sent: false, error: result.message, refusal: result.refusal,
      ...(result.nextRequestAt !== undefined ? { nextRequestAt: new Date(result.nextRequestAt).toISOString() } : {}),
      ...(result.graphCode !== undefined ? { graphCode: result.graphCode } : {}),
    });
  });

  // Click-to-call: the gateway calls the WhatsApp user, rings `agent` when the user answers, and bridges.
  admin.add('POST', '/v1/calls', STAFF, async (r) => {
    const body = asObject(await r.json());
    const waId = waIdOf(body.to);
    const agent = optionalString(body.agent, 'agent');
    if (!agent || !/^sips?:[^\s@]+@[^\s]+$/.test(agent)) throw new AdminHttpError(400, 'agent must be a SIP URI such as sip:alice@pbx.example.com');
    const number = numberFor(deps, optionalString(body.phoneNumberId, 'phoneNumberId'), r.principal);
    if (!deps.sip.connected) throw new AdminHttpError(503, 'SIP side not connected');
    const result = await startClickToCall(deps, { waId, agent, number });
    if ('refusal' in result) {
      const { refusal } = result;
      const status = refusal.status === 503 ? 503 : refusal.status === 486 ? 409 : refusal.status === 404 ? 404 : refusal.status === 403 ? 403 : 502;
      sendJson(r.res, status, { error: refusal.text, cause: refusal.cause, callId: result.call?.id ?? null, ...(refusal.headers ? { details: refusal.headers } : {}) });
      return;
    }
    sendJson(r.res, 202, { callId: result.call.id, waCallId: result.call.waCallId ?? null, state: result.call.state });
  });

  admin.add('GET', '/v1/permissions/:waId', ALL, async (r) => {
    const permissions = deps.permissions;
    if (!permissions) throw new AdminHttpError(503, 'permission ledger not available');
    const waId = waIdOf(r.params.waId);
    const number = numberFor(deps, r.url.searchParams.get('phoneNumberId') ?? undefined, r.principal);
    const refresh = r.url.searchParams.get('refresh');
    const view = refresh === '1' || refresh === 'true'
      ? await permissions.current(number.phoneNumberId, waId, { force: true })
      : permissions.ledger.view(number.phoneNumberId, waId);
    sendJson(r.res, 200, viewJson(view));
  });
}

function viewJson(v: PermissionView): Record<string, unknown> {
  const iso = (t: number | undefined): string | null => (t === undefined ? null : new Date(t).toISOString());
  return {
    phoneNumberId: v.phoneNumberId, waId: v.waId, status: v.status, expiresAt: iso(v.expiresAt),
    requestsLast24h: v.requestsLast24h, requestsLast7d: v.requestsLast7d, nextRequestAt: iso(v.nextRequestAt),
    consecutiveUnanswered: v.unanswered, lastRequestId: v.lastRequestId ?? null, syncedAt: iso(v.syncedAt), stale: v.stale,
    serviceWindowUntil: iso(v.serviceWindowUntil),
    ...(v.refreshFailed ? { refreshFailed: true } : {}),
  };
}

function asObject(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new AdminHttpError(400, 'body must be a JSON object');
  return v as Record<string, unknown>;
}

function optionalString(v: unknown, name: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new AdminHttpError(400, `${name} must be a string`);
  return v;
}

export function waIdOf(v: unknown): string {
  const digits = typeof v === 'string' ? v.trim().replace(/^\+/, '') : '';
  if (!/^[1-9]\d{5,14}$/.test(digits)) throw new AdminHttpError(400, 'a WhatsApp user number in E.164 digits is required (to / wa_id)');
  return digits;
}

/** The business number named, or the one default for SIP-originated calls; reporting keys see their tenant only. */
export function numberFor(deps: CallDeps, phoneNumberId: string | undefined, principal: Principal): BusinessNumber {
  const numbers = deps.config.whatsapp.numbers;
  const id = phoneNumberId ?? (deps.config.businessCalls.defaultPhoneNumberId || (numbers.length === 1 ? numbers[0]!.phoneNumberId : ''));
  const n = id ? deps.routing.numberFor(id) : undefined;
  if (!n || (principal.tenant !== undefined && principal.tenant !== n.tenant)) {
    throw new AdminHttpError(phoneNumberId ? 404 : 400, phoneNumberId ? 'no such business number' : 'phoneNumberId is required (several numbers configured)');
  }
  return n;
}
