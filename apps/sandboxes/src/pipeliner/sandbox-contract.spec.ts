import { SANDBOX_SEED_IDS, startSandbox, type RunningSandbox } from '../index';
import { client } from './testing/client';
import { expectViolations } from './testing/contract';
import type { ContractViolation } from '../kit/contract/openapi-contract';
import { loadPipelinerContract } from './contract';

const SALES = SANDBOX_SEED_IDS.salesPipelineId;
const RENEWALS = SANDBOX_SEED_IDS.renewalsPipelineId;
const [QUALIFICATION, NEEDS, PROPOSAL] = SANDBOX_SEED_IDS.salesStepIds;
const UNKNOWN = '99999999-9999-4999-8999-999999999999';

describe('Pipeliner sandbox with contract checks on', () => {
  let sandbox: RunningSandbox;
  let call: ReturnType<typeof client>;
  const seen: ContractViolation[] = [];

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, faults: true, contract: true, onContractViolation: (v) => seen.push(v) });
    call = client(sandbox);
  });
  afterAll(() => sandbox.close());
  beforeEach(() => {
    sandbox.reset();
    seen.length = 0;
  });
  afterEach(() => expect(sandbox.takeContractViolations()).toEqual([]));

  it("answers every operation of Pipeliner's document within its response schemas", async () => {
    const contract = loadPipelinerContract();
    const reached = new Set<string>();
    const exchange = async (method: string, path: string, status: number, options: Parameters<typeof call>[2] = {}) => {
      const res = await call(method, path, options);
      expect({ method, path, query: options.query, status: res.status }).toEqual({ method, path, query: options.query, status });
      reached.add(contract.findOperation(method, `/entities/${path}`)?.operationId ?? `${method} ${path}`);
      return res;
    };

    // Lists: default, cursors, filters, order, expand, load-only, legacy paging, empty page, deleted included.
    const page = await exchange('GET', 'Steps', 200, { query: 'first=3&order-by=-name' });
    await exchange('GET', 'Steps', 200, { query: `first=3&order-by=-name&after=${encodeURIComponent(page.json.page_info.end_cursor)}` });
    await exchange('GET', 'Steps', 200, { query: 'filter-op[pipeline_id]=not-null&expand=pipeline' });
    await exchange('GET', 'Steps', 200, { query: 'load-only=id,name,pipeline.name&include-deleted=true' });
    await exchange('GET', 'Steps', 200, { query: 'limit=2&offset=1' });
    await exchange('GET', 'Steps', 200, { query: 'filter[name]=nothing' });
    await exchange('GET', 'Pipelines', 200);
    await exchange('GET', 'Pipelines', 200, { query: 'expand=steps&filter-op[name]=contains&filter[name]=Sales' });
    await exchange('GET', 'Pipelines', 200, { query: 'expand=steps.pipeline&load-only=id,steps.name,steps.pipeline.name' });

    // Single records, in UTC and another time zone.
    await exchange('GET', `Steps/${QUALIFICATION}`, 200);
    await exchange('GET', `Steps/${QUALIFICATION}`, 200, { query: 'expand=pipeline', headers: { Timezone: 'America/Chicago' } });
    await exchange('GET', `Pipelines/${SALES}`, 200, { query: 'load-only=id,name' });
    await exchange('GET', `Pipelines/${SALES}`, 200, { query: 'expand=steps' });

    // Writes.
    const created = await exchange('POST', 'Steps', 201, { body: { name: 'Won', pipeline_id: SALES, sort_order: 1 }, query: 'validation-level=8' });
    await exchange('POST', 'Steps', 201, { body: { name: 'Loose', percent: 5, description: 'x' }, query: 'expand=pipeline' });
    await exchange('PATCH', `Steps/${created.json.data.id}`, 200, { body: { timeframe: 7, has_readonly_form: true } });
    await exchange('DELETE', `Steps/${created.json.data.id}`, 200);
    const newPipeline = await exchange('POST', 'Pipelines', 201, { body: { name: 'Partners', color: 255, steps: [{ name: 'Intro' }] } });
    await exchange('PATCH', `Pipelines/${SALES}`, 200, { body: { steps: [{ name: 'Signed' }] }, query: 'expand=steps' });
    await exchange('DELETE', `Pipelines/${newPipeline.json.data.id}`, 200);

    // Batches, with per-item errors.
    await exchange('POST', 'Steps/batch-modify', 200, { body: [{ id: NEEDS, percent: 30 }, { name: 'Batch' }] });
    await exchange('POST', 'Steps/batch-modify', 200, { body: [{ id: UNKNOWN, name: 'x' }, { percent: 1 }], query: 'rollback-method=1' });
    await exchange('POST', 'Steps/batch-delete', 200, { body: [PROPOSAL, UNKNOWN], query: 'rollback-method=1' });
    await exchange('POST', 'Pipelines/batch-modify', 200, { body: [{ id: SALES, color: 1 }, { name: 'Upsell', color: 7, steps: [{ name: 'Pitch' }] }] });
    await exchange('POST', 'Pipelines/batch-delete', 200, { body: [RENEWALS] });

    // Error answers to well-formed requests: Pipeliner's Error shape, declared (404) or not (401, 422).
    await exchange('GET', `Steps/${UNKNOWN}`, 404);
    await exchange('PATCH', `Pipelines/${UNKNOWN}`, 404, { body: { name: 'x' } });
    await exchange('DELETE', `Steps/${UNKNOWN}`, 404);
    await exchange('POST', 'Steps', 422, { body: { name: 'Orphan', pipeline_id: UNKNOWN }, query: 'validation-level=8' });
    await exchange('POST', 'Steps', 422, { body: { name: '' } });
    await exchange('POST', 'Steps/batch-delete', 404, { body: [UNKNOWN] });
    await exchange('GET', 'Pipelines', 401, { auth: ['sandbox-api-token', 'wrong'] });

    expect([...reached].sort()).toEqual(contract.listOperations().map((op) => op.operationId).sort());
    expect(seen).toEqual([]);
  });

  it('records a deliberately wrong request with its JSON path, and the answer is still checked', async () => {
    const res = await call('POST', 'Steps', { body: { name: 123, pipeline_id: SALES } });
    expect(res.status).toBe(422);
    expectViolations(sandbox, [
      { direction: 'request', operationId: 'Steps.create', location: 'body', instancePath: '/name', message: 'must be string' },
      { direction: 'request', location: 'body', instancePath: '/pipeline_id', message: expect.stringContaining('validation-level bit 8') },
    ]);
    expect(seen).toHaveLength(2);
  });

  it('checks answers the sandbox is made to give: a 2xx status fault in the Error shape is caught', async () => {
    sandbox.injectFault({ method: 'GET', path: '/entities/Steps', status: 200, times: 1 });
    expect((await call('GET', 'Steps')).status).toBe(200);
    expectViolations(sandbox, [
      { direction: 'response', operationId: 'Steps.list', status: 200, location: 'body', instancePath: '', message: "must have required property 'data'" },
    ]);
    // Error-status faults are in the Error shape, so they pass.
    sandbox.injectFault({ status: 429, retryAfter: 1, times: 1 });
    expect((await call('GET', 'Steps')).status).toBe(429);
  });

  it('does not check deliberately corrupted bodies, nor the admin routes', async () => {
    sandbox.injectFault({ method: 'POST', body: 'malformed', times: 1 });
    expect((await call('POST', 'Steps', { body: { name: 'Written' } })).status).toBe(201);
    expect((await call('GET', 'Steps', { headers: { 'X-Sandbox-Fault': '{"status":502,"body":"html"}' } })).status).toBe(502);
    expect((await call('POST', '/__sandbox/faults', { rawPath: true, auth: false, body: { status: 500, times: 1 } })).status).toBe(201);
    expect((await call('DELETE', '/__sandbox/faults', { rawPath: true, auth: false })).status).toBe(200);
  });

  it('keeps violations across reset() until they are taken', async () => {
    await call('GET', 'Steps', { query: 'first=abc' });
    sandbox.reset();
    expect(sandbox.contractViolations()).toEqual([expect.objectContaining({ location: 'query', instancePath: '/first', message: 'must be integer' })]);
    expect(sandbox.takeContractViolations()).toHaveLength(1);
    expect(sandbox.contractViolations()).toEqual([]);
  });
});

describe('Pipeliner sandbox with contract checks off (the default)', () => {
  it('refuses to report violations rather than report none', async () => {
    const sandbox = await startSandbox({ port: 0 });
    try {
      await client(sandbox)('GET', 'Steps', { query: 'first=abc' });
      expect(() => sandbox.contractViolations()).toThrow(/contract: true/);
      expect(() => sandbox.takeContractViolations()).toThrow(/contract: true/);
    } finally {
      await sandbox.close();
    }
  });
});
