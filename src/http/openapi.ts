/**
 * OpenAPI 3.1 description of the admin API, served at /v1/openapi.json. Kept beside the routes (admin-api.ts,
 * event-feed.ts); a test checks that every registered route appears here.
 */
import { recordingOpenApiPaths } from './recording-routes.js';

const legQuality = {
  type: 'object',
  properties: {
    packetsIn: { type: 'integer' }, packetsOut: { type: 'integer' }, lost: { type: 'integer' }, late: { type: 'integer' },
    jitterMs: { type: 'number' }, mos: { type: 'number', description: 'E-model MOS estimate, 1–4.5' },
    rttMs: { type: 'number', description: 'Round-trip time from RTCP, when the peer reported one' },
    lostAtPeer: { type: 'integer', description: 'The other direction: our packets the peer\'s RTCP reports say it lost (WhatsApp leg)' },
    codec: { type: 'string', enum: ['opus', 'PCMU', 'PCMA'], description: 'The leg\'s audio codec (G.711 toward WhatsApp with media.whatsappCodecs)' },
  },
};

const quality = {
  type: 'object',
  description: 'Per-direction quality: the WhatsApp leg (WebRTC) and the SIP leg (RTP), as received by the gateway',
  properties: { whatsapp: { $ref: '#/components/schemas/LegQuality' }, sip: { $ref: '#/components/schemas/LegQuality' } },
};

const callRecord = {
  type: 'object',
  required: ['id', 'direction', 'tenant', 'phoneNumberId', 'businessNumber', 'userWaId', 'offeredAt', 'endedAt', 'durationSeconds', 'billablePulses', 'outcome', 'endedBy', 'cause'],
  properties: {
    id: { type: 'string', description: 'Gateway call id' },
    direction: { type: 'string', enum: ['user_initiated', 'business_initiated'] },
    tenant: { type: 'string' },
    phoneNumberId: { type: 'string', description: 'Graph phone-number id of the business number' },
    businessNumber: { type: 'string', description: 'Business number, E.164 digits' },
    userWaId: { type: 'string', description: "The WhatsApp user's wa_id" },
    userName: { type: 'string', description: "The user's WhatsApp profile name" },
    sipTarget: { type: 'string', description: 'SIP URI rung (user-initiated) or that placed the call' },
    sipAgent: { type: 'string', description: 'Contact URI of the SIP party that answered' },
    waCallId: { type: 'string', description: 'WhatsApp call id (wacid.…)' },
    sipCallId: { type: 'string', description: 'SIP Call-ID' },
    ctaPayload: { type: 'string' },
    deeplinkPayload: { type: 'string' },
    offeredAt: { type: 'string', format: 'date-time' },
    answeredAt: { type: 'string', format: 'date-time' },
    endedAt: { type: 'string', format: 'date-time' },
    durationSeconds: { type: 'number', description: 'From answer to end; 0 when never answered' },
    billablePulses: { type: 'integer', description: '6-second pulses, rounded up (business-initiated only), of metaDurationSeconds when Meta stated it, else of durationSeconds' },
    metaDurationSeconds: { type: 'integer', description: 'Meta\'s own duration of the call, from its terminate webhook (picked-up calls only); when that webhook comes after the record was written, the stored record is amended' },
    estimatedCost: { type: 'number', description: '0 for user-initiated calls' },
    currency: { type: 'string', description: 'ISO 4217' },
    outcome: { type: 'string', enum: ['answered', 'rejected', 'busy', 'no_answer', 'cancelled', 'failed'] },
    endedBy: { type: 'string', enum: ['whatsapp', 'sip', 'gateway'], description: 'Which side hung up' },
    cause: { type: 'string', description: "Machine-readable cause: sip_486, graph_accept_138006, media_timeout_sip, drain, admin_hangup, …" },
    sipStatus: { type: 'integer' },
    graphCode: { type: 'integer' },
    quality: { $ref: '#/components/schemas/Quality' },
    recording: { type: 'object', description: 'The call\'s recording, when one was made', properties: { id: { type: 'string' }, file: { type: 'string' }, format: { type: 'string' }, durationSeconds: { type: 'number' }, consent: { type: 'string' } } },
  },
};

const liveCall = {
  type: 'object',
  properties: {
    id: { type: 'string' }, state: { type: 'string', enum: ['new', 'offered', 'pre_accepted', 'ringing', 'answered', 'ended'] },
    direction: { type: 'string' }, tenant: { type: 'string' }, businessNumber: { type: 'string' }, userWaId: { type: 'string' },
    userName: { type: 'string' }, sipTarget: { type: 'string' }, sipAgent: { type: 'string' }, waCallId: { type: 'string' },
    sipCallId: { type: 'string' }, offeredAt: { type: 'string', format: 'date-time' }, answeredAt: { type: 'string', format: 'date-time' },
    durationSeconds: { type: 'number' }, quality: { oneOf: [{ $ref: '#/components/schemas/Quality' }, { type: 'null' }] },
  },
};

