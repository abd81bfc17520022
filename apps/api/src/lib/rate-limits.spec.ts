import request from 'supertest';
import { AUTH, type Harness, startHarness } from '../testing/harness';
import { type ScriptedUpstream, startScriptedUpstream } from '../testing/scripted-upstream';

// Rate limits as Truto documents them: per token and per integrated account, 429 with Retry-After and
// the RateLimit-* headers (truto-contract.md §3.4).
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ core: { config: { rateLimits: { perToken: 6, perAccount: 3, windowMs: 60_000 } } } });
});
afterAll(() => h.close());

describe('rate limits', () => {
  it('limits one integrated account, with the standard headers', async () => {
    const id = h.accountId;
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await request(h.app).post(`/unified/crm/stages?integrated_account_id=${id}`).set(AUTH).send({ name: `s${i}` }));
    expect(answers.map((r) => r.status)).toEqual([201, 201, 201, 429]);
    expect(answers[0]?.headers).toMatchObject({ 'ratelimit-limit': '3', 'ratelimit-remaining': '2', 'ratelimit-reset': expect.stringMatching(/^\d+$/) });
    const limited = answers[3];
    expect(limited?.headers['retry-after']).toMatch(/^\d+$/);
    expect(limited?.body).toEqual({
      statusCode: 429,
      error: 'Too Many Requests',
      message: `Rate limit exceeded: 3 requests per 60 s per integrated account. Retry after ${limited?.headers['retry-after']} s.`,
      truto_error_insight: { rate_limit_error: { description: "unicrm's own limit per integrated account" } },
    });
    expect(h.sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(3);
  });

  it('counts every spelling of integrated_account_id the query parser accepts', async () => {
    // The account is over its limit after the test above; found by the adversarial session.
    const spellings = [`[integrated_account_id]=${h.accountId}`, `%5Bintegrated_account_id%5D=${h.accountId}`, `integrated_account_id=${h.accountId.toUpperCase()}`];
    for (const query of spellings) {
      const res = await request(h.app).get(`/unified/crm/stages/meta/create?${query}`).set('authorization', `Bearer ${(await h.core.tokens.issue({ name: query })).token}`);
      expect([query, res.status]).toEqual([query, 429]);
    }
  });

  it('limits one token across routes', async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await request(h.app).get('/integrated-account').set(AUTH)).status);
    // The static token made 5 requests so far (connecting the harness account, the 4 creates above): 1 left.
    expect(statuses).toEqual([200, 429, 429]);
    const token = (await h.core.tokens.issue({ name: 'fresh' })).token;
    const fresh = [];
    for (let i = 0; i < 7; i++) fresh.push((await request(h.app).get('/integrated-account').set('authorization', `Bearer ${token}`)).status);
    expect(fresh).toEqual([200, 200, 200, 200, 200, 200, 429]);
  });

  it('does not count /health', async () => {
    for (let i = 0; i < 10; i++) expect((await request(h.app).get('/health')).status).toBe(200);
  });
});

// Issue 12 item 9: a remote error carries the provider's headers only; unicrm's own 429 names the full window that
// resets last.
describe('rate-limit headers of remote errors and of unicrm 429s', () => {
  let r: Harness;
  let upstream: ScriptedUpstream;
  let viaUpstream: string;
  beforeAll(async () => {
    r = await startHarness({ core: { config: { rateLimits: { perToken: 100, perAccount: 50, windowMs: 10_000 } } } });
    upstream = await startScriptedUpstream(r.sandbox.serviceUrl);
    viaUpstream = await r.connect({ service_url: upstream.serviceUrl });
  });
  afterAll(async () => {
    await upstream.close();
    await r.close();
  });
  const create = (account: string) => request(r.app).post(`/unified/crm/stages?integrated_account_id=${account}`).set(AUTH).send({ name: 'Limited' });
  const rateLimitHeaders = (headers: Record<string, string>) => Object.keys(headers).filter((name) => /^(ratelimit-|x-ratelimit-|retry-after$)/.test(name)).sort();

  it("answers Pipeliner's 429 with Pipeliner's Retry-After only, none of unicrm's RateLimit headers", async () => {
    r.sandbox.injectFault({ method: 'POST', path: '/entities/Steps', status: 429, retryAfter: 30, times: 1 });
    // unicrm then paces that account for 30 s (docs/contract.md "Pacing"): it is an account of its own.
    const res = await create(await r.connect());
    expect(res.status).toBe(429);
    expect(res.body.truto_is_remote_error).toBe(true);
    expect(rateLimitHeaders(res.headers)).toEqual(['retry-after']);
    expect(res.headers['retry-after']).toBe('30');
    // A success still carries unicrm's own headers.
    const ok = await create(r.accountId);
    expect(ok.status).toBe(201);
    expect(ok.headers).toMatchObject({ 'ratelimit-limit': '50', 'ratelimit-policy': '50;w=10' });
  });

  it("does not mix unicrm's RateLimit-Policy into the provider's RateLimit headers", async () => {
    upstream.script({ method: 'POST', path: '/entities/Steps', times: 1, status: 429, headers: { 'RateLimit-Limit': '100', 'RateLimit-Remaining': '0', 'Retry-After': '7' } });
    const res = await create(viaUpstream);
    expect(res.status).toBe(429);
    expect(rateLimitHeaders(res.headers)).toEqual(['ratelimit-limit', 'ratelimit-remaining', 'retry-after']);
    expect(res.headers).toMatchObject({ 'ratelimit-limit': '100', 'ratelimit-remaining': '0', 'retry-after': '7' });
  });

  it('answers a remote 5xx without any rate-limit header', async () => {
    r.sandbox.injectFault({ method: 'POST', path: '/entities/Steps', status: 503, times: 1 });
    const res = await create(r.accountId);
    expect(res.status).toBe(503);
    expect(rateLimitHeaders(res.headers)).toEqual([]);
  });
});

describe("unicrm's own 429", () => {
  let r: Harness;
  beforeAll(async () => {
    r = await startHarness({ core: { config: { rateLimits: { perToken: 3, perAccount: 2, windowMs: 10_000 } } } });
  });
  afterAll(() => r.close());

  it('names the full window that resets last (the account), not the first limit that refused (the token)', async () => {
    const token = (await r.core.tokens.issue({ name: 'windows' })).token;
    const auth = { authorization: `Bearer ${token}` };
    // The token's window starts now, the account's more than a second later: the account's resets later.
    expect((await request(r.app).get('/integrated-account').set(auth)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const create = () => request(r.app).post(`/unified/crm/stages?integrated_account_id=${r.accountId}`).set(auth).send({ name: 'Windows' });
    expect((await create()).status).toBe(201);
    expect((await create()).status).toBe(201);
    // Token 4/3 (refused) and account 2/2 (full): a client waiting only for the token's window would be refused again.
    const refused = await create();
    expect(refused.status).toBe(429);
    expect(refused.body.message).toMatch(/^Rate limit exceeded: 2 requests per 10 s per integrated account\. Retry after \d+ s\.$/);
    expect(refused.headers).toMatchObject({ 'ratelimit-limit': '2', 'ratelimit-remaining': '0', 'ratelimit-reset': refused.headers['retry-after'] });
    // The token's own window resets sooner (a route without an account shows it).
    const tokenOnly = await request(r.app).get('/integrated-account').set(auth);
    expect(tokenOnly.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(Number(tokenOnly.headers['retry-after']));
    expect(r.sandbox.requests.filter((q) => q.method === 'POST')).toHaveLength(2);
  });
});
