import { type HttpRequest, type HttpResponse, type HttpTransport, type Logger, type StageCreateBody, UnicrmError, zodFailures } from '@unicrm/model';
import fc from 'fast-check';
import { PipelinerClient } from './client';
import { checkStageCreateBody, createStage, PipelinerStageCreateBodySchema } from './create-stage';

/** A transport that records requests and answers from a queue (no network). */
class FakeTransport implements HttpTransport {
  readonly requests: HttpRequest[] = [];
  constructor(private readonly answers: Array<HttpResponse | UnicrmError>) {}
  async request(request: HttpRequest): Promise<HttpResponse> {
    this.requests.push(request);
    const answer = this.answers.shift();
    if (!answer) throw new Error(`unexpected request ${request.method} ${request.url}`);
    if (answer instanceof UnicrmError) throw answer;
    return answer;
  }
  async close(): Promise<void> {}
}

const warnings: unknown[] = [];
const logger: Logger = { debug: () => {}, info: () => {}, warn: (o) => warnings.push(o), error: () => {} };
const context = { service_url: 'https://eu-central.api.pipelinersales.com', space_id: 'fr_Myself', username: 'tok', password: 'pw' };
const PIPELINE = '00000000-0000-0000-0000-000000008e97';
const stepBody = (extra: Record<string, unknown> = {}) => ({
  success: true,
  data: {
    id: '0190978c-d6d1-de35-3f6d-7cf0a0e264db',
    is_delete_protected: false,
    is_deleted: false,
    created: '2024-07-09 12:51:48.050073+00:00',
    modified: '2024-07-09 12:51:48.050073+00:00',
    name: 'Won',
    sort_order: 2,
    pipeline_id: PIPELINE,
    ...extra,
  },
});
const ok = (status: number, body: unknown): HttpResponse => ({ status, headers: {}, bodyText: JSON.stringify(body) });
const pipelineAnswer = ok(200, { success: true, data: { id: PIPELINE, name: 'Sales Pipeline' } });

async function run(answers: Array<HttpResponse | UnicrmError>, body: Parameters<typeof createStage>[1], remoteQuery = {}) {
  const transport = new FakeTransport(answers);
  const client = new PipelinerClient(transport, context);
  const result = await createStage(client, body, { remoteQuery }, logger).catch((e: unknown) => e);
  return { transport, result };
}

