import 'reflect-metadata';
import {
  type Connector,
  type CreateResult,
  type Stage,
  StageCreateBodySchema,
  TOKENS,
  UnicrmError,
} from '@unicrm/model';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { z } from 'zod';
import { AUTH, type Harness, startHarness } from '../testing/harness';

/**
 * A second CRM, known only to this test: registered under TOKENS.Connector through DI, with no change to
 * core or the API. Proof that nothing outside libs/connectors/pipeliner knows Pipeliner.
 */
const fakeCrm: Connector = {
  integration: 'fakecrm',
  displayName: 'FakeCRM',
  category: 'crm',
  secretContextKeys: ['api_key'],
  parseContext(context: unknown) {
    const parsed = z.strictObject({ api_key: z.string().min(1), region: z.string() }).safeParse(context);
    if (!parsed.success) throw UnicrmError.validation([{ path: 'context', message: 'needs api_key and region' }]);
    return parsed.data;
  },
  resources: {
    'crm/stages': {
      create: {
        retrySafe: false,
        description: 'a fake create',
        bodySchema: StageCreateBodySchema.extend({ position: z.number().int().min(1) }),
        async create(account, body): Promise<CreateResult<Stage>> {
          const record = { uid: 'fk-1', title: body.name, order: body.position, region: account.context.region };
          return {
            unified: { id: 'fk-1', name: body.name as string, position: body.position as number, status: 'active', remote_data: record },
            remote: { status: 200, bodyText: JSON.stringify({ record }), body: { record } },
          };
        },
      },
    },
  },
};

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ core: { register: (c) => c.register(TOKENS.Connector, { useValue: fakeCrm }) } });
});
afterAll(() => h.close());
beforeEach(() => h.sandbox.reset());
afterEach(() => expect(h.sandbox.takeContractViolations()).toEqual([]));

describe('a second connector registered through DI only', () => {
  it('connects an account and creates a stage through it, secrets stripped', async () => {
    const account = await request(h.app)
      .post('/integrated-account')
      .set(AUTH)
      .send({ integration: 'fakecrm', tenant_id: 't1', context: { api_key: 'FAKE-SECRET', region: 'eu' } });
    expect(account.status).toBe(201);
    expect(account.body).toMatchObject({ integration: { name: 'fakecrm', category: 'crm' }, context: { region: 'eu' } });
    expect(JSON.stringify(account.body)).not.toContain('FAKE-SECRET');

    const res = await request(h.app)
      .post(`/unified/crm/stages?integrated_account_id=${account.body.id}&truto_response_format=normalized`)
      .set(AUTH)
      .send({ name: 'Demo', position: 2 });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: 'fk-1', name: 'Demo', position: 2, status: 'active', pipeline: null, created_at: null, updated_at: null });
    const raw = await request(h.app)
      .post(`/unified/crm/stages?integrated_account_id=${account.body.id}&truto_response_format=raw`)
      .set(AUTH)
      .send({ name: 'Demo', position: 2 });
    expect(raw.body).toEqual({ record: { uid: 'fk-1', title: 'Demo', order: 2, region: 'eu' } });
    expect(h.sandbox.requests).toEqual([]);
  });

  it('lists it among the known integrations when an unknown one is asked for', async () => {
    const res = await request(h.app).post('/integrated-account').set(AUTH).send({ integration: 'nope', tenant_id: 't', context: {} });
    expect(res.status).toBe(400);
    expect(res.body.details.failures).toEqual([{ path: 'integration', message: 'unknown integration "nope"; known: fakecrm, hubspot, pipedrive, pipeliner' }]);
  });
});

describe('body fields', () => {
  it('trims the name before sending it to Pipeliner', async () => {
    const res = await request(h.app).post(`/unified/crm/stages?integrated_account_id=${h.accountId}`).set(AUTH).send({ name: '  Won  ' });
    expect(res.status).toBe(201);
    expect(res.body.name).toBe('Won');
    expect(JSON.parse(h.sandbox.requests[0]?.body ?? '{}')).toEqual({ name: 'Won' });
  });

  it('ignores pipeline.name on create: the pipeline is chosen by id and its real name answered', async () => {
    const res = await request(h.app)
      .post(`/unified/crm/stages?integrated_account_id=${h.accountId}`)
      .set(AUTH)
      .send({ name: 'Won', pipeline: { id: '00000000-5a1e-4000-8000-000000000001', name: 'Something else' } });
    expect(res.status).toBe(201);
    expect(res.body.pipeline).toEqual({ id: '00000000-5a1e-4000-8000-000000000001', name: 'Sales Pipeline' });
    expect(JSON.parse(h.sandbox.requests[0]?.body ?? '{}')).not.toHaveProperty('pipeline');
  });
});

