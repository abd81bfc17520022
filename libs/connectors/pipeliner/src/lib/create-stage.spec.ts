import { type HttpRequest, type HttpResponse, type HttpTransport, type Logger, type StageCreateBody, toJsonSchema, UnicrmError, zodFailures } from '@unicrm/model';
import fc from 'fast-check';
import { PipelinerClient } from './client';
import { checkStageCreateBody, createStage, PIPELINER_NAME_MAX_LENGTH, PipelinerStageCreateBodySchema } from './create-stage';
import { unifyStep } from './mappers';

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
        remote_data: fc.oneof(value, fc.dictionary(fc.constantFrom('name', 'pipeline_id', 'sort_order', 'percent'), value, { maxKeys: 3 })),
        other: value,
      },
      { requiredKeys: [] },
    );
    fc.assert(fc.property(body, (b) => expect(checkFailures(b)).toEqual(schemaFailures(b))), { numRuns: 1000 });
  });
});


const OTHER = '00000000-5a1e-4000-8000-000000000002';
const STEP_ID = '0190978c-d6d1-de35-3f6d-7cf0a0e264db';
const failurePaths = (result: unknown) => (result as UnicrmError).body.details?.failures?.map((f) => f.path);

describe('createStage: the pipeline check judges only an answer that carries the pipeline (issue 12, item 12)', () => {
  const readBack = (pipelineId: unknown) => ok(200, { success: true, data: { id: STEP_ID, pipeline_id: pipelineId } });

  it('reads the step back when remote_query[load-only]=id left pipeline_id out, and answers the created stage', async () => {
    const { transport, result } = await run([ok(201, { success: true, data: { id: STEP_ID } }), readBack(PIPELINE)], { name: 'Won', pipeline: { id: PIPELINE } }, {
      'load-only': 'id',
    });
    expect(result).not.toBeInstanceOf(Error);
    expect(transport.requests.map((r) => `${r.method} ${r.url.replace(/^.*\/entities/, '')}`)).toEqual([
      'POST /Steps?validation-level=8&load-only=id',
      `GET /Steps/${STEP_ID}?load-only=id%2Cpipeline_id`,
    ]);
    // Only what the answer holds: fields the caller's load-only left out are absent, never guessed.
    expect((result as { unified: unknown }).unified).toEqual({ id: STEP_ID, status: 'active', remote_data: { id: STEP_ID } });
    expect((result as { remote: { body: unknown } }).remote.body).toEqual({ success: true, data: { id: STEP_ID } });
  });

  it('answers 502 when the read-back reports another pipeline, or none', async () => {
    for (const other of [OTHER, null]) {
      const { result } = await run([ok(201, { success: true, data: { id: STEP_ID } }), readBack(other)], { name: 'Won', pipeline: { id: PIPELINE } }, {
        'load-only': 'id',
      });
      expect((result as UnicrmError).statusCode).toBe(502);
      expect((result as UnicrmError).message).toContain(`(it reports pipeline ${other ?? 'none'})`);
      expect((result as UnicrmError).body.raw_response).toEqual({ success: true, data: { id: STEP_ID } });
    }
  });

  it('answers the created stage, with a warning, when the read-back fails (a 502 would invite a duplicate)', async () => {
    warnings.length = 0;
    const { result } = await run([ok(201, { success: true, data: { id: STEP_ID } }), ok(503, { success: false, message: 'busy' })], { name: 'Won', pipeline: { id: PIPELINE } }, {
      'load-only': 'id',
    });
    expect((result as { unified: { id: string } }).unified.id).toBe(STEP_ID);
    expect(warnings).toContainEqual(expect.objectContaining({ step_id: STEP_ID, pipeline_id: PIPELINE, status: 503 }));
  });

  it('judges by an expanded pipeline when pipeline_id is left out, without reading back', async () => {
    const data = { id: STEP_ID, pipeline: { id: PIPELINE, name: 'Sales Pipeline' } };
    const { transport, result } = await run([ok(201, { success: true, data })], { name: 'Won', pipeline: { id: PIPELINE } }, {
      'load-only': 'id,pipeline.id,pipeline.name',
      expand: 'pipeline',
    });
    expect(transport.requests).toHaveLength(1);
    expect((result as { unified: { pipeline: unknown } }).unified.pipeline).toEqual({ id: PIPELINE, name: 'Sales Pipeline' });
  });

  it('reads back when an expanded pipeline has no id (load-only=id,pipeline.name)', async () => {
    const { transport, result } = await run(
      [ok(201, { success: true, data: { id: STEP_ID, pipeline: { name: 'Sales Pipeline' } } }), readBack(PIPELINE)],
      { name: 'Won', pipeline: { id: PIPELINE } },
      { 'load-only': 'id,pipeline.name' },
    );
    expect(transport.requests).toHaveLength(2);
    expect((result as { unified: Record<string, unknown> }).unified.pipeline).toBeUndefined();
  });

  it('for any subset of the step a load-only keeps: never a 502 for a step in its pipeline, and no unified field differs', async () => {
    const full = stepBody().data;
    const fullStage = unifyStep(full, 'Sales Pipeline');
    const keys = Object.keys(full).filter((key) => key !== 'id');
    await fc.assert(
      fc.asyncProperty(fc.subarray(keys), async (kept) => {
        const data = Object.fromEntries(Object.entries(full).filter(([key]) => key === 'id' || kept.includes(key)));
        const answers = [ok(201, { success: true, data })];
        if (!kept.includes('pipeline_id')) answers.push(readBack(PIPELINE));
        else answers.push(pipelineAnswer);
        const { transport, result } = await run(answers, { name: 'Won', pipeline: { id: PIPELINE } }, { 'load-only': ['id', ...kept].join(',') });
        expect(result).not.toBeInstanceOf(Error);
        expect(transport.requests).toHaveLength(2);
        const { remote_data, ...unified } = (result as { unified: Record<string, unknown> }).unified;
        expect(remote_data).toEqual(data);
        for (const [field, value] of Object.entries(unified)) expect(value).toEqual((fullStage as Record<string, unknown>)[field]);
      }),
      { numRuns: 200 },
    );
  });
});

