import fc from 'fast-check';
import { z } from 'zod';
import { zodFailures } from './errors';
import { toJsonSchema } from './openapi';
import { buildOpenApiDocument } from './openapi';
import { RemoteDataSchema, STAGE_POSITION_MAX, StageCreateBodySchema } from './stage';

/** The create body as it was defined before `remote_data` stopped walking its keys: the reference to match. */
const RecordBodySchema = StageCreateBodySchema.extend({
  remote_data: z
    .record(z.string(), z.unknown(), { error: 'must be a JSON object' })
    .optional()
    .describe('Provider fields, deep-merged over the mapped request body (remote_data wins)'),
});

/** Everything a caller of `safeParse` can see of a result: the verdict, the data, the issues, the failures. */
function outcome(schema: z.ZodType, body: unknown) {
  const result = schema.safeParse(body);
  if (result.success) {
    const data = result.data as { remote_data?: object };
    return {
      success: true,
      json: JSON.stringify(result.data),
      ownKeys: data.remote_data === undefined ? undefined : Reflect.ownKeys(data.remote_data),
      prototype: data.remote_data === undefined ? undefined : Object.getPrototypeOf(data.remote_data),
      hasRemoteDataKey: 'remote_data' in data,
    };
  }
  return {
    success: false,
    issues: result.error.issues,
    failures: zodFailures(result.error),
    pretty: z.prettifyError(result.error),
  };
}

describe('StageCreateBodySchema.remote_data', () => {
  const cases: Array<[string, unknown]> = [
    ['an array', { remote_data: [1, 2] }],
    ['an empty array', { remote_data: [] }],
    ['a string', { remote_data: 'x' }],
    ['a number', { remote_data: 3 }],
    ['a boolean', { remote_data: false }],
    ['null', { remote_data: null }],
    ['a nested object', { remote_data: { a: { b: [1, { c: null }] }, d: 'e' } }],
    ['an object with a __proto__ key', JSON.parse('{"remote_data": {"__proto__": {"polluted": true}, "ok": 1}}')],
    ['an object with only a __proto__ key', JSON.parse('{"remote_data": {"__proto__": 1}}')],
    ['an object with constructor and prototype keys', JSON.parse('{"remote_data": {"constructor": {"prototype": {"x": 1}}, "prototype": 2}}')],
    ['an empty object', { remote_data: {} }],
    ['no remote_data', { name: 'Won' }],
    ['remote_data undefined', { remote_data: undefined }],
    ['a Date', { remote_data: new Date(0) }],
    ['a Map', { remote_data: new Map([['a', 1]]) }],
    ['an object without prototype', { remote_data: Object.assign(Object.create(null) as object, { a: 1 }) }],
    ['an object with a symbol key', { remote_data: { a: 1, [Symbol('s')]: 2 } }],
    ['an array next to other bad fields', { name: 5, position: -1, remote_data: [1], extra: true }],
  ];

  it.each(cases)('answers %s exactly as the record schema did (verdict, data, issues, failures)', (_name, body) => {
    expect(outcome(StageCreateBodySchema, body)).toEqual(outcome(RecordBodySchema, body));
  });

  it('names remote_data with "must be a JSON object" for each wrong type', () => {
    for (const value of [[1], 'x', 3, null]) {
      const result = StageCreateBodySchema.safeParse({ name: 'Won', remote_data: value });
      expect(result.success).toBe(false);
      expect(zodFailures(result.error as z.ZodError)).toEqual([{ path: 'remote_data', message: 'must be a JSON object' }]);
      expect(result.error?.issues).toEqual([{ expected: 'record', code: 'invalid_type', path: ['remote_data'], message: 'must be a JSON object' }]);
    }
  });

  it('drops an own __proto__ key as the record did, and never reaches Object.prototype', () => {
    const body = JSON.parse('{"remote_data": {"__proto__": {"polluted": true}, "ok": 1}}') as { remote_data: object };
    const result = StageCreateBodySchema.parse(body);
    expect(result.remote_data).toEqual({ ok: 1 });
    expect(Object.keys(result.remote_data as object)).toEqual(['ok']);
    expect(Object.getPrototypeOf(result.remote_data)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('takes a plain object as it is, without copying it', () => {
    const remote = { cf_a: 'x', nested: { b: [1, 2] } };
    expect(StageCreateBodySchema.parse({ name: 'Won', remote_data: remote }).remote_data).toBe(remote);
    expect(RemoteDataSchema.parse(remote)).toBe(remote);
  });

  it('agrees with the record schema on any JSON body (property)', () => {
    const key = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'name', '0', '10', ''), fc.string({ maxLength: 6 }));
    const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.dictionary(key, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 6 }));
    fc.assert(
      fc.property(value, (remote) => {
        // Through JSON text, as the API receives it (an own "__proto__" key stays a key).
        const body = JSON.parse(JSON.stringify({ remote_data: remote }) ?? '{}') as unknown;
        expect(outcome(StageCreateBodySchema, body)).toEqual(outcome(RecordBodySchema, body));
      }),
      { numRuns: 500 },
    );
  });

  it('has the same JSON Schema as the record, in both directions and in the OpenAPI document', () => {
    for (const io of ['input', 'output'] as const) {
      expect(JSON.stringify(toJsonSchema(StageCreateBodySchema, io))).toBe(JSON.stringify(toJsonSchema(RecordBodySchema, io)));
    }
    const extended = StageCreateBodySchema.extend({ name: z.string().min(1) });
    const extendedRecord = RecordBodySchema.extend({ name: z.string().min(1) });
    expect(JSON.stringify(toJsonSchema(extended, 'input'))).toBe(JSON.stringify(toJsonSchema(extendedRecord, 'input')));
    const document = buildOpenApiDocument() as { components: { schemas: Record<string, unknown> } };
    expect(JSON.stringify(document.components.schemas.StageCreateBody)).toBe(JSON.stringify(toJsonSchema(RecordBodySchema, 'input')));
    expect((document.components.schemas.StageCreateBody as { properties: Record<string, unknown> }).properties.remote_data).toEqual({
      description: 'Provider fields, deep-merged over the mapped request body (remote_data wins)',
      type: 'object',
      propertyNames: { type: 'string' },
      additionalProperties: {},
    });
  });
});

describe('StageCreateBodySchema.position (issue 12, item 13)', () => {
  const failures = (body: unknown) => {
    const result = StageCreateBodySchema.safeParse(body);
    return result.success ? [] : zodFailures(result.error);
  };
  const RANGE = 'must be a whole number from 0 to 2147483647';

  it.each([0, 1, 13, STAGE_POSITION_MAX])('accepts %d', (position) => {
    expect(failures({ name: 'Won', position })).toEqual([]);
  });

  it.each([-1, 2 ** 31, 2 ** 53, 1.5, '3', null, Number.MAX_VALUE])('answers %p with a failure naming position', (position) => {
    expect(failures({ name: 'Won', position })).toEqual([{ path: 'position', message: RANGE }]);
  });

  it('is 2³¹−1, the largest int32 (Pipeliner sort_order is an int32)', () => {
    expect(STAGE_POSITION_MAX).toBe(2 ** 31 - 1);
  });

  it('says the range and what a position past the end does in the JSON Schema the meta endpoint serves', () => {
    const schema = toJsonSchema(StageCreateBodySchema, 'input') as { properties: { position: Record<string, unknown> } };
    expect(schema.properties.position).toMatchObject({ type: 'integer', minimum: 0, maximum: 2147483647 });
    expect(schema.properties.position.description).toContain('A position past the end of the pipeline puts the stage last');
  });
});
