import express from 'express';
import helmet from 'helmet';
import { createServer, request as httpRequest } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { AUTH, type Harness, startHarness } from '../testing/harness';
import { SECURITY_HEADERS } from './front-door';

// Every data-plane path is served by one route table on node:http, whatever its spelling (letter case, a trailing
// slash): the same statuses, bodies, headers and log lines for each (issue 13 removed the Express fallback route
// these cases once compared the node:http handler with). The admin plane is Express; both share the front door.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ core: { config: { rateLimits: { perToken: 1000, perAccount: 1000, windowMs: 60_000 } } } });
});
afterAll(() => h.close());

const PIPELINE = '00000000-5a1e-4000-8000-000000000001';

/** Headers whose values differ between two requests by nature (time, ids, counters). */
const VARYING = new Set(['date', 'x-request-id', 'ratelimit-remaining', 'ratelimit-reset', 'content-length', 'connection', 'keep-alive']);

/** Fields whose values differ between two creates by nature; replaced by their type. */
const VARYING_FIELDS = new Set(['id', 'entity_id', 'created', 'modified', 'created_at', 'updated_at', 'revision', 'sort_order', 'position']);

function normalise(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalise);
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, VARYING_FIELDS.has(key) ? typeof inner : normalise(inner)]));
}

function comparable(res: request.Response): { status: number; body: unknown; headers: Record<string, string> } {
  const headers = Object.fromEntries(Object.entries(res.headers as Record<string, string>).filter(([name]) => !VARYING.has(name)));
  return { status: res.status, body: normalise(res.body), headers };
}

const cases: Array<[string, (r: request.Test) => request.Test]> = [
  ['a create', (r) => r.set(AUTH).send({ name: 'Same', pipeline: { id: PIPELINE } })],
  ['a create with the raw format', (r) => r.set(AUTH).query({ truto_response_format: 'raw' }).send({ name: 'Raw', pipeline: { id: PIPELINE } })],
  ['no token', (r) => r.send({ name: 'x' })],
  ['a wrong token', (r) => r.set('authorization', 'Bearer nope').send({ name: 'x' })],
  ['invalid JSON', (r) => r.set(AUTH).set('content-type', 'application/json').send('{"name":')],
  ['a JSON string', (r) => r.set(AUTH).set('content-type', 'application/json').send('"name"')],
  ['whitespace only', (r) => r.set(AUTH).set('content-type', 'application/json').send('   ')],
  ['no body', (r) => r.set(AUTH)],
  ['a text body', (r) => r.set(AUTH).set('content-type', 'text/plain').send('name=x')],
  ['a body over 1 MiB', (r) => r.set(AUTH).set('content-type', 'application/json').send(`{"name":"${'x'.repeat(1_048_577)}"}`)],
  ['a gzip body', (r) => r.set(AUTH).set('content-type', 'application/json').set('content-encoding', 'gzip').send(gzipSync('{"name":"Zipped"}'))],
  ['a broken gzip body', (r) => r.set(AUTH).set('content-type', 'application/json').set('content-encoding', 'gzip').send(Buffer.from('not gzip'))],
  ['an unknown charset', (r) => r.set(AUTH).set('content-type', 'application/json; charset=klingon').send('{"name":"x"}')],
  ['an empty name', (r) => r.set(AUTH).send({ name: '' })],
  ['an unknown body field', (r) => r.set(AUTH).send({ name: 'x', colour: 'red' })],
  ['an unknown pipeline', (r) => r.set(AUTH).send({ name: 'x', pipeline: { id: '99999999-5a1e-4000-8000-000000000001' } })],
];

