import type { HttpRequest, HttpResponse, HttpTransport, Logger } from '@unicrm/model';
import { UnicrmError } from '@unicrm/model';
import { PipedriveStageCreateBodySchema, PipedriveStageUpdateBodySchema, POSITION_NOT_WRITABLE } from './bodies';
import { PipelineNameCache } from './client';
import { PIPEDRIVE_OAUTH, PipedriveConnector } from './connector';
import { parsePipedriveContext } from './context';
import { pipedriveDateToIso } from './dates';
import { unifyPipeline, unifyStage } from './mappers';
import { remoteError } from './remote-errors';

const silent: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

class QueueTransport implements HttpTransport {
  readonly requests: HttpRequest[] = [];
  constructor(private readonly answers: HttpResponse[]) {}
  async request(request: HttpRequest): Promise<HttpResponse> {
    this.requests.push(request);
    const answer = this.answers.shift();
    if (!answer) throw new Error('no answer queued');
    return answer;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): HttpResponse => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  bodyText: JSON.stringify(body),
});

const item = {
  id: 7, order_nr: 3, name: 'Won', is_deleted: false, deal_probability: 100, pipeline_id: 1,
  is_deal_rot_enabled: false, days_to_rotten: null, add_time: '2024-01-01T00:00:00Z', update_time: '2024-01-02T10:00:00Z',
};
const account = { id: 'a', integration: 'pipedrive', context: { api_domain: 'https://acme.pipedrive.com', api_token: 't0k' } };

describe('Pipedrive mappers', () => {
  it('unify a stage: position <- order_nr, status <- is_deleted, pipeline {id, name}, RFC 3339 dates, remote_data whole', () => {
    expect(unifyStage(item, 'Sales')).toEqual({
      id: '7', name: 'Won', position: 3, status: 'active', pipeline: { id: '1', name: 'Sales' },
      created_at: '2024-01-01T00:00:00.000Z', updated_at: '2024-01-02T10:00:00.000Z', remote_data: item,
    });
    expect(unifyStage({ ...item, is_deleted: true }).status).toBe('inactive');
    expect(unifyStage(item).pipeline).toEqual({ id: '1' });
  });

  it('unify a pipeline with its own stages that are not deleted, in order_nr order', () => {
    const stages = [{ ...item, id: 9, order_nr: 2, name: 'B' }, { ...item, id: 8, order_nr: 1, name: 'A' }, { ...item, id: 10, is_deleted: true }, { ...item, id: 11, pipeline_id: 2 }];
    const pipeline = { id: 1, name: 'Sales', order_nr: 1, is_deleted: false, add_time: '2024-01-01T00:00:00Z' };
    expect(unifyPipeline(pipeline, stages)).toMatchObject({
      id: '1', name: 'Sales', entity: 'opportunity',
      stages: [{ id: '8', name: 'A', status: 'active', pipeline: { id: '1' } }, { id: '9', name: 'B', status: 'active', pipeline: { id: '1' } }],
      created_at: '2024-01-01T00:00:00.000Z',
    });
  });

  it('read v2 ISO dates and v1 zone-less UTC dates, and invent none', () => {
    expect(pipedriveDateToIso('2024-05-06T07:08:09+02:00')).toBe('2024-05-06T05:08:09.000Z');
    expect(pipedriveDateToIso('2024-05-06 07:08:09')).toBe('2024-05-06T07:08:09.000Z');
    expect(pipedriveDateToIso('yesterday')).toBeUndefined();
    expect(pipedriveDateToIso(null)).toBeUndefined();
  });
});

