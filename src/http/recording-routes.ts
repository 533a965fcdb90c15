/**
 * Admin API for recordings: start and stop a live call's recording (staff), list and read recordings (reporting keys
 * see their own tenant only; another tenant's recording is as absent as a missing one), download (streamed) and
 * delete. Downloads and deletions are audit-logged with the key's name.
 */
import type { AdminRequest, AdminRouter, Principal, Role } from './admin-router.js';
import { AdminHttpError, seesTenant } from './admin-router.js';
import { liveCallOr404 } from './admin-api.js';
import { sendJson } from './server.js';
import type { CallRegistry } from '../calls/registry.js';
import type { CallAudioService } from '../recording/call-audio-service.js';
import { formatOf, RECORDING_FILE, type RecordingMeta } from '../recording/recording-store.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

const ALL: readonly Role[] = ['admin', 'supervisor', 'reporting'];
const STAFF: readonly Role[] = ['admin', 'supervisor'];
const ADMIN: readonly Role[] = ['admin'];

export interface RecordingRoutesDeps {
  audio: CallAudioService;
  registry: CallRegistry;
  logger: Logger;
  metrics: Metrics;
}

export function registerRecordingRoutes(admin: AdminRouter, deps: RecordingRoutesDeps): void {
  const { audio, registry, logger } = deps;
  const store = audio.store;

  const control = (action: 'start' | 'stop') => ({ params, res, principal }: AdminRequest): void => {
    const call = liveCallOr404(registry, params.id!, principal);
    const r = action === 'start' ? audio.start(call.id) : audio.stop(call.id);
    if (!r.ok) throw new AdminHttpError(r.status, r.error);
    sendJson(res, 200, { callId: call.id, recording: r.recording, recordingId: r.id });
  };
  admin.add('POST', '/v1/calls/:id/recording/start', STAFF, control('start'));
  admin.add('POST', '/v1/calls/:id/recording/stop', STAFF, control('stop'));
  admin.add('GET', '/v1/calls/:id/recording', STAFF, ({ params, res, principal }) => {
    const call = liveCallOr404(registry, params.id!, principal);
    const state = audio.state(call.id);
    sendJson(res, 200, { callId: call.id, recording: state?.recording ?? false, consent: state?.consent ?? 'not_applicable', streaming: state?.streaming ?? false });
  });

  const find = (id: string, p: Principal): RecordingMeta => {
    const meta = store.get(id);
    if (!meta || !seesTenant(p, meta.tenant)) throw new AdminHttpError(404, 'no such recording');
    return meta;
  };

  admin.add('GET', '/v1/recordings', ALL, ({ url, res, principal }) => {
    let tenant = url.searchParams.get('tenant') || undefined;
    if (principal.tenant !== undefined) {
      if (tenant !== undefined && tenant !== principal.tenant) throw new AdminHttpError(403, `key ${principal.name} may read tenant ${principal.tenant} only`);
      tenant = principal.tenant;
    }
    const limit = Math.max(1, Math.min(1000, Number(url.searchParams.get('limit') ?? 100) || 100));
    const recordings = store.list(tenant).slice(0, limit).map(({ ...m }) => ({ ...m, live: audio.isLive(m.id) }));
    sendJson(res, 200, { recordings });
  });

  admin.add('GET', '/v1/recordings/:id', ALL, ({ params, res, principal }) => {
    const meta = find(params.id!, principal);
    sendJson(res, 200, { ...meta, live: audio.isLive(meta.id) });
  });

  admin.add('GET', '/v1/recordings/:id/audio', ALL, async ({ params, req, res, principal, url }) => {
    const meta = find(params.id!, principal);
    const file = store.open(meta);
    if (!file) throw new AdminHttpError(404, 'the recording file is gone');
    logger.info({ audit: true, key: principal.name, role: principal.role, method: 'GET', path: url.pathname, recording: meta.id, tenant: meta.tenant }, 'recording downloaded');
    res.writeHead(200, {
      'content-type': RECORDING_FILE[formatOf(meta)].contentType,
      // A recording still being written grows; its length is what the file holds so far.
      ...(audio.isLive(meta.id) ? {} : { 'content-length': String(file.size) }),
      'content-disposition': `attachment; filename="${meta.id}.${RECORDING_FILE[formatOf(meta)].ext}"`,
      'cache-control': 'no-store',
    });
    await new Promise<void>((resolve) => {
      file.stream.on('error', () => { res.destroy(); resolve(); });
      res.on('close', () => { file.stream.destroy(); resolve(); });
      file.stream.pipe(res);
      void req;
    });
  });

  admin.add('DELETE', '/v1/recordings/:id', ADMIN, ({ params, res, principal, url }) => {
    const meta = find(params.id!, principal);
    if (audio.isLive(meta.id)) throw new AdminHttpError(409, 'the call is still live: stop it first');
    store.delete(meta);
    deps.metrics.recordingsDeleted.inc({ reason: 'admin' });
    logger.info({ audit: true, key: principal.name, role: principal.role, method: 'DELETE', path: url.pathname, recording: meta.id, tenant: meta.tenant }, 'recording deleted');
    sendJson(res, 200, { deleted: true, id: meta.id });
  });
}

const idParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }];
const err = (d: string) => ({ description: d, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

/** The recording routes' part of the OpenAPI description. */
export function recordingOpenApiPaths(): Record<string, unknown> {
  const meta = {
    type: 'object', properties: {
      id: { type: 'string' }, callId: { type: 'string' }, tenant: { type: 'string' }, waCallId: { type: 'string' }, userWaId: { type: 'string' },
      businessNumber: { type: 'string' }, direction: { type: 'string' }, format: { type: 'string', enum: ['wav', 'ogg'], description: 'wav: 16-bit PCM .wav; ogg: Opus in Ogg .opus (audio/ogg)' }, sampleRate: { type: 'integer' },
      channels: { type: 'array', items: { type: 'string' }, description: '["user","agent"]: left = WhatsApp user, right = agent' },
      consent: { type: 'string', enum: ['not_required', 'announced', 'explicit_yes'] }, startedAt: { type: 'string', format: 'date-time' },
      endedAt: { type: 'string', format: 'date-time' }, durationSeconds: { type: 'number' }, bytes: { type: 'integer' },
      status: { type: 'string', enum: ['recording', 'complete', 'failed'] }, live: { type: 'boolean' },
    },
  };
  const control = (what: string) => ({
    post: {
      summary: what, 'x-roles': ['admin', 'supervisor'], parameters: idParam,
      responses: { '200': { description: 'Done', content: { 'application/json': { schema: { type: 'object', properties: { callId: { type: 'string' }, recording: { type: 'boolean' }, recordingId: { type: 'string' } } } } } }, '401': err('Missing or unknown API key'), '403': err("The key's role may not do this"), '404': err('No such live call'), '409': err('Recording off for the tenant, consent pending or refused') },
    },
  });
  return {
    '/v1/calls/{id}/recording': {
      get: {
        summary: "A live call's recording and stream state (consent: pending, not_required, announced, explicit_yes, no_consent, not_applicable)", 'x-roles': ['admin', 'supervisor'], parameters: idParam,
        responses: { '200': { description: 'State', content: { 'application/json': { schema: { type: 'object', properties: { callId: { type: 'string' }, recording: { type: 'boolean' }, consent: { type: 'string' }, streaming: { type: 'boolean' } } } } } }, '404': err('No such live call') },
      },
    },
    '/v1/calls/{id}/recording/start': control("Start (or resume) a live call's recording; needs a tenant policy other than off and the user's consent where required"),
    '/v1/calls/{id}/recording/stop': control("Pause a live call's recording (a later start resumes the same file)"),
    '/v1/recordings': {
      get: {
        summary: 'Recordings, newest first (reporting keys: own tenant only)', 'x-roles': ['admin', 'supervisor', 'reporting'],
        parameters: [{ name: 'tenant', in: 'query', schema: { type: 'string' } }, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } }],
        responses: { '200': { description: 'Recordings', content: { 'application/json': { schema: { type: 'object', properties: { recordings: { type: 'array', items: meta } } } } } }, '401': err('Missing or unknown API key'), '403': err('Another tenant') },
      },
    },
    '/v1/recordings/{id}': {
      get: { summary: "One recording's metadata", 'x-roles': ['admin', 'supervisor', 'reporting'], parameters: idParam, responses: { '200': { description: 'Metadata', content: { 'application/json': { schema: meta } } }, '404': err('Not found') } },
      delete: { summary: 'Delete a recording (audit-logged)', 'x-roles': ['admin'], parameters: idParam, responses: { '200': { description: 'Deleted' }, '403': err("The key's role may not do this"), '404': err('Not found'), '409': err('Call still live') } },
    },
    '/v1/recordings/{id}/audio': {
      get: { summary: 'Download the audio (WAV or Ogg/Opus, as its format says), streamed (audit-logged)', 'x-roles': ['admin', 'supervisor', 'reporting'], parameters: idParam, responses: { '200': { description: 'audio/wav or audio/ogg', content: { 'audio/wav': { schema: { type: 'string', format: 'binary' } }, 'audio/ogg': { schema: { type: 'string', format: 'binary' } } } }, '404': err('Not found') } },
    },
  };
}
