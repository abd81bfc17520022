import request from 'supertest';
import { AUTH, type Harness, startHarness } from '../testing/harness';

// Idempotency-Key on POST /unified/crm/stages (draft-ietf-httpapi-idempotency-key-header).
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());
beforeEach(() => h.sandbox.reset());

const SALES = '00000000-5a1e-4000-8000-000000000001';
const create = (key: string | undefined, body: object = { name: 'Once', pipeline: { id: SALES } }, query = '', accountId = h.accountId) => {
  const req = request(h.app).post(`/unified/crm/stages?integrated_account_id=${accountId}${query}`).set(AUTH);
  return (key === undefined ? req : req.set('idempotency-key', key)).send(body);
};
const posts = () => h.sandbox.requests.filter((r) => r.method === 'POST');

describe('Idempotency-Key', () => {
  it('creates once and replays the first answer with Idempotent-Replayed', async () => {
    const first = await create('key-1');
    const second = await create('key-1');
    expect(first.status).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(second.status).toBe(201);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.body).toEqual(first.body);
    expect(posts()).toHaveLength(1);
    expect(h.sandbox.steps().filter((s) => s.name === 'Once')).toHaveLength(1);
  });

  it('treats the same query in another encoding as the same request, and accepts a quoted key', async () => {
    const first = await create('"key-2"', { name: 'Enc' }, '&truto_exclude_fields[]=id&truto_ignore_remote_data=true');
    const again = await create('key-2', { name: 'Enc' }, '&truto_exclude_fields=id&truto_ignore_remote_data=1');
    expect(again.status).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(posts()).toHaveLength(1);
  });

  it('replays the raw format byte for byte', async () => {
    const first = await create('key-raw', { name: 'Raw' }, '&truto_response_format=raw');
    const again = await create('key-raw', { name: 'Raw' }, '&truto_response_format=raw');
    expect(again.text).toBe(first.text);
  });

  it('answers 422 when the key comes back with a different request', async () => {
    await create('key-3', { name: 'A' });
    const res = await create('key-3', { name: 'B' });
    expect(res.status).toBe(422);
    expect(res.body).toEqual({
      statusCode: 422,
      error: 'Unprocessable Entity',
      message: 'This Idempotency-Key was used with a different request; use a new key for a new request.',
    });
    expect(posts()).toHaveLength(1);
  });

  it('answers 409 while the first request with the key is still running', async () => {
    h.sandbox.injectFault({ method: 'POST', path: '/entities/Steps', latencyMs: 400, times: 1 });
    const [a, b] = await Promise.all([
      create('key-4'),
      new Promise((resolve) => setTimeout(resolve, 100)).then(() => create('key-4')),
    ]);
    expect([a?.status, b?.status]).toEqual([201, 409]);
    expect(b?.headers['retry-after']).toBe('1');
    expect(posts()).toHaveLength(1);
    const after = await create('key-4');
    expect(after.headers['idempotent-replayed']).toBe('true');
  });

  it('replays a remote 4xx, but lets a retry through after a 503 or a timeout', async () => {
    const orphan = { name: 'Orphan', pipeline: { id: '99999999-9999-4999-8999-999999999999' } };
    const first = await create('key-5', orphan);
    const replay = await create('key-5', orphan);
    expect([first.status, replay.status]).toEqual([422, 422]);
    expect(replay.body).toEqual(first.body);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(posts()).toHaveLength(1);

    h.sandbox.injectFault({ method: 'POST', path: '/entities/Steps', status: 503, times: 1 });
    expect((await create('key-6')).status).toBe(503);
    const retried = await create('key-6');
    expect(retried.status).toBe(201);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
  });

  it('scopes keys to the integrated account', async () => {
    const other = await h.connect();
    const a = await create('shared-key', { name: 'Scoped' });
    const b = await create('shared-key', { name: 'Scoped' }, '', other);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.headers['idempotent-replayed']).toBeUndefined();
    expect(posts()).toHaveLength(2);
  });

  it.each([
    ['an empty key', ''],
    ['a key over 255 characters', 'k'.repeat(256)],
    ['a key with a tab inside', 'key\twith-tab'],
  ])('answers 400 for %s', async (_case, key) => {
    const res = await create(key);
    expect(res.status).toBe(400);
    expect(res.body.details.failures).toEqual([{ path: 'Idempotency-Key', message: 'must be 1 to 255 printable ASCII characters' }]);
    expect(posts()).toHaveLength(0);
  });

  it('creates again without a key', async () => {
    await create(undefined);
    await create(undefined);
    expect(posts()).toHaveLength(2);
  });
});