describe('Pipedrive bodies', () => {
  const issues = (result: { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }) =>
    (result.error?.issues ?? []).map((issue) => `${issue.path.join('.')}: ${issue.message}`);

  it('require name and pipeline.id on create, and refuse position (v2 has no writable order_nr)', () => {
    expect(PipedriveStageCreateBodySchema.safeParse({ name: 'X', pipeline: { id: '1' } }).success).toBe(true);
    expect(issues(PipedriveStageCreateBodySchema.safeParse({ name: 'X' }))).toEqual([expect.stringMatching(/^pipeline: is required for Pipedrive/)]);
    expect(issues(PipedriveStageCreateBodySchema.safeParse({ name: 'X', pipeline: { id: '1' }, position: 2 }))).toEqual([`position: ${POSITION_NOT_WRITABLE}`]);
    expect(issues(PipedriveStageUpdateBodySchema.safeParse({ position: 0 }))).toEqual([`position: ${POSITION_NOT_WRITABLE}`]);
    expect(issues(PipedriveStageCreateBodySchema.safeParse({ name: 'X', pipeline: { id: 'abc' } }))).toEqual([expect.stringMatching(/^pipeline.id: must be a Pipedrive pipeline id/)]);
  });

  it('refuse remote_data keys Pipedrive would ignore, order_nr, bad types, and conflicts with the unified fields', () => {
    const base = { name: 'X', pipeline: { id: '1' } };
    expect(PipedriveStageCreateBodySchema.safeParse({ ...base, remote_data: { deal_probability: 40, is_deal_rot_enabled: true, days_to_rotten: 3 } }).success).toBe(true);
    expect(issues(PipedriveStageCreateBodySchema.safeParse({ ...base, remote_data: { colour: 'red' } }))).toEqual([expect.stringMatching(/^remote_data.colour: is not a field of Pipedrive's stage body/)]);
    expect(issues(PipedriveStageCreateBodySchema.safeParse({ ...base, remote_data: { order_nr: 1 } }))).toEqual([expect.stringMatching(/^remote_data.order_nr: cannot be written/)]);
    expect(issues(PipedriveStageCreateBodySchema.safeParse({ ...base, remote_data: { deal_probability: 101 } }))).toEqual(['remote_data.deal_probability: must be a whole number from 0 to 100']);
    expect(issues(PipedriveStageCreateBodySchema.safeParse({ ...base, remote_data: { pipeline_id: 2 } }))).toEqual([
      expect.stringMatching(/^pipeline.id: conflicts with remote_data.pipeline_id/),
      expect.stringMatching(/^remote_data.pipeline_id: conflicts with pipeline.id/),
    ]);
    expect(PipedriveStageCreateBodySchema.safeParse({ ...base, remote_data: { pipeline_id: 1 } }).success).toBe(true);
  });
});

describe('Pipedrive contexts', () => {
  it('take either an API token or OAuth tokens, not both; null keys are dropped (to switch modes)', () => {
    expect(parsePipedriveContext({ api_domain: 'https://acme.pipedrive.com/', api_token: 'x' })).toEqual({ api_domain: 'https://acme.pipedrive.com', api_token: 'x' });
    const oauth = { api_domain: 'https://acme.pipedrive.com', access_token: 'a', refresh_token: 'r', expires_at: '2026-01-01T00:00:00Z', client_id: 'c', client_secret: 's' };
    expect(parsePipedriveContext(oauth)).toEqual(oauth);
    expect(parsePipedriveContext({ ...oauth, api_token: null })).toEqual(oauth);
    expect(() => parsePipedriveContext({ ...oauth, api_token: 'x' })).toThrow(/either api_token or OAuth tokens/);
    expect(() => parsePipedriveContext({ ...oauth, expires_at: 'soon' })).toThrow(/context.expires_at/);
  });

  it('apply the outbound policy to api_domain and token_url', () => {
    expect(() => parsePipedriveContext({ api_domain: 'http://acme.pipedrive.com', api_token: 'x' })).toThrow(/context.api_domain/);
    expect(() => parsePipedriveContext({ api_domain: 'https://169.254.169.254', api_token: 'x' })).toThrow(/context.api_domain/);
    expect(parsePipedriveContext({ api_domain: 'http://127.0.0.1:8200', api_token: 'x' })).toEqual({ api_domain: 'http://127.0.0.1:8200', api_token: 'x' });
  });
});

describe('Pipedrive OAuth declaration', () => {
  const context = { api_domain: 'https://acme.pipedrive.com', access_token: 'a', refresh_token: 'r', expires_at: '2026-01-01T00:00:00Z', client_id: 'id', client_secret: 'secret' };
  it('refreshes at the token endpoint with the client credentials as Basic, and applies expires_in from now', () => {
    expect(PIPEDRIVE_OAUTH.tokens(context)).toEqual({ accessToken: 'a', expiresAt: new Date('2026-01-01T00:00:00Z') });
    expect(PIPEDRIVE_OAUTH.tokens({ api_domain: 'x', api_token: 't' })).toBeUndefined();
    const request = PIPEDRIVE_OAUTH.refreshRequest(context);
    expect(request).toEqual({
      url: 'https://oauth.pipedrive.com/oauth/token',
      headers: { authorization: `Basic ${Buffer.from('id:secret').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: 'grant_type=refresh_token&refresh_token=r',
    });
    const now = new Date('2026-02-01T00:00:00Z');
    expect(PIPEDRIVE_OAUTH.applyRefresh(context, { access_token: 'b', refresh_token: 'r2', expires_in: 3600, api_domain: 'https://acme2.pipedrive.com' }, now)).toEqual({
      ...context, access_token: 'b', refresh_token: 'r2', expires_at: '2026-02-01T01:00:00.000Z', api_domain: 'https://acme2.pipedrive.com',
    });
    expect(() => PIPEDRIVE_OAUTH.applyRefresh(context, { error: 'x' }, now)).toThrow(/no access_token/);
  });
});

describe('Pipedrive remote errors', () => {
  it('mirror the status with Pipedrive message, an insight per kind, and forward only the rate-limit headers', () => {
    const error = remoteError(
      json(429, { success: false, error: 'Rate limit exceeded', error_info: 'Please check developers.pipedrive.com', data: null, additional_data: null }, {
        'x-ratelimit-limit': '40', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2', 'x-daily-requests-left': '10', 'retry-after': '2', 'set-cookie': 'no', server: 'cf',
      }),
    );
    expect(error.statusCode).toBe(429);
    expect(error.message).toBe('Rate limit exceeded');
    expect(error.body.truto_error_insight).toHaveProperty('rate_limit_error');
    expect(error.headers).toEqual({ 'x-ratelimit-limit': '40', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2', 'x-daily-requests-left': '10', 'retry-after': '2' });
    expect(remoteError(json(403, { success: false, error: 'Scope and URL mismatch' })).body.truto_error_insight).toHaveProperty('missing_scope');
    expect(remoteError(json(400, { success: false, error: 'Stage name is required' })).body.truto_error_insight).toHaveProperty('validation_error');
    const html = remoteError({ status: 403, headers: { 'content-type': 'text/html' }, bodyText: '<html>Cloudflare</html>' });
    expect(html.body.raw_response).toBe('<html>Cloudflare</html>');
    expect(html.message).toBe('Pipedrive answered HTTP 403 without an error message');
  });
});

describe('PipedriveConnector', () => {
  it('creates a stage with name and pipeline_id (integer), x-api-token auth, and the pipeline name read once', async () => {
    const transport = new QueueTransport([json(200, { success: true, data: item }), json(200, { success: true, data: { id: 1, name: 'Sales' } })]);
    const connector = new PipedriveConnector(transport, silent);
    const created = await connector.resources['crm/stages']?.create?.create(account, { name: 'Won', pipeline: { id: '1' }, remote_data: { deal_probability: 100 } }, { remoteQuery: {} });
    expect(created?.unified).toMatchObject({ id: '7', name: 'Won', position: 3, pipeline: { id: '1', name: 'Sales' } });
    expect(transport.requests[0]).toMatchObject({ method: 'POST', url: 'https://acme.pipedrive.com/api/v2/stages', headers: { 'x-api-token': 't0k' } });
    expect(JSON.parse(transport.requests[0]?.body ?? '')).toEqual({ name: 'Won', pipeline_id: 1, deal_probability: 100 });
    // The name is cached: a get of a stage of the same pipeline reads only the stage.
    transport.requests.length = 0;
    (transport as unknown as { answers: HttpResponse[] }).answers.push(json(200, { success: true, data: item }));
    await connector.resources['crm/stages']?.get?.get(account, '7', { remoteQuery: {} });
    expect(transport.requests.map((r) => r.url)).toEqual(['https://acme.pipedrive.com/api/v2/stages/7']);
  });

  it('lists by id with cursor paging and passes remote_query through, winning', async () => {
    const transport = new QueueTransport([json(200, { success: true, data: [item], additional_data: { next_cursor: 'abc' } }), json(200, { success: true, data: { id: 1, name: 'Sales' } })]);
    const connector = new PipedriveConnector(transport, silent);
    const page = await connector.resources['crm/stages']?.list?.list(account, { pipeline: { id: '1' } }, { limit: 2, direction: 'next' }, { remoteQuery: { sort_direction: 'desc' } });
    expect(page?.nextCursor).toBe('abc');
    expect(page?.prevCursor).toBeNull();
    expect(transport.requests[0]?.url).toBe('https://acme.pipedrive.com/api/v2/stages?sort_by=id&sort_direction=desc&limit=2&pipeline_id=1');
  });

  it('answers Bearer for an OAuth context', async () => {
    const transport = new QueueTransport([json(200, { success: true, data: [] })]);
    const connector = new PipedriveConnector(transport, silent);
    const oauth = { ...account, context: { api_domain: 'https://acme.pipedrive.com', access_token: 'acc', refresh_token: 'r', expires_at: '2030-01-01T00:00:00Z', client_id: 'c', client_secret: 's' } };
    await connector.resources['crm/pipelines']?.list?.list(oauth, {}, { limit: 5, direction: 'next' }, { remoteQuery: {} });
    expect(transport.requests[0]?.headers).toMatchObject({ authorization: 'Bearer acc' });
  });

  it('mirrors a 404 as a remote error', async () => {
    const connector = new PipedriveConnector(new QueueTransport([json(404, { success: false, error: 'Stage not found' })]), silent);
    const failure = await connector.resources['crm/stages']?.get?.get(account, '99', { remoteQuery: {} }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(UnicrmError);
    expect((failure as UnicrmError).statusCode).toBe(404);
    expect((failure as UnicrmError).isRemote).toBe(true);
  });
});

describe('PipelineNameCache', () => {
  it('keeps names per company and id for its time to live', async () => {
    let now = 0;
    const cache = new PipelineNameCache(1000, () => now);
    const context = { api_domain: 'https://a.pipedrive.com', api_token: 'x' };
    let reads = 0;
    const read = async () => `name ${++reads}`;
    expect(await cache.get(PipelineNameCache.key(context, '1'), read)).toBe('name 1');
    expect(await cache.get(PipelineNameCache.key(context, '1'), read)).toBe('name 1');
    expect(await cache.get(PipelineNameCache.key({ ...context, api_domain: 'https://b.pipedrive.com' }, '1'), read)).toBe('name 2');
    now = 2000;
    expect(await cache.get(PipelineNameCache.key(context, '1'), read)).toBe('name 3');
  });
});
