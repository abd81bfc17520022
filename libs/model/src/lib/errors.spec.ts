import { z } from 'zod';
import { errorCodeOf, isUnicrmError, UnicrmError, zodFailures } from './errors';
import { StageCreateBodySchema } from './stage';

describe('UnicrmError', () => {
  it('builds the body of DESIGN.md §3 with the reason phrase', () => {
    const error = new UnicrmError(404, 'Integrated account not found');
    expect(error.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'Integrated account not found' });
    expect(isUnicrmError(error)).toBe(true);
    expect(isUnicrmError(new Error('x'))).toBe(false);
  });

  it('joins validation failures into the message', () => {
    const error = UnicrmError.validation([
      { path: 'name', message: 'is required' },
      { path: 'position', message: 'must be >= 0' },
    ]);
    expect(error.statusCode).toBe(400);
    expect(error.message).toBe('name: is required; position: must be >= 0');
    expect(error.body.details?.failures).toHaveLength(2);
  });
});

describe('zodFailures', () => {
  it('names each unknown field and each bad field with a dotted path', () => {
    const result = StageCreateBodySchema.safeParse({ name: 1, position: -1, pipeline: {}, descr: 'x' });
    expect(result.success).toBe(false);
    const failures = zodFailures(result.error as z.ZodError, 'body');
    expect(failures.map((f) => f.path).sort()).toEqual(['body.descr', 'body.name', 'body.pipeline.id', 'body.position']);
    expect(failures.find((f) => f.path === 'body.descr')?.message).toBe('unknown field');
  });
});

describe('errorCodeOf', () => {
  it('finds the first string code along the cause chain, at most five levels deep', () => {
    const wrap = (cause: unknown, levels: number): unknown => (levels === 0 ? cause : wrap(new Error('wrapped', { cause }), levels - 1));
    expect(errorCodeOf(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    expect(errorCodeOf(wrap({ code: 'UND_ERR_SOCKET' }, 4))).toBe('UND_ERR_SOCKET');
    expect(errorCodeOf(wrap({ code: 'TOO_DEEP' }, 5))).toBeUndefined();
    expect(errorCodeOf(Object.assign(new Error('x'), { code: 42, cause: { code: 'INNER' } }))).toBe('INNER');
    expect(errorCodeOf(new Error('no code'))).toBeUndefined();
    expect(errorCodeOf(undefined)).toBeUndefined();
  });
});
