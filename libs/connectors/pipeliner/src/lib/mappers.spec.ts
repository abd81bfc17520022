import type { StageCreateBody } from '@unicrm/model';
import fc from 'fast-check';
import { desunifyStageCreate, remoteDataConflicts, reportedPipelineId, STEP_FIELD_MAPPING, stepCreateRequest, unifyStep } from './mappers';

const step = {
  id: '0190978c-d6d1-de35-3f6d-7cf0a0e264db',
  is_delete_protected: false,
  is_deleted: false,
  created: '2024-07-09 12:51:48.050073+00:00',
  modified: '2024-07-10 08:00:00.000001+00:00',
  name: 'Negotiation',
  sort_order: 4,
  pipeline_id: '00000000-0000-0000-0000-000000008e97',
  pipeline: 'https://eu-central.api.pipelinersales.com/api/v100/rest/spaces/fr_Myself/entities/Pipelines/00000000-0000-0000-0000-000000008e97',
  percent: 60,
};

describe('desunifyStageCreate', () => {
  it('maps name, pipeline.id and position, and leaves status and pipeline.name out', () => {
    expect(
      desunifyStageCreate({ name: 'Won', pipeline: { id: 'p1', name: 'ignored' }, position: 2, status: 'active' }),
    ).toEqual({ name: 'Won', pipeline_id: 'p1', sort_order: 2 });
  });

  it('deep-merges remote_data over the mapped body, remote_data winning', () => {
    expect(desunifyStageCreate({ name: 'Won', remote_data: { name: 'Closed won', percent: 100, description: 'x' } })).toEqual({
      name: 'Closed won',
      percent: 100,
      description: 'x',
    });
  });

  it('sends only name when nothing else is given', () => {
    expect(desunifyStageCreate({ name: 'Lead' })).toEqual({ name: 'Lead' });
  });
});

describe('unifyStep', () => {
  it('maps every field of the DESIGN.md §2 table', () => {
    expect(unifyStep(step, 'Sales Pipeline')).toEqual({
      id: step.id,
      name: 'Negotiation',
      position: 4,
      status: 'active',
      pipeline: { id: step.pipeline_id, name: 'Sales Pipeline' },
      created_at: '2024-07-09T12:51:48.050Z',
      updated_at: '2024-07-10T08:00:00.000Z',
      remote_data: step,
    });
  });

  it('keeps the remote data identical to what Pipeliner returned', () => {
    expect(unifyStep(step).remote_data).toBe(step);
  });

  it('maps a deleted step to inactive and omits what Pipeliner lacks', () => {
    const stage = unifyStep({ id: 'x', is_deleted: true, pipeline_id: null, sort_order: null, created: 'garbage' });
    expect(stage).toEqual({ id: 'x', status: 'inactive', remote_data: expect.any(Object) });
  });

  it('reads the pipeline of an expanded step', () => {
    const stage = unifyStep({ id: 'x', pipeline: { id: 'p9', name: 'Renewals' } }, 'Renewals');
    expect(stage.pipeline).toEqual({ id: 'p9', name: 'Renewals' });
  });

  it('omits the pipeline name when it is not known', () => {
    expect(unifyStep(step).pipeline).toEqual({ id: step.pipeline_id });
  });
});

describe('stepCreateRequest', () => {
  const merged = (body: StageCreateBody) => desunifyStageCreate(body);

  it.each<[string, StageCreateBody]>([
    ['no remote_data', { name: 'Won', pipeline: { id: 'p1' }, position: 2 }],
    ['empty remote_data', { name: 'Won', remote_data: {} }],
    ['provider-only fields', { name: 'Won', pipeline: { id: 'p1' }, remote_data: { percent: 40, cf_a: { b: [1, 'x'] }, description: 'd' } }],
    ['a mapped field overridden', { name: 'Won', pipeline: { id: 'p1' }, position: 1, remote_data: { sort_order: 9, name: 'Closed', percent: 1 } }],
    ['read-only fields only in remote_data', { name: 'Won', remote_data: { pipeline_id: 'p2', sort_order: 4 } }],
    ['prototype keys', { name: 'Won', remote_data: JSON.parse('{"__proto__":{"x":1},"constructor":1,"percent":2}') }],
    ['a toJSON key', { name: 'Won', remote_data: { toJSON: () => 'x', percent: 2 } }],
  ])('sends the JSON of desunifyStageCreate (%s)', (_case, body) => {
    const request = stepCreateRequest(body);
    const expected = merged(body);
    expect(request.json).toBe(JSON.stringify(expected));
    expect(request.pipeline_id).toBe(expected.pipeline_id);
    expect(request.sort_order).toBe(expected.sort_order);
  });

  it('equals the merged body for any body (byte for byte without integer-like keys)', () => {
    const key = fc.oneof(fc.constantFrom('name', 'pipeline_id', 'sort_order', 'percent', '__proto__', 'constructor', 'toJSON', '7', 'a.b'), fc.string({ maxLength: 4 }));
    const leaf = fc.oneof(fc.string({ maxLength: 3 }), fc.integer(), fc.boolean(), fc.constant(null));
    const value = fc.oneof(leaf, fc.dictionary(key, leaf, { maxKeys: 3 }), fc.array(leaf, { maxLength: 2 }));
    const body = fc.record(
      {
        name: fc.string({ maxLength: 5 }),
        pipeline: fc.record({ id: fc.string({ minLength: 1, maxLength: 5 }) }),
        position: fc.nat(9),
        remote_data: fc.dictionary(key, value, { maxKeys: 6 }),
      },
      { requiredKeys: ['name'] },
    );
    fc.assert(
      fc.property(body, (b) => {
        const request = stepCreateRequest(b as StageCreateBody);
        const expected = merged(b as StageCreateBody);
        expect(JSON.parse(request.json)).toEqual(JSON.parse(JSON.stringify(expected)));
        if (!Object.keys(b.remote_data ?? {}).some((k) => /^\d+$/.test(k))) expect(request.json).toBe(JSON.stringify(expected));
        expect(request.pipeline_id).toEqual(expected.pipeline_id);
        expect(request.sort_order).toEqual(expected.sort_order);
      }),
      { numRuns: 2000 },
    );
  });

  it('does not copy remote_data into a merged body when it shares no key with the mapped fields', () => {
    const remote = { percent: 40 };
    const spy = jest.spyOn(Object, 'entries');
    try {
      stepCreateRequest({ name: 'Won', pipeline: { id: 'p1' }, remote_data: remote });
      expect(spy).not.toHaveBeenCalledWith(remote);
    } finally {
      spy.mockRestore();
    }
  });
});


