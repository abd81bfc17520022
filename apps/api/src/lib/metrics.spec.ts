import { SANDBOX_SEED_IDS } from '@unicrm/sandboxes';
import request from 'supertest';
import { metricsListener } from './app';
import { AUTH, type Harness, startHarness } from '../testing/harness';

// Issue 14 item 6: GET /metrics on the metrics listener, fed by the front door and the core.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ core: { config: { rateLimits: { perToken: 0, perAccount: 3, windowMs: 60_000 } } } });
});
afterAll(() => h.close());

/** The value of one sample line of the exposition, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inside = line.slice(name.length + 1, line.indexOf('}'));
    const parts = inside.split(',');
    if (wanted.every((w) => parts.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('GET /metrics', () => {
  it('counts requests by route template, method, status and integration; provider calls; idempotency; caches; rate limits', async () => {
    const path = `/unified/crm/stages?integrated_account_id=${h.accountId}`;
    const body = { name: 'Metered', pipeline: { id: SANDBOX_SEED_IDS.salesPipelineId } };
    expect((await request(h.app).post(path).set(AUTH).set('idempotency-key', 'm-1').send(body)).status).toBe(201);
    expect((await request(h.app).post(path).set(AUTH).set('idempotency-key', 'm-1').send(body)).headers['idempotent-replayed']).toBe('true');
    expect((await request(h.app).get(path).set(AUTH)).status).toBe(200);
    // The account's limit is 3 a minute: the fourth is unicrm's own 429.
    expect((await request(h.app).get(path).set(AUTH)).status).toBe(429);
    expect((await request(h.app).get('/integrated-account').set(AUTH)).status).toBe(200);
    expect((await request(h.app).get('/no/such/route').set(AUTH)).status).toBe(404);

    const res = await request(metricsListener(h.app.metrics)).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const text = res.text;
    expect(sample(text, 'unicrm_http_requests_total', { route: '/unified/:model/:resource', method: 'POST', status: '201', integration: 'pipeliner' })).toBe(2);
    expect(sample(text, 'unicrm_http_requests_total', { route: '/unified/:model/:resource', method: 'GET', status: '200', integration: 'pipeliner' })).toBe(1);
    // Refused before routing: no route template, no integration.
    expect(sample(text, 'unicrm_http_requests_total', { route: 'unrouted', method: 'GET', status: '429', integration: '' })).toBe(1);
    expect(sample(text, 'unicrm_http_requests_total', { route: '/integrated-account', method: 'GET', status: '200' })).toBe(1);
    expect(sample(text, 'unicrm_http_requests_total', { route: 'unrouted', method: 'GET', status: '404' })).toBe(1);
    // The create's POST and its pipeline-name read, and the list's page read (the name cached since).
    expect(sample(text, 'unicrm_provider_request_duration_seconds_count', { integration: 'pipeliner', outcome: 'ok' })).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'unicrm_idempotency_total', { event: 'replayed' })).toBe(1);
    expect(sample(text, 'unicrm_rate_limit_rejections_total', { limit: 'account' })).toBe(1);
    expect(sample(text, 'unicrm_cache_lookups_total', { cache: 'accounts', result: 'hit' })).toBeGreaterThanOrEqual(1);
    expect(text).toContain('process_cpu_user_seconds_total');
    // SQLite: no pool.
    expect(text).not.toContain('unicrm_db_pool_waiting');
  });

  it('answers 404 beside /metrics', async () => {
    expect((await request(metricsListener(h.app.metrics)).get('/')).status).toBe(404);
  });
});
