import { formatContractViolation } from '../kit/contract/openapi-contract';
import { PIPEDRIVE_DEFAULTS } from './module';
import { type RunningPipedriveSandbox, startPipedriveSandbox } from './server';

let sandbox: RunningPipedriveSandbox;
const token = { 'x-api-token': PIPEDRIVE_DEFAULTS.apiToken };

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = token) {
  const response = await fetch(`${sandbox.url}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

beforeAll(async () => {
  sandbox = await startPipedriveSandbox({ port: 0, contract: true });
});
afterEach(() => {
  // Every exchange of every test follows Pipedrive's document (errors: its documented error shape).
  expect(sandbox.takeContractViolations().map(formatContractViolation)).toEqual([]);
  sandbox.reset();
});
afterAll(() => sandbox.close());

describe('the Pipedrive sandbox', () => {
  it('serves the seeded pipeline and its stages in Pipedrive envelopes, paged by cursor', async () => {
    const pipelines = await call('GET', '/api/v2/pipelines');
    expect(pipelines.status).toBe(200);
    expect(pipelines.body).toMatchObject({ success: true, data: [{ id: 1, name: 'Sales Pipeline' }], additional_data: { next_cursor: null } });
    const first = await call('GET', '/api/v2/stages?pipeline_id=1&sort_by=order_nr&limit=2');
    expect((first.body?.data as Array<{ name: string }>).map((s) => s.name)).toEqual(['Lead In', 'Contact Made']);
    const cursor = (first.body?.additional_data as { next_cursor: string }).next_cursor;
    expect(typeof cursor).toBe('string');
    const second = await call('GET', `/api/v2/stages?pipeline_id=1&sort_by=order_nr&limit=2&cursor=${cursor}`);
    expect((second.body?.data as Array<{ name: string }>).map((s) => s.name)).toEqual(['Demo Scheduled', 'Proposal Made']);
    // Rate limits are off unless switched on (rate-limits.spec.ts): no rate-limit headers.
    expect(first.headers.get('x-ratelimit-limit')).toBeNull();
  });

  it('creates a stage last in its pipeline (200), renames it, deletes it; get still shows it, deleted; lists leave it out', async () => {
    const created = await call('POST', '/api/v2/stages', { name: 'Won', pipeline_id: 1, deal_probability: 90 });
    expect(created.status).toBe(200);
    expect(created.body?.data).toMatchObject({ name: 'Won', order_nr: 6, pipeline_id: 1, deal_probability: 90, is_deleted: false });
    const id = (created.body?.data as { id: number }).id;
    expect((await call('PATCH', `/api/v2/stages/${id}`, { name: 'Closed' })).body?.data).toMatchObject({ id, name: 'Closed' });
    expect((await call('DELETE', `/api/v2/stages/${id}`)).body).toEqual({ success: true, data: { id } });
    expect((await call('GET', `/api/v2/stages/${id}`)).body?.data).toMatchObject({ id, is_deleted: true });
    const list = await call('GET', '/api/v2/stages?limit=500');
    expect((list.body?.data as Array<{ id: number }>).map((s) => s.id)).not.toContain(id);
    expect((await call('DELETE', `/api/v2/stages/${id}`)).status).toBe(404);
  });

  it("answers Pipedrive's error bodies: 400 validation, 401, 404", async () => {
    expect(await call('POST', '/api/v2/stages', { name: 'X' })).toMatchObject({ status: 400, body: { success: false, error: expect.stringMatching(/pipeline_id/) } });
    expect(await call('POST', '/api/v2/stages', { name: 'X', pipeline_id: 99 })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/does not exist/) } });
    expect(await call('POST', '/api/v2/stages', { name: 'X', pipeline_id: 1, deal_probability: 101 })).toMatchObject({ status: 400 });
    expect(await call('GET', '/api/v2/stages', undefined, { 'x-api-token': 'wrong' })).toMatchObject({ status: 401, body: { success: false, error: 'unauthorized access', error_info: expect.any(String) } });
    expect(await call('GET', '/api/v2/stages/999')).toMatchObject({ status: 404, body: { success: false, error: 'Stage not found' } });
    // The request without pipeline_id breaks the document, and the contract check says so (the answers all follow it).
    expect(sandbox.takeContractViolations().map(formatContractViolation)).toEqual([
      "request POST /api/v2/stages [addStage] body (root): must have required property 'pipeline_id'",
    ]);
  });

  it('issues and refreshes OAuth tokens, counts refresh requests, refuses unknown refresh tokens and bad clients', async () => {
    const basic = { authorization: `Basic ${Buffer.from(`${PIPEDRIVE_DEFAULTS.clientId}:${PIPEDRIVE_DEFAULTS.clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' };
    const post = (body: string, headers = basic) => fetch(sandbox.tokenUrl, { method: 'POST', headers, body }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));
    const issued = await post(`grant_type=authorization_code&code=${PIPEDRIVE_DEFAULTS.authorizationCode}`);
    expect(issued).toMatchObject({ status: 200, body: { token_type: 'Bearer', expires_in: 3600, api_domain: sandbox.url } });
    const bearer = { authorization: `Bearer ${String(issued.body.access_token)}` };
    expect((await call('GET', '/api/v2/pipelines/1', undefined, bearer)).status).toBe(200);
    const refreshed = await post(`grant_type=refresh_token&refresh_token=${String(issued.body.refresh_token)}`);
    expect(refreshed.status).toBe(200);
    expect(refreshed.body.access_token).not.toBe(issued.body.access_token);
    expect(await post('grant_type=refresh_token&refresh_token=nope')).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await post('grant_type=refresh_token&refresh_token=x', { ...basic, authorization: 'Basic eDp5' })).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(sandbox.refreshRequests()).toBe(3);
    const expired = sandbox.issueTokens(-10);
    expect((await call('GET', '/api/v2/stages', undefined, { authorization: `Bearer ${expired.access_token}` })).status).toBe(401);
  });

  it('answers 429 past the burst limit with the rate-limit headers', async () => {
    const limited = await startPipedriveSandbox({ port: 0, contract: true, rateLimit: 2 });
    try {
      const get = () => fetch(`${limited.url}/api/v2/pipelines`, { headers: token });
      expect((await get()).status).toBe(200);
      expect((await get()).status).toBe(200);
      const third = await get();
      expect(third.status).toBe(429);
      expect(await third.json()).toMatchObject({ success: false, error: 'Request over limit' });
      expect(third.headers.get('x-ratelimit-remaining')).toBe('0');
      expect(Number(third.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(1);
      expect(limited.takeContractViolations()).toEqual([]);
    } finally {
      await limited.close();
    }
  });

  it("injects the kit's faults in Pipedrive's shape (a status, a missing field at 400)", async () => {
    sandbox.injectFault({ path: '/api/v2/stages', status: 503, times: 1 });
    expect(await call('GET', '/api/v2/stages')).toMatchObject({ status: 503, body: { success: false, error: 'Service unavailable' } });
    sandbox.injectFault({ method: 'POST', path: '/api/v2/stages', status: 400, missingField: 'deal_probability', times: 1 });
    expect(await call('POST', '/api/v2/stages', { name: 'X', pipeline_id: 1 })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/deal_probability is required/) } });
  });
});
