import { request } from 'undici';
import { SANDBOX_SEED_IDS, startSandbox, type RunningSandbox } from '../index';
import { basicAuth, client } from './testing/client';

describe('Pipeliner sandbox: fault injection', () => {
  let sandbox: RunningSandbox;
  let call: ReturnType<typeof client>;

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0, faults: true, contract: true });
    call = client(sandbox);
  });
  afterAll(() => sandbox.close());
  beforeEach(() => sandbox.reset());
  afterEach(() => expect(sandbox.takeContractViolations()).toEqual([]));

  const stepUrl = () => `${sandbox.serviceUrl}/api/v100/rest/spaces/${sandbox.spaceId}/entities/Steps`;
  const fault = (rule: object) => ({ 'X-Sandbox-Fault': JSON.stringify(rule) });

  it('answers a status fault from the header in the Error shape, with Retry-After', async () => {
    const res = await call('GET', 'Steps', { headers: fault({ status: 429, retryAfter: 7 }) });
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('7');
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.json).toEqual({
      code: 130,
      name: 'ERROR_RATE_LIMIT_EXCEEDED',
      message: 'Too many requests. Please retry later.',
      http_status: 429,
      success: false,
    });
    for (const [status, name] of [[403, 'ERROR_FORBIDDEN'], [500, 'ERROR_INTERNAL'], [503, 'ERROR_SERVICE_UNAVAILABLE']] as const) {
      const other = await call('GET', 'Steps', { headers: fault({ status }) });
      expect(other.status).toBe(status);
      expect(other.json).toMatchObject({ success: false, http_status: status, name });
    }
  });

  it('answers a 422 naming a missing field in the captured validation shape (missingField), touching no state', async () => {
    sandbox.injectFault({ method: 'POST', path: '/entities/Steps', status: 422, missingField: 'cf_region', times: 1 });
    const res = await call('POST', 'Steps', { body: { name: 'Never' } });
    expect(res.status).toBe(422);
    expect(res.json).toMatchObject({
      code: 40000,
      name: 'ERROR_ENTITY_VALIDATION',
      message: "\nNon-null field 'cf_region' is null or empty.",
      entity_name: 'Step',
      entity_errors: [{ code: 119, name: 'ERROR_PARAMETER_MISSING' }],
      field_errors: [{ field_name: 'cf_region', code: 40002, errors: [{ code: 119, field_name: 'cf_region' }] }],
      http_status: 422,
      success: false,
    });
    expect(sandbox.steps().some((s) => s.name === 'Never')).toBe(false);
    expect(() => sandbox.injectFault({ status: 500, missingField: 'x' })).toThrow('missingField: missingField needs status 422');
  });

  it('a status fault does not touch state, and the request is still recorded', async () => {
    const res = await call('POST', 'Steps', { body: { name: 'Never' }, headers: fault({ status: 500 }) });
    expect(res.status).toBe(500);
    expect(sandbox.steps().some((s) => s.name === 'Never')).toBe(false);
    expect(sandbox.requests).toHaveLength(1);
    expect(sandbox.requests[0].headers['x-sandbox-fault']).toBe('{"status":500}');
  });

  it('injectFault applies to following matching requests, `times` times', async () => {
    sandbox.injectFault({ method: 'POST', path: '/entities/Steps', status: 503, times: 2 });
    expect((await call('GET', 'Steps')).status).toBe(200);
    expect((await call('POST', 'Steps', { body: { name: 'A' } })).status).toBe(503);
    expect((await call('POST', 'Steps', { body: { name: 'A' } })).status).toBe(503);
    expect((await call('POST', 'Steps', { body: { name: 'A' } })).status).toBe(201);
  });

  it('adds latency, then answers normally', async () => {
    sandbox.injectFault({ latencyMs: 150, times: 1 });
    const started = Date.now();
    const res = await call('GET', `Steps/${SANDBOX_SEED_IDS.salesStepIds[0]}`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(res.status).toBe(200);
    expect(res.json.data.name).toBe('Qualification');
    const fast = Date.now();
    await call('GET', 'Steps');
    expect(Date.now() - fast).toBeLessThan(140);
  });

  it('malformed body: the write happens, the real status comes back with JSON that does not parse', async () => {
    const res = await call('POST', 'Steps', { body: { name: 'Written anyway' }, headers: fault({ body: 'malformed' }) });
    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.json).toBeUndefined();
    expect(res.text.length).toBeGreaterThan(10);
    expect(sandbox.steps().some((s) => s.name === 'Written anyway')).toBe(true);
  });

  it('empty body: real status, zero bytes', async () => {
    const res = await call('GET', 'Steps', { headers: fault({ body: 'empty' }) });
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    expect(res.headers['content-length']).toBe('0');
  });

  it('html body: a proxy-style HTML page with the given status', async () => {
    const res = await call('GET', 'Steps', { headers: fault({ body: 'html', status: 502 }) });
    expect(res.status).toBe(502);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.text).toContain('<h1>502 Bad Gateway</h1>');
  });

  it('truncated body: Content-Length larger than the bytes sent, then the socket ends', async () => {
    const res = await request(stepUrl(), {
      method: 'POST',
      headers: { authorization: basicAuth(sandbox), 'content-type': 'application/json', 'x-sandbox-fault': '{"body":"truncated"}' },
      body: JSON.stringify({ name: 'Truncated answer' }),
    });
    expect(res.statusCode).toBe(201);
    const declared = Number(res.headers['content-length']);
    expect(declared).toBeGreaterThan(100);
    await expect(res.body.text()).rejects.toThrow();
    expect(sandbox.steps().some((s) => s.name === 'Truncated answer')).toBe(true);
  });

  it('reset: the socket is destroyed without an answer', async () => {
    sandbox.injectFault({ reset: true, times: 1 });
    await expect(request(stepUrl(), { headers: { authorization: basicAuth(sandbox) } })).rejects.toThrow();
    expect((await call('GET', 'Steps')).status).toBe(200);
  });

  it('hang: never answers until reset() (or close()) ends it', async () => {
    const pending = request(stepUrl(), { headers: { authorization: basicAuth(sandbox), 'x-sandbox-fault': '{"hang":true}' } });
    const outcome = pending.then(
      () => 'answered',
      () => 'ended',
    );
    const raced = await Promise.race([outcome, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 100))]);
    expect(raced).toBe('still waiting');
    sandbox.reset();
    expect(await outcome).toBe('ended');
  });

  it('close() ends hung requests so nothing waits forever', async () => {
    const other = await startSandbox({ port: 0, faults: true });
    other.injectFault({ hang: true });
    const url = `${other.serviceUrl}/api/v100/rest/spaces/${other.spaceId}/entities/Pipelines`;
    const outcome = request(url, { headers: { authorization: basicAuth(other) } }).then(
      () => 'answered',
      () => 'ended',
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    await other.close();
    expect(await outcome).toBe('ended');
  });

  it('admin route: POST adds a rule, GET lists it, DELETE clears; admin calls are not recorded', async () => {
    const added = await call('POST', '/__sandbox/faults', { rawPath: true, auth: false, body: { path: 'Pipelines', status: 500, times: 1 } });
    expect(added.status).toBe(201);
    expect(added.json).toEqual({ success: true, data: { path: 'Pipelines', status: 500, times: 1 } });
    const listed = await call('GET', '/__sandbox/faults', { rawPath: true, auth: false });
    expect(listed.json.data).toEqual([{ path: 'Pipelines', status: 500, times: 1 }]);
    expect((await call('GET', 'Steps')).status).toBe(200);
    expect((await call('GET', 'Pipelines')).status).toBe(500);
    expect((await call('GET', 'Pipelines')).status).toBe(200);
    await call('POST', '/__sandbox/faults', { rawPath: true, auth: false, body: { status: 500 } });
    const cleared = await call('DELETE', '/__sandbox/faults', { rawPath: true, auth: false });
    expect(cleared.json).toEqual({ success: true, data: [] });
    expect((await call('GET', 'Pipelines')).status).toBe(200);
    expect(sandbox.requests.every((r) => !r.path.startsWith('/__sandbox'))).toBe(true);
  });

  it('rejects invalid rules: header (400), admin route (400), injectFault (throws)', async () => {
    const header = await call('GET', 'Steps', { headers: { 'X-Sandbox-Fault': '{"status":"x"}' } });
    expect(header.status).toBe(400);
    expect(header.json).toMatchObject({ code: 117, name: 'ERROR_PARAMETER_INVALID' });
    expect(header.json.message).toContain('X-Sandbox-Fault');
    const admin = await call('POST', '/__sandbox/faults', { rawPath: true, body: { stauts: 500 } });
    expect(admin.status).toBe(400);
    expect(() => sandbox.injectFault({ body: 'weird' } as never)).toThrow(/Invalid fault rule/);
  });

  it('clearFaults() removes programmatic rules', async () => {
    sandbox.injectFault({ status: 500 });
    sandbox.clearFaults();
    expect((await call('GET', 'Steps')).status).toBe(200);
  });
});

