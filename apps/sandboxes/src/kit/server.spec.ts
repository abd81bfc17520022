import { request } from 'undici';
import { type RunningProviderSandbox, startProviderSandbox } from './server';
import { type FakedeskInstance, fakedeskModule } from './testing/fake-provider';

// The kit with a provider that is not Pipeliner (the test-only Fakedesk module: one route, an API key, its own error
// shape, validation errors on 400, an OpenAPI 3.1 document): faults, the request log and the contract checks.

const fakedesk = fakedeskModule();

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function caller(sandbox: RunningProviderSandbox) {
  return async (method: string, path: string, options: { body?: unknown; headers?: Record<string, string>; key?: string | false } = {}): Promise<Answer> => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.key !== false) headers['x-api-key'] = options.key ?? 'fake-key';
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await request(`${sandbox.url}${path}`, { method: method as 'GET', headers, body });
    const text = await res.body.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, headers: res.headers, text, json };
  };
}

const fault = (rule: object) => ({ 'X-Sandbox-Fault': JSON.stringify(rule) });

describe('kit: a provider module on startProviderSandbox', () => {
  let sandbox: RunningProviderSandbox<FakedeskInstance>;
  let call: ReturnType<typeof caller>;

  beforeAll(async () => {
    sandbox = await startProviderSandbox(fakedesk, { port: 0, faults: true, contract: true, apiKey: 'fake-key' });
    call = caller(sandbox);
  });
  afterAll(() => sandbox.close());
  beforeEach(() => sandbox.reset());
  afterEach(() => expect(sandbox.takeContractViolations()).toEqual([]));

  it("serves the module's routes on loopback, with its JSON type, and describes the account to create", async () => {
    expect(sandbox.name).toBe('fakedesk');
    expect(sandbox.url).toBe(`http://127.0.0.1:${sandbox.port}`);
    const res = await call('GET', '/v1/things');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.json).toEqual({ data: [{ id: 1, name: 'First' }] });
    expect(sandbox.describe()).toMatchObject({ integration: 'fakedesk', context: { api_url: `${sandbox.url}/v1`, api_key: 'fake-key' } });
  });

  it("renders the module's own errors: its 401 from the route, its 404 for an unknown URL, its 413", async () => {
    expect(await call('GET', '/v1/things', { key: 'wrong' })).toMatchObject({ status: 401, json: { error: { type: 'unauthorized' } } });
    expect(await call('GET', '/v2/nothing')).toMatchObject({ status: 404, json: { error: { type: 'not_found', message: 'No route GET /v2/nothing.' } } });
    const big = await call('POST', '/v1/things', { body: JSON.stringify({ name: 'x'.repeat(6 * 1024 * 1024) }) });
    expect(big).toMatchObject({ status: 413, json: { error: { type: 'too_large', message: 'Bodies are limited to 5mb.' } } });
    // Answers to requests of no operation are not checked, but the requests are violations of the document.
    expect(sandbox.takeContractViolations()).toEqual([
      expect.objectContaining({ direction: 'request', path: '/v2/nothing', location: 'operation' }),
    ]);
  });

  it("answers a status fault in the module's error shape, with its headers and Retry-After, touching no state", async () => {
    const res = await call('POST', '/v1/things', { body: { name: 'Never' }, headers: fault({ status: 429, retryAfter: 7 }) });
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('7');
    expect(res.headers['x-fakedesk-fault']).toBe('yes');
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.json).toEqual({ error: { type: 'injected_429', message: 'Injected HTTP 429.' } });
    expect(sandbox.instance.things().map((thing) => thing.name)).toEqual(['First']);
  });

  it("ties missingField to the module's validation status (400 here, not Pipeliner's 422)", async () => {
    sandbox.injectFault({ method: 'POST', path: '/v1/things', status: 400, missingField: 'region', times: 1 });
    const res = await call('POST', '/v1/things', { body: { name: 'Never' } });
    expect(res).toMatchObject({ status: 400, json: { error: { type: 'validation_failed', field: 'region' } } });
    expect(() => sandbox.injectFault({ status: 422, missingField: 'region' })).toThrow('missingField needs status 400');
    const header = await call('GET', '/v1/things', { headers: fault({ status: 422, missingField: 'region' }) });
    expect(header.status).toBe(400);
    expect(header.json.error.type).toBe('bad_request');
    expect(header.json.error.message).toContain('Invalid X-Sandbox-Fault header: Invalid fault rule: missingField: missingField needs status 400');
  });

  it('corrupts a real answer (the write happens), resets a connection, and holds a request until reset()', async () => {
    const corrupted = await call('POST', '/v1/things', { body: { name: 'Written' }, headers: fault({ body: 'malformed' }) });
    expect(corrupted.status).toBe(201);
    expect(corrupted.json).toBeUndefined();
    expect(sandbox.instance.things().map((thing) => thing.name)).toEqual(['First', 'Written']);

    await expect(call('GET', '/v1/things', { headers: fault({ reset: true }) })).rejects.toThrow();

    const held = call('GET', '/v1/things', { headers: fault({ hang: true }) }).then(
      () => 'answered',
      () => 'ended',
    );
    const raced = await Promise.race([held, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 100))]);
    expect(raced).toBe('still waiting');
    sandbox.reset();
    expect(await held).toBe('ended');
    expect(sandbox.instance.things().map((thing) => thing.name)).toEqual(['First']);
  });

  it('serves /__sandbox/faults (add, list, clear) in the kit shape; admin calls are neither logged nor checked', async () => {
    const added = await call('POST', '/__sandbox/faults', { key: false, body: { path: '/v1/things', method: 'DELETE', status: 503, times: 1 } });
    expect(added).toMatchObject({ status: 201, json: { success: true, data: { path: '/v1/things', method: 'DELETE', status: 503, times: 1 } } });
    expect((await call('GET', '/__sandbox/faults', { key: false })).json.data).toEqual([{ path: '/v1/things', method: 'DELETE', status: 503, times: 1 }]);
    expect((await call('DELETE', '/v1/things')).status).toBe(503);
    expect((await call('DELETE', '/v1/things')).status).toBe(204);
    const invalid = await call('POST', '/__sandbox/faults', { key: false, body: { stauts: 500 } });
    expect(invalid).toMatchObject({ status: 400, json: { error: { type: 'bad_request' } } });
    await call('POST', '/__sandbox/faults', { key: false, body: { status: 500 } });
    expect((await call('DELETE', '/__sandbox/faults', { key: false })).json).toEqual({ success: true, data: [] });
    expect((await call('GET', '/v1/things')).status).toBe(200);
    expect(sandbox.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['DELETE /v1/things', 'DELETE /v1/things', 'GET /v1/things']);
  });

  it('logs every request as received (method, path, query, headers, body), and reset() empties the same array', async () => {
    const log = sandbox.requests;
    await call('POST', '/v1/things', { body: { name: 'Logged' } });
    await call('GET', '/v1/things?limit=5');
    expect(log).toEqual([
      expect.objectContaining({ method: 'POST', path: '/v1/things', query: '', body: '{"name":"Logged"}', headers: expect.objectContaining({ 'x-api-key': 'fake-key' }) }),
      expect.objectContaining({ method: 'GET', path: '/v1/things', query: 'limit=5', body: '' }),
    ]);
    sandbox.reset();
    expect(sandbox.requests).toBe(log);
    expect(log).toEqual([]);
  });

  it("checks every request and answer against the module's OpenAPI 3.1 document", async () => {
    // Off the document: a number as name (request), which the lenient route stores and then answers (response).
    expect((await call('POST', '/v1/things', { body: { name: 42 } })).status).toBe(201);
    expect((await call('GET', '/v1/things?limit=0')).status).toBe(200);
    expect(sandbox.takeContractViolations()).toEqual([
      expect.objectContaining({ direction: 'request', operationId: 'createThing', location: 'body', instancePath: '/name', message: 'must be string' }),
      expect.objectContaining({ direction: 'response', operationId: 'createThing', status: 201, location: 'body', instancePath: '/name', message: 'must be string' }),
      expect.objectContaining({ direction: 'request', operationId: 'listThings', location: 'query', instancePath: '/limit', message: 'must be >= 1' }),
      expect.objectContaining({ direction: 'response', operationId: 'listThings', status: 200, location: 'body', instancePath: '/data/1/name', message: 'must be string' }),
    ]);
    // Within it: errors, faults and the empty 204 answer, with the module's content type.
    await call('GET', '/v1/things', { key: 'wrong' });
    await call('GET', '/v1/things', { headers: fault({ status: 503 }) });
    await call('DELETE', '/v1/things');
    await call('POST', '/v1/things', { body: { name: 'Fine' } });
    expect(sandbox.contractViolations()).toEqual([]);
  });
});

