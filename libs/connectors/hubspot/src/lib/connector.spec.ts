import type { HttpRequest, HttpResponse, HttpTransport, Logger } from '@unicrm/model';
import { UnicrmError } from '@unicrm/model';
import { desunifyStageCreate, desunifyStageUpdate, HUBSPOT_DEFAULT_DEAL_PROBABILITY, HubSpotStageCreateBodySchema, HubSpotStageUpdateBodySchema, isProbability } from './bodies';
import { HUBSPOT_CONSENT, HUBSPOT_OAUTH, HubSpotConnector } from './connector';
import { parseHubSpotContext } from './context';
import { hubspotDateToIso, unifyPipeline, unifyStage } from './mappers';
import { remoteError } from './remote-errors';
import { hubspotTarget, matchesDate, pageOf, stagesOfPipelines } from './stages';

const silent: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

class QueueTransport implements HttpTransport {
  readonly requests: HttpRequest[] = [];
  constructor(readonly answers: HttpResponse[]) {}
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

const stage = (id: string, label: string, displayOrder: number, extra: Record<string, unknown> = {}) => ({
  id, label, displayOrder, metadata: { probability: '0.2' }, archived: false,
  createdAt: '2024-01-01T00:00:00.000Z', updatedAt: '2024-01-02T10:00:00.000Z', writePermissions: 'CRM_PERMISSIONS_ENFORCEMENT', ...extra,
});
const pipeline = (id: string, label: string, displayOrder: number, stages: unknown[]) => ({
  id, label, displayOrder, archived: false, createdAt: '2024-01-01T00:00:00.000Z', updatedAt: '2024-01-01T00:00:00.000Z', stages,
});
const sales = pipeline('default', 'Sales Pipeline', 0, [
  stage('closedwon', 'Closed won', 5, { metadata: { probability: '1.0' }, createdAt: '1970-01-01T00:00:00Z' }),
  stage('appointmentscheduled', 'Appointment scheduled', 0),
  stage('old', 'Old', 1, { archived: true, archivedAt: '2024-03-01T00:00:00.000Z' }),
]);
const renewals = pipeline('77', 'Renewals', 1, [stage('101', 'Due', 0)]);
const account = { id: 'a', integration: 'hubspot', context: { access_token: 'pat-na1-x', api_base_url: 'https://api.hubapi.com' } };
const none = { remoteQuery: {} };

describe('HubSpot mappers', () => {
  it('unify a stage: name <- label, position <- displayOrder, status <- archived, the pipeline it was read from, dates, remote_data whole', () => {
    const item = stage('1234', 'Contract sent', 3);
    expect(unifyStage(item, { id: 'default', label: 'Sales Pipeline' })).toEqual({
      id: '1234', name: 'Contract sent', position: 3, status: 'active', pipeline: { id: 'default', name: 'Sales Pipeline' },
      created_at: '2024-01-01T00:00:00.000Z', updated_at: '2024-01-02T10:00:00.000Z', remote_data: item,
    });
    expect(unifyStage({ ...item, archived: true }, { id: 'default' })).toMatchObject({ status: 'inactive', pipeline: { id: 'default' } });
  });

  it("leave out the epoch createdAt of default pipelines' stages (unknown), and anything that is no date", () => {
    expect(hubspotDateToIso('1970-01-01T00:00:00Z')).toBeUndefined();
    expect(hubspotDateToIso('2019-10-30T03:30:17.883Z')).toBe('2019-10-30T03:30:17.883Z');
    expect(hubspotDateToIso('0')).toBeUndefined();
    expect(unifyStage(sales.stages[0] as Record<string, unknown>, { id: 'default' })).not.toHaveProperty('created_at');
  });

  it('unify a pipeline: entity opportunity for deals only, its stages not archived in displayOrder', () => {
    expect(unifyPipeline(sales, 'deals')).toMatchObject({
      id: 'default', name: 'Sales Pipeline', entity: 'opportunity',
      stages: [{ id: 'appointmentscheduled', status: 'active', pipeline: { id: 'default' } }, { id: 'closedwon' }],
    });
    expect(unifyPipeline(sales, 'tickets')).not.toHaveProperty('entity');
  });

  it('list the stages of every pipeline in order, filtered by status (default active), name and dates', () => {
    const ids = (filters: Parameters<typeof stagesOfPipelines>[1]) => stagesOfPipelines([renewals, sales], filters).map((s) => s.id);
    expect(ids({})).toEqual(['appointmentscheduled', 'closedwon', '101']);
    expect(ids({ status: 'inactive' })).toEqual(['old']);
    expect(ids({ name: 'Due' })).toEqual(['101']);
    expect(ids({ created_at: { gte: '2023-01-01T00:00:00Z' } })).toEqual(['appointmentscheduled', '101']);
    expect(matchesDate('2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00Z')).toBe(true);
    expect(matchesDate(undefined, { lt: '2030-01-01T00:00:00Z' })).toBe(false);
  });

  it('page an answer by offset, both ways', () => {
    const items = [1, 2, 3, 4, 5];
    expect(pageOf(items, { limit: 2 })).toEqual({ items: [1, 2], nextCursor: '2', prevCursor: null });
    expect(pageOf(items, { limit: 2, cursor: '4' })).toEqual({ items: [5], nextCursor: null, prevCursor: '2' });
  });
});

describe('HubSpot bodies', () => {
  const issues = (result: { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }) =>
    (result.error?.issues ?? []).map((issue) => `${issue.path.join('.')}: ${issue.message}`);

  it('require name and pipeline on create; take position; only status active', () => {
    expect(HubSpotStageCreateBodySchema.safeParse({ name: 'X', pipeline: { id: 'default' }, position: 2 }).success).toBe(true);
    expect(issues(HubSpotStageCreateBodySchema.safeParse({ name: 'X' }))).toEqual([expect.stringMatching(/^pipeline: is required for HubSpot/)]);
    expect(issues(HubSpotStageCreateBodySchema.safeParse({ pipeline: { id: 'default' } }))).toEqual([expect.stringMatching(/^name: is required for HubSpot/)]);
    expect(issues(HubSpotStageCreateBodySchema.safeParse({ name: 'X', pipeline: { id: 'default' }, status: 'inactive' }))).toEqual([expect.stringMatching(/^status: HubSpot creates stages active/)]);
  });

  it("check remote_data: HubSpot's input keys only, metadata strings, the probability's range and step, conflicts, archived via status", () => {
    const base = { name: 'X', pipeline: { id: 'default' } };
    expect(HubSpotStageCreateBodySchema.safeParse({ ...base, remote_data: { metadata: { probability: 0.6 }, stageId: 'x1' } }).success).toBe(true);
    expect(issues(HubSpotStageCreateBodySchema.safeParse({ ...base, remote_data: { colour: 'red' } }))).toEqual([expect.stringMatching(/^remote_data.colour: is not a field of HubSpot's stage input/)]);
    expect(issues(HubSpotStageCreateBodySchema.safeParse({ ...base, remote_data: { metadata: { probability: '1.5' } } }))).toEqual([expect.stringMatching(/^remote_data.metadata.probability: must be a deal probability/)]);
    expect(issues(HubSpotStageCreateBodySchema.safeParse({ ...base, remote_data: { metadata: { ticketState: 1 } } }))).toEqual([expect.stringMatching(/^remote_data.metadata.ticketState: must be a string/)]);
    expect(issues(HubSpotStageCreateBodySchema.safeParse({ ...base, position: 1, remote_data: { displayOrder: 2 } }))).toEqual([
      expect.stringMatching(/^position: conflicts with remote_data.displayOrder/),
      expect.stringMatching(/^remote_data.displayOrder: conflicts with position/),
    ]);
    expect(issues(HubSpotStageUpdateBodySchema.safeParse({ remote_data: { archived: false } }))).toEqual([expect.stringMatching(/^remote_data.archived: is not written through remote_data: send status/)]);
    expect(issues(HubSpotStageUpdateBodySchema.safeParse({ remote_data: { stageId: 'x' } }))).toEqual([expect.stringMatching(/^remote_data.stageId: is not a field of HubSpot's stage update/)]);
    expect(['0', '0.0', '1', '1.0', '0.3', 0.7, 1].every(isProbability)).toBe(true);
    expect(['0.25', '-0.1', 'half', 1.1, '', '1.01'].some(isProbability)).toBe(false);
  });

  it(`desunify a create: label, displayOrder (given or the default), metadata with the deal probability ${HUBSPOT_DEFAULT_DEAL_PROBABILITY} by default`, () => {
    expect(desunifyStageCreate({ name: 'X', pipeline: { id: 'default' } }, 'deals', 6)).toEqual({ label: 'X', displayOrder: 6, metadata: { probability: '0.5' } });
    expect(desunifyStageCreate({ name: 'X', position: 2, remote_data: { metadata: { probability: 0.9 }, stageId: 'x' } }, 'deals', 6)).toEqual({
      label: 'X', displayOrder: 2, metadata: { probability: '0.9' }, stageId: 'x',
    });
    expect(desunifyStageCreate({ name: 'T' }, 'tickets', 0)).toEqual({ label: 'T', displayOrder: 0, metadata: {} });
  });

  it("desunify an update: only what changes, the stage's metadata always sent, archived false to restore", () => {
    const current = stage('1', 'A', 1, { metadata: { probability: '0.2', extra: 'kept' } });
    expect(desunifyStageUpdate({ position: 4 }, current, false)).toEqual({ displayOrder: 4, metadata: { probability: '0.2', extra: 'kept' } });
    expect(desunifyStageUpdate({ name: 'B', remote_data: { metadata: { probability: '0.4' } } }, current, true)).toEqual({
      label: 'B', metadata: { probability: '0.4', extra: 'kept' }, archived: false,
    });
  });
});

describe('HubSpot contexts and targets', () => {
  it("take a private app's token or a whole OAuth grant; null keys are dropped; the outbound policy applies", () => {
    expect(parseHubSpotContext({ access_token: 'pat' })).toEqual({ access_token: 'pat' });
    expect(parseHubSpotContext({ access_token: 'pat', api_base_url: 'http://127.0.0.1:8300/' })).toEqual({ access_token: 'pat', api_base_url: 'http://127.0.0.1:8300' });
    const oauth = { access_token: 'a', refresh_token: 'r', expires_at: '2026-01-01T00:00:00Z', client_id: 'c', client_secret: 's' };
    expect(parseHubSpotContext({ ...oauth, token_url: null })).toEqual(oauth);
    expect(() => parseHubSpotContext({ access_token: 'a', refresh_token: 'r' })).toThrow(/context.expires_at/);
    expect(() => parseHubSpotContext({ access_token: 'a', api_base_url: 'http://api.hubapi.com' })).toThrow(/context.api_base_url/);
    expect(() => parseHubSpotContext({ access_token: 'a', private: 1 })).toThrow(/context/);
  });

  it('read object_type (default deals) and pipeline_id from remote_query, and pass the rest on', () => {
    expect(hubspotTarget({})).toEqual({ objectType: 'deals', query: {} });
    expect(hubspotTarget({ object_type: 'tickets', pipeline_id: '0', validateReferencesBeforeDelete: 'true' })).toEqual({
      objectType: 'tickets', pipelineId: '0', query: { validateReferencesBeforeDelete: 'true' },
    });
    expect(() => hubspotTarget({ object_type: '../deals' })).toThrow(/remote_query.object_type/);
    expect(() => hubspotTarget({ pipeline_id: { a: '1' } })).toThrow(/remote_query.pipeline_id/);
  });
});

describe('HubSpot OAuth declaration', () => {
  const context = { access_token: 'a', refresh_token: 'r', expires_at: '2026-01-01T00:00:00Z', client_id: 'id', client_secret: 'secret', api_base_url: 'http://127.0.0.1:8300' };
  it('refreshes at {api_base_url}/oauth/v1/token with the client credentials in the form, and applies expires_in from now', () => {
    expect(HUBSPOT_OAUTH.tokens(context)).toEqual({ accessToken: 'a', expiresAt: new Date('2026-01-01T00:00:00Z') });
    expect(HUBSPOT_OAUTH.tokens({ access_token: 'pat' })).toBeUndefined();
    expect(HUBSPOT_OAUTH.refreshRequest(context)).toEqual({
      url: 'http://127.0.0.1:8300/oauth/v1/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: 'grant_type=refresh_token&client_id=id&client_secret=secret&refresh_token=r',
    });
    expect(HUBSPOT_OAUTH.refreshRequest({ ...context, api_base_url: undefined }).url).toBe('https://api.hubapi.com/oauth/v1/token');
    const now = new Date('2026-02-01T00:00:00Z');
    expect(HUBSPOT_OAUTH.applyRefresh(context, { access_token: 'b', refresh_token: 'r', expires_in: 1800, token_type: 'bearer' }, now)).toEqual({
      ...context, access_token: 'b', expires_at: '2026-02-01T00:30:00.000Z',
    });
    expect(() => HUBSPOT_OAUTH.applyRefresh(context, { status: 'BAD_REFRESH_TOKEN' }, now)).toThrow(/no access_token/);
  });
});

describe('HubSpot consent flow declaration', () => {
  const app = { clientId: 'id', clientSecret: 'secret', authorizeUrl: 'https://app.hubspot.com/oauth/authorize', tokenUrl: 'https://api.hubapi.com/oauth/v1/token', scopes: [] };
  it("asks for the stage methods' scopes and exchanges a code with the client credentials in the form", () => {
    expect(HUBSPOT_CONSENT.scopes).toEqual(['crm.schemas.deals.read', 'crm.schemas.deals.write', 'tickets']);
    expect(HUBSPOT_CONSENT.codeRequest('the-code', 'https://unicrm.example/connect/oauth/callback', app)).toEqual({
      url: 'https://api.hubapi.com/oauth/v1/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: 'grant_type=authorization_code&client_id=id&client_secret=secret&redirect_uri=https%3A%2F%2Funicrm.example%2Fconnect%2Foauth%2Fcallback&code=the-code',
    });
  });

  it("makes an OAuth context that parses; api_base_url only when the token endpoint is not HubSpot's", () => {
    const now = new Date('2026-02-01T00:00:00Z');
    const answer = { token_type: 'bearer', access_token: 'a', refresh_token: 'r', expires_in: 1800 };
    const hubspot = HUBSPOT_CONSENT.contextOf(answer, app, now);
    expect(hubspot).toEqual({ access_token: 'a', refresh_token: 'r', expires_at: '2026-02-01T00:30:00.000Z', client_id: 'id', client_secret: 'secret' });
    expect(parseHubSpotContext(hubspot)).toEqual(hubspot);
    expect(HUBSPOT_CONSENT.contextOf(answer, { ...app, tokenUrl: 'http://127.0.0.1:8300/oauth/v1/token' }, now)).toMatchObject({ api_base_url: 'http://127.0.0.1:8300' });
    expect(() => HUBSPOT_CONSENT.contextOf({ access_token: 'a' }, app, now)).toThrow(/no refresh_token/);
  });
});

describe('HubSpot remote errors', () => {
  it("mirror the status with HubSpot's message, its category and correlationId, errors[] as the validation insight", () => {
    const body = {
      status: 'error', message: 'Stage label already exists', correlationId: 'aeb5f871-7f07-4993-9211-075dc63e7cbf', category: 'VALIDATION_ERROR',
      errors: [{ message: 'label must be unique', in: 'label', code: 'DUPLICATE' }],
    };
    const error = remoteError(json(400, body, { 'x-hubspot-correlation-id': 'aeb5f871-7f07-4993-9211-075dc63e7cbf', server: 'x' }));
    expect(error.statusCode).toBe(400);
    expect(error.message).toBe('Stage label already exists');
    expect(error.body).toMatchObject({
      truto_is_remote_error: true, raw_response: body,
      truto_error_insight: {
        remote_error: { value: { category: 'VALIDATION_ERROR', correlationId: 'aeb5f871-7f07-4993-9211-075dc63e7cbf' } },
        validation_error: { value: body.errors },
      },
    });
    expect(error.headers).toEqual({ 'x-hubspot-correlation-id': 'aeb5f871-7f07-4993-9211-075dc63e7cbf' });
  });

  it('forward the rate-limit headers and Retry-After of a 429, and name the missing scopes of a 403', () => {
    const limited = remoteError(
      json(429, { status: 'error', message: 'You have reached your ten_secondly_rolling limit.', errorType: 'RATE_LIMIT', policyName: 'TEN_SECONDLY_ROLLING', correlationId: 'c' }, {
        'x-hubspot-ratelimit-max': '100', 'x-hubspot-ratelimit-remaining': '0', 'x-hubspot-ratelimit-interval-milliseconds': '10000', 'retry-after': '1', 'set-cookie': 'no',
      }),
    );
    expect(limited.statusCode).toBe(429);
    expect(limited.headers).toEqual({ 'x-hubspot-ratelimit-max': '100', 'x-hubspot-ratelimit-remaining': '0', 'x-hubspot-ratelimit-interval-milliseconds': '10000', 'retry-after': '1' });
    expect(limited.body.truto_error_insight?.rate_limit_error?.value).toBe('TEN_SECONDLY_ROLLING');
    const scope = remoteError(json(403, { status: 'error', message: 'missing scopes', category: 'MISSING_SCOPES', correlationId: 'c', context: { requiredGranularScopes: ['crm.schemas.deals.write'] } }));
    expect(scope.body.truto_error_insight?.missing_scope?.value).toEqual(['crm.schemas.deals.write']);
    const html = remoteError({ status: 502, headers: { 'content-type': 'text/html' }, bodyText: '<html>bad gateway</html>' });
    expect(html.message).toBe('HubSpot answered HTTP 502 without an error message');
  });
});

describe('HubSpotConnector', () => {
  it('creates a deal stage: reads the pipeline (name, next displayOrder), posts label, displayOrder and the default probability', async () => {
    const created = stage('5001', 'Contract sent', 6, { metadata: { probability: '0.5' } });
    const transport = new QueueTransport([json(200, sales), json(201, created)]);
    const connector = new HubSpotConnector(transport, silent);
    const result = await connector.resources['crm/stages']?.create?.create(account, { name: 'Contract sent', pipeline: { id: 'default' } }, none);
    expect(result?.unified).toMatchObject({ id: '5001', name: 'Contract sent', position: 6, status: 'active', pipeline: { id: 'default', name: 'Sales Pipeline' } });
    expect(transport.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'GET https://api.hubapi.com/crm/v3/pipelines/deals/default',
      'POST https://api.hubapi.com/crm/v3/pipelines/deals/default/stages',
    ]);
    expect(transport.requests[1]?.headers).toMatchObject({ authorization: 'Bearer pat-na1-x', 'content-type': 'application/json' });
    expect(JSON.parse(transport.requests[1]?.body ?? '')).toEqual({ label: 'Contract sent', displayOrder: 6, metadata: { probability: '0.5' } });
  });

  it('gets a stage by id alone with one read of every pipeline; 404 when none has it, 409 when several do', async () => {
    const transport = new QueueTransport([json(200, { results: [sales, renewals] })]);
    const connector = new HubSpotConnector(transport, silent);
    const got = await connector.resources['crm/stages']?.get?.get(account, '101', none);
    expect(got?.unified).toMatchObject({ id: '101', name: 'Due', pipeline: { id: '77', name: 'Renewals' } });
    expect(got?.remote.body).toEqual(renewals.stages[0]);
    expect(transport.requests).toHaveLength(1);
    transport.answers.push(json(200, { results: [sales] }));
    const missing = await connector.resources['crm/stages']?.get?.get(account, '101', none).catch((e: unknown) => e);
    expect(missing).toMatchObject({ statusCode: 404, message: expect.stringMatching(/no deals stage 101 in any pipeline/) });
    transport.answers.push(json(200, { results: [sales, pipeline('78', 'Copy', 2, [stage('closedwon', 'Won', 0)])] }));
    const twice = await connector.resources['crm/stages']?.get?.get(account, 'closedwon', none).catch((e: unknown) => e);
    expect(twice).toMatchObject({ statusCode: 409, message: expect.stringMatching(/default, 78.*remote_query\[pipeline_id\]/) });
  });

  it('reads a stage at its own URL when remote_query names the pipeline and its object type', async () => {
    const tickets = pipeline('0', 'Support', 0, []);
    const own = stage('9', 'Closed', 3, { archived: true, metadata: { ticketState: 'CLOSED' } });
    const transport = new QueueTransport([json(200, tickets), json(200, own)]);
    const got = await new HubSpotConnector(transport, silent).resources['crm/stages']?.get?.get(account, '9', { remoteQuery: { object_type: 'tickets', pipeline_id: '0' } });
    expect(got?.unified).toMatchObject({ id: '9', status: 'inactive', pipeline: { id: '0', name: 'Support' } });
    expect(transport.requests.map((r) => r.url)).toEqual(['https://api.hubapi.com/crm/v3/pipelines/tickets/0', 'https://api.hubapi.com/crm/v3/pipelines/tickets/0/stages/9']);
  });

  it("moves a stage with PATCH displayOrder, sending its metadata back; refuses another pipeline; 'inactive' archives, 'active' restores", async () => {
    const moved = stage('appointmentscheduled', 'Appointment scheduled', 9);
    const transport = new QueueTransport([json(200, { results: [sales] }), json(200, moved)]);
    const stages = new HubSpotConnector(transport, silent).resources['crm/stages'];
    const result = await stages?.update?.update(account, 'appointmentscheduled', { position: 9 }, none);
    expect(result?.unified).toMatchObject({ position: 9, pipeline: { id: 'default', name: 'Sales Pipeline' } });
    expect(transport.requests[1]).toMatchObject({ method: 'PATCH', url: 'https://api.hubapi.com/crm/v3/pipelines/deals/default/stages/appointmentscheduled' });
    expect(JSON.parse(transport.requests[1]?.body ?? '')).toEqual({ displayOrder: 9, metadata: { probability: '0.2' } });

    transport.answers.push(json(200, { results: [sales] }));
    const elsewhere = await stages?.update?.update(account, 'appointmentscheduled', { pipeline: { id: '77' } }, none).catch((e: unknown) => e);
    expect(elsewhere).toMatchObject({ statusCode: 400, message: expect.stringMatching(/cannot move a stage to another pipeline/) });

    transport.requests.length = 0;
    transport.answers.push(json(200, { results: [sales] }), { status: 204, headers: {}, bodyText: '' }, json(200, { ...moved, archived: true }));
    const archived = await stages?.update?.update(account, 'appointmentscheduled', { status: 'inactive' }, none);
    expect(archived?.unified.status).toBe('inactive');
    expect(transport.requests.map((r) => r.method)).toEqual(['GET', 'DELETE', 'GET']);

    transport.requests.length = 0;
    transport.answers.push(json(200, { results: [sales] }), json(200, { ...(sales.stages[2] as Record<string, unknown>), archived: false }));
    const restored = await stages?.update?.update(account, 'old', { status: 'active' }, none);
    expect(restored?.unified.status).toBe('active');
    expect(JSON.parse(transport.requests[1]?.body ?? '')).toEqual({ metadata: { probability: '0.2' }, archived: false });
  });

  it('deletes by archiving (204), answers the stage read back as inactive, and refuses an archived one with 404', async () => {
    const transport = new QueueTransport([json(200, { results: [sales] }), { status: 204, headers: {}, bodyText: '' }, json(404, { status: 'error', message: 'not found', category: 'OBJECT_NOT_FOUND', correlationId: 'c' })]);
    const stages = new HubSpotConnector(transport, silent).resources['crm/stages'];
    const deleted = await stages?.delete?.delete(account, 'closedwon', none);
    expect(deleted?.unified).toMatchObject({ id: 'closedwon', status: 'inactive', remote_data: { archived: true } });
    expect(deleted?.remote.status).toBe(204);
    transport.answers.push(json(200, { results: [sales] }));
    const again = await stages?.delete?.delete(account, 'old', none).catch((e: unknown) => e);
    expect(again).toMatchObject({ statusCode: 404, message: expect.stringMatching(/already archived/) });
  });

  it('refuses . and .. as pipeline or stage ids before any call (they would leave the resource path)', async () => {
    const transport = new QueueTransport([]);
    const connector = new HubSpotConnector(transport, silent);
    const attempts: Array<() => Promise<unknown> | undefined> = [
      () => connector.resources['crm/stages']?.create?.create(account, { name: 'X', pipeline: { id: '..' } }, none),
      () => connector.resources['crm/stages']?.list?.list(account, { pipeline: { id: '.' } }, { limit: 1, direction: 'next' }, none),
      () => connector.resources['crm/stages']?.get?.get(account, 'x', { remoteQuery: { pipeline_id: '..' } }),
      () => connector.proxy.request(account, { method: 'GET', resource: 'deals', id: '..', query: {}, headers: {} }, {}),
    ];
    for (const attempt of attempts) {
      expect(await Promise.resolve().then(attempt).catch((e: unknown) => e)).toMatchObject({ statusCode: 400, message: expect.stringMatching(/cannot be a HubSpot id/) });
    }
    expect(transport.requests).toHaveLength(0);
  });

  it('lists pipelines in displayOrder, filtered by name, and refuses a bad object type before any call', async () => {
    const transport = new QueueTransport([json(200, { results: [renewals, sales] })]);
    const connector = new HubSpotConnector(transport, silent);
    const page = await connector.resources['crm/pipelines']?.list?.list(account, {}, { limit: 10, direction: 'next' }, none);
    expect(page?.items.map((p) => p.id)).toEqual(['default', '77']);
    const bad = await connector.resources['crm/pipelines']?.list?.list(account, {}, { limit: 10, direction: 'next' }, { remoteQuery: { object_type: 'a/b' } }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(UnicrmError);
    expect(transport.requests).toHaveLength(1);
  });
});
