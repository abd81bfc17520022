import fc from 'fast-check';
import { desunifyStageCreate, unifyStep } from './mappers';

// unify ∘ desunify round-trips the fields Pipeliner stores: a Step built from the desunified body
// (as Pipeliner would store it) unifies back to the same name, pipeline id and position.
const body = fc.record(
  {
    name: fc.string({ minLength: 1, maxLength: 40 }),
    pipeline: fc.record({ id: fc.uuid() }),
    position: fc.nat({ max: 1000 }),
  },
  { requiredKeys: ['name'] },
);

describe('Pipeliner mappers', () => {
  it('round-trip name, pipeline id and position', () => {
    fc.assert(
      fc.property(body, fc.uuid(), (input, id) => {
        const stored = { id, is_deleted: false, created: '2024-07-09 12:51:48.050073+00:00', modified: '2024-07-09 12:51:48.050073+00:00', ...desunifyStageCreate(input) };
        const stage = unifyStep(stored);
        expect(stage.name).toBe(input.name);
        expect(stage.pipeline?.id).toBe(input.pipeline?.id);
        expect(stage.position).toBe(input.position);
        expect(stage.status).toBe('active');
        expect(stage.remote_data).toBe(stored);
      }),
      { numRuns: 300 },
    );
  });
});