describe('kit: options and switches', () => {
  it('listens on loopback only, and refuses before creating any state', async () => {
    let created = 0;
    const counting = { ...fakedesk, create: (options: object) => (created++, fakedesk.create(options)) };
    await expect(startProviderSandbox(counting, { port: 0, host: '0.0.0.0' })).rejects.toThrow(/The Fakedesk sandbox listens on loopback only; refusing host '0.0.0.0'/);
    expect(created).toBe(0);
  });

  it('keeps remote faults off by default, on with <PREFIX>_FAULTS; injectFault always works; no contract means no report', async () => {
    const saved = process.env['FAKEDESK_SANDBOX_FAULTS'];
    delete process.env['FAKEDESK_SANDBOX_FAULTS'];
    const off = await startProviderSandbox(fakedesk, { port: 0, logRequests: false });
    process.env['FAKEDESK_SANDBOX_FAULTS'] = 'yes';
    const on = await startProviderSandbox(fakedesk, { port: 0 });
    if (saved === undefined) delete process.env['FAKEDESK_SANDBOX_FAULTS'];
    else process.env['FAKEDESK_SANDBOX_FAULTS'] = saved;
    try {
      expect((await caller(off)('GET', '/v1/things', { headers: fault({ status: 500 }) })).status).toBe(200);
      expect(await caller(off)('GET', '/__sandbox/faults', { key: false })).toMatchObject({ status: 404, json: { error: { type: 'not_found' } } });
      off.injectFault({ status: 502, times: 1 });
      expect((await caller(off)('GET', '/v1/things')).status).toBe(502);
      expect(off.requests).toEqual([]);
      expect(() => off.contractViolations()).toThrow('Contract checks are off: start the Fakedesk sandbox with { contract: true }.');
      expect((await caller(on)('GET', '/v1/things', { headers: fault({ status: 500 }) })).status).toBe(500);
    } finally {
      await Promise.all([off.close(), on.close()]);
    }
  });

  it('close() ends held requests, and can be called twice', async () => {
    const sandbox = await startProviderSandbox(fakedesk, { port: 0 });
    sandbox.injectFault({ hang: true });
    const held = caller(sandbox)('GET', '/v1/things').then(
      () => 'answered',
      () => 'ended',
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    await sandbox.close();
    await sandbox.close();
    expect(await held).toBe('ended');
  });
});
