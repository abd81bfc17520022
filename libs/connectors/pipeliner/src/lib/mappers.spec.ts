import { desunifyStageCreate, unifyStep } from './mappers';

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
