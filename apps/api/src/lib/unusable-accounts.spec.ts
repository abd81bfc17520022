import { IntegratedAccountSchema } from '@unicrm/model';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import request from 'supertest';
import { AUTH, type Harness, startHarness } from '../testing/harness';

// Issue 12, item 11: one account row the API cannot read (a tampered sealed_context, a public_context that is not
// JSON, an integration no longer registered) made GET /integrated-account answer 400 "next_cursor: is not a cursor
// this API gave out" for the whole environment. Each is tampered here directly in SQLite, as it could happen.
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());
beforeEach(() => h.sandbox.reset());

function tamper(id: string, column: 'sealed_context' | 'public_context' | 'integration', value: string): void {
  const db = new Database(join(h.core.config.dataDir, 'unicrm.sqlite'));
  db.prepare(`UPDATE integrated_accounts SET ${column} = ? WHERE id = ?`).run(value, id);
  db.close();
}

const list = () => request(h.app).get('/integrated-account?limit=500').set(AUTH);

describe.each([
  ['a tampered sealed_context', 'sealed_context', 'v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA==:AAAA', 'its stored credentials fail their integrity check'],
  ['a public_context that is not JSON', 'public_context', '{"service_url": "https://', 'its stored context (the part without secrets) is not a JSON object'],
  ['an integration no longer registered', 'integration', 'salesforce', 'it belongs to the integration "salesforce", which this unicrm does not have'],
] as const)('an account with %s', (_name, column, value, reason) => {
  let bad: string;
  beforeAll(async () => {
    bad = await h.connect({}, false);
    tamper(bad, column, value);
  });

  it('is listed with is_usable: false and why; the listing answers 200 with every account', async () => {
    const res = await list();
    expect(res.status).toBe(200);
    const ids = res.body.result.map((a: { id: string }) => a.id);
    expect(ids).toContain(h.accountId);
    expect(ids).toContain(bad);
    for (const account of res.body.result) expect(() => IntegratedAccountSchema.strict().parse(account)).not.toThrow();
    const shown = res.body.result.find((a: { id: string }) => a.id === bad);
    expect(shown).toMatchObject({ is_usable: false, status: 'active', last_error: expect.stringContaining(reason) });
    expect(res.body.result.find((a: { id: string }) => a.id === h.accountId)).toMatchObject({ is_usable: true, last_error: null });
    expect(res.text).not.toContain(h.sandbox.password);
    expect(res.text).not.toContain(h.sandbox.username);
    // Paging one account at a time walks over it.
    const walked: string[] = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const page: request.Response = await request(h.app)
        .get(`/integrated-account?limit=1${cursor ? `&next_cursor=${cursor}` : ''}`)
        .set(AUTH);
      expect(page.status).toBe(200);
      walked.push(...page.body.result.map((a: { id: string }) => a.id));
      cursor = page.body.next_cursor;
    }
    expect(walked).toEqual(ids);
  });

  it('is shown by GET /integrated-account/:id', async () => {
    const res = await request(h.app).get(`/integrated-account/${bad}`).set(AUTH);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: bad, is_usable: false, last_error: expect.stringContaining(reason) });
  });

  it('answers a create on it with a 500 that tells the operator what to do; nothing reaches Pipeliner', async () => {
    for (const key of [undefined, `unusable-${column}`]) {
      const call = request(h.app).post(`/unified/crm/stages?integrated_account_id=${bad}`).set(AUTH);
      const res = await (key ? call.set('idempotency-key', key) : call).send({ name: 'Qualified' });
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ statusCode: 500, error: 'Internal Server Error', message: expect.stringContaining(reason) });
      expect(res.body.message).toMatch(new RegExp(`^Integrated account ${bad} cannot be used`));
      expect(res.body.message).not.toMatch(/delete/i);
      expect(res.text).not.toContain(h.sandbox.password);
    }
    expect((await request(h.app).get(`/unified/crm/stages/meta/create?integrated_account_id=${bad}`).set(AUTH)).status).toBe(500);
    expect(h.sandbox.requests).toHaveLength(0);
  });

  it('can be deleted', async () => {
    const res = await request(h.app).delete(`/integrated-account/${bad}`).set(AUTH);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: bad });
    expect((await request(h.app).get(`/integrated-account/${bad}`).set(AUTH)).status).toBe(404);
    expect((await list()).body.result.map((a: { id: string }) => a.id)).not.toContain(bad);
  });
});

describe('repair with PATCH, as the messages say', () => {
  it('a public_context that is not JSON is written again by PATCH {"context": {}}, then the account creates stages', async () => {
    const id = await h.connect({}, false);
    tamper(id, 'public_context', 'garbage');
    const before = await request(h.app).get(`/integrated-account/${id}`).set(AUTH);
    expect(before.body.last_error).toContain(`PATCH /integrated-account/${id} with {"context": {}} writes that context again from them.`);
    const patched = await request(h.app).patch(`/integrated-account/${id}`).set(AUTH).send({ context: {} });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ is_usable: true, last_error: null, context: { service_url: h.sandbox.serviceUrl, space_id: h.sandbox.spaceId } });
    const created = await request(h.app).post(`/unified/crm/stages?integrated_account_id=${id}`).set(AUTH).send({ name: 'Repaired' });
    expect(created.status).toBe(201);
  });

  it('credentials that do not decrypt are replaced by PATCH with the whole context, and not by less', async () => {
    const id = await h.connect({}, false);
    tamper(id, 'sealed_context', 'v1:AAAA:AAAA:AAAA');
    const partial = await request(h.app).patch(`/integrated-account/${id}`).set(AUTH).send({ context: { password: h.sandbox.password } });
    expect(partial.status).toBe(500);
    expect(partial.body.message).toContain('and the whole context, secrets included (service_url, space_id, username, password)');
    const whole = await request(h.app)
      .patch(`/integrated-account/${id}`)
      .set(AUTH)
      .send({ context: { service_url: h.sandbox.serviceUrl, space_id: h.sandbox.spaceId, username: h.sandbox.username, password: h.sandbox.password } });
    expect(whole.status).toBe(200);
    expect(whole.body).toMatchObject({ is_usable: true, last_error: null });
    expect((await request(h.app).post(`/unified/crm/stages?integrated_account_id=${id}`).set(AUTH).send({ name: 'Re-stored' })).status).toBe(201);
  });
});
