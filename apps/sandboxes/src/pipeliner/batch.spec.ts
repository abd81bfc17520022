import { SANDBOX_SEED_IDS, startSandbox, type RunningSandbox } from '../index';
import { client } from './testing/client';
import { expectViolations } from './testing/contract';

const SALES = SANDBOX_SEED_IDS.salesPipelineId;
const [QUALIFICATION, NEEDS] = SANDBOX_SEED_IDS.salesStepIds;
const UNKNOWN = '33333333-3333-4333-8333-333333333333';

describe('Pipeliner sandbox: batch-modify, batch-delete, batch-restore', () => {
  let sandbox: RunningSandbox;
  let call: ReturnType<typeof client>;

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, contract: true });
    call = client(sandbox);
  });
  afterAll(() => sandbox.close());
  beforeEach(() => sandbox.reset());
  afterEach(() => expect(sandbox.takeContractViolations()).toEqual([]));

  const stepName = (id: string) => sandbox.steps().find((s) => s.id === id)?.name;

  it('batch-modify updates items with id and creates items without, answering the ids', async () => {
    const res = await call('POST', 'Steps/batch-modify', {
      body: [{ id: QUALIFICATION, name: 'Qualify' }, { name: 'Loose step' }],
    });
    expect(res.status).toBe(200);
    expect(res.json.success).toBe(true);
    expect(res.json.data).toHaveLength(2);
    expect(res.json.data[0]).toBe(QUALIFICATION);
    expect(res.json.data[1]).toMatch(/^[0-9a-f-]{36}$/);
    expect(stepName(QUALIFICATION)).toBe('Qualify');
    expect(stepName(res.json.data[1])).toBe('Loose step');
  });

  it('rollback-method=0 (default): one invalid item saves nothing and answers its 422', async () => {
    const before = sandbox.steps();
    const res = await call('POST', 'Steps/batch-modify', {
      body: [{ id: QUALIFICATION, name: 'Qualify' }, { name: 'Fine' }, { percent: 5 }],
    });
    expect(res.status).toBe(422);
    expect(res.json).toMatchObject({ code: 40000, name: 'ERROR_ENTITY_VALIDATION', entity_index: 2, http_status: 422, success: false });
    expect(res.json.entity_errors[0]).toMatchObject({ code: 119, message: "Non-null field 'name' is null or empty." });
    expect(sandbox.steps()).toEqual(before);
  });

  it('rollback-method=1: valid items are saved, failures come back as Error objects in place', async () => {
    const res = await call('POST', 'Steps/batch-modify', {
      query: 'rollback-method=1',
      body: [{ id: QUALIFICATION, name: 'Qualify' }, { percent: 5 }, { id: UNKNOWN, name: 'x' }, 'not an object'],
    });
    expect(res.status).toBe(200);
    expect(res.json.data[0]).toBe(QUALIFICATION);
    expect(res.json.data[1]).toMatchObject({ success: false, http_status: 422, code: 40000, entity_index: 1 });
    expect(res.json.data[2]).toEqual({
      code: 2001,
      name: 'ERROR_ENTITY_NOT_FOUND',
      message: `Entity 'Step' with id '${UNKNOWN}' was not found.`,
      http_status: 404,
      success: false,
    });
    expect(res.json.data[3]).toMatchObject({ code: 117, http_status: 400 });
    expectViolations(sandbox, [{ location: 'body', instancePath: '/3', message: 'must be object' }]);
    expect(stepName(QUALIFICATION)).toBe('Qualify');
  });

  it('batch-modify honours validation-level for read-only fields', async () => {
    const denied = await call('POST', 'Steps/batch-modify', { body: [{ name: 'New', pipeline_id: SALES }] });
    expect(denied.status).toBe(422);
    expect(denied.json.field_errors[0].field_name).toBe('pipeline_id');
    expectViolations(sandbox, [{ location: 'body', instancePath: '/0/pipeline_id', message: expect.stringContaining('is read-only') }]);
    const allowed = await call('POST', 'Steps/batch-modify', { query: 'validation-level=8', body: [{ name: 'New', pipeline_id: SALES }] });
    expect(allowed.status).toBe(200);
    expect(sandbox.steps().find((s) => s.id === allowed.json.data[0])).toMatchObject({ pipeline_id: SALES, sort_order: 5 });
  });

  it('batch-modify on Pipelines creates and updates pipelines', async () => {
    const res = await call('POST', 'Pipelines/batch-modify', {
      body: [{ id: SALES, color: 42 }, { name: 'Upsell', color: 7, steps: [{ name: 'Pitch' }] }],
    });
    expect(res.status).toBe(200);
    expect(sandbox.pipelines().find((p) => p.id === SALES)?.color).toBe(42);
    const created = sandbox.pipelines().find((p) => p.id === res.json.data[1]);
    expect(created).toMatchObject({ name: 'Upsell', color: 7 });
    expect(created?.steps).toHaveLength(1);
  });

  it('batch-delete with rollback 0 deletes nothing when an id is unknown; with rollback 1 deletes the rest', async () => {
    const strict = await call('POST', 'Steps/batch-delete', { body: [QUALIFICATION, UNKNOWN] });
    expect(strict.status).toBe(404);
    expect(strict.json).toMatchObject({ code: 2001, name: 'ERROR_ENTITY_NOT_FOUND', success: false });
    expect(sandbox.steps().find((s) => s.id === QUALIFICATION)?.is_deleted).toBe(false);

    const lenient = await call('POST', 'Steps/batch-delete', { query: 'rollback-method=1', body: [QUALIFICATION, UNKNOWN, NEEDS] });
    expect(lenient.status).toBe(200);
    expect(lenient.json.data[0]).toBe(QUALIFICATION);
    expect(lenient.json.data[1]).toMatchObject({ http_status: 404, code: 2001 });
    expect(lenient.json.data[2]).toBe(NEEDS);
    const remaining = sandbox
      .steps()
      .filter((s) => s.pipeline_id === SALES && !s.is_deleted)
      .sort((a, b) => a.sort_order - b.sort_order)
      .map((s) => `${s.sort_order}:${s.name}`);
    expect(remaining).toEqual(['0:Proposal', '1:Negotiation', '2:Closing']);
  });

  it('batch-restore brings back deleted steps (at the end) and a pipeline with its steps', async () => {
    await call('POST', 'Steps/batch-delete', { body: [QUALIFICATION] });
    const restored = await call('POST', 'Steps/batch-restore', { body: [QUALIFICATION] });
    expect(restored.json).toEqual({ success: true, data: [QUALIFICATION] });
    expect(sandbox.steps().find((s) => s.id === QUALIFICATION)).toMatchObject({ is_deleted: false, sort_order: 4 });

    const renewals = SANDBOX_SEED_IDS.renewalsPipelineId;
    await call('DELETE', `Pipelines/${renewals}`);
    const back = await call('POST', 'Pipelines/batch-restore', { body: [renewals] });
    expect(back.json.data).toEqual([renewals]);
    expect(sandbox.steps().filter((s) => s.pipeline_id === renewals).map((s) => [s.is_deleted, s.sort_order])).toEqual([
      [false, 0],
      [false, 1],
      [false, 2],
    ]);
    // batch-restore is in the 2026 document only (pipeliner-api.md §2.1), not in the 2024 one the contract uses.
    expectViolations(sandbox, [
      { location: 'operation', path: expect.stringMatching(/Steps\/batch-restore$/) },
      { location: 'operation', path: expect.stringMatching(/Pipelines\/batch-restore$/) },
    ]);
  });

  it('rejects a non-array batch body and an invalid rollback-method with 400', async () => {
    const notArray = await call('POST', 'Steps/batch-delete', { body: { id: QUALIFICATION } });
    expect(notArray.status).toBe(400);
    expect(notArray.json.message).toBe('Missing or invalid JSON data.');
    const badRollback = await call('POST', 'Steps/batch-delete', { query: 'rollback-method=2', body: [QUALIFICATION] });
    expect(badRollback.status).toBe(400);
    expect(badRollback.json.code).toBe(117);
    // rollback-method=2 is an int32, as the document asks: only Pipeliner's own check rejects it.
    expectViolations(sandbox, [{ location: 'body', instancePath: '', message: 'must be array' }]);
  });
});