describe('createStage (Pipeliner)', () => {
  it('posts the Step with Basic auth and validation-level=8, then reads the pipeline name', async () => {
    const { transport, result } = await run([ok(201, stepBody()), pipelineAnswer], {
      name: 'Won',
      pipeline: { id: PIPELINE },
      position: 2,
    });
    const [create, get] = transport.requests;
    expect(create).toMatchObject({
      method: 'POST',
      url: 'https://eu-central.api.pipelinersales.com/api/v100/rest/spaces/fr_Myself/entities/Steps?validation-level=8',
      headers: { authorization: `Basic ${Buffer.from('tok:pw').toString('base64')}`, 'content-type': 'application/json' },
    });
    expect(JSON.parse(create?.body ?? '')).toEqual({ name: 'Won', pipeline_id: PIPELINE, sort_order: 2 });
    expect(get?.url).toBe(
      `https://eu-central.api.pipelinersales.com/api/v100/rest/spaces/fr_Myself/entities/Pipelines/${PIPELINE}?load-only=id%2Cname`,
    );
    expect(result).toMatchObject({
      unified: { name: 'Won', position: 2, status: 'active', pipeline: { id: PIPELINE, name: 'Sales Pipeline' } },
      remote: { status: 201, body: stepBody() },
    });
  });

  it('sends no validation-level when no read-only field is written', async () => {
    const { transport } = await run([ok(201, stepBody({ pipeline_id: null }))], { name: 'Loose' });
    expect(transport.requests).toHaveLength(1);
    expect(transport.requests[0]?.url).toMatch(/\/entities\/Steps$/);
  });

  it('lets remote_query win over the connector and keeps bracket keys', async () => {
    const { transport } = await run([ok(201, stepBody()), pipelineAnswer], { name: 'Won', pipeline: { id: PIPELINE } }, {
      'validation-level': '10',
      filter: { name: 'a b' },
    });
    expect(transport.requests[0]?.url).toMatch(/\/Steps\?validation-level=10&filter\[name\]=a%20b$/);
  });

  it('merges remote_data over the mapped body', async () => {
    const { transport } = await run([ok(201, stepBody({ pipeline_id: null }))], {
      name: 'Won',
      remote_data: { percent: 100, description: 'closed' },
    });
    expect(JSON.parse(transport.requests[0]?.body ?? '')).toEqual({ name: 'Won', percent: 100, description: 'closed' });
  });

  it('uses the name of an expanded pipeline without a second call', async () => {
    const { transport, result } = await run([ok(201, stepBody({ pipeline: { id: PIPELINE, name: 'Renewals' } }))], { name: 'Won' });
    expect(transport.requests).toHaveLength(1);
    expect((result as { unified: { pipeline: unknown } }).unified.pipeline).toEqual({ id: PIPELINE, name: 'Renewals' });
  });

  it('still returns the created stage when the pipeline name cannot be read', async () => {
    const { result } = await run([ok(201, stepBody()), ok(500, { success: false, message: 'down' })], { name: 'Won' });
    expect((result as { unified: { pipeline: unknown } }).unified.pipeline).toEqual({ id: PIPELINE });
    expect(warnings).toContainEqual(expect.objectContaining({ pipeline_id: PIPELINE, status: 500 }));
  });

  it('answers 502 naming the step when Pipeliner put it in another pipeline', async () => {
    const { result } = await run([ok(201, stepBody({ pipeline_id: null }))], { name: 'Won', pipeline: { id: PIPELINE } });
    expect(result).toBeInstanceOf(UnicrmError);
    expect((result as UnicrmError).statusCode).toBe(502);
    expect((result as UnicrmError).message).toContain('0190978c-d6d1-de35-3f6d-7cf0a0e264db');
  });

  it.each([
    [{}, ['name']],
    [{ name: '' }, ['name']],
    [{ name: 'x', status: 'inactive' as const }, ['status']],
  ])('rejects %j before calling Pipeliner', async (body, paths) => {
    const { transport, result } = await run([], body);
    expect(transport.requests).toHaveLength(0);
    expect((result as UnicrmError).statusCode).toBe(400);
    expect((result as UnicrmError).body.details?.failures?.map((f) => f.path)).toEqual(paths);
  });

  it('mirrors a Pipeliner 422 as a remote error', async () => {
    const { result } = await run([ok(422, { success: false, http_status: 422, code: 40000, message: '\nbad percent' })], {
      name: 'x',
      remote_data: { percent: 900 },
    });
    expect((result as UnicrmError).body).toMatchObject({ statusCode: 422, message: 'bad percent', truto_is_remote_error: true });
  });

  it('answers 502 when a 201 carries no entity', async () => {
    const { result } = await run([ok(201, { success: true })], { name: 'x' });
    expect((result as UnicrmError).statusCode).toBe(502);
    expect((result as UnicrmError).body.raw_response).toEqual({ success: true });
  });
});

describe('checkStageCreateBody', () => {
  /** The failures the whole schema gives, `remote_data` walked with z.record. */
  function schemaFailures(body: unknown): string[] {
    const result = PipelinerStageCreateBodySchema.safeParse(body);
    return result.success ? [] : zodFailures(result.error).map((f) => `${f.path}: ${f.message}`);
  }
  function checkFailures(body: unknown): string[] {
    try {
      checkStageCreateBody(body as StageCreateBody);
      return [];
    } catch (error) {
      return ((error as UnicrmError).body.details?.failures ?? []).map((f) => `${f.path}: ${f.message}`);
    }
  }

  it.each([
    { name: 'Won', remote_data: { percent: 1, nested: { a: [1, 2] } } },
    { name: 'Won', remote_data: [] },
    { name: 'Won', remote_data: null },
    { name: 'Won', remote_data: 'x' },
    { name: '', remote_data: 3, status: 'inactive' },
    { name: 'Won', remote_data: {}, extra: 1 },
    { remote_data: { name: 'x' } },
  ])('gives the same failures as the whole schema for %j', (body) => {
    expect(checkFailures(body)).toEqual(schemaFailures(body));
  });

  it('gives the same failures as the whole schema for any body', () => {
    const value = fc.oneof(fc.string(), fc.integer({ min: -2, max: 5 }), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }), fc.dictionary(fc.string(), fc.integer(), { maxKeys: 3 }));
    const body = fc.record(
      {
        name: value,
        pipeline: fc.oneof(value, fc.record({ id: value }, { requiredKeys: [] })),
        position: value,
        status: fc.oneof(fc.constantFrom('active', 'inactive'), value),
        remote_data: value,
        other: value,
      },
      { requiredKeys: [] },
    );
    fc.assert(fc.property(body, (b) => expect(checkFailures(b)).toEqual(schemaFailures(b))), { numRuns: 1000 });
  });
});
