import { PIPELINER_DATE_RE, SANDBOX_SEED_IDS, startSandbox, type RunningSandbox } from '../index';
import { client } from './testing/client';
import { expectViolations } from './testing/contract';

const STEP_KEYS = [
  'is_delete_protected', 'id', 'is_deleted', 'modified', 'created', 'lead_process', 'pipeline', 'quote_process',
  'description', 'has_readonly_form', 'has_version_increment', 'lead_process_id', 'name', 'percent', 'pipeline_id',
  'quote_process_id', 'sort_order', 'timeframe', 'revision', 'documents', 'step_checklists',
];
const PIPELINE_KEYS = [
  'is_delete_protected', 'id', 'is_deleted', 'modified', 'created', 'color', 'name', 'revision', 'steps', 'opportunity_types',
];
const SALES = SANDBOX_SEED_IDS.salesPipelineId;

describe('Pipeliner sandbox: Steps and Pipelines routes', () => {
  let sandbox: RunningSandbox;
  let call: ReturnType<typeof client>;

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, contract: true });
    call = client(sandbox);
  });
  afterAll(() => sandbox.close());
  beforeEach(() => sandbox.reset());
  afterEach(() => expect(sandbox.takeContractViolations()).toEqual([]));

  const pipelineUri = (id: string) => `${sandbox.serviceUrl}/api/v100/rest/spaces/sandbox_space/entities/Pipelines/${id}`;

  it('starts on loopback with the default credentials and space', () => {
    expect(sandbox.serviceUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(sandbox.spaceId).toBe('sandbox_space');
    expect(sandbox.username).toBe('sandbox-api-token');
    expect(sandbox.password).toBe('sandbox-api-password');
  });

  it('refuses a non-loopback host', async () => {
    await expect(startSandbox({ port: 0, host: '0.0.0.0' })).rejects.toThrow(/loopback only/);
  });

  it('gets a seeded step with every Step field, in schema order, relation as absolute URI', async () => {
    const res = await call('GET', `Steps/${SANDBOX_SEED_IDS.salesStepIds[0]}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(Object.keys(res.json)).toEqual(['success', 'data']);
    expect(res.json.success).toBe(true);
    expect(Object.keys(res.json.data)).toEqual(STEP_KEYS);
    expect(res.json.data).toMatchObject({
      id: SANDBOX_SEED_IDS.salesStepIds[0],
      name: 'Qualification',
      pipeline_id: SALES,
      pipeline: pipelineUri(SALES),
      lead_process: null,
      quote_process: null,
      description: null,
      sort_order: 0,
      percent: 10,
      is_deleted: false,
      documents: [],
    });
    expect(res.json.data.created).toBe('2024-01-15 09:00:00.000000+00:00');
    expect(res.json.data.modified).toMatch(PIPELINER_DATE_RE);
  });

  it('gets a pipeline with steps as URIs in sort_order; load-only trims it (what the connector asks for)', async () => {
    const full = await call('GET', `Pipelines/${SALES}`);
    expect(Object.keys(full.json.data)).toEqual(PIPELINE_KEYS);
    expect(full.json.data.color).toBe(16233984);
    expect(full.json.data.opportunity_types).toEqual([]);
    expect(full.json.data.steps).toEqual(
      SANDBOX_SEED_IDS.salesStepIds.map((id) => `${sandbox.serviceUrl}/api/v100/rest/spaces/sandbox_space/entities/Steps/${id}`),
    );
    const trimmed = await call('GET', `Pipelines/${SALES}`, { query: 'load-only=id,name' });
    expect(trimmed.json).toEqual({ success: true, data: { id: SALES, name: 'Sales Pipeline' } });
  });

  it('expands pipeline on a step and steps on a pipeline', async () => {
    const step = await call('GET', `Steps/${SANDBOX_SEED_IDS.salesStepIds[2]}`, { query: 'expand=pipeline' });
    expect(step.json.data.pipeline).toMatchObject({ id: SALES, name: 'Sales Pipeline', color: 16233984 });
    expect(Object.keys(step.json.data.pipeline)).toEqual(PIPELINE_KEYS);
    const pipeline = await call('GET', `Pipelines/${SALES}`, { query: 'expand=steps' });
    expect(pipeline.json.data.steps.map((s: { name: string }) => s.name)).toEqual([
      'Qualification', 'Needs Analysis', 'Proposal', 'Negotiation', 'Closing',
    ]);
    const nested = await call('GET', `Steps/${SANDBOX_SEED_IDS.salesStepIds[2]}`, { query: 'load-only=id,name,pipeline.name' });
    expect(nested.json.data).toEqual({ id: SANDBOX_SEED_IDS.salesStepIds[2], name: 'Proposal', pipeline: { name: 'Sales Pipeline' } });
  });

  it('creates a step: 201, full entity, server-set fields, no pipeline without validation-level', async () => {
    const before = Math.max(...sandbox.steps().map((s) => s.revision), ...sandbox.pipelines().map((p) => p.revision));
    const res = await call('POST', 'Steps', { body: { name: 'Orphan', percent: 5, unknown_key: 'ignored' } });
    expect(res.status).toBe(201);
    expect(Object.keys(res.json.data)).toEqual(STEP_KEYS);
    expect(res.json.data).toMatchObject({
      name: 'Orphan', percent: 5, pipeline_id: null, pipeline: null, sort_order: 0, is_deleted: false, is_delete_protected: false,
      revision: before + 1,
    });
    expect(res.json.data).not.toHaveProperty('unknown_key');
    expect(res.json.data.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(res.json.data.created).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}\+00:00$/);
    expect(res.json.data.modified).toBe(res.json.data.created);
    expect(sandbox.steps().find((s) => s.id === res.json.data.id)?.name).toBe('Orphan');
  });

  it('rejects read-only pipeline_id and sort_order without validation-level bit 8 (422 naming the field)', async () => {
    const res = await call('POST', 'Steps', { body: { name: 'Won', pipeline_id: SALES, sort_order: 1 } });
    expect(res.status).toBe(422);
    expect(res.json).toMatchObject({ success: false, http_status: 422, code: 40000, name: 'ERROR_ENTITY_VALIDATION', entity_name: 'Step' });
    expect(res.json.field_errors.map((f: { field_name: string }) => f.field_name)).toEqual(['pipeline_id', 'sort_order']);
    expect(res.json.field_errors[0]).toMatchObject({ name: 'ERROR_FIELD_VALIDATION', code: 40002 });
    expect(res.json.field_errors[0].errors[0]).toMatchObject({ code: 122, name: 'ERROR_FIELD_IS_READONLY', field_name: 'pipeline_id' });
    expect(res.json.message.startsWith('\n')).toBe(true);
    expect(sandbox.steps()).toHaveLength(8);

    const level4 = await call('POST', 'Steps', { body: { name: 'Won', pipeline_id: SALES }, query: 'validation-level=4' });
    expect(level4.status).toBe(422);
    // The contract checks catch the same mistakes, by Pipeliner's document.
    expectViolations(sandbox, [
      { direction: 'request', location: 'body', instancePath: '/pipeline_id' },
      { direction: 'request', location: 'body', instancePath: '/sort_order' },
      { direction: 'request', location: 'body', instancePath: '/pipeline_id' },
    ]);
  });

  it('accepts pipeline_id with bit 8: appended at the end (0-based), or inserted at sort_order', async () => {
    const appended = await call('POST', 'Steps', { body: { name: 'Won', pipeline_id: SALES }, query: 'validation-level=8' });
    expect(appended.status).toBe(201);
    expect(appended.json.data).toMatchObject({ pipeline_id: SALES, sort_order: 5, pipeline: pipelineUri(SALES) });

    const inserted = await call('POST', 'Steps', {
      body: { name: 'Discovery', pipeline_id: SALES, sort_order: 1 },
      query: 'validation-level=10',
    });
    expect(inserted.json.data.sort_order).toBe(1);
    const order = sandbox
      .steps()
      .filter((s) => s.pipeline_id === SALES)
      .sort((a, b) => a.sort_order - b.sort_order)
      .map((s) => `${s.sort_order}:${s.name}`);
    expect(order).toEqual(['0:Qualification', '1:Discovery', '2:Needs Analysis', '3:Proposal', '4:Negotiation', '5:Closing', '6:Won']);
  });

  it('rejects a pipeline_id that names no pipeline (422, relation error) even with bit 8', async () => {
    const missing = '11111111-1111-4111-8111-111111111111';
    const res = await call('POST', 'Steps', { body: { name: 'X', pipeline_id: missing }, query: 'validation-level=8' });
    expect(res.status).toBe(422);
    expect(res.json.field_errors[0].field_name).toBe('pipeline_id');
    expect(res.json.field_errors[0].errors[0]).toMatchObject({
      code: 120,
      name: 'ERROR_RELATIONS_DOESNT_EXIST',
      message: `[pipeline_id] Relation Step.pipeline_id=${missing} to Pipeline doesn't exist!`,
    });
  });

  it('answers a missing step name with the captured 422 body', async () => {
    // What the contract checks say of each body: `{name: ''}` is a string, as the document asks, and only
    // Pipeliner's own validation rejects it.
    const contractChecks: Array<[object, Array<{ instancePath: string; message: string }>]> = [
      [{}, [{ instancePath: '', message: "must have required property 'name'" }]],
      [{ name: '' }, []],
      [{ name: null }, [{ instancePath: '/name', message: 'must be string' }]],
    ];
    for (const [body, violations] of contractChecks) {
      const res = await call('POST', 'Steps', { body });
      expect(res.status).toBe(422);
      expect(Object.keys(res.json)).toEqual([
        'code', 'name', 'message', 'entity_id', 'entity_name', 'entity_errors', 'field_errors', 'step_checklist_errors',
        'entity_index', 'http_status', 'success',
      ]);
      expect(res.json).toMatchObject({
        code: 40000,
        name: 'ERROR_ENTITY_VALIDATION',
        message: "\nNon-null field 'name' is null or empty.",
        entity_name: 'Step',
        entity_errors: [{ code: 119, name: 'ERROR_PARAMETER_MISSING', message: "Non-null field 'name' is null or empty." }],
        step_checklist_errors: [],
        entity_index: null,
        http_status: 422,
        success: false,
      });
      expect(res.json.entity_id).toMatch(/^[0-9a-f-]{36}$/);
      expectViolations(sandbox, violations);
      expect(res.json.field_errors).toEqual([
        {
          field_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
          field_name: 'name',
          name: 'ERROR_FIELD_VALIDATION',
          code: 40002,
          errors: [
            {
              code: 119,
              name: 'ERROR_PARAMETER_MISSING',
              message: "Non-null field 'name' is null or empty.",
              field_id: res.json.field_errors[0].field_id,
              field_name: 'name',
            },
          ],
        },
      ]);
    }
  });

  it('rejects values of the wrong type with a field error', async () => {
    const res = await call('POST', 'Steps', { body: { name: 'X', percent: 'ten', has_readonly_form: 'yes' } });
    expect(res.status).toBe(422);
    expect(res.json.field_errors.map((f: { field_name: string }) => f.field_name)).toEqual(['percent', 'has_readonly_form']);
    expect(res.json.field_errors[0].errors[0]).toMatchObject({ code: 117, name: 'ERROR_PARAMETER_INVALID' });
    expectViolations(sandbox, [
      { instancePath: '/has_readonly_form', message: 'must be boolean' },
      { instancePath: '/percent', message: 'must be integer' },
    ]);
  });

  it.each([
    ['a 256-character name', { name: 'x'.repeat(256) }, 'name', "Invalid value of field 'name': expected at most 255 characters."],
    ['a 200,000-character name', { name: 'x'.repeat(200_000) }, 'name', "Invalid value of field 'name': expected at most 255 characters."],
    ['a name with a NUL', { name: 'Won\u0000' }, 'name', "Invalid value of field 'name': expected text without NUL characters or unpaired surrogates."],
    ['a name with a lone surrogate', { name: 'Won\ud800' }, 'name', "Invalid value of field 'name': expected text without NUL characters or unpaired surrogates."],
    ['a description with a NUL', { name: 'Won', description: 'a\u0000b' }, 'description', "Invalid value of field 'description': expected text without NUL characters or unpaired surrogates."],
  ])('rejects %s with a field error (422), storing nothing', async (_case, body, field, message) => {
    const res = await call('POST', 'Steps', { body });
    expect(res.status).toBe(422);
    expect(res.json.field_errors.map((f: { field_name: string }) => f.field_name)).toEqual([field]);
    expect(res.json.field_errors[0].errors[0]).toMatchObject({ code: 117, name: 'ERROR_PARAMETER_INVALID', message });
    expect(sandbox.steps()).toHaveLength(8);
  });

  it('stores 255 characters, astral ones counted once, and a well-formed pair', async () => {
    for (const name of ['x'.repeat(255), '😀'.repeat(255), 'Tab\tand line\nbreak 😀']) {
      const res = await call('POST', 'Steps', { body: { name } });
      expect(res.status).toBe(201);
      expect(res.json.data.name).toBe(name);
    }
  });

  it('rejects a sort_order past int32 (Pipeliner types it int32), even with bit 8', async () => {
    const res = await call('POST', 'Steps', { body: { name: 'Far', pipeline_id: SALES, sort_order: 2 ** 31 }, query: 'validation-level=8' });
    expect(res.status).toBe(422);
    expect(res.json.field_errors[0].errors[0]).toMatchObject({ field_name: 'sort_order', message: "Invalid value of field 'sort_order': expected an integer from 0 to 2147483647." });
    expectViolations(sandbox, [{ direction: 'request', location: 'body', instancePath: '/sort_order' }]);
    const last = await call('POST', 'Steps', { body: { name: 'Last', pipeline_id: SALES, sort_order: 2 ** 31 - 1 }, query: 'validation-level=8' });
    expect(last.status).toBe(201);
    expect(last.json.data.sort_order).toBe(5); // past the end: clamped to the end
  });

  it('patches a step partially (200, full entity, new revision and modified)', async () => {
    const id = SANDBOX_SEED_IDS.salesStepIds[1];
    const before = sandbox.steps().find((s) => s.id === id);
    const res = await call('PATCH', `Steps/${id}`, { body: { description: 'Find the pain', timeframe: 21 } });
    expect(res.status).toBe(200);
    expect(Object.keys(res.json.data)).toEqual(STEP_KEYS);
    expect(res.json.data).toMatchObject({ id, name: 'Needs Analysis', description: 'Find the pain', timeframe: 21, percent: 25 });
    expect(res.json.data.revision).toBeGreaterThan(before?.revision ?? Infinity);
    expect(res.json.data.modified > (before?.modified ?? '')).toBe(true);
    expect(res.json.data.created).toBe(before?.created);
    const empty = await call('PATCH', `Steps/${id}`, { body: { name: '  ' } });
    expect(empty.status).toBe(422);
    expect(empty.json.entity_id).toBe(id);
  });

  it('moves a step with PATCH sort_order only with bit 8', async () => {
    const id = SANDBOX_SEED_IDS.salesStepIds[4];
    expect((await call('PATCH', `Steps/${id}`, { body: { sort_order: 0 } })).status).toBe(422);
    expectViolations(sandbox, [{ operationId: 'Steps.update', instancePath: '/sort_order' }]);
    const moved = await call('PATCH', `Steps/${id}`, { body: { sort_order: 0 }, query: 'validation-level=8' });
    expect(moved.json.data.sort_order).toBe(0);
    const pipeline = await call('GET', `Pipelines/${SALES}`, { query: 'expand=steps&load-only=steps.name,steps.sort_order' });
    expect(pipeline.json.data.steps).toEqual([
      { name: 'Closing', sort_order: 0 },
      { name: 'Qualification', sort_order: 1 },
      { name: 'Needs Analysis', sort_order: 2 },
      { name: 'Proposal', sort_order: 3 },
      { name: 'Negotiation', sort_order: 4 },
    ]);
  });

  it('soft-deletes a step: 200 {success, data: id}, then 404 unless include-deleted; siblings renumbered', async () => {
    const id = SANDBOX_SEED_IDS.salesStepIds[1];
    const res = await call('DELETE', `Steps/${id}`);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ success: true, data: id });
    expect((await call('GET', `Steps/${id}`)).status).toBe(404);
    const deleted = await call('GET', `Steps/${id}`, { query: 'include-deleted=true' });
    expect(deleted.json.data).toMatchObject({ id, is_deleted: true });
    expect((await call('PATCH', `Steps/${id}`, { body: { name: 'x' } })).status).toBe(404);
    expect((await call('DELETE', `Steps/${id}`)).status).toBe(404);
    const names = sandbox
      .steps()
      .filter((s) => s.pipeline_id === SALES && !s.is_deleted)
      .sort((a, b) => a.sort_order - b.sort_order)
      .map((s) => `${s.sort_order}:${s.name}`);
    expect(names).toEqual(['0:Qualification', '1:Proposal', '2:Negotiation', '3:Closing']);
    expect(sandbox.steps().find((s) => s.id === id)?.is_deleted).toBe(true);
  });

  it('answers 404 in the Error shape for an unknown id', async () => {
    const id = '22222222-2222-4222-8222-222222222222';
    const res = await call('GET', `Pipelines/${id}`);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.json).toEqual({
      code: 2001,
      name: 'ERROR_ENTITY_NOT_FOUND',
      message: `Entity 'Pipeline' with id '${id}' was not found.`,
      http_status: 404,
      success: false,
    });
    expect((await call('GET', 'Steps/not-a-uuid')).status).toBe(404);
    expectViolations(sandbox, [{ location: 'path', instancePath: '/id', message: 'must match format "uuid"' }]);
  });

  it('creates a pipeline with steps and requires name, color and steps', async () => {
    const res = await call('POST', 'Pipelines', {
      body: { name: 'Partners', color: 255, steps: [{ name: 'Intro' }, { name: 'Signed', percent: 100 }] },
      query: 'expand=steps',
    });
    expect(res.status).toBe(201);
    expect(res.json.data).toMatchObject({ name: 'Partners', color: 255, is_deleted: false });
    expect(res.json.data.steps.map((s: { name: string; sort_order: number; pipeline_id: string }) => [s.name, s.sort_order, s.pipeline_id])).toEqual([
      ['Intro', 0, res.json.data.id],
      ['Signed', 1, res.json.data.id],
    ]);
    const invalid = await call('POST', 'Pipelines', { body: { steps: [] } });
    expect(invalid.status).toBe(422);
    expect(invalid.json.message).toBe(
      "\nNon-null field 'name' is null or empty.\nNon-null field 'color' is null or empty.\nNon-null field 'steps' is null or empty.",
    );
    expect(invalid.json.entity_errors.map((e: { code: number }) => e.code)).toEqual([119, 119, 119]);
    // An empty `steps` array is valid by the document (Pipeliner's validation rejects it).
    expectViolations(sandbox, [
      { operationId: 'Pipelines.create', message: "must have required property 'color'" },
      { operationId: 'Pipelines.create', message: "must have required property 'name'" },
    ]);
    const badStep = await call('POST', 'Pipelines', { body: { name: 'P', color: 1, steps: [{ percent: 3 }] } });
    expect(badStep.status).toBe(422);
    expect(badStep.json.field_errors[0].errors[0].message).toBe("[steps][0] Non-null field 'name' is null or empty.");
  });

  it('adds a step through PATCH /Pipelines/{id} with steps (merge; appended when not all listed)', async () => {
    const res = await call('PATCH', `Pipelines/${SALES}`, {
      body: { steps: [{ name: 'Won' }, { id: SANDBOX_SEED_IDS.salesStepIds[0], percent: 15 }] },
      query: 'expand=steps',
    });
    expect(res.status).toBe(200);
    expect(res.json.data.steps.map((s: { name: string; percent: number }) => `${s.name}:${s.percent}`)).toEqual([
      'Qualification:15', 'Needs Analysis:25', 'Proposal:50', 'Negotiation:75', 'Closing:90', 'Won:null',
    ]);
  });

  it('reorders through PATCH /Pipelines/{id} when every step is listed', async () => {
    const reversed = [...SANDBOX_SEED_IDS.salesStepIds].reverse().map((id) => ({ id }));
    const res = await call('PATCH', `Pipelines/${SALES}`, { body: { name: 'Sales', steps: reversed }, query: 'expand=steps' });
    expect(res.json.data.name).toBe('Sales');
    expect(res.json.data.steps.map((s: { name: string }) => s.name)).toEqual([
      'Closing', 'Negotiation', 'Proposal', 'Needs Analysis', 'Qualification',
    ]);
    const foreign = await call('PATCH', `Pipelines/${SALES}`, { body: { steps: [{ id: SANDBOX_SEED_IDS.renewalsStepIds[0] }] } });
    expect(foreign.status).toBe(422);
    expect(foreign.json.field_errors[0].field_name).toBe('steps');
  });

  it('deleting a pipeline soft-deletes its steps', async () => {
    const res = await call('DELETE', `Pipelines/${SANDBOX_SEED_IDS.renewalsPipelineId}`);
    expect(res.json).toEqual({ success: true, data: SANDBOX_SEED_IDS.renewalsPipelineId });
    const steps = sandbox.steps().filter((s) => s.pipeline_id === SANDBOX_SEED_IDS.renewalsPipelineId);
    expect(steps.map((s) => s.is_deleted)).toEqual([true, true, true]);
    const create = await call('POST', 'Steps', {
      body: { name: 'Late', pipeline_id: SANDBOX_SEED_IDS.renewalsPipelineId },
      query: 'validation-level=8',
    });
    expect(create.status).toBe(422);
    const allowed = await call('POST', 'Steps', {
      body: { name: 'Late', pipeline_id: SANDBOX_SEED_IDS.renewalsPipelineId },
      query: 'validation-level=24',
    });
    expect(allowed.status).toBe(201);
  });

  it('uses a space-wide revision counter across entities', async () => {
    const a = await call('POST', 'Steps', { body: { name: 'A' } });
    const p = await call('PATCH', `Pipelines/${SALES}`, { body: { color: 1 } });
    const b = await call('PATCH', `Steps/${a.json.data.id}`, { body: { name: 'B' } });
    expect(p.json.data.revision).toBe(a.json.data.revision + 1);
    expect(b.json.data.revision).toBe(a.json.data.revision + 2);
  });

  it('answers invalid JSON with 400 code 117 exactly', async () => {
    const contractChecks = ['is not valid JSON', 'is required', 'must be object', 'must be object'];
    for (const body of ['{"name":', '', '[1,2]', '"text"']) {
      const res = await call('POST', 'Steps', { body });
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toBe('application/json');
      expect(res.json).toEqual({
        code: 117,
        name: 'ERROR_PARAMETER_INVALID',
        message: 'Missing or invalid JSON data.',
        http_status: 400,
        success: false,
      });
      expectViolations(sandbox, [{ location: 'body', instancePath: '', message: contractChecks.shift() }]);
    }
  });

  it('answers an unknown entity with 404 code 2006', async () => {
    const res = await call('GET', 'Contact');
    expect(res.status).toBe(404);
    expect(res.json).toEqual({
      code: 2006,
      name: 'ERROR_UNKNOWN_TYPE',
      message: 'cannot determine entity type from Contact',
      http_status: 404,
      success: false,
    });
    expectViolations(sandbox, [{ location: 'operation', message: 'no path of the document matches' }]);
  });

  it('answers an unknown route with the bare 404 body, and a wrong method with a bare 405', async () => {
    const res = await call('GET', '/api/v100/rest/nothing', { rawPath: true });
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.json).toEqual({
      status: 404,
      message:
        'The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.',
      errorcode: null,
      traceback: null,
    });
    const put = await call('PUT', `Steps/${SANDBOX_SEED_IDS.salesStepIds[0]}`, { body: {} });
    expect(put.status).toBe(405);
    expect(put.json).toMatchObject({ status: 405, errorcode: null, traceback: null });
    expectViolations(sandbox, [
      { location: 'operation', method: 'GET', message: 'no path of the document matches' },
      { location: 'operation', method: 'PUT', message: expect.stringContaining('no PUT operation') },
    ]);
  });

  it('answers 401 with WWW-Authenticate for missing or wrong credentials and for another space', async () => {
    const expectations: Array<[Parameters<typeof call>[2], string]> = [
      [{ auth: false }, 'Steps'],
      [{ auth: ['sandbox-api-token', 'wrong'] }, 'Steps'],
      [{ auth: ['nobody', 'sandbox-api-password'] }, 'Pipelines'],
      [{ headers: { authorization: 'Bearer abc' }, auth: false }, 'Steps'],
    ];
    for (const [options, path] of expectations) {
      const res = await call('GET', path, options);
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Basic realm="restapi"');
      expect(res.json).toMatchObject({ success: false, http_status: 401, code: 110, name: 'ERROR_UNAUTHORIZED' });
      expect(typeof res.json.message).toBe('string');
    }
    const otherSpace = await call('GET', '/api/v100/rest/spaces/other_space/entities/Steps', { rawPath: true });
    expect(otherSpace.status).toBe(401);
    expect(otherSpace.json.message).toContain("space 'other_space'");
  });

  it('records every request in order with raw query, headers and body', async () => {
    await call('POST', 'Steps', { body: '{"name":"Logged"}', query: 'validation-level=8' });
    await call('GET', 'Pipelines', { query: 'filter[name]=Sales%20Pipeline' });
    expect(sandbox.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /api/v100/rest/spaces/sandbox_space/entities/Steps',
      'GET /api/v100/rest/spaces/sandbox_space/entities/Pipelines',
    ]);
    expect(sandbox.requests[0]).toMatchObject({ query: 'validation-level=8', body: '{"name":"Logged"}' });
    expect(sandbox.requests[0].headers['authorization']).toMatch(/^Basic /);
    expect(sandbox.requests[1]).toMatchObject({ query: 'filter[name]=Sales%20Pipeline', body: '' });
  });

  it('converts output dates with the Timezone header and rejects unknown zones', async () => {
    const id = SANDBOX_SEED_IDS.salesStepIds[0];
    const chicago = await call('GET', `Steps/${id}`, { headers: { Timezone: 'America/Chicago' } });
    expect(chicago.json.data.created).toBe('2024-01-15 03:00:00.000000-06:00');
    const kolkata = await call('GET', `Steps/${id}`, { headers: { Timezone: 'Asia/Kolkata' } });
    expect(kolkata.json.data.created).toBe('2024-01-15 14:30:00.000000+05:30');
    const bad = await call('GET', `Steps/${id}`, { headers: { Timezone: 'Mars/Olympus' } });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ code: 117, name: 'ERROR_PARAMETER_INVALID' });
  });

  it('reset() restores the seed and clears the request log in place', async () => {
    const log = sandbox.requests;
    await call('DELETE', `Pipelines/${SALES}`);
    expect(sandbox.pipelines().find((p) => p.id === SALES)?.is_deleted).toBe(true);
    sandbox.reset();
    expect(sandbox.pipelines().find((p) => p.id === SALES)?.is_deleted).toBe(false);
    expect(sandbox.steps()).toHaveLength(8);
    expect(log).toBe(sandbox.requests);
    expect(log).toHaveLength(0);
  });
});

