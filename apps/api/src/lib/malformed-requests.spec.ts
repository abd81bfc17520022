import { STATUS_CODES } from 'node:http';
import request from 'supertest';
import { AUTH, type Harness, startHarness, TEST_TOKEN } from '../testing/harness';
import { connect } from 'node:net';
import { createHttpServer } from './server';

// Malformed requests, as real clients get them wrong: each with its exact status and error body
// (DESIGN.md §2–§3). None may answer 500, and none may reach Pipeliner.
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());
beforeEach(() => h.sandbox.reset());

interface Malformed {
  /** Query string after `?` (`{id}` stands for the harness account id). */
  query?: string;
  headers?: Record<string, string | undefined>;
  /** A raw body string, sent as is. */
  raw?: string;
  /** A JSON body. */
  json?: unknown;
  status: number;
  message: string;
  failures?: Array<{ path: string; message: string }>;
  insight?: Record<string, unknown>;
}

const UUID_MESSAGE = 'must be a UUID, e.g. 62f44730-dd91-461e-bd6a-aedd9e0ad79d';
const BOOLEAN_MESSAGE = 'must be a boolean: true, false, 1 or 0 (any case)';
const FORMAT_MESSAGE = 'must be one of: unified, raw, normalized';
const UNKNOWN_TRUTO = 'unknown parameter; allowed truto_* parameters: truto_response_format, truto_ignore_remote_data, truto_exclude_fields';
const NAME_REQUIRED = 'is required for Pipeliner (a non-empty string)';
const NAME_INSIGHT = { missing_required_body_fields: { description: 'Pipeliner requires these fields', value: ['name'] } };
const WHOLE = 'must be a whole number from 0 to 2147483647';
const ok = { name: 'Qualified' };

function q(failures: Array<[string, string]>, extra: Partial<Malformed> = {}): Omit<Malformed, 'query'> {
  return {
    json: ok,
    status: 400,
    message: `Invalid query: ${failures.map(([p, m]) => `${p} ${m}`).join('; ')}`,
    failures: failures.map(([path, message]) => ({ path, message })),
    ...extra,
  };
}
function body(json: unknown, failures: Array<[string, string]>, extra: Partial<Malformed> = {}): Malformed {
  return {
    json,
    status: 400,
    message: `Invalid body: ${failures.map(([p, m]) => `${p} ${m}`).join('; ')}`,
    failures: failures.map(([path, message]) => ({ path, message })),
    ...extra,
  };
}
function pipelinerBody(json: unknown, failures: Array<[string, string]>, insight?: Record<string, unknown>): Malformed {
  return {
    json,
    status: 400,
    message: `Invalid body for Pipeliner: ${failures.map(([p, m]) => `${p} ${m}`).join('; ')}`,
    failures: failures.map(([path, message]) => ({ path, message })),
    ...(insight && { insight }),
  };
}
const missingId = q([['integrated_account_id', 'is required']], {
  insight: { missing_required_query_parameters: { description: 'These query parameters are required', value: ['integrated_account_id'] } },
});
const limit = (message: string): Malformed => ({ json: ok, status: 400, message });
const LIMITS = 'Limits: 200 parameters, nesting depth 5, 100 array items.';

