import { formatContractViolation } from '../kit/contract/openapi-contract';
import { HUBSPOT_DEFAULTS } from './module';
import { type RunningHubSpotSandbox, startHubSpotSandbox } from './server';

let sandbox: RunningHubSpotSandbox;
const bearer = { authorization: `Bearer ${HUBSPOT_DEFAULTS.accessToken}` };
const DEALS = '/crm/v3/pipelines/deals';

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = bearer) {
  const response = await fetch(`${sandbox.url}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

type Stage = { id: string; label: string; displayOrder: number; archived: boolean; archivedAt?: string; metadata: Record<string, string>; createdAt: string };

beforeAll(async () => {
  sandbox = await startHubSpotSandbox({ port: 0, contract: true });
});
afterEach(() => {
  // Every exchange of every test follows HubSpot's document (errors: its Error schema).
  expect(sandbox.takeContractViolations().map(formatContractViolation)).toEqual([]);
  sandbox.reset();
});
afterAll(() => sandbox.close());

describe('the HubSpot sandbox', () => {
  it('serves the default deal pipeline (epoch createdAt, slug ids) and the default ticket pipeline, without rate-limit headers while the limits are off', async () => {
    const deals = await call('GET', DEALS);
    expect(deals.status).toBe(200);
    const [sales] = deals.body?.results as Array<{ id: string; label: string; createdAt: string; stages: Stage[] }>;
    expect(sales).toMatchObject({ id: 'default', label: 'Sales Pipeline', createdAt: '1970-01-01T00:00:00Z' });
    expect(sales?.stages.map((s) => s.id)).toEqual(['appointmentscheduled', 'qualifiedtobuy', 'presentationscheduled', 'decisionmakerboughtin', 'contractsent', 'closedwon', 'closedlost']);
    expect(sales?.stages[6]).toMatchObject({ label: 'Closed Lost', metadata: { probability: '0.0' }, createdAt: '1970-01-01T00:00:00Z' });
    // Rate limits are off unless switched on (rate-limits.spec.ts has the headers).
    expect(deals.headers.get('x-hubspot-ratelimit-max')).toBeNull();
    expect(deals.headers.get('x-hubspot-correlation-id')).toMatch(/^[0-9a-f-]{36}$/);
    const tickets = await call('GET', '/crm/v3/pipelines/tickets/0/stages');
    expect((tickets.body?.results as Stage[]).map((s) => [s.label, s.metadata.ticketState])).toEqual([
      ['New', 'OPEN'], ['Waiting on contact', 'OPEN'], ['Waiting on us', 'OPEN'], ['Closed', 'CLOSED'],
    ]);
  });

  it('creates a stage (201, Location), moves it (displayOrder), archives it (204), lists it archived, restores it with archived: false', async () => {
    const created = await call('POST', `${DEALS}/default/stages`, { label: 'Negotiation', displayOrder: 7, metadata: { probability: '0.7' } });
    expect(created.status).toBe(201);
    const stage = created.body as unknown as Stage;
    expect(stage).toMatchObject({ label: 'Negotiation', displayOrder: 7, archived: false, metadata: { probability: '0.7' } });
    expect(stage.id).toMatch(/^\d+$/);
    expect(created.headers.get('location')).toBe(`${sandbox.url}${DEALS}/default/stages/${stage.id}`);
    const moved = await call('PATCH', `${DEALS}/default/stages/${stage.id}`, { displayOrder: 1, metadata: stage.metadata });
    expect(moved.body).toMatchObject({ id: stage.id, displayOrder: 1 });
    const listed = await call('GET', `${DEALS}/default/stages`);
    expect((listed.body?.results as Stage[]).map((s) => s.label).slice(0, 3)).toEqual(['Appointment Scheduled', 'Negotiation', 'Qualified To Buy']);

    expect((await call('DELETE', `${DEALS}/default/stages/${stage.id}`)).status).toBe(204);
    const archived = await call('GET', `${DEALS}/default/stages/${stage.id}`);
    expect(archived.body).toMatchObject({ archived: true, archivedAt: expect.any(String) });
    const all = await call('GET', DEALS);
    const inList = ((all.body?.results as Array<{ stages: Stage[] }>)[0]?.stages ?? []).find((s) => s.id === stage.id);
    expect(inList).toMatchObject({ archived: true });
    expect((await call('DELETE', `${DEALS}/default/stages/${stage.id}`)).status).toBe(404);

    expect(await call('PATCH', `${DEALS}/default/stages/appointmentscheduled`, { archived: false, metadata: { probability: '0.2' } })).toMatchObject({ status: 400 });
    const restored = await call('PATCH', `${DEALS}/default/stages/${stage.id}`, { archived: false, metadata: stage.metadata });
    expect(restored.body).toMatchObject({ archived: false });
    expect(restored.body).not.toHaveProperty('archivedAt');
  });

  it("answers HubSpot's error bodies: validation with errors[], unique labels, 401, 404, an unknown object type", async () => {
    const noProbability = await call('POST', `${DEALS}/default/stages`, { label: 'X', displayOrder: 1, metadata: {} });
    expect(noProbability).toMatchObject({ status: 400, body: { status: 'error', category: 'VALIDATION_ERROR', correlationId: expect.any(String), errors: [{ in: 'metadata.probability' }] } });
    expect((await call('POST', `${DEALS}/default/stages`, { label: 'X', displayOrder: 1, metadata: { probability: '0.25' } })).status).toBe(400);
    const duplicate = await call('POST', `${DEALS}/default/stages`, { label: 'closed won', displayOrder: 1, metadata: { probability: '1.0' } });
    expect(duplicate).toMatchObject({ status: 400, body: { message: expect.stringMatching(/already exists/) } });
    expect(await call('GET', DEALS, undefined, { authorization: 'Bearer nope' })).toMatchObject({ status: 401, body: { category: 'INVALID_AUTHENTICATION' } });
    expect(await call('GET', `${DEALS}/default/stages/nope`)).toMatchObject({ status: 404, body: { category: 'OBJECT_NOT_FOUND' } });
    expect(await call('GET', '/crm/v3/pipelines/widgets')).toMatchObject({ status: 400, body: { message: 'Unable to infer object type from: widgets' } });
    // The PATCH without metadata breaks the document (metadata is required there), and the check says so; the answer
    // (HubSpot's 400) follows it.
    expect((await call('PATCH', `${DEALS}/default/stages/closedwon`, { label: 'Won' })).status).toBe(400);
    expect(sandbox.takeContractViolations().map(formatContractViolation)).toEqual([
      expect.stringMatching(/request PATCH .*closedwon .*metadata/),
    ]);
  });

  it('issues and refreshes OAuth tokens (client credentials in the form), refuses unknown refresh tokens, expired tokens are a 401', async () => {
    const form = (fields: Record<string, string>) =>
      fetch(sandbox.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as Record<string, unknown>,
      }));
    const client = { client_id: HUBSPOT_DEFAULTS.clientId, client_secret: HUBSPOT_DEFAULTS.clientSecret };
    const issued = await form({ grant_type: 'authorization_code', code: HUBSPOT_DEFAULTS.authorizationCode, ...client });
    expect(issued).toMatchObject({ status: 200, body: { token_type: 'bearer', expires_in: 1800 } });
    const oauth = await call('GET', DEALS, undefined, { authorization: `Bearer ${String(issued.body.access_token)}` });
    expect(oauth.status).toBe(200);
    expect(oauth.headers.get('x-hubspot-ratelimit-daily')).toBeNull();
    const refreshed = await form({ grant_type: 'refresh_token', refresh_token: String(issued.body.refresh_token), ...client });
    expect(refreshed.body).toMatchObject({ refresh_token: issued.body.refresh_token });
    expect(refreshed.body.access_token).not.toBe(issued.body.access_token);
    expect(await form({ grant_type: 'refresh_token', refresh_token: 'nope', ...client })).toMatchObject({ status: 400, body: { status: 'BAD_REFRESH_TOKEN' } });
    expect(await form({ grant_type: 'refresh_token', refresh_token: 'x', client_id: 'x', client_secret: 'y' })).toMatchObject({ status: 400, body: { status: 'BAD_CLIENT_ID' } });
    expect(sandbox.refreshRequests()).toBe(3);
    const expired = sandbox.issueTokens(-10);
    expect(await call('GET', DEALS, undefined, { authorization: `Bearer ${expired.access_token}` })).toMatchObject({ status: 401, body: { category: 'EXPIRED_AUTHENTICATION' } });
  });

  it('answers 429 past the burst limit with Retry-After and the rate-limit headers', async () => {
    const limited = await startHubSpotSandbox({ port: 0, contract: true, rateLimit: 2 });
    try {
      const get = () => fetch(`${limited.url}${DEALS}`, { headers: bearer });
      expect((await get()).status).toBe(200);
      expect((await get()).status).toBe(200);
      const third = await get();
      expect(third.status).toBe(429);
      expect(await third.json()).toMatchObject({ status: 'error', category: 'RATE_LIMITS', policyName: 'TEN_SECONDLY_ROLLING', correlationId: expect.any(String) });
      expect(third.headers.get('x-hubspot-ratelimit-remaining')).toBe('0');
      expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(limited.takeContractViolations()).toEqual([]);
    } finally {
      await limited.close();
    }
  });

  it("injects the kit's faults in HubSpot's shape (a status, a missing field at 400)", async () => {
    sandbox.injectFault({ path: '/crm/v3/pipelines/deals', status: 503, times: 1 });
    expect(await call('GET', DEALS)).toMatchObject({ status: 503, body: { status: 'error', category: 'SERVICE_UNAVAILABLE' } });
    sandbox.injectFault({ method: 'POST', path: '/stages', status: 400, missingField: 'metadata.probability', times: 1 });
    expect(await call('POST', `${DEALS}/default/stages`, { label: 'X', displayOrder: 1, metadata: { probability: '0.1' } })).toMatchObject({
      status: 400,
      body: { category: 'VALIDATION_ERROR', errors: [{ in: 'metadata.probability' }] },
    });
  });
});