describe('Pipeliner sandbox: round trip of a step body', () => {
  it('accepts a GET body sent back (documents as URIs or {id}), minus read-only fields', async () => {
    const sandbox = await startSandbox({ port: 0, contract: true });
    const call = client(sandbox);
    try {
      const doc = '44444444-4444-4444-8444-444444444444';
      const created = await call('POST', 'Steps', {
        body: { name: 'Docs', documents: [{ id: doc }], step_checklists: [`${sandbox.serviceUrl}/x/StepChecklists/${doc}`] },
      });
      expect(created.status).toBe(201);
      expect(created.json.data.documents).toEqual([
        `${sandbox.serviceUrl}/api/v100/rest/spaces/sandbox_space/entities/CloudObjectStepRelations/${doc}`,
      ]);
      const { pipeline_id: _p, sort_order: _s, ...body } = created.json.data;
      const patched = await call('PATCH', `Steps/${created.json.data.id}`, { body: { ...body, name: 'Docs 2' } });
      expect(patched.status).toBe(200);
      expect(patched.json.data).toMatchObject({ name: 'Docs 2', documents: created.json.data.documents });
      const bad = await call('PATCH', `Steps/${created.json.data.id}`, { body: { documents: ['nope'] } });
      expect(bad.status).toBe(422);
      expect(bad.json.field_errors[0].field_name).toBe('documents');
      // The sandbox is lenient here; Pipeliner's document is not: input relations are `{id: <uri>}` objects, the
      // document never says `nullable`, and the GET body carries read-only fields (no validation-level bit 8).
      const problems = (method: string) =>
        sandbox
          .contractViolations()
          .filter((v) => v.method === method)
          .map((v) => `${v.instancePath} ${v.message.startsWith('is read-only') ? 'read-only' : v.message}`);
      expect(problems('POST')).toEqual(['/documents/0/id must match format "uri"', '/step_checklists/0 must be object']);
      expect(problems('PATCH')).toEqual([
        '/description must be string',
        '/lead_process_id must be string',
        '/percent must be integer',
        '/quote_process_id must be string',
        '/timeframe must be integer',
        '/documents/0 must be object',
        '/step_checklists/0 must be object',
        '/is_delete_protected read-only',
        '/id read-only',
        '/is_deleted read-only',
        '/modified read-only',
        '/created read-only',
        '/pipeline read-only',
        '/documents/0 must be object',
      ]);
    } finally {
      await sandbox.close();
    }
  });
});