describe('checkStageCreateBody: conflicts, bounds and names Pipeliner cannot hold (issue 12, item 13)', () => {
  const rejects = async (body: Record<string, unknown>, paths: string[]) => {
    const { transport, result } = await run([], body as StageCreateBody);
    expect(transport.requests).toHaveLength(0);
    expect((result as UnicrmError).statusCode).toBe(400);
    expect(failurePaths(result)).toEqual(paths);
    return (result as UnicrmError).body;
  };

  it.each([
    [{ name: 'Won', pipeline: { id: PIPELINE }, remote_data: { pipeline_id: OTHER } }, ['pipeline.id', 'remote_data.pipeline_id']],
    [{ name: 'Won', pipeline: { id: PIPELINE }, remote_data: { pipeline_id: null } }, ['pipeline.id', 'remote_data.pipeline_id']],
    [{ name: 'Won', position: 2, remote_data: { sort_order: 5 } }, ['position', 'remote_data.sort_order']],
    [{ name: 'Won', position: 2, remote_data: { sort_order: '2' } }, ['position', 'remote_data.sort_order']],
    [{ name: 'Won', remote_data: { name: 'Lost' } }, ['name', 'remote_data.name']],
    [{ name: 'Won', remote_data: { name: 'Won ' } }, ['name', 'remote_data.name']],
    [
      { name: 'Won', pipeline: { id: PIPELINE }, position: 1, remote_data: { name: 'X', pipeline_id: OTHER, sort_order: 0, percent: 5 } },
      ['name', 'remote_data.name', 'pipeline.id', 'remote_data.pipeline_id', 'position', 'remote_data.sort_order'],
    ],
  ])('answers 400 naming both fields of a conflict: %j', async (body, paths) => {
    const answer = await rejects(body, paths);
    expect(answer.details?.failures?.[0]?.message).toMatch(/^conflicts with (remote_data\.)?[a-z_.]+ \(both set Pipeliner's [a-z_]+, to different values\)/);
    expect(answer.truto_error_insight).toBeUndefined();
  });

  it('finds a conflict in a remote_data object without prototype too (as an SDK caller may build one)', async () => {
    const remote = Object.assign(Object.create(null) as Record<string, unknown>, { pipeline_id: OTHER });
    await rejects({ name: 'Won', pipeline: { id: PIPELINE }, remote_data: remote }, ['pipeline.id', 'remote_data.pipeline_id']);
  });

  it('names the other path in each failure', async () => {
    const answer = await rejects({ name: 'Won', pipeline: { id: PIPELINE }, remote_data: { pipeline_id: OTHER } }, ['pipeline.id', 'remote_data.pipeline_id']);
    expect(answer.details?.failures).toEqual([
      { path: 'pipeline.id', message: "conflicts with remote_data.pipeline_id (both set Pipeliner's pipeline_id, to different values): send one of them, or the same value in both" },
      { path: 'remote_data.pipeline_id', message: "conflicts with pipeline.id (both set Pipeliner's pipeline_id, to different values): send one of them, or the same value in both" },
    ]);
  });

  it.each([
    [{ name: 'Won', pipeline: { id: PIPELINE }, remote_data: { pipeline_id: PIPELINE.toUpperCase() } }],
    [{ name: 'Won', position: 2, remote_data: { sort_order: 2, percent: 5 } }],
    [{ name: 'Won', remote_data: { name: 'Won' } }],
    [{ name: 'Won', remote_data: { pipeline_id: null } }],
    [{ name: 'Won', remote_data: { pipeline_id: PIPELINE, sort_order: 2147483647 } }],
  ])('sends a body whose remote_data agrees with the unified fields: %j', async (body) => {
    const { transport, result } = await run([ok(201, stepBody()), pipelineAnswer], body as StageCreateBody);
    expect(result).not.toBeInstanceOf(Error);
    expect(transport.requests[0]?.method).toBe('POST');
  });

  it.each([
    [{ name: 'Won', position: 2147483648 }, ['position']],
    [{ name: 'Won', position: -1 }, ['position']],
    [{ name: 'Won', remote_data: { sort_order: 2147483648 } }, ['remote_data.sort_order']],
    [{ name: 'Won', remote_data: { sort_order: -1 } }, ['remote_data.sort_order']],
    [{ name: 'Won', remote_data: { sort_order: null } }, ['remote_data.sort_order']],
    [{ name: 'Won', remote_data: { pipeline_id: 'sales' } }, ['remote_data.pipeline_id']],
    [{ name: 'Won', pipeline: { id: 'sales' } }, ['pipeline.id']],
    [{ name: 'Won', pipeline: { id: `${PIPELINE}0` } }, ['pipeline.id']],
  ])('answers 400 for %j before calling Pipeliner', async (body, paths) => {
    await rejects(body, paths);
  });

  describe('names', () => {
    const LONG = `must be at most ${PIPELINER_NAME_MAX_LENGTH} characters long for Pipeliner`;
    const nameFailures = async (name: string) => {
      const { transport, result } = await run([ok(201, stepBody()), pipelineAnswer], { name });
      if (!(result instanceof UnicrmError)) return [];
      expect(transport.requests).toHaveLength(0);
      expect(result.body.truto_error_insight).toBeUndefined();
      return result.body.details?.failures?.map((f) => `${f.path}: ${f.message}`);
    };

    it('sets the limit at 255 characters', () => {
      expect(PIPELINER_NAME_MAX_LENGTH).toBe(255);
    });

    it.each([
      ['255 characters', 'x'.repeat(255)],
      ['255 astral characters (510 UTF-16 units)', '😀'.repeat(255)],
      ['letters of any script and a surrogate pair', 'Ångström 交渉 😀'],
      ['spaces inside', 'Closed won'],
      ['line breaks around it (trimmed)', '\n Won \t'],
    ])('accepts %s', async (_case, name) => {
      expect(await nameFailures(name)).toEqual([]);
    });

    it.each([
      ['200,000 characters', 'x'.repeat(200_000), [`name: ${LONG}`]],
      ['256 characters', 'x'.repeat(256), [`name: ${LONG}`]],
      ['256 astral characters', '😀'.repeat(256), [`name: ${LONG}`]],
      ['a NUL', 'Won\u0000', ['name: must not contain control characters (U+0000-U+001F, U+007F-U+009F: NUL, tab, line breaks, ...)']],
      ['a tab inside', 'Won\tLost', ['name: must not contain control characters (U+0000-U+001F, U+007F-U+009F: NUL, tab, line breaks, ...)']],
      ['a C1 control', 'Won\u0085', ['name: must not contain control characters (U+0000-U+001F, U+007F-U+009F: NUL, tab, line breaks, ...)']],
      ['a lone high surrogate', 'Won\ud800', ['name: must be well-formed Unicode: it holds an unpaired surrogate (such as \\ud800)']],
      ['a lone low surrogate', '\udc00Won', ['name: must be well-formed Unicode: it holds an unpaired surrogate (such as \\ud800)']],
      ['a reversed pair', 'W\ude00\ud83don', ['name: must be well-formed Unicode: it holds an unpaired surrogate (such as \\ud800)']],
      ['all three', `${'x'.repeat(300)}\u0000\ud800`, [`name: ${LONG}`, 'name: must not contain control characters (U+0000-U+001F, U+007F-U+009F: NUL, tab, line breaks, ...)', 'name: must be well-formed Unicode: it holds an unpaired surrogate (such as \\ud800)']],
    ])('answers 400 for a name with %s', async (_case, name, failures) => {
      expect(await nameFailures(name)).toEqual(failures);
    });

    it('keeps the missing-name insight for a missing name only', async () => {
      const { result } = await run([], {});
      expect((result as UnicrmError).body.truto_error_insight).toEqual({
        missing_required_body_fields: { description: 'Pipeliner requires these fields', value: ['name'] },
      });
    });
  });

  it('serves the limits in the JSON Schema of the meta endpoint', () => {
    const schema = toJsonSchema(PipelinerStageCreateBodySchema, 'input') as { properties: Record<string, Record<string, unknown>> };
    expect(schema.properties.name).toMatchObject({ type: 'string', minLength: 1, maxLength: 255 });
    expect(schema.properties.pipeline?.properties).toMatchObject({ id: { type: 'string', format: 'uuid' } });
    expect(schema.properties.position).toMatchObject({ minimum: 0, maximum: 2147483647 });
    expect(schema.properties.position?.description).toContain('A position past the end of the pipeline puts the stage last');
    expect(schema.properties.remote_data?.description).toContain('must equal those fields when both are sent');
  });
});