describe('POST /unified/crm/stages: every spelling of the path answers alike, body errors included', () => {
  it.each(cases)('%s', async (_name, build) => {
    const query = `?integrated_account_id=${h.accountId}`;
    const fast = await build(request(h.app).post(`/unified/crm/stages${query}`));
    const otherSpelling = await build(request(h.app).post(`/Unified/CRM/Stages/${query}`));
    expect(comparable(fast)).toEqual(comparable(otherSpelling));
    // unicrm's rate-limit headers are on every authenticated answer, error or not, except a remote error, which carries
    // the provider's headers only (issue 12).
    if (fast.body.truto_is_remote_error === true) expect(fast.headers['ratelimit-limit']).toBeUndefined();
    else if (fast.status !== 401) expect(fast.headers['ratelimit-limit']).toBe('1000');
  });

  it('logs one line per request with its id, path without query, status and error', async () => {
    await request(h.app).post(`/unified/crm/stages?integrated_account_id=${h.accountId}`).set(AUTH).set('x-request-id', 'fd-1').send({ name: '' });
    const lines = h.logs.filter((line) => line.req_id === 'fd-1');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 40,
      msg: 'request completed',
      req: { id: 'fd-1', method: 'POST', path: '/unified/crm/stages' },
      res: { statusCode: 400 },
      error: expect.stringContaining('name'),
      responseTime: expect.any(Number),
    });
  });

  it('logs "request aborted" once when the caller leaves before the answer, and still creates the step', async () => {
    h.sandbox.injectFault({ method: 'POST', path: '/entities/Steps', latencyMs: 300, times: 1 });
    const before = h.sandbox.requests.filter((r) => r.method === 'POST').length;
    const server = createServer(h.app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as AddressInfo;
    const body = JSON.stringify({ name: 'Left' });
    const sent = httpRequest({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: `/unified/crm/stages?integrated_account_id=${h.accountId}`,
      headers: { ...AUTH, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': 'fd-gone' },
    });
    sent.on('error', () => undefined);
    sent.end(body);
    await new Promise((resolve) => setTimeout(resolve, 100));
    sent.destroy();
    await new Promise((resolve) => setTimeout(resolve, 600));
    server.close();
    const lines = h.logs.filter((line) => line.req_id === 'fd-gone');
    expect(lines.map((line) => line.msg)).toEqual(['request aborted']);
    expect(lines[0]).toMatchObject({ level: 40, req: { path: '/unified/crm/stages' } });
    expect(h.sandbox.requests.filter((r) => r.method === 'POST').length).toBe(before + 1);
  });

  // A plain JSON body is read by readJsonBody, a chunked one by body-parser: they report the abort at different times.
  const PLAIN = 'Content-Length: 100\r\n';
  const CHUNKED = 'Transfer-Encoding: chunked\r\n';
  it.each([
    ['POST', '/unified/crm/stages?integrated_account_id=ID', PLAIN, 'the data plane, plain body'],
    ['POST', '/unified/crm/stages?integrated_account_id=ID', CHUNKED, 'the data plane, chunked body'],
    ['PATCH', `/unified/crm/stages/${PIPELINE}?integrated_account_id=ID`, PLAIN, 'the data plane, an update, plain body'],
    ['POST', '/proxy/Steps?integrated_account_id=ID', CHUNKED, 'the data plane, the proxy, chunked body'],
    ['PATCH', '/integrated-account/ID', CHUNKED, 'an Express admin route, chunked body'],
    ['PATCH', '/integrated-account/ID', PLAIN, 'an Express admin route, plain body'],
  ])('logs one "request aborted" line, and no unexpected error, when the caller leaves in the middle of a body (%s %s: %s)', async (method, path, framing) => {
    for (const leave of ['destroy', 'end'] as const) await leaveMidBody(method, path, framing, leave);
  });

  async function leaveMidBody(method: string, path: string, framing: string, leave: 'destroy' | 'end'): Promise<void> {
    const server = createServer(h.app).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as AddressInfo;
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const requestId = `fd-cut-${method}-${path.length}-${framing.length}-${leave}`;
    const part = '{"name":"Cut';
    socket.write(
      `${method} ${path.replace('ID', h.accountId)} HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\n` +
        `Content-Type: application/json\r\n${framing}x-request-id: ${requestId}\r\n\r\n` +
        (framing === CHUNKED ? `${part.length.toString(16)}\r\n${part}\r\n` : part),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    socket.on('error', () => undefined);
    if (leave === 'destroy') socket.destroy();
    else socket.end();
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.destroy();
    server.close();
    const lines = h.logs.filter((line) => line.req_id === requestId);
    expect([leave, lines.map((line) => line.msg)]).toEqual([leave, ['request aborted']]);
    expect(h.logs.filter((line) => line.msg === 'unexpected error')).toEqual([]);
  }
});

describe('security headers', () => {
  it('are exactly what helmet sets on an Express answer', async () => {
    const reference = express();
    reference.use(
      helmet({
        contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
        crossOriginResourcePolicy: { policy: 'same-origin' },
      }),
    );
    reference.get('/', (_req, res) => {
      res.end();
    });
    const expected = (await request(reference).get('/')).headers as Record<string, string>;
    const ours = Object.fromEntries(SECURITY_HEADERS.map(([name, value]) => [name.toLowerCase(), value]));
    for (const [name, value] of Object.entries(ours)) expect([name, expected[name]]).toEqual([name, value]);
    expect(Object.keys(ours).length).toBeGreaterThanOrEqual(10);
    const created = await request(h.app).post(`/unified/crm/stages?integrated_account_id=${h.accountId}`).set(AUTH).send({ name: 'Headers' });
    expect(created.status).toBe(201);
    expect(created.headers).toMatchObject(ours);
  });
});
