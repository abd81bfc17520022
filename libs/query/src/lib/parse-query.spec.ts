import { UnicrmError } from '@unicrm/model';
import fc from 'fast-check';
import qs from 'qs';
import { parseQueryString, parseUnifiedListQuery, parseUnifiedQuery, QS_PARSE_OPTIONS, QUERY_LIMITS } from './parse-query';

const ID = '62f44730-dd91-461e-bd6a-aedd9e0ad79d';

function failure(fn: () => unknown): UnicrmError {
  try {
    fn();
  } catch (error) {
    if (error instanceof UnicrmError) return error;
    throw error;
  }
  throw new Error('expected a UnicrmError');
}

describe('parseUnifiedQuery', () => {
  it('applies the defaults of DESIGN.md §2', () => {
    expect(parseUnifiedQuery(`integrated_account_id=${ID}`)).toEqual({
      integrated_account_id: ID,
      truto_response_format: 'unified',
      truto_ignore_remote_data: false,
      truto_exclude_fields: [],
      remote_query: {},
    });
  });

  it.each([
    ['brackets (Python SDK, docs)', 'truto_exclude_fields[]=id&truto_exclude_fields[]=pipeline.name'],
    ['indices with encoded brackets (TS SDK)', 'truto_exclude_fields%5B0%5D=id&truto_exclude_fields%5B1%5D=pipeline.name'],
    ['repeated key', 'truto_exclude_fields=id&truto_exclude_fields=pipeline.name'],
    ['comma list', 'truto_exclude_fields=id,pipeline.name'],
    ['comma list, encoded comma and spaces', 'truto_exclude_fields=id%2C%20pipeline.name'],
    ['indices out of order', 'truto_exclude_fields[1]=pipeline.name&truto_exclude_fields[0]=id'],
  ])('reads truto_exclude_fields in %s', (_name, encoding) => {
    expect(parseUnifiedQuery(`integrated_account_id=${ID}&${encoding}`).truto_exclude_fields).toEqual(['id', 'pipeline.name']);
  });

  it('parses what the Truto TS SDK sends (qs.stringify, indices format)', () => {
    const sent = qs.stringify({
      integrated_account_id: ID,
      truto_ignore_remote_data: true,
      truto_exclude_fields: ['id', 'name'],
      truto_response_format: 'normalized',
      remote_query: { 'validation-level': 8, filter: { name: 'x' } },
    });
    expect(sent).toContain('truto_exclude_fields%5B0%5D=id');
    expect(parseUnifiedQuery(sent)).toEqual({
      integrated_account_id: ID,
      truto_response_format: 'normalized',
      truto_ignore_remote_data: true,
      truto_exclude_fields: ['id', 'name'],
      remote_query: { 'validation-level': '8', filter: { name: 'x' } },
    });
  });

  it.each([
    ['true', true],
    ['TRUE', true],
    ['1', true],
    ['false', false],
    ['False', false],
    ['0', false],
  ])('reads the boolean %s', (text, value) => {
    expect(parseUnifiedQuery(`integrated_account_id=${ID}&truto_ignore_remote_data=${text}`).truto_ignore_remote_data).toBe(value);
  });

  // '__proto__', 'constructor' and 'toString': names an object literal inherits (a bug the property test found).
  it.each(['yes', '', '2', 'truee', '__proto__', 'constructor', 'toString'])('rejects the boolean %j naming the parameter and the accepted values', (text) => {
    const error = failure(() => parseUnifiedQuery(`integrated_account_id=${ID}&truto_ignore_remote_data=${text}`));
    expect(error.statusCode).toBe(400);
    expect(error.body.details?.failures).toEqual([
      { path: 'truto_ignore_remote_data', message: 'must be a boolean: true, false, 1 or 0 (any case)' },
    ]);
  });

  it('requires integrated_account_id, with the Truto insight', () => {
    const error = failure(() => parseUnifiedQuery(''));
    expect(error.statusCode).toBe(400);
    expect(error.body.details?.failures).toEqual([{ path: 'integrated_account_id', message: 'is required' }]);
    expect(error.body.truto_error_insight?.missing_required_query_parameters?.value).toEqual(['integrated_account_id']);
  });

  it('rejects a non-UUID integrated_account_id and lower-cases a valid one', () => {
    expect(failure(() => parseUnifiedQuery('integrated_account_id=abc')).body.details?.failures?.[0]?.path).toBe(
      'integrated_account_id',
    );
    expect(parseUnifiedQuery(`integrated_account_id=${ID.toUpperCase()}`).integrated_account_id).toBe(ID);
  });

  it('rejects an unknown format and unknown truto_* parameters, naming the allowed ones, and reports all at once', () => {
    const error = failure(() =>
      parseUnifiedQuery(`integrated_account_id=${ID}&truto_response_format=xml&truto_super_query=wnam&truto_key_by=id&other=ignored`),
    );
    const failures = error.body.details?.failures ?? [];
    expect(failures.map((f) => f.path).sort()).toEqual(['truto_key_by', 'truto_response_format', 'truto_super_query']);
    expect(failures.find((f) => f.path === 'truto_response_format')?.message).toBe('must be one of: unified, raw, normalized');
    expect(failures.find((f) => f.path === 'truto_super_query')?.message).toContain('truto_exclude_fields');
    expect(failures.find((f) => f.path === 'truto_key_by')?.message).toBe('applies to lists only');
  });

  it('keeps nested remote_query as an object and rejects a scalar one', () => {
    const query = parseUnifiedQuery(`integrated_account_id=${ID}&remote_query[expand]=pipeline&remote_query[filter][name]=a%20b`);
    expect(query.remote_query).toEqual({ expand: 'pipeline', filter: { name: 'a b' } });
    expect(failure(() => parseUnifiedQuery(`integrated_account_id=${ID}&remote_query=x`)).body.details?.failures?.[0]?.path).toBe(
      'remote_query',
    );
  });

  it('accepts an object from an SDK caller with real booleans and arrays', () => {
    expect(
      parseUnifiedQuery({ integrated_account_id: ID, truto_ignore_remote_data: true, truto_exclude_fields: ['a', 'b,c'] }),
    ).toMatchObject({ truto_ignore_remote_data: true, truto_exclude_fields: ['a', 'b', 'c'] });
  });

  it('rejects malformed exclude-field names', () => {
    const error = failure(() => parseUnifiedQuery(`integrated_account_id=${ID}&truto_exclude_fields[]=a..b`));
    expect(error.body.details?.failures?.[0]).toEqual({
      path: 'truto_exclude_fields',
      message: '"a..b" is not a field name or dot path',
    });
  });
});

