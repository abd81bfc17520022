import { SANDBOX_SEED_IDS, startSandbox, type RunningSandbox, type SandboxSeed } from '../index';
import { client } from './testing/client';
import { expectViolations } from './testing/contract';

/** 45 steps in one pipeline plus 3 outside any pipeline: enough for several pages. */
function bigSeed(): SandboxSeed {
  return {
    revision: 500,
    created: '2024-03-01 10:00:00.000000+00:00',
    pipelines: [
      {
        id: 'aaaaaaaa-0000-4000-8000-000000000001',
        name: 'Big',
        color: 1,
        steps: Array.from({ length: 45 }, (_, i) => ({
          id: `bbbbbbbb-0000-4000-8000-${String(i).padStart(12, '0')}`,
          name: `Step ${String(i).padStart(2, '0')}`,
          percent: i % 10 === 0 ? null : (i * 7) % 100,
          created: `2024-03-01 10:${String(i).padStart(2, '0')}:00.000000+00:00`,
        })),
      },
      { id: 'aaaaaaaa-0000-4000-8000-000000000002', name: 'Small Test Pipeline', color: 2, steps: [{ name: 'Only' }] },
    ],
    steps: [
      { id: 'cccccccc-0000-4000-8000-000000000001', name: 'Lead A', lead_process_id: 'dddddddd-0000-4000-8000-000000000001' },
      { id: 'cccccccc-0000-4000-8000-000000000002', name: 'Lead B', lead_process_id: 'dddddddd-0000-4000-8000-000000000001' },
      { id: 'cccccccc-0000-4000-8000-000000000003', name: 'lead c', description: 'Quote step', quote_process_id: 'dddddddd-0000-4000-8000-000000000002' },
    ],
  };
}

