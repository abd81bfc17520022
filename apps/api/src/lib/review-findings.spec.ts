import { SANDBOX_SEED_IDS } from '@unicrm/sandboxes';
import request from 'supertest';
import { AUTH, type Harness, startHarness } from '../testing/harness';

// Found by a review of the multi-node and Pipedrive work: a record id of ".." left the resource's path at the
// provider, and remote_data.__proto__ was dropped silently.
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());
beforeEach(() => h.sandbox.reset());

describe('record ids that are dot segments', () => {
  it.each([
    ['GET', '/unified/crm/stages/%2e%2e'],
    ['PATCH', '/unified/crm/stages/..'],
    ['DELETE', '/unified/crm/stages/%2E'],
    ['GET', '/proxy/Steps/%2e%2e'],
  ])('%s %s: 400, nothing sent to the provider', async (method, path) => {
    const agent = request(h.app);
    const verb = method.toLowerCase() as 'get' | 'patch' | 'delete';
    const res = await agent[verb](`${path}?integrated_account_id=${h.accountId}`)
      .set(AUTH)
      .set('content-type', 'application/json')
      .send(method === 'PATCH' ? '{"name":"x"}' : undefined);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toMatch(/not \. or \.\.|cannot be|id/);
    expect(h.sandbox.requests).toEqual([]);
  });
});

describe('remote_data keys that could reach a prototype', () => {
  it.each([
    ['{"__proto__":{"sort_order":5}}', 'remote_data.__proto__'],
    ['{"custom":{"constructor":{"x":1}}}', 'remote_data.custom.constructor'],
  ])('remote_data %s: 400 naming %s, nothing sent', async (remoteData, path) => {
    const res = await request(h.app)
      .post(`/unified/crm/stages?integrated_account_id=${h.accountId}`)
      .set(AUTH)
      .set('content-type', 'application/json')
      .send(`{"name":"P1","pipeline":{"id":"${SANDBOX_SEED_IDS.salesPipelineId}"},"remote_data":${remoteData}}`);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain(path);
    expect(h.sandbox.requests.filter((r) => r.method === 'POST')).toEqual([]);
  });
});