describe('parseQueryString limits', () => {
  it.each([
    ['__proto__', 'remote_query[__proto__][polluted]=1'],
    ['constructor', 'remote_query[constructor][prototype][polluted]=1'],
    ['encoded __proto__', '%5F%5Fproto%5F%5F[polluted]=1'],
    ['dotted prototype', 'a.prototype=1'],
  ])('rejects a %s key and never pollutes Object.prototype', (_name, text) => {
    expect(failure(() => parseQueryString(text)).statusCode).toBe(400);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('answers 400 past the parameter limit', () => {
    const text = Array.from({ length: QUERY_LIMITS.parameterLimit + 1 }, (_, i) => `p${i}=1`).join('&');
    expect(failure(() => parseQueryString(text)).statusCode).toBe(400);
  });

  it('answers 400 past the depth limit', () => {
    expect(failure(() => parseQueryString('remote_query[a][b][c][d][e][f][g]=1')).statusCode).toBe(400);
  });

  it('answers 400 past the array limit', () => {
    const text = Array.from({ length: QUERY_LIMITS.arrayLimit + 2 }, () => 'a[]=1').join('&');
    expect(failure(() => parseQueryString(text)).statusCode).toBe(400);
  });

  it('answers 400 for an over-long query string', () => {
    expect(failure(() => parseQueryString(`a=${'x'.repeat(QUERY_LIMITS.maxLength)}`)).statusCode).toBe(400);
  });

  it('accepts a leading question mark', () => {
    expect(parseQueryString('?a=1')).toEqual({ a: '1' });
  });
});

describe('parseQueryString: plain key=value queries without qs', () => {
  const decode = (text: string) => {
    try {
      return decodeURIComponent(text.replace(/\+/g, ' '));
    } catch {
      return text;
    }
  };
  /** What the parser answered before its plain-query path: qs with unicrm's options after the prototype-key guard. */
  function viaQs(text: string): unknown {
    try {
      const keys = text.split('&').filter(Boolean).map((pair) => decode(pair.split('=', 1)[0] ?? ''));
      if (keys.some((k) => k.split(/[[\].]+/).some((segment) => ['__proto__', 'constructor', 'prototype'].includes(segment)))) return 400;
      return qs.parse(text, QS_PARSE_OPTIONS);
    } catch {
      return 400;
    }
  }
  function viaParser(text: string): unknown {
    try {
      return parseQueryString(text);
    } catch (error) {
      return (error as UnicrmError).statusCode;
    }
  }

  it.each([
    `integrated_account_id=${ID}`,
    `integrated_account_id=${ID}&truto_response_format=raw&truto_ignore_remote_data=TRUE`,
    'truto_exclude_fields=id,pipeline.name&a=',
    'a=1&a=2',
    'toString=1&hasOwnProperty=2&b=3',
    '__proto__=1',
    'constructor=1',
    'a.b=1',
    'a=1&&b=2',
    'a=1&',
    'a',
    'a=b=c',
    'a=%41&b=+x',
  ])('answers %s as qs does', (text) => {
    expect(viaParser(text)).toStrictEqual(viaQs(text));
  });

  it('answers as qs does past the parameter limit of plain pairs', () => {
    const text = Array.from({ length: QUERY_LIMITS.parameterLimit + 1 }, (_, i) => `k${i}=v`).join('&');
    expect(viaParser(text)).toBe(400);
    expect(viaParser(text.slice(0, text.lastIndexOf('&')))).toStrictEqual(viaQs(text.slice(0, text.lastIndexOf('&'))));
  });

  it('answers any query of plain-looking pieces as qs does', () => {
    const piece = fc.constantFrom('a', 'b', 'id', 'x_y', '-', '~', '.', ',', '=', '&', '[', ']', '[]', '%5B', '+', '%20', 'toString', '__proto__', '1', '');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const text = pieces.join('');
        expect(viaParser(text)).toStrictEqual(viaQs(text));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('parseUnifiedListQuery', () => {
  it('reads the page, the list flags and hands every other parameter over as filters', () => {
    const query = parseUnifiedListQuery(
      `integrated_account_id=${ID}&limit=25&next_cursor=abc.def&truto_key_by=pipeline.id&truto_ignore_limit=TRUE&pipeline%5Bid%5D=p1&name=Won&created_at[gte]=2024-01-01T00:00:00Z`,
    );
    expect(query).toMatchObject({
      integrated_account_id: ID,
      limit: 25,
      next_cursor: 'abc.def',
      truto_key_by: 'pipeline.id',
      truto_ignore_limit: true,
      filters: { pipeline: { id: 'p1' }, name: 'Won', created_at: { gte: '2024-01-01T00:00:00Z' } },
    });
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=-1', 'limit'],
    ['limit=2.5', 'limit'],
    ['limit=abc', 'limit'],
    ['next_cursor=', 'next_cursor'],
    ['truto_key_by=a%20b', 'truto_key_by'],
    ['truto_ignore_limit=maybe', 'truto_ignore_limit'],
    ['truto_nope=1', 'truto_nope'],
  ])('answers 400 for %s', (parameter, path) => {
    const error = failure(() => parseUnifiedListQuery(`integrated_account_id=${ID}&${parameter}`));
    expect(error.statusCode).toBe(400);
    expect(error.body.details?.failures?.map((f) => f.path)).toEqual([path]);
  });

  it('defaults: no limit, no cursor, no filters', () => {
    expect(parseUnifiedListQuery(`integrated_account_id=${ID}`)).toMatchObject({ truto_ignore_limit: false, filters: {} });
    expect(parseUnifiedListQuery(`integrated_account_id=${ID}`).limit).toBeUndefined();
  });
});