describe('Pipeliner sandbox: list queries', () => {
  let sandbox: RunningSandbox;
  let call: ReturnType<typeof client>;

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, seed: bigSeed(), contract: true });
    call = client(sandbox);
  });
  afterAll(() => sandbox.close());
  beforeEach(() => sandbox.reset());
  afterEach(() => expect(sandbox.takeContractViolations()).toEqual([]));

  /** Names of the big pipeline's steps whose seeded percent passes `test` (sorted by name). */
  const percentNames = (test: (percent: number) => boolean): string[] =>
    Array.from({ length: 45 }, (_, i) => i)
      .filter((i) => i % 10 !== 0 && test((i * 7) % 100))
      .map((i) => `Step ${String(i).padStart(2, '0')}`);
  const names = (res: { json: { data: Array<{ name: string }> } }) => res.json.data.map((s) => s.name);

  it('answers the list envelope with keys in Pipeliner order and a default page of 30 by id', async () => {
    const res = await call('GET', 'Steps');
    expect(res.status).toBe(200);
    expect(Object.keys(res.json)).toEqual(['success', 'total', 'page_info', 'data']);
    expect(Object.keys(res.json.page_info)).toEqual(['start_cursor', 'end_cursor', 'has_previous_page', 'has_next_page']);
    expect(res.json.total).toBe(49);
    expect(res.json.data).toHaveLength(30);
    expect(res.json.page_info).toMatchObject({ has_previous_page: false, has_next_page: true });
    const ids = res.json.data.map((s: { id: string }) => s.id);
    expect(ids).toEqual([...ids].sort());
    // Default order is by id, so the default cursor is base64 of ["<id>"] (§4).
    expect(JSON.parse(Buffer.from(res.json.page_info.start_cursor, 'base64').toString())).toEqual([ids[0]]);
    expect(JSON.parse(Buffer.from(res.json.page_info.end_cursor, 'base64').toString())).toEqual([ids[29]]);
  });

  it('pages through everything with after=end_cursor until has_next_page is false', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const query = `first=20&order-by=-name${after ? `&after=${encodeURIComponent(after)}` : ''}`;
      const res = await call('GET', 'Steps', { query });
      pages += 1;
      expect(res.json.total).toBe(49);
      seen.push(...names(res));
      expect(res.json.page_info.has_previous_page).toBe(pages > 1);
      if (!res.json.page_info.has_next_page) break;
      after = res.json.page_info.end_cursor;
      const decoded = JSON.parse(Buffer.from(after ?? '', 'base64').toString());
      expect(decoded).toHaveLength(2);
      expect(Buffer.from(after ?? '', 'base64').toString()).toMatch(/^\["[^"]+", "[0-9a-f-]{36}"\]$/);
    }
    expect(pages).toBe(3);
    expect(seen).toHaveLength(49);
    expect(new Set(seen).size).toBe(49);
    expect(seen).toEqual([...seen].sort().reverse());
  });

  it('answers the observed empty last page after the end', async () => {
    const all = await call('GET', 'Steps', { query: 'first=100' });
    expect(all.json.data).toHaveLength(49);
    expect(all.json.page_info.has_next_page).toBe(false);
    const after = await call('GET', 'Steps', { query: `after=${encodeURIComponent(all.json.page_info.end_cursor)}` });
    expect(after.json).toEqual({
      success: true,
      total: 49,
      page_info: { start_cursor: null, end_cursor: null, has_previous_page: false, has_next_page: false },
      data: [],
    });
  });

  it('pages backwards with before + last', async () => {
    const page2 = await call('GET', 'Steps', { query: 'first=10&order-by=name&after=' + encodeURIComponent((await call('GET', 'Steps', { query: 'first=10&order-by=name' })).json.page_info.end_cursor) });
    // Code-point order: 'Lead A', 'Lead B', 'Only', 'Step 00', ... ('lead c' sorts last).
    expect(names(page2)[0]).toBe('Step 07');
    const back = await call('GET', 'Steps', { query: `last=5&order-by=name&before=${encodeURIComponent(page2.json.page_info.start_cursor)}` });
    expect(names(back)).toEqual(['Step 02', 'Step 03', 'Step 04', 'Step 05', 'Step 06']);
    expect(back.json.page_info).toMatchObject({ has_previous_page: true, has_next_page: true });
  });

  it('clamps first above 100 and rejects non-numbers', async () => {
    const clamped = await call('GET', 'Steps', { query: 'first=500' });
    expect(clamped.status).toBe(200);
    expect(clamped.json.data).toHaveLength(49);
    const bad = await call('GET', 'Steps', { query: 'first=abc' });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ code: 117, name: 'ERROR_PARAMETER_INVALID', http_status: 400, success: false });
    expectViolations(sandbox, [{ location: 'query', instancePath: '/first', message: 'must be integer' }]);
  });

  it('serves legacy limit/offset without page_info', async () => {
    const res = await call('GET', 'Steps', { query: 'limit=3&offset=2&order-by=name' });
    expect(Object.keys(res.json)).toEqual(['success', 'total', 'data']);
    expect(names(res)).toEqual(['Only', 'Step 00', 'Step 01']);
  });

  it('filters with eq by default and every common operator', async () => {
    const cases: Array<[string, number | string[]]> = [
      ['filter[name]=Lead%20A', ['Lead A']],
      ['filter[name]=lead%20a&filter-op[name]=ieq', ['Lead A']],
      ['filter[name]=Lead&filter-op[name]=contains', ['Lead A', 'Lead B']],
      ['filter[name]=lead&filter-op[name]=icontains', ['Lead A', 'Lead B', 'lead c']],
      ['filter[name]=Step%204&filter-op[name]=starts', ['Step 40', 'Step 41', 'Step 42', 'Step 43', 'Step 44']],
      ['filter[name]=%20B&filter-op[name]=ends', ['Lead B']],
      ['filter[name]=Step%2000&filter-op[name]=not-eq', 48],
      ['filter-op[pipeline_id]=null', ['Lead A', 'Lead B', 'lead c']],
      ['filter-op[pipeline_id]=not-null', 46],
      ['filter-op[lead_process_id]=not-null', ['Lead A', 'Lead B']],
      ['filter-op[description]=not-empty', ['lead c']],
      ['filter[percent]=90&filter-op[percent]=gte', percentNames((p) => p >= 90)],
      ['filter[percent]=8&filter-op[percent]=lt', percentNames((p) => p < 8)],
      ['filter[percent]=70,77&filter-op[percent]=between', percentNames((p) => p >= 70 && p <= 77)],
      ['filter[sort_order]=43&filter-op[sort_order]=gt', ['Step 44']],
      ['filter[created]=2024-03-01T10:42:00Z&filter-op[created]=gte', ['Step 42', 'Step 43', 'Step 44']],
      ['filter[created]=2024-03-01 10:01:00.000000%2B00:00&filter-op[created]=lte', ['Lead A', 'Lead B', 'Only', 'Step 00', 'Step 01', 'lead c']],
      ['filter[pipeline_id]=AAAAAAAA-0000-4000-8000-000000000002', ['Only']],
      ['filter[is_deleted]=false&filter[name]=Only', ['Only']],
    ];
    for (const [query, expected] of cases) {
      const res = await call('GET', 'Steps', { query: `${query}&order-by=name&first=100` });
      expect({ query, status: res.status }).toEqual({ query, status: 200 });
      if (typeof expected === 'number') expect({ query, total: res.json.total }).toEqual({ query, total: expected });
      else expect({ query, names: names(res) }).toEqual({ query, names: expected });
    }
  });

  it('filters pipelines like the official tutorial (contains on name, expand=steps)', async () => {
    const res = await call('GET', 'Pipelines', { query: 'expand=steps&filter-op[name]=contains&filter[name]=Test Pipeline' });
    expect(res.json.total).toBe(1);
    expect(res.json.data[0].name).toBe('Small Test Pipeline');
    expect(res.json.data[0].steps[0]).toMatchObject({ name: 'Only', sort_order: 0 });
  });

  it('rejects unknown filter fields, operators and bad typed values with 400', async () => {
    for (const query of ['filter[nope]=1', 'filter[name]=x&filter-op[name]=like', 'filter[percent]=ten', 'filter-op[name]=eq', 'order-by=nope', 'after=%%%']) {
      const res = await call('GET', 'Steps', { query });
      expect({ query, status: res.status, code: res.json.code }).toEqual({ query, status: 400, code: 117 });
    }
  });

  it('orders by several fields with - for descending; nulls last ascending', async () => {
    const res = await call('GET', 'Steps', { query: 'filter[pipeline_id]=aaaaaaaa-0000-4000-8000-000000000001&order-by=percent,-name&first=100' });
    const data = res.json.data as Array<{ name: string; percent: number | null }>;
    const percents = data.map((s) => s.percent);
    const firstNull = percents.indexOf(null);
    expect(percents.slice(firstNull).every((p) => p === null)).toBe(true);
    expect(data.slice(firstNull).map((s) => s.name)).toEqual(['Step 40', 'Step 30', 'Step 20', 'Step 10', 'Step 00']);
    const sorted = percents.slice(0, firstNull) as number[];
    expect(sorted).toEqual([...sorted].sort((a, b) => a - b));
  });

  it('applies load-only and expand to every list item', async () => {
    const res = await call('GET', 'Steps', { query: 'filter[name]=Only&load-only=id,name,pipeline.name,pipeline.color' });
    expect(res.json.data).toEqual([{ id: expect.any(String), name: 'Only', pipeline: { color: 2, name: 'Small Test Pipeline' } }]);
    const expanded = await call('GET', 'Steps', { query: 'filter[name]=Lead%20A&expand=pipeline' });
    expect(expanded.json.data[0].pipeline).toBeNull();
    expect(expanded.json.data[0].lead_process).toBe(
      `${sandbox.serviceUrl}/api/v100/rest/spaces/sandbox_space/entities/LeadProcesses/dddddddd-0000-4000-8000-000000000001`,
    );
  });

  it('leaves deleted records out unless include-deleted=true', async () => {
    await call('DELETE', 'Steps/cccccccc-0000-4000-8000-000000000001');
    const live = await call('GET', 'Steps', { query: 'filter-op[lead_process_id]=not-null' });
    expect(names(live)).toEqual(['Lead B']);
    const all = await call('GET', 'Steps', { query: 'filter-op[lead_process_id]=not-null&include-deleted=true' });
    expect(all.json.data.map((s: { name: string; is_deleted: boolean }) => [s.name, s.is_deleted])).toEqual([
      ['Lead A', true],
      ['Lead B', false],
    ]);
    // The remaining lead-process step closed the gap.
    expect(all.json.data[1].sort_order).toBe(0);
  });

  it('keeps the built-in seed ids out of a custom seed', () => {
    expect(sandbox.pipelines().map((p) => p.id)).not.toContain(SANDBOX_SEED_IDS.salesPipelineId);
  });
});
