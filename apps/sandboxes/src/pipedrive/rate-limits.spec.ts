import { formatContractViolation } from '../kit/contract/openapi-contract';
import { PIPEDRIVE_DEFAULTS } from './module';
import { PIPEDRIVE_RATE_LIMITS, pipedriveTokenCost } from './rate-limits';
import { type RunningPipedriveSandbox, startPipedriveSandbox } from './server';

const token = { 'x-api-token': PIPEDRIVE_DEFAULTS.apiToken };

async function call(sandbox: RunningPipedriveSandbox, method: string, path: string, body?: unknown, headers: Record<string, string> = token) {
  const response = await fetch(`${sandbox.url}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

const budgetLeft = (answer: { headers: Headers }) => Number(answer.headers.get('x-daily-ratelimit-token-remaining'));

describe("Pipedrive's token costs", () => {
  it("reads each operation's token cost from the sandbox's copy of Pipedrive's OpenAPI document", () => {
    expect(pipedriveTokenCost('POST', '/api/v2/stages')).toBe(5);
    expect(pipedriveTokenCost('GET', '/api/v2/stages/7')).toBe(1);
    expect(pipedriveTokenCost('GET', '/api/v2/stages')).toBe(5);
    expect(pipedriveTokenCost('DELETE', '/api/v2/stages/7')).toBe(3);
    expect(pipedriveTokenCost('PATCH', '/api/v2/pipelines/1')).toBe(5);
    expect(pipedriveTokenCost('GET', '/api/v2/nothing')).toBe(1);
  });
});

describe("the Pipedrive sandbox's rate limits", () => {
  let sandbox: RunningPipedriveSandbox;
  afterEach(async () => {
    expect(sandbox.takeContractViolations().map(formatContractViolation)).toEqual([]);
    await sandbox.close();
  });

  it("sends the burst headers and the budget left on every answer once on (Premium, one seat), each request spending its token cost", async () => {
    sandbox = await startPipedriveSandbox({ port: 0, contract: true, rateLimit: true });
    const list = await call(sandbox, 'GET', '/api/v2/stages?pipeline_id=1');
    expect(list.status).toBe(200);
    expect(list.headers.get('x-ratelimit-limit')).toBe('100');
    expect(list.headers.get('x-ratelimit-remaining')).toBe('99');
    // Seconds until the oldest request leaves the 2-second window.
    expect(list.headers.get('x-ratelimit-reset')).toMatch(/^[12]$/);
    expect(budgetLeft(list)).toBe(150_000 - 5);
    const created = await call(sandbox, 'POST', '/api/v2/stages', { name: 'Counted', pipeline_id: 1 });
    expect(created.status).toBe(200);
    expect(budgetLeft(created)).toBe(150_000 - 10);
    const id = (created.body?.data as { id: number }).id;
    expect(budgetLeft(await call(sandbox, 'GET', `/api/v2/stages/${id}`))).toBe(150_000 - 11);
    const deleted = await call(sandbox, 'DELETE', `/api/v2/stages/${id}`);
    expect(budgetLeft(deleted)).toBe(150_000 - 14);
    expect(deleted.headers.get('x-ratelimit-remaining')).toBe('96');
    // An OAuth token: its own burst window, four times as large; the same company budget.
    const oauth = sandbox.issueTokens();
    const viaOAuth = await call(sandbox, 'GET', '/api/v2/pipelines/1', undefined, { authorization: `Bearer ${oauth.access_token}` });
    expect(viaOAuth.headers.get('x-ratelimit-limit')).toBe('400');
    expect(viaOAuth.headers.get('x-ratelimit-remaining')).toBe('399');
    expect(budgetLeft(viaOAuth)).toBe(150_000 - 15);
    // A wrong token is not counted: Pipedrive's 401 without the headers.
    const unauthorized = await call(sandbox, 'GET', '/api/v2/pipelines', undefined, { 'x-api-token': 'nope' });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get('x-ratelimit-limit')).toBeNull();
  });

  it("answers Pipedrive's 429 past the burst window of the plan, spending nothing", async () => {
    sandbox = await startPipedriveSandbox({ port: 0, contract: true, rateLimit: { plan: 'lite', windowMs: 60_000 } });
    for (let i = 0; i < 20; i += 1) expect((await call(sandbox, 'GET', '/api/v2/pipelines/1')).status).toBe(200);
    const over = await call(sandbox, 'POST', '/api/v2/stages', { name: 'Too fast', pipeline_id: 1 });
    expect(over.status).toBe(429);
    expect(over.body).toEqual({ success: false, error: 'Request over limit', error_info: 'Please check developers.pipedrive.com', data: null, additional_data: null });
    expect(over.headers.get('x-ratelimit-limit')).toBe('20');
    expect(over.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(over.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(1);
    expect(over.headers.get('retry-after')).toBeNull();
    // Lite, one seat: 30 000 tokens; 20 gets spent 20, the refused create nothing.
    expect(budgetLeft(over)).toBe(30_000 - 20);
    expect([...sandbox.instance.store.stages.values()].some((stage) => stage.name === 'Too fast')).toBe(false);
    expect(sandbox.rateLimits.snapshot()).toMatchObject({ allowed: 20, refused: 1, refusedBy: { burst: 1 } });
  });

  it('answers 429 once the daily token budget is spent, until the day ends', async () => {
    sandbox = await startPipedriveSandbox({ port: 0, contract: true, rateLimit: { dailyBudget: 7, retryAfter: true } });
    expect(budgetLeft(await call(sandbox, 'POST', '/api/v2/stages', { name: 'Five tokens', pipeline_id: 1 }))).toBe(2);
    const over = await call(sandbox, 'GET', '/api/v2/stages');
    expect(over).toMatchObject({ status: 429, body: { success: false, error: 'Request over limit: the daily token budget is spent' } });
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // A cheaper operation still fits in what is left.
    expect((await call(sandbox, 'GET', '/api/v2/stages/1')).status).toBe(200);
    expect(sandbox.rateLimits.snapshot()).toMatchObject({ refusedBy: { daily: 1 }, settings: { ...PIPEDRIVE_RATE_LIMITS, dailyBudget: 7, retryAfter: true } });
  });

  it('is off by default; the admin route switches it on with a plan and seats, and off', async () => {
    sandbox = await startPipedriveSandbox({ port: 0, contract: true });
    expect((await call(sandbox, 'GET', '/api/v2/pipelines')).headers.get('x-ratelimit-limit')).toBeNull();
    const on = await call(sandbox, 'POST', '/__sandbox/rate-limit', { on: true, plan: 'growth', seats: 3 }, {});
    expect(on.body?.data).toMatchObject({ on: true, windows: [{ name: 'burst', max: 40, windowMs: 2000 }, { name: 'daily', max: 180_000, kind: 'fixed' }] });
    const counted = await call(sandbox, 'GET', '/api/v2/pipelines');
    expect(counted.headers.get('x-ratelimit-limit')).toBe('40');
    expect(budgetLeft(counted)).toBe(180_000 - 5);
    expect((await call(sandbox, 'POST', '/__sandbox/rate-limit', { on: true, plan: 'platinum' }, {})).body).toMatchObject({ success: false, error: expect.stringContaining('plan') });
    expect((await call(sandbox, 'POST', '/__sandbox/rate-limit', { on: false }, {})).body?.data).toMatchObject({ on: false });
    expect((await call(sandbox, 'GET', '/api/v2/pipelines')).headers.get('x-ratelimit-limit')).toBeNull();
  });
});