describe('GET /unified/crm/stages/meta/create', () => {
  it("answers the JSON Schemas of the body and query for the account's integration", async () => {
    const res = await request(h.app).get(`/unified/crm/stages/meta/create?integrated_account_id=${h.accountId}`).set(AUTH);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      unified_model: 'crm',
      resource: 'stages',
      method: 'create',
      integration: 'pipeliner',
      documentation_link: '/openapi.json#/paths/~1unified~1crm~1stages/post',
    });
    expect(res.body.request_body_schema).toMatchObject({
      type: 'object',
      required: ['name'],
      additionalProperties: false,
      properties: { name: { type: 'string', minLength: 1 }, status: { const: 'active' }, position: { type: 'integer', minimum: 0 } },
    });
    expect(res.body.query_schema).toMatchObject({
      required: ['integrated_account_id'],
      properties: { truto_response_format: { enum: ['unified', 'raw', 'normalized'], default: 'unified' } },
    });
    expect(Object.keys(res.body.schema.properties)).toEqual(['id', 'name', 'position', 'status', 'pipeline', 'created_at', 'updated_at', 'remote_data']);
  });

  it("gives another integration's own rules", async () => {
    const account = await request(h.app)
      .post('/integrated-account')
      .set(AUTH)
      .send({ integration: 'fakecrm', tenant_id: 't1', context: { api_key: 'k', region: 'us' } });
    const res = await request(h.app).get(`/unified/crm/stages/meta/create?integrated_account_id=${account.body.id}`).set(AUTH);
    expect(res.body.integration).toBe('fakecrm');
    expect(res.body.request_body_schema.properties.position.minimum).toBe(1);
    expect(res.body.request_body_schema.required).toEqual(['position']);
  });

  it('answers 400 without an account id and 404 for an unknown one', async () => {
    expect((await request(h.app).get('/unified/crm/stages/meta/create').set(AUTH)).status).toBe(400);
    const missing = await request(h.app).get('/unified/crm/stages/meta/create?integrated_account_id=62f44730-dd91-461e-bd6a-aedd9e0ad79d').set(AUTH);
    expect(missing.status).toBe(404);
  });
});

describe('request ids', () => {
  it('echoes a valid incoming x-request-id and tags every log line of the request with it', async () => {
    h.sandbox.injectFault({ method: 'GET', path: '/entities/Pipelines/', status: 500, times: 1 });
    const res = await request(h.app)
      .post(`/unified/crm/stages?integrated_account_id=${h.accountId}`)
      .set(AUTH)
      .set('x-request-id', 'trace-42.a:b')
      // A pipeline no earlier test read: its name is not in the connector's name cache, so it is read (and fails).
      .send({ name: 'Tagged', pipeline: { id: '00000000-5a1e-4000-8000-000000000002' } });
    expect(res.status).toBe(201);
    expect(res.headers['x-request-id']).toBe('trace-42.a:b');
    const lines = h.logs.filter((line) => line.req_id === 'trace-42.a:b');
    expect(lines.map((line) => line.msg)).toEqual(['step created, but its pipeline name could not be read', 'request completed']);
  });

  it.each([
    ['none', undefined],
    ['one with spaces', 'not a valid id'],
    ['one over 128 characters', 'x'.repeat(129)],
  ])('makes a new id when the caller sends %s', async (_case, incoming) => {
    let req = request(h.app).get('/health');
    if (incoming !== undefined) req = req.set('x-request-id', incoming);
    const res = await req;
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('sets it on error answers too, and logs neither secrets nor tokens', async () => {
    const res = await request(h.app).post('/unified/crm/stages').set(AUTH).set('x-request-id', 'err-1').send({});
    expect(res.status).toBe(400);
    expect(res.headers['x-request-id']).toBe('err-1');
    expect(h.logs.find((line) => line.req_id === 'err-1')).toMatchObject({ msg: 'request completed', res: { statusCode: 400 } });
    const everything = JSON.stringify(h.logs);
    expect(everything).not.toContain(h.sandbox.password);
    expect(everything).not.toContain(AUTH.authorization.slice('Bearer '.length));
  });
});

describe('docs/conformance.md', () => {
  // Each row names a test as `file` › "title"; the title must be in that file, so no row points at nothing.
  const doc = readFileSync(join(__dirname, '../../../../docs/conformance.md'), 'utf8');
  const references = [...doc.matchAll(/`([\w./-]+\.spec\.ts)` › "([^"]+)"/g)].map((m) => [m[1] as string, m[2] as string] as const);

  it('names at least one test in every table row', () => {
    const rows = doc.split('\n').filter((line) => /^\| [^-|]/.test(line) && !line.startsWith('| Rule'));
    expect(rows.length).toBeGreaterThan(40);
    for (const row of rows) expect(row).toMatch(/`[\w./-]+\.spec\.ts` › "[^"]+"/);
  });

  it('only names tests that exist', () => {
    expect(references.length).toBeGreaterThan(40);
    const root = join(__dirname, '../../../..');
    const missing = references.filter(([file, title]) => !readFileSync(join(root, file), 'utf8').includes(title));
    expect(missing).toEqual([]);
  });
});
