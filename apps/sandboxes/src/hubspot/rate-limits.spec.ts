import { formatContractViolation } from '../kit/contract/openapi-contract';
import { HUBSPOT_DEFAULTS } from './module';
import { HUBSPOT_RATE_LIMITS } from './rate-limits';
import { type RunningHubSpotSandbox, startHubSpotSandbox } from './server';

const bearer = { authorization: `Bearer ${HUBSPOT_DEFAULTS.accessToken}` };
const DEALS = '/crm/v3/pipelines/deals';

async function call(sandbox: RunningHubSpotSandbox, method: string, path: string, body?: unknown, headers: Record<string, string> = bearer) {
  const response = await fetch(`${sandbox.url}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

describe("the HubSpot sandbox's rate limits", () => {
  let sandbox: RunningHubSpotSandbox;
  afterEach(async () => {
    expect(sandbox.takeContractViolations().map(formatContractViolation)).toEqual([]);
    await sandbox.close();
  });

  it("sends HubSpot's headers on every answer once on: the burst window, and the daily ones for the private app only", async () => {
    sandbox = await startHubSpotSandbox({ port: 0, contract: true, rateLimit: true });
    const first = await call(sandbox, 'GET', DEALS);
    expect(first.status).toBe(200);
    expect(Object.fromEntries([...first.headers].filter(([name]) => name.startsWith('x-hubspot-ratelimit')))).toEqual({
      'x-hubspot-ratelimit-max': '190',
      'x-hubspot-ratelimit-remaining': '189',
      'x-hubspot-ratelimit-interval-milliseconds': '10000',
      'x-hubspot-ratelimit-daily': '650000',
      'x-hubspot-ratelimit-daily-remaining': '649999',
    });
    // A 404 of the API is counted too, and carries the headers.
    const missing = await call(sandbox, 'GET', `${DEALS}/nope`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-hubspot-ratelimit-remaining')).toBe('188');
    // An OAuth token: its own window (the portal's OAuth calls), and no daily headers (HubSpot sends none on OAuth calls).
    const oauth = sandbox.issueTokens();
    const viaOAuth = await call(sandbox, 'GET', DEALS, undefined, { authorization: `Bearer ${oauth.access_token}` });
    expect(viaOAuth.headers.get('x-hubspot-ratelimit-remaining')).toBe('189');
    expect(viaOAuth.headers.get('x-hubspot-ratelimit-daily')).toBeNull();
    // Bad credentials are not counted (HubSpot's 401, no rate-limit headers).
    const refused = await call(sandbox, 'GET', DEALS, undefined, { authorization: 'Bearer nope' });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('x-hubspot-ratelimit-max')).toBeNull();
    expect(sandbox.rateLimits.snapshot()).toMatchObject({ on: true, allowed: 3, refused: 0, settings: HUBSPOT_RATE_LIMITS });
  });

  it("answers HubSpot's 429 (TEN_SECONDLY_ROLLING, Retry-After) after max requests, writes nothing, and counts the refusal", async () => {
    sandbox = await startHubSpotSandbox({ port: 0, contract: true, rateLimit: { max: 3 } });
    for (let i = 0; i < 3; i += 1) expect((await call(sandbox, 'GET', DEALS)).status).toBe(200);
    const over = await call(sandbox, 'POST', `${DEALS}/default/stages`, { label: 'Too fast', displayOrder: 9, metadata: { probability: '0.5' } });
    expect(over.status).toBe(429);
    expect(over.body).toEqual({
      status: 'error',
      message: 'You have reached your ten_secondly_rolling limit.',
      correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      category: 'RATE_LIMITS',
      errorType: 'RATE_LIMIT',
      policyName: 'TEN_SECONDLY_ROLLING',
      requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(over.headers.get('x-hubspot-ratelimit-max')).toBe('3');
    expect(over.headers.get('x-hubspot-ratelimit-remaining')).toBe('0');
    const retryAfter = Number(over.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(10);
    expect(sandbox.instance.store.pipelines.get('deals')?.[0].stages.some((stage) => stage.label === 'Too fast')).toBe(false);
    const stats = sandbox.rateLimits.snapshot();
    expect(stats).toMatchObject({ allowed: 3, refused: 1, refusedBy: { burst: 1 } });
    expect(stats.refusals).toEqual([{ atMs: expect.any(Number), at: expect.any(Number), window: 'burst', method: 'POST', path: `${DEALS}/default/stages` }]);
  });

  it('answers the DAILY 429 when the daily limit is spent, and leaves out Retry-After when told to', async () => {
    sandbox = await startHubSpotSandbox({ port: 0, contract: true, rateLimit: { dailyMax: 1, retryAfter: false } });
    expect((await call(sandbox, 'GET', DEALS)).headers.get('x-hubspot-ratelimit-daily-remaining')).toBe('0');
    const over = await call(sandbox, 'GET', DEALS);
    expect(over).toMatchObject({ status: 429, body: { policyName: 'DAILY', message: 'You have reached your daily limit.' } });
    expect(over.headers.get('retry-after')).toBeNull();
  });

  it('is off by default, and the admin route switches it on (with overrides), reports, and off', async () => {
    sandbox = await startHubSpotSandbox({ port: 0, contract: true });
    const admin = async (method: string, body?: unknown) => (await call(sandbox, method, '/__sandbox/rate-limit', body, {})).body?.data as Record<string, unknown>;
    expect(await admin('GET')).toMatchObject({ on: false, settings: HUBSPOT_RATE_LIMITS });
    expect((await call(sandbox, 'GET', DEALS)).headers.get('x-hubspot-ratelimit-max')).toBeNull();
    expect(await admin('POST', { on: true, max: 1, windowMs: 60_000 })).toMatchObject({ on: true, settings: { max: 1, windowMs: 60_000 } });
    expect((await call(sandbox, 'GET', DEALS)).headers.get('x-hubspot-ratelimit-interval-milliseconds')).toBe('60000');
    expect((await call(sandbox, 'GET', DEALS)).status).toBe(429);
    expect(await admin('GET')).toMatchObject({ allowed: 1, refused: 1 });
    const bad = await call(sandbox, 'POST', '/__sandbox/rate-limit', { on: true, max: 'many' }, {});
    expect(bad).toMatchObject({ status: 400, body: { status: 'error', category: 'VALIDATION_ERROR' } });
    expect(await admin('POST', { on: false })).toMatchObject({ on: false });
    expect((await call(sandbox, 'GET', DEALS)).status).toBe(200);
  });
});
