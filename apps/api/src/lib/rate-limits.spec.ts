import request from 'supertest';
import { AUTH, type Harness, startHarness } from '../testing/harness';

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
      const res = await request(h.app).get(`/unified/crm/stages/meta/create?${query}`).set('authorization', `Bearer ${h.core.tokens.issue({ name: query }).token}`);
      expect([query, res.status]).toEqual([query, 429]);
    }
  });

  it('limits one token across routes', async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await request(h.app).get('/integrated-account').set(AUTH)).status);
    // The static token made 5 requests so far (connecting the harness account, the 4 creates above): 1 left.
    expect(statuses).toEqual([200, 429, 429]);
    const token = h.core.tokens.issue({ name: 'fresh' }).token;
    const fresh = [];
    for (let i = 0; i < 7; i++) fresh.push((await request(h.app).get('/integrated-account').set('authorization', `Bearer ${token}`)).status);
    expect(fresh).toEqual([200, 200, 200, 200, 200, 200, 429]);
  });

  it('does not count /health', async () => {
    for (let i = 0; i < 10; i++) expect((await request(h.app).get('/health')).status).toBe(200);
  });
});
