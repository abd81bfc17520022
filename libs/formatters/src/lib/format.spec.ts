import { STAGE_SHAPE } from '@unicrm/model';
import { excludeFields } from './exclude-fields';
import { formatRecord, normalize } from './format';

const remoteData = { id: 's1', name: 'Qualify', sort_order: 3, revision: 12, pipeline_id: 'p1' };
const unified = {
  id: 's1',
  name: 'Qualify',
  position: 3,
  status: 'active',
  pipeline: { id: 'p1', name: 'Sales Pipeline' },
  created_at: '2024-07-09T12:51:48.050Z',
  updated_at: '2024-07-09T12:51:48.050Z',
  remote_data: remoteData,
};
const remote = { status: 201, bodyText: '{"success": true, "data": {"id": "s1"}}', body: { success: true, data: { id: 's1' } } };
const plain = { format: 'unified', ignoreRemoteData: false, excludeFields: [] } as const;

describe('formatRecord', () => {
  it('unified returns the record with remote_data by default', () => {
    expect(formatRecord(unified, remote, STAGE_SHAPE, plain).body).toEqual(unified);
  });

  it('unified drops remote_data with truto_ignore_remote_data', () => {
    const body = formatRecord(unified, remote, STAGE_SHAPE, { ...plain, ignoreRemoteData: true }).body as object;
    expect(Object.keys(body)).toEqual(['id', 'name', 'position', 'status', 'pipeline', 'created_at', 'updated_at']);
  });

  it('unified removes excluded fields, dot paths included, without touching the input', () => {
    const body = formatRecord(unified, remote, STAGE_SHAPE, {
      ...plain,
      excludeFields: ['id', 'pipeline.name', 'remote_data.revision', 'no.such.path'],
    }).body;
    expect(body).toEqual({
      name: 'Qualify',
      position: 3,
      status: 'active',
      pipeline: { id: 'p1' },
      created_at: '2024-07-09T12:51:48.050Z',
      updated_at: '2024-07-09T12:51:48.050Z',
      remote_data: { id: 's1', name: 'Qualify', sort_order: 3, pipeline_id: 'p1' },
    });
    expect(unified.pipeline).toEqual({ id: 'p1', name: 'Sales Pipeline' });
    expect(remoteData.revision).toBe(12);
  });

  it('raw returns the provider body and its exact text, ignoring both flags', () => {
    const result = formatRecord(unified, remote, STAGE_SHAPE, {
      format: 'raw',
      ignoreRemoteData: true,
      excludeFields: ['success'],
    });
    expect(result).toEqual({ body: remote.body, rawText: remote.bodyText });
  });

  it('normalized fills every schema field in order with nulls and drops remote_data', () => {
    const sparse = { id: 's2', name: 'X', pipeline: { id: 'p1' }, remote_data: {} };
    const body = formatRecord(sparse, remote, STAGE_SHAPE, { format: 'normalized', ignoreRemoteData: false, excludeFields: [] })
      .body as Record<string, unknown>;
    expect(JSON.stringify(body)).toBe(
      '{"id":"s2","name":"X","position":null,"status":null,"pipeline":{"id":"p1","name":null},"created_at":null,"updated_at":null}',
    );
  });

  it('normalized applies excluded fields after filling', () => {
    const body = formatRecord(unified, remote, STAGE_SHAPE, {
      format: 'normalized',
      ignoreRemoteData: false,
      excludeFields: ['pipeline.id', 'updated_at'],
    }).body;
    expect(body).toEqual({
      id: 's1',
      name: 'Qualify',
      position: 3,
      status: 'active',
      pipeline: { name: 'Sales Pipeline' },
      created_at: '2024-07-09T12:51:48.050Z',
    });
  });
});

describe('normalize', () => {
  it('writes null for a missing nested object', () => {
    expect(normalize({ id: 'a' }, STAGE_SHAPE).pipeline).toBeNull();
  });
});

describe('excludeFields', () => {
  it('returns the same object when nothing matches', () => {
    const record = { a: { b: 1 } };
    expect(excludeFields(record, ['a.c', 'x', 'a.b.c'])).toBe(record);
  });

  it('does not descend into arrays', () => {
    expect(excludeFields({ a: [{ b: 1 }] }, ['a.b'])).toEqual({ a: [{ b: 1 }] });
  });

  it('ignores inherited properties', () => {
    expect(excludeFields({ a: 1 }, ['toString', 'a.constructor'])).toEqual({ a: 1 });
  });
});
