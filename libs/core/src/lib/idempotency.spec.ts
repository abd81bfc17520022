import { type HttpRequest, type HttpResponse, type HttpTransport, type IdempotencyStore, TOKENS, UnicrmError } from '@unicrm/model';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ENVIRONMENT } from './api-tokens';
import { createUnicrmCore, type UnicrmCore } from './core';
import { IdempotencyGuard } from './idempotency';

class CountingTransport implements HttpTransport {
  posts = 0;
  async request(request: HttpRequest): Promise<HttpResponse> {
    if (request.method === 'POST') this.posts += 1;
    return { status: 201, headers: {}, bodyText: JSON.stringify({ success: true, data: { id: `s${this.posts}`, name: 'x' } }) };
  }
  async close(): Promise<void> {}
}

let dir: string;
let core: UnicrmCore;
let transport: CountingTransport;
let now: Date;
let store: IdempotencyStore;
let accountId: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'unicrm-idem-'));
  transport = new CountingTransport();
  now = new Date('2026-06-01T00:00:00.000Z');
  core = createUnicrmCore({
    env: { UNICRM_IDEMPOTENCY_TTL_MS: '3600000', UNICRM_REMOTE_TIMEOUT_MS: '1000', UNICRM_CONNECT_TIMEOUT_MS: '1000' },
    config: { dataDir: dir, logLevel: 'silent' },
    register: (c) => {
      c.register(TOKENS.HttpTransport, { useValue: transport });
      c.register(TOKENS.Clock, { useValue: { now: () => now } });
      store = c.resolve<IdempotencyStore>(TOKENS.IdempotencyStore);
    },
  });
  accountId = (
    await core.accounts.create(DEFAULT_ENVIRONMENT, {
      integration: 'pipeliner',
      tenant_id: 't',
      context: { service_url: 'https://x.pipelinersales.com', space_id: 's', username: 'u', password: 'p' },
      validate: false,
    })
  ).id;
});
afterEach(async () => {
  await core.close();
  rmSync(dir, { recursive: true, force: true });
});

const create = (key: string) =>
  core.unified.create({ model: 'crm', resource: 'stages', environmentId: DEFAULT_ENVIRONMENT, query: `integrated_account_id=${accountId}`, body: { name: 'x' }, idempotencyKey: key });

describe('IdempotencyGuard', () => {
  it('replays within the TTL and runs again after it', async () => {
    expect((await create('k')).headers).toBeUndefined();
    now = new Date(now.getTime() + 3_599_000);
    expect((await create('k')).headers).toEqual({ 'idempotent-replayed': 'true' });
    now = new Date(now.getTime() + 2_000);
    expect((await create('k')).headers).toBeUndefined();
    expect(transport.posts).toBe(2);
  });

  it('takes over a key whose first request was lost with its process', async () => {
    const scopeId = createHash('sha256').update([DEFAULT_ENVIRONMENT, accountId, 'POST', '/unified/crm/stages', 'lost'].join('\n')).digest('hex');
    store.claim(scopeId, 'another request', now.toISOString(), new Date(now.getTime() + 3_600_000).toISOString());
    await expect(create('lost')).rejects.toMatchObject({ statusCode: 422 });
    now = new Date(now.getTime() + 2 * 1000 + 1000 + 5000 + 1);
    expect((await create('lost')).statusCode).toBe(201);
    expect(transport.posts).toBe(1);
  });

  it('prunes expired records', () => {
    store.claim('old', 'f', '2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z');
    store.claim('new', 'f', '2026-06-01T00:00:00.000Z', '2026-06-02T00:00:00.000Z');
    expect(store.prune('2026-03-01T00:00:00.000Z')).toBe(1);
    expect(store.claim('new', 'f', 'x', 'y')?.state).toBe('in_flight');
  });

  it.each([['"quoted"', 'quoted'], ['plain-key_1.2', 'plain-key_1.2']])('reads the key %s', (header, key) => {
    expect(IdempotencyGuard.parseKey(header)).toBe(key);
  });

  it('refuses a control character', () => {
    expect(() => IdempotencyGuard.parseKey('a\nb')).toThrow(UnicrmError);
  });
});