describe('Pipeliner sandbox: faults disabled (default)', () => {
  let sandbox: RunningSandbox;
  let call: ReturnType<typeof client>;
  const saved = process.env['PIPELINER_SANDBOX_FAULTS'];

  beforeAll(async () => {
    delete process.env['PIPELINER_SANDBOX_FAULTS'];
    sandbox = await startSandbox({ port: 0, contract: true });
    call = client(sandbox);
  });
  afterAll(async () => {
    if (saved !== undefined) process.env['PIPELINER_SANDBOX_FAULTS'] = saved;
    await sandbox.close();
  });
  afterEach(() => expect(sandbox.takeContractViolations()).toEqual([]));

  it('ignores the X-Sandbox-Fault header', async () => {
    const res = await call('GET', 'Steps', { headers: { 'X-Sandbox-Fault': '{"status":500}' } });
    expect(res.status).toBe(200);
    expect(res.json.total).toBe(8);
  });

  it('answers the bare 404 for the admin route', async () => {
    const res = await call('POST', '/__sandbox/faults', { rawPath: true, body: { status: 500 } });
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ status: 404, errorcode: null, traceback: null });
  });

  it('still honours programmatic injectFault (an explicit in-process choice)', async () => {
    sandbox.injectFault({ status: 503, times: 1 });
    expect((await call('GET', 'Steps')).status).toBe(503);
    expect((await call('GET', 'Steps')).status).toBe(200);
  });

  it('turns on with PIPELINER_SANDBOX_FAULTS=1', async () => {
    process.env['PIPELINER_SANDBOX_FAULTS'] = '1';
    const withEnv = await startSandbox({ port: 0 });
    try {
      const res = await client(withEnv)('GET', 'Steps', { headers: { 'X-Sandbox-Fault': '{"status":500}' } });
      expect(res.status).toBe(500);
    } finally {
      delete process.env['PIPELINER_SANDBOX_FAULTS'];
      await withEnv.close();
    }
  });
});