const cases: Array<[string, Malformed]> = [
  // --- query: integrated_account_id
  ['no query at all', { ...missingId }],
  ['an empty integrated_account_id', { query: 'integrated_account_id=', ...missingId }],
  ['an integrated_account_id that is not a UUID', { query: 'integrated_account_id=abc', ...q([['integrated_account_id', UUID_MESSAGE]]) }],
  ['a UUID one character short', { query: 'integrated_account_id=62f44730-dd91-461e-bd6a-aedd9e0ad79', ...q([['integrated_account_id', UUID_MESSAGE]]) }],
  ['integrated_account_id as an array', { query: 'integrated_account_id[]=62f44730-dd91-461e-bd6a-aedd9e0ad79d', ...q([['integrated_account_id', UUID_MESSAGE]]) }],
  ['integrated_account_id as an object', { query: 'integrated_account_id[a]=62f44730-dd91-461e-bd6a-aedd9e0ad79d', ...q([['integrated_account_id', UUID_MESSAGE]]) }],
  ['integrated_account_id twice', { query: 'integrated_account_id={id}&integrated_account_id={id}', ...q([['integrated_account_id', UUID_MESSAGE]]) }],
  ['an unknown integrated account', { query: 'integrated_account_id=62f44730-dd91-461e-bd6a-aedd9e0ad79d', json: ok, status: 404, message: 'Integrated account 62f44730-dd91-461e-bd6a-aedd9e0ad79d not found.' }],
  // --- query: truto_response_format
  ['an unknown response format', { query: 'integrated_account_id={id}&truto_response_format=xml', ...q([['truto_response_format', FORMAT_MESSAGE]]) }],
  ['a response format in capitals', { query: 'integrated_account_id={id}&truto_response_format=RAW', ...q([['truto_response_format', FORMAT_MESSAGE]]) }],
  ['an empty response format', { query: 'integrated_account_id={id}&truto_response_format=', ...q([['truto_response_format', FORMAT_MESSAGE]]) }],
  ['the response format as an array', { query: 'integrated_account_id={id}&truto_response_format[]=raw', ...q([['truto_response_format', FORMAT_MESSAGE]]) }],
  ['the response format twice', { query: 'integrated_account_id={id}&truto_response_format=raw&truto_response_format=unified', ...q([['truto_response_format', FORMAT_MESSAGE]]) }],
  // --- query: truto_ignore_remote_data
  ['ignore_remote_data=yes', { query: 'integrated_account_id={id}&truto_ignore_remote_data=yes', ...q([['truto_ignore_remote_data', BOOLEAN_MESSAGE]]) }],
  ['an empty ignore_remote_data', { query: 'integrated_account_id={id}&truto_ignore_remote_data=', ...q([['truto_ignore_remote_data', BOOLEAN_MESSAGE]]) }],
  ['ignore_remote_data=2', { query: 'integrated_account_id={id}&truto_ignore_remote_data=2', ...q([['truto_ignore_remote_data', BOOLEAN_MESSAGE]]) }],
  ['ignore_remote_data as an array', { query: 'integrated_account_id={id}&truto_ignore_remote_data[]=true', ...q([['truto_ignore_remote_data', BOOLEAN_MESSAGE]]) }],
  ['ignore_remote_data twice', { query: 'integrated_account_id={id}&truto_ignore_remote_data=true&truto_ignore_remote_data=false', ...q([['truto_ignore_remote_data', BOOLEAN_MESSAGE]]) }],
  // --- query: truto_exclude_fields
  ['exclude_fields as an object', { query: 'integrated_account_id={id}&truto_exclude_fields[a]=id', ...q([['truto_exclude_fields', 'must be a list of field names, e.g. truto_exclude_fields[]=id']]) }],
  ['an exclude field with an empty dot segment', { query: 'integrated_account_id={id}&truto_exclude_fields[]=a..b', ...q([['truto_exclude_fields', '"a..b" is not a field name or dot path']]) }],
  ['an exclude field starting with a dot', { query: 'integrated_account_id={id}&truto_exclude_fields=.id', ...q([['truto_exclude_fields', '".id" is not a field name or dot path']]) }],
  ['an exclude field with a space inside', { query: 'integrated_account_id={id}&truto_exclude_fields[]=na%20me', ...q([['truto_exclude_fields', '"na me" is not a field name or dot path']]) }],
  ['an exclude field that is an object', { query: 'integrated_account_id={id}&truto_exclude_fields[0][x]=1', ...q([['truto_exclude_fields', 'every item must be a field name (a string)']]) }],
  // --- query: remote_query and unknown parameters
  ['remote_query as a string', { query: 'integrated_account_id={id}&remote_query=foo', ...q([['remote_query', 'must be an object, e.g. remote_query[foo]=bar']]) }],
  ['remote_query as an array', { query: 'integrated_account_id={id}&remote_query[]=foo', ...q([['remote_query', 'must be an object, e.g. remote_query[foo]=bar']]) }],
  ['an unknown truto_ parameter', { query: 'integrated_account_id={id}&truto_key_by=id', ...q([['truto_key_by', UNKNOWN_TRUTO]]) }],
  ['two bad parameters at once', {
    query: 'integrated_account_id={id}&truto_response_format=xml&truto_ignore_remote_data=maybe',
    ...q([['truto_response_format', FORMAT_MESSAGE], ['truto_ignore_remote_data', BOOLEAN_MESSAGE]]),
  }],
  // --- query: prototype keys and limits
  ['a __proto__ key in remote_query', { query: 'integrated_account_id={id}&remote_query[__proto__][polluted]=1', json: ok, status: 400, message: 'remote_query[__proto__][polluted]: the key segment "__proto__" is not allowed', failures: [{ path: 'remote_query[__proto__][polluted]', message: 'the key segment "__proto__" is not allowed' }] }],
  ['a top-level __proto__ key', { query: 'integrated_account_id={id}&__proto__[polluted]=1', json: ok, status: 400, message: '__proto__[polluted]: the key segment "__proto__" is not allowed', failures: [{ path: '__proto__[polluted]', message: 'the key segment "__proto__" is not allowed' }] }],
  ['an encoded constructor.prototype key', { query: 'integrated_account_id={id}&constructor%5Bprototype%5D%5Bpolluted%5D=1', json: ok, status: 400, message: 'constructor[prototype][polluted]: the key segment "constructor" is not allowed', failures: [{ path: 'constructor[prototype][polluted]', message: 'the key segment "constructor" is not allowed' }] }],
  ['a prototype key', { query: 'integrated_account_id={id}&remote_query[prototype]=1', json: ok, status: 400, message: 'remote_query[prototype]: the key segment "prototype" is not allowed', failures: [{ path: 'remote_query[prototype]', message: 'the key segment "prototype" is not allowed' }] }],
  ['201 parameters', { query: `integrated_account_id={id}&${Array.from({ length: 200 }, (_, i) => `p${i}=1`).join('&')}`, ...limit(`The query string exceeds a limit (Parameter limit exceeded. Only 200 parameters allowed.). ${LIMITS}`) }],
  ['remote_query nested 7 deep', { query: 'integrated_account_id={id}&remote_query[a][b][c][d][e][f]=1', ...limit(`The query string exceeds a limit (Input depth exceeded depth option of 5 and strictDepth is true). ${LIMITS}`) }],
  ['an array of 101 items', { query: `integrated_account_id={id}&${Array.from({ length: 101 }, () => 'truto_exclude_fields[]=id').join('&')}`, ...limit(`The query string exceeds a limit (Array limit exceeded. Only 100 elements allowed in an array.). ${LIMITS}`) }],
  ['a query string over 8 KiB', { query: `integrated_account_id={id}&x=${'a'.repeat(8 * 1024)}`, json: ok, status: 400, message: 'The query string is longer than 8192 characters.' }],
  // --- headers
  ['no Authorization header', { query: 'integrated_account_id={id}', headers: { authorization: undefined }, json: ok, status: 401, message: 'Missing or invalid API token. Send Authorization: Bearer <token>.' }],
  ['an empty Bearer token', { query: 'integrated_account_id={id}', headers: { authorization: 'Bearer ' }, json: ok, status: 401, message: 'Missing or invalid API token. Send Authorization: Bearer <token>.' }],
  ['Basic instead of Bearer', { query: 'integrated_account_id={id}', headers: { authorization: `Basic ${TEST_TOKEN}` }, json: ok, status: 401, message: 'Missing or invalid API token. Send Authorization: Bearer <token>.' }],
  ['a wrong token', { query: 'integrated_account_id={id}', headers: { authorization: 'Bearer not-the-token' }, json: ok, status: 401, message: 'Missing or invalid API token. Send Authorization: Bearer <token>.' }],
  ['a token with trailing garbage', { query: 'integrated_account_id={id}', headers: { authorization: `Bearer ${TEST_TOKEN} extra` }, json: ok, status: 401, message: 'Missing or invalid API token. Send Authorization: Bearer <token>.' }],
  ['a token one character short', { query: 'integrated_account_id={id}', headers: { authorization: `Bearer ${TEST_TOKEN.slice(0, -1)}` }, json: ok, status: 401, message: 'Missing or invalid API token. Send Authorization: Bearer <token>.' }],
  ['a text/plain body', { query: 'integrated_account_id={id}', headers: { 'content-type': 'text/plain' }, raw: '{"name":"x"}', status: 415, message: 'The body must be application/json, not text/plain.' }],
  ['a form-encoded body', { query: 'integrated_account_id={id}', headers: { 'content-type': 'application/x-www-form-urlencoded' }, raw: 'name=x', status: 415, message: 'The body must be application/json, not application/x-www-form-urlencoded.' }],
  ['a multipart body', { query: 'integrated_account_id={id}', headers: { 'content-type': 'multipart/form-data; boundary=x' }, raw: '--x\r\n\r\n--x--', status: 415, message: 'The body must be application/json, not multipart/form-data; boundary=x.' }],
  ['a JSON body in an unsupported charset', { query: 'integrated_account_id={id}', headers: { 'content-type': 'application/json; charset=latin1' }, raw: '{"name":"x"}', status: 415, message: 'Unsupported body encoding: unsupported charset "LATIN1"' }],
  ['a JSON body with an unsupported content encoding', { query: 'integrated_account_id={id}', headers: { 'content-type': 'application/json', 'content-encoding': 'compress' }, raw: '{"name":"x"}', status: 415, message: 'Unsupported body encoding: unsupported content encoding "compress"' }],
  // --- body: not a JSON object
  ['invalid JSON', { query: 'integrated_account_id={id}', headers: { 'content-type': 'application/json' }, raw: '{"name":', status: 400, message: 'The body is not valid JSON: Unexpected end of JSON input' }],
  ['a JSON string', { query: 'integrated_account_id={id}', headers: { 'content-type': 'application/json' }, raw: '"Qualified"', status: 400, message: 'The body must be a JSON object, e.g. {"name": "Qualified"}.' }],
  ['a JSON number', { query: 'integrated_account_id={id}', headers: { 'content-type': 'application/json' }, raw: '42', status: 400, message: 'The body must be a JSON object, e.g. {"name": "Qualified"}.' }],
  ['JSON null', { query: 'integrated_account_id={id}', headers: { 'content-type': 'application/json' }, raw: 'null', status: 400, message: 'The body must be a JSON object, e.g. {"name": "Qualified"}.' }],
  ['an empty array', { query: 'integrated_account_id={id}', json: [], status: 400, message: 'The body must be a JSON object, e.g. {"name": "Qualified"}.' }],
  ['an array of stages', { query: 'integrated_account_id={id}', json: [{ name: 'x' }], status: 400, message: 'The body must be a JSON object, e.g. {"name": "Qualified"}.' }],
  ['an empty body', { query: 'integrated_account_id={id}', headers: { 'content-type': 'application/json' }, raw: '', status: 400, message: 'A JSON body is required, e.g. {"name": "Qualified"} with Content-Type: application/json.' }],
  ['a body of blanks', { query: 'integrated_account_id={id}', headers: { 'content-type': 'application/json' }, raw: '   ', status: 400, message: 'The body is not valid JSON: Unexpected end of JSON input' }],
  ['remote_data nested 5000 deep', { query: 'integrated_account_id={id}', headers: { 'content-type': 'application/json' }, raw: `{"name":"d","remote_data":{"a":${'['.repeat(5000)}${']'.repeat(5000)}}}`, status: 400, message: 'The body nests objects or arrays deeper than 64 levels.' }],
  ['a gzip body that is not gzip', { query: 'integrated_account_id={id}', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, raw: 'not gzip', status: 400, message: 'The request could not be read; check its Content-Encoding and that the body matches it.' }],
  ['a body over 1 MiB', { query: 'integrated_account_id={id}', json: { name: 'x', remote_data: { d: 'x'.repeat(1024 * 1024) } }, status: 413, message: 'The body is larger than 1 MiB.' }],
  // --- body: fields
  ['an empty object', { query: 'integrated_account_id={id}', ...pipelinerBody({}, [['name', NAME_REQUIRED]], NAME_INSIGHT) }],
  ['an empty name', { query: 'integrated_account_id={id}', ...pipelinerBody({ name: '' }, [['name', NAME_REQUIRED]], NAME_INSIGHT) }],
  ['a name of blanks', { query: 'integrated_account_id={id}', ...pipelinerBody({ name: '   ' }, [['name', NAME_REQUIRED]], NAME_INSIGHT) }],
  ['a numeric name', { query: 'integrated_account_id={id}', ...body({ name: 5 }, [['name', 'must be a string']]) }],
  ['a null name', { query: 'integrated_account_id={id}', ...body({ name: null }, [['name', 'must be a string']]) }],
  ['a name that is an array', { query: 'integrated_account_id={id}', ...body({ name: ['a'] }, [['name', 'must be a string']]) }],
  ['a negative position', { query: 'integrated_account_id={id}', ...body({ name: 'x', position: -1 }, [['position', WHOLE]]) }],
  ['a position given as text', { query: 'integrated_account_id={id}', ...body({ name: 'x', position: '3' }, [['position', WHOLE]]) }],
  ['a fractional position', { query: 'integrated_account_id={id}', ...body({ name: 'x', position: 1.5 }, [['position', WHOLE]]) }],
  ['a null position', { query: 'integrated_account_id={id}', ...body({ name: 'x', position: null }, [['position', WHOLE]]) }],
  ['a pipeline given as a string', { query: 'integrated_account_id={id}', ...body({ name: 'x', pipeline: 'abc' }, [['pipeline', 'must be an object with a string id, e.g. {"id": "..."}']]) }],
  ['a pipeline without id', { query: 'integrated_account_id={id}', ...body({ name: 'x', pipeline: {} }, [['pipeline.id', 'must be a non-empty string']]) }],
  ['a numeric pipeline id', { query: 'integrated_account_id={id}', ...body({ name: 'x', pipeline: { id: 5 } }, [['pipeline.id', 'must be a non-empty string']]) }],
  ['an empty pipeline id', { query: 'integrated_account_id={id}', ...body({ name: 'x', pipeline: { id: '' } }, [['pipeline.id', 'must be a non-empty string']]) }],
  ['status inactive (Pipeliner creates steps active)', { query: 'integrated_account_id={id}', ...pipelinerBody({ name: 'x', status: 'inactive' }, [['status', "Pipeliner creates steps active: only 'active' is accepted on create"]]) }],
  ['an unknown status', { query: 'integrated_account_id={id}', ...body({ name: 'x', status: 'archived' }, [['status', "must be 'active' or 'inactive'"]]) }],
  ['remote_data as a string', { query: 'integrated_account_id={id}', ...body({ name: 'x', remote_data: 'percent=5' }, [['remote_data', 'must be a JSON object']]) }],
  ['remote_data as an array', { query: 'integrated_account_id={id}', ...body({ name: 'x', remote_data: [] }, [['remote_data', 'must be a JSON object']]) }],
  ['an unknown field', { query: 'integrated_account_id={id}', ...body({ name: 'x', colour: 'red' }, [['colour', 'unknown field']]) }],
  ['three bad fields at once', { query: 'integrated_account_id={id}', ...body({ name: 1, position: -1, description: 'x' }, [['name', 'must be a string'], ['position', WHOLE], ['description', 'unknown field']]) }],
];