const error = { type: 'object', required: ['error'], properties: { error: { type: 'string' } } };

const filters = [
  { name: 'since', in: 'query', schema: { type: 'string', format: 'date-time' }, description: 'offeredAt ≥ since' },
  { name: 'until', in: 'query', schema: { type: 'string', format: 'date-time' }, description: 'offeredAt < until' },
  { name: 'direction', in: 'query', schema: { type: 'string', enum: ['user_initiated', 'business_initiated'] } },
  { name: 'outcome', in: 'query', schema: { type: 'string', enum: ['answered', 'rejected', 'busy', 'no_answer', 'cancelled', 'failed'] } },
  { name: 'number', in: 'query', schema: { type: 'string' }, description: "The user's wa_id or the business number (E.164 digits, + optional)" },
  { name: 'tenant', in: 'query', schema: { type: 'string' }, description: 'A key given a tenant is limited to it whatever is asked (another tenant: 403)' },
];

const responses = (ok: Record<string, unknown>, ...codes: number[]): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...ok };
  const text: Record<number, string> = {
    400: 'Bad request', 401: 'Missing or unknown API key', 404: 'Not found', 409: 'The user is busy (SIP 486)',
    502: "Meta's Graph API refused or failed", 503: 'Not available now: the SIP side is not connected, the gateway is draining or at capacity, or the permission ledger is off',
    403: "The key's role may not do this; on the business-call routes also a refusal (country_blocked, no permission, Meta's call limit) with its reason",
  };
  for (const c of codes) out[String(c)] = { description: text[c], content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  return out;
};
const json = (schema: unknown, description: string) => ({ '200': { description, content: { 'application/json': { schema } } } });

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'wa-sip-gateway admin API',
      version: '1',
      description: 'Call records, live calls and the live event feed. Auth: `Authorization: Bearer <key>`, keys from WAGW_ADMIN_KEYS ' +
        'mapped to roles: admin (everything), supervisor (read everything, hang up calls), reporting (call records and recordings). ' +
        'A key given a tenant (name:role:tenant:key) sees that tenant\'s records, recordings, live calls and events only, whatever its role. ' +
        '401 = no or unknown key, 403 = known key whose role may not. Every mutating request is audit-logged with the key\'s name.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { LegQuality: legQuality, Quality: quality, CallRecord: callRecord, LiveCall: liveCall, Error: error },
    },
    paths: {
      '/v1/openapi.json': { get: { summary: 'This description', security: [], responses: { '200': { description: 'OpenAPI document' } } } },
      '/v1/records': {
        get: {
          summary: 'Call records, newest first, one page at a time', 'x-roles': ['admin', 'supervisor', 'reporting'],
          parameters: [...filters,
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
            { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'nextCursor of the previous page' }],
          responses: responses(json({
            type: 'object', properties: {
              records: { type: 'array', items: { $ref: '#/components/schemas/CallRecord' } },
              nextCursor: { type: ['string', 'null'], description: 'Pass as cursor for the next page; null on the last page' },
            },
          }, 'A page of records'), 400, 401, 403),
        },
      },
      '/v1/records.csv': {
        get: {
          summary: 'Every matching call record as CSV, streamed', 'x-roles': ['admin', 'supervisor', 'reporting'], parameters: filters,
          responses: responses({ '200': { description: 'CSV with a header row', content: { 'text/csv': { schema: { type: 'string' } } } } }, 400, 401, 403),
        },
      },
      '/v1/records/{id}': {
        get: {
          summary: 'One call record', 'x-roles': ['admin', 'supervisor', 'reporting'],
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: responses(json({ $ref: '#/components/schemas/CallRecord' }, 'The record'), 401, 403, 404),
        },
      },
      '/v1/calls': {
        post: {
          summary: 'Click-to-call: the gateway calls the WhatsApp user (business-initiated) and rings the agent when the user answers', 'x-roles': ['admin', 'supervisor'],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['to', 'agent'], properties: {
            to: { type: 'string', description: "The user's wa_id" }, agent: { type: 'string', description: 'SIP URI to ring' },
            phoneNumberId: { type: 'string', description: 'Business number to call from; default the only or default one' },
          } } } } },
          responses: responses({ '202': { description: 'Call started', content: { 'application/json': { schema: { type: 'object', properties: { callId: { type: 'string' }, waCallId: { type: ['string', 'null'] }, state: { type: 'string' } } } } } } }, 400, 401, 403, 404, 409, 502, 503),
        },
        get: {
          summary: 'Live calls with their current quality', 'x-roles': ['admin', 'supervisor'],
          parameters: [{ name: 'cluster', in: 'query', required: false, schema: { type: 'string', enum: ['1'] }, description: 'Also the live calls of every cluster.peers instance (each with `instance`), and `peers` with who answered' }],
          responses: responses(json({ type: 'object', properties: {
            calls: { type: 'array', items: { $ref: '#/components/schemas/LiveCall' } },
            peers: { type: 'array', items: { type: 'object', properties: { peer: { type: 'string' }, ok: { type: 'boolean' }, status: { type: 'integer' } } } },
          } }, 'Live calls'), 401, 403),
        },
      },
      '/v1/calls/{id}': {
        get: {
          summary: 'One live call (gateway id or WhatsApp call id)', 'x-roles': ['admin', 'supervisor'],
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: responses(json({ $ref: '#/components/schemas/LiveCall' }, 'The live call'), 401, 403, 404),
        },
        delete: {
          summary: 'Hang up a live call (same as POST …/hangup)', 'x-roles': ['admin', 'supervisor'],
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: responses(json({ type: 'object', properties: { ended: { type: 'boolean' }, record: { $ref: '#/components/schemas/CallRecord' } } }, 'Ended; its record'), 401, 403, 404),
        },
      },
      '/v1/calls/{id}/hangup': {
        post: {
          summary: "Hang up a live call: both sides are released, the record's cause is admin_hangup", 'x-roles': ['admin', 'supervisor'],
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: responses(json({ type: 'object', properties: { ended: { type: 'boolean' }, record: { $ref: '#/components/schemas/CallRecord' } } }, 'Ended; its record'), 401, 403, 404),
        },
      },
      '/v1/permission-requests': {
        post: {
          summary: 'Send a call permission request to a WhatsApp user (free-form body or a template); local limits checked first', 'x-roles': ['admin', 'supervisor'],
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['to'], properties: {
            to: { type: 'string' }, phoneNumberId: { type: 'string' }, body: { type: 'string', maxLength: 1024 }, template: { type: 'string' }, language: { type: 'string' },
          } } } } },
          responses: responses({ '202': { description: 'Sent' }, '409': { description: 'Permanent permission already granted' }, '429': { description: 'Request limit reached (Retry-After)' }, '502': { description: 'Graph error' } }, 400, 401, 403, 404, 503),
        },
      },
      '/v1/permissions/{waId}': {
        get: {
          summary: "The permission ledger's view of one user (status, expiry, request counts); ?refresh=1 asks Meta", 'x-roles': ['admin', 'supervisor', 'reporting'],
          parameters: [{ name: 'waId', in: 'path', required: true, schema: { type: 'string' } }, { name: 'phoneNumberId', in: 'query', schema: { type: 'string' } }, { name: 'refresh', in: 'query', schema: { type: 'string', enum: ['1', 'true'] } }],
          responses: responses(json({ type: 'object' }, 'Permission view'), 400, 401, 403, 404, 503),
        },
      },
      '/v1/status': {
        get: {
          summary: 'Status summary: live calls by state and direction, drachtio, store, RTP ports, draining; metaNotices (Meta\'s latest account notices) for keys without a tenant', 'x-roles': ['admin', 'supervisor'],
          responses: responses(json({ type: 'object' }, 'Status'), 401, 403),
        },
      },
      '/v1/events': {
        get: {
          summary: 'Live event feed (WebSocket upgrade; same bearer auth in the Authorization header, or ?access_token= from a browser)', 'x-roles': ['admin', 'supervisor'],
          parameters: [
            { name: 'access_token', in: 'query', required: false, schema: { type: 'string' }, description: 'The bearer key, for clients that cannot set headers on a WebSocket (RFC 6750 §2.3)' },
            { name: 'cluster', in: 'query', required: false, schema: { type: 'string', enum: ['1'] }, description: "1: also every cluster.peers instance's call events, each with instance (the peer's base URL)" },
          ],
          description: 'Messages are JSON objects: first {"type":"feed.ready"}, then call.offered, call.ringing, call.answered, call.quality ' +
            '(periodic while answered) and call.ended (with outcome, endedBy, cause, durationSeconds, quality), each with seq, at, callId, ' +
            'direction, tenant, businessNumber, userWaId, waCallId, sipCallId, state. A client that does not keep up is disconnected ' +
            '(close code 1008 or a dropped connection), never slowing the gateway.',
          responses: responses({ '101': { description: 'Switching to WebSocket' } }, 401, 403),
        },
      },
      ...recordingOpenApiPaths(),
    },
  };
}