describe('STEP_FIELD_MAPPING and remoteDataConflicts', () => {
  it('is the mapping desunify writes: each unified field lands on its Step key', () => {
    fc.assert(
      fc.property(
        fc.record(
          { name: fc.string({ maxLength: 5 }), pipeline: fc.record({ id: fc.string({ minLength: 1, maxLength: 5 }) }), position: fc.nat(9) },
          { requiredKeys: [] },
        ),
        (body) => {
          const mapped = desunifyStageCreate(body as StageCreateBody);
          for (const field of STEP_FIELD_MAPPING) {
            const value = field.read(body as StageCreateBody);
            if (value !== undefined) expect(mapped[field.remote]).toBe(value);
            else if (field.remote !== 'name') expect(field.remote in mapped).toBe(false);
          }
        },
      ),
    );
    expect(STEP_FIELD_MAPPING.map((f) => `${f.unified}->${f.remote}`)).toEqual(['name->name', 'pipeline.id->pipeline_id', 'position->sort_order']);
  });

  it('finds a remote_data key that the merge would let overwrite a unified field with another value', () => {
    const conflicts = remoteDataConflicts({
      name: 'Won',
      pipeline: { id: 'AB-1' },
      position: 2,
      remote_data: { name: 'Lost', pipeline_id: 'ab-1', sort_order: 3, percent: 1 },
    });
    expect(conflicts.map((c) => [c.field.unified, c.field.remote, c.mapped, c.remote])).toEqual([
      ['name', 'name', 'Won', 'Lost'],
      ['position', 'sort_order', 2, 3],
    ]);
  });

  it('finds none when the unified field is absent, remote_data lacks the key, or only inherits it', () => {
    expect(remoteDataConflicts({ name: 'Won', remote_data: { pipeline_id: 'x', sort_order: 1 } })).toEqual([]);
    expect(remoteDataConflicts({ name: 'Won', position: 1 })).toEqual([]);
    expect(remoteDataConflicts({ name: 'Won', remote_data: Object.create({ name: 'Inherited' }) as Record<string, unknown> })).toEqual([]);
  });

  it('agrees with the merge: a body without conflicts sends each set unified field as it is', () => {
    const key = fc.constantFrom('name', 'pipeline_id', 'sort_order', 'percent');
    const leaf = fc.oneof(fc.constantFrom('Won', 'p1', 'P1', 2), fc.integer({ min: 0, max: 3 }), fc.constant(null));
    const body = fc.record(
      { name: fc.constantFrom('Won', 'Lost'), pipeline: fc.record({ id: fc.constantFrom('p1', 'p2') }), position: fc.nat(3), remote_data: fc.dictionary(key, leaf) },
      { requiredKeys: ['name'] },
    );
    fc.assert(
      fc.property(body, (b) => {
        const merged = desunifyStageCreate(b as StageCreateBody);
        const conflicting = new Set(remoteDataConflicts(b as StageCreateBody).map((c) => c.field.remote));
        for (const field of STEP_FIELD_MAPPING) {
          const value = field.read(b as StageCreateBody);
          if (value === undefined) continue;
          const sent = merged[field.remote];
          expect(conflicting.has(field.remote)).toBe(!field.same(value, sent));
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('reportedPipelineId', () => {
  it.each<[Record<string, unknown>, string | null | undefined]>([
    [{ id: 's', pipeline_id: 'p1' }, 'p1'],
    [{ id: 's', pipeline_id: null }, null],
    [{ id: 's', pipeline_id: '' }, null],
    [{ id: 's', pipeline_id: null, pipeline: { id: 'p9' } }, null],
    [{ id: 's', pipeline: { id: 'p9', name: 'R' } }, 'p9'],
    [{ id: 's', pipeline: { name: 'R' } }, undefined],
    [{ id: 's', pipeline: 'https://x/entities/Pipelines/p1' }, undefined],
    [{ id: 's' }, undefined],
    [{ id: 's', pipeline_id: 42 }, undefined],
  ])('%j -> %j', (step, expected) => {
    expect(reportedPipelineId(step)).toBe(expected);
  });
});

describe('unifyStep: dates of years 0000-0099 (issue 12, item 10)', () => {
  it('keeps year 0001 as 0001 (it became 1901)', () => {
    const stage = unifyStep({ id: 'x', created: '0001-01-01 00:00:00.000000+00:00', modified: '0099-12-31 23:59:59.999999+00:00' });
    expect(stage.created_at).toBe('0001-01-01T00:00:00.000Z');
    expect(stage.updated_at).toBe('0099-12-31T23:59:59.999Z');
  });

  it('omits a date that its offset moves before year 0000', () => {
    expect(unifyStep({ id: 'x', created: '0000-01-01 00:30:00.000000+01:00' })).not.toHaveProperty('created_at');
  });
});