describe('malformed requests to POST /unified/crm/stages', () => {
  it('answers a request head over 16 KiB with 431 in the error shape', async () => {
    const server = createHttpServer(h.app);
    const res = await request(server)
      .post(`/unified/crm/stages?integrated_account_id=${h.accountId}&x=${'a'.repeat(17 * 1024)}`)
      .set(AUTH)
      .send(ok);
    expect(res.status).toBe(431);
    expect(res.body).toEqual({
      statusCode: 431,
      error: 'Request Header Fields Too Large',
      message: 'The request head (URL and headers) is larger than 16 KiB; shorten the query string.',
    });
    server.close();
  });

  it('has at least 60 distinct cases', () => {
    expect(new Set(cases.map(([name]) => name)).size).toBe(cases.length);
    expect(cases.length).toBeGreaterThanOrEqual(60);
  });

  it('answers a path that is not valid percent-encoding with 400', async () => {
    const res = await request(h.app).get('/integrated-account/%ZZ').set(AUTH);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', message: 'The URL path is not valid percent-encoding.' });
  });

  it.each([
    ['no Host header', 'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n', 200, '{"status":"ok"}'],
    ['an unsupported Expect', 'GET /health HTTP/1.1\r\nHost: x\r\nExpect: 999-nope\r\nConnection: close\r\n\r\n', 417, '{"statusCode":417,"error":"Expectation Failed","message":"Only \\"Expect: 100-continue\\" is supported."}'],
  ])('answers a raw request with %s in JSON', async (_name, raw, status, body) => {
    const server = createHttpServer(h.app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const answer = await new Promise<string>((resolve) => {
      const socket = connect((server.address() as { port: number }).port, '127.0.0.1', () => socket.end(raw));
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('close', () => resolve(text));
    });
    server.close();
    expect(answer.split('\r\n')[0]).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
    expect(answer).toMatch(/content-type: application\/json/i);
    expect(answer.endsWith(body)).toBe(true);
  });

  it.each([
    ['over 1 MiB: 413 at once, no "100 Continue"', 2_000_000, 413],
    ['within the limit: "100 Continue", then the answer', 20, 201],
  ])('answers Expect: 100-continue with a body declared %s', async (_name, length, status) => {
    const server = createHttpServer(h.app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const head =
      `POST /unified/crm/stages?integrated_account_id=${h.accountId} HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`;
    const answer = await new Promise<string>((resolve) => {
      const socket = connect((server.address() as { port: number }).port, '127.0.0.1', () => socket.write(head));
      let text = '';
      let sent = false;
      socket.on('data', (chunk) => {
        text += chunk.toString();
        // Like a client: the body goes only after "100 Continue".
        if (text.startsWith('HTTP/1.1 100 ') && length === 20 && !sent) {
          sent = true;
          socket.write('{"name":"Continued"}');
        }
      });
      socket.on('close', () => resolve(text));
      setTimeout(() => socket.destroy(), 2000);
    });
    server.close();
    if (status === 413) {
      expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 413 Payload Too Large');
      expect(answer).toContain('"message":"The body is larger than 1 MiB."');
    } else {
      expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 100 Continue');
      expect(answer).toContain('HTTP/1.1 201 Created');
    }
  });

  it.each(cases)('%s', async (_name, c) => {
    const path = `/unified/crm/stages${c.query === undefined ? '' : `?${c.query.replaceAll('{id}', h.accountId)}`}`;
    let req = request(h.app).post(path);
    const headers: Record<string, string | undefined> = { ...AUTH, ...c.headers };
    for (const [name, value] of Object.entries(headers)) if (value !== undefined) req = req.set(name, value);
    const res = c.raw !== undefined ? await req.send(c.raw) : await req.send(c.json as object);

    const expected: Record<string, unknown> = { statusCode: c.status, error: STATUS_CODES[c.status], message: c.message };
    if (c.failures) expected.details = { failures: c.failures };
    if (c.insight) expected.truto_error_insight = c.insight;
    expect({ status: res.status, body: res.body }).toEqual({ status: c.status, body: expected });
    expect(h.sandbox.requests).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
