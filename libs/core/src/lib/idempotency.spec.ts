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

  it('keeps a key used with another request by a process that died: 422 for a different request, also later', async () => {
    const scopeId = createHash('sha256').update([DEFAULT_ENVIRONMENT, accountId, 'POST', '/unified/crm/stages', 'lost'].join('\n')).digest('hex');
    await store.claim(scopeId, 'another request', now.toISOString(), new Date(now.getTime() + 3_600_000).toISOString(), { token: 't', expiresAt: now.toISOString() });
    await expect(create('lost')).rejects.toMatchObject({ statusCode: 422 });
    now = new Date(now.getTime() + 600_000);
    await expect(create('lost')).rejects.toMatchObject({ statusCode: 422 });
    expect(transport.posts).toBe(0);
  });

  it('prunes expired records', async () => {
    const lease = { token: 't', expiresAt: '2026-01-01T00:00:30.000Z' };
    await store.claim('old', 'f', '2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z', lease);
    await store.claim('new', 'f', '2026-06-01T00:00:00.000Z', '2026-06-02T00:00:00.000Z', lease);
    expect(await store.prune('2026-03-01T00:00:00.000Z')).toBe(1);
    expect((await store.claim('new', 'f', 'x', 'y', lease))?.state).toBe('in_flight');
  });

  it.each([['"quoted"', 'quoted'], ['plain-key_1.2', 'plain-key_1.2']])('reads the key %s', (header, key) => {
    expect(IdempotencyGuard.parseKey(header)).toBe(key);
  });

  it('refuses a control character', () => {
    expect(() => IdempotencyGuard.parseKey('a\nb')).toThrow(UnicrmError);
  });
});

/**
 * A transport whose first POST waits until the test answers it (a live create that runs for as long as the test
 * likes); later POSTs answer at once. `GET /Steps` (the lookup of an idempotent retry) answers `found`.
 */
class HeldTransport implements HttpTransport {
  posts: HttpRequest[] = [];
  lists = 0;
  found: Array<Record<string, unknown>> = [];
  private releaseFirst?: () => void;
  private firstArrived?: () => void;
  readonly firstPost = new Promise<void>((resolve) => {
    this.firstArrived = resolve;
  });

  async request(request: HttpRequest): Promise<HttpResponse> {
    if (request.method === 'GET') {
      this.lists += 1;
      return { status: 200, headers: {}, bodyText: JSON.stringify({ success: true, data: this.found }) };
    }
    this.posts.push(request);
    const step = { id: `step-${this.posts.length}`, name: 'x' };
    const answer = { status: 201, headers: {}, bodyText: JSON.stringify({ success: true, data: step }) };
    if (this.posts.length > 1) return answer;
    this.firstArrived?.();
    return new Promise((resolve) => {
      this.releaseFirst = () => resolve(answer);
    });
  }

  /** Answers the held first POST (201, `step-1`). */
  release(): void {
    this.releaseFirst?.();
  }

  async close(): Promise<void> {}
}

describe('an in-flight Idempotency-Key (issue 12: leases, not a fixed stale time)', () => {
  const LEASE_MS = 600_000;
  let shared: string;
  let cores: UnicrmCore[];
  let clockNow: Date;
  const clock = { now: () => clockNow };

  beforeEach(() => {
    shared = mkdtempSync(join(tmpdir(), 'unicrm-lease-'));
    cores = [];
    clockNow = new Date('2026-06-01T00:00:00.000Z');
  });
  afterEach(async () => {
    for (const c of cores) await c.close();
    rmSync(shared, { recursive: true, force: true });
  });

  /** A core on the shared data directory (another process, as far as the store can tell), with its own guard. */
  function startCore(held: HeldTransport): { core: UnicrmCore; guard: () => IdempotencyGuard } {
    let guard: (() => IdempotencyGuard) | undefined;
    const c = createUnicrmCore({
      // Remote timeout 1 s: the old rule took a key over after 2 × 1 s + 1 s + 5 s = 8 s.
      env: { UNICRM_REMOTE_TIMEOUT_MS: '1000', UNICRM_CONNECT_TIMEOUT_MS: '1000', UNICRM_IDEMPOTENCY_LEASE_MS: String(LEASE_MS) },
      config: { dataDir: shared, logLevel: 'silent' },
      register: (container) => {
        container.register(TOKENS.HttpTransport, { useValue: held });
        container.register(TOKENS.Clock, { useValue: clock });
        guard = () => container.resolve(IdempotencyGuard);
      },
    });
    cores.push(c);
    return { core: c, guard: guard as () => IdempotencyGuard };
  }

  const accountOn = async (c: UnicrmCore) =>
    (
      await c.accounts.create(DEFAULT_ENVIRONMENT, {
        integration: 'pipeliner',
        tenant_id: 't',
        context: { service_url: 'https://x.pipelinersales.com', space_id: 's', username: 'u', password: 'p' },
        validate: false,
      })
    ).id;
  const createOn = (c: UnicrmCore, account: string, key: string) =>
    c.unified.create({ model: 'crm', resource: 'stages', environmentId: DEFAULT_ENVIRONMENT, query: `integrated_account_id=${account}`, body: { name: 'x' }, idempotencyKey: key });
  const advance = (ms: number) => {
    clockNow = new Date(clockNow.getTime() + ms);
  };

  it('is never taken over while its request runs, however long (the issue\'s repro: the same key after 77 s)', async () => {
    const held = new HeldTransport();
    const { core: c } = startCore(held);
    const account = await accountOn(c);
    const first = createOn(c, account, 'live');
    await held.firstPost;
    // Far past the old stale time (8 s here, 75 s by default) and past the lease: the request is still running.
    advance(2 * LEASE_MS);
    await expect(createOn(c, account, 'live')).rejects.toMatchObject({
      statusCode: 409,
      message: 'A request with this Idempotency-Key is still being processed; retry after it finishes.',
    });
    held.release();
    expect((await first).body).toMatchObject({ id: 'step-1' });
    expect(held.posts).toHaveLength(1);
    expect((await createOn(c, account, 'live')).headers).toEqual({ 'idempotent-replayed': 'true' });
  });

  it('is not taken over by another process while its holder renews the lease', async () => {
    const heldA = new HeldTransport();
    const heldB = new HeldTransport();
    const a = startCore(heldA);
    const b = startCore(heldB);
    const account = await accountOn(a.core);
    const first = createOn(a.core, account, 'renewed');
    await heldA.firstPost;
    advance(2 * LEASE_MS);
    // What A's timer does every third of the lease.
    expect(await a.guard().renewLeases()).toBe(1);
    advance(LEASE_MS - 1);
    await expect(createOn(b.core, account, 'renewed')).rejects.toMatchObject({ statusCode: 409 });
    expect(heldB.posts).toHaveLength(0);
    expect(heldB.lists).toBe(0);
    heldA.release();
    expect((await first).statusCode).toBe(201);
    expect((await createOn(b.core, account, 'renewed')).headers).toEqual({ 'idempotent-replayed': 'true' });
  });

  it('treats a key abandoned by a dead process as ambiguous: settles, then finds its step instead of creating again', async () => {
    const heldA = new HeldTransport();
    const heldB = new HeldTransport();
    const a = startCore(heldA);
    const b = startCore(heldB);
    const account = await accountOn(a.core);
    // A sends the POST, then "dies": it renews no more (its timer would run only every LEASE_MS / 3 of real time).
    const first = createOn(a.core, account, 'abandoned');
    await heldA.firstPost;
    advance(LEASE_MS + 1);
    // The POST may have landed: wait until a write sent before the lease ended has had the time to land (2 × 1 s).
    await expect(createOn(b.core, account, 'abandoned')).rejects.toMatchObject({ statusCode: 409, headers: { 'retry-after': '2' } });
    advance(2_000);
    heldB.found = [{ id: 'step-1', name: 'x' }];
    const retry = await createOn(b.core, account, 'abandoned');
    expect(retry.statusCode).toBe(201);
    expect(retry.body).toMatchObject({ id: 'step-1' });
    expect(heldB.lists).toBe(1);
    expect(heldB.posts).toHaveLength(0);
    // A answers its own caller when its POST comes back, but cannot overwrite the record B completed.
    heldA.release();
    expect((await first).body).toMatchObject({ id: 'step-1' });
    const replay = await createOn(b.core, account, 'abandoned');
    expect(replay.headers).toEqual({ 'idempotent-replayed': 'true' });
    expect(replay.body).toMatchObject({ id: 'step-1' });
  });

  it('creates after an abandoned key when the lookup finds nothing', async () => {
    const heldA = new HeldTransport();
    const heldB = new HeldTransport();
    const a = startCore(heldA);
    const b = startCore(heldB);
    const account = await accountOn(a.core);
    void createOn(a.core, account, 'lost-before-sending');
    await heldA.firstPost;
    advance(LEASE_MS + 2_000);
    // heldB answers its first POST only when released: the retry creates, once.
    const retry = createOn(b.core, account, 'lost-before-sending');
    await heldB.firstPost;
    expect(heldB.lists).toBe(1);
    heldB.release();
    expect((await retry).statusCode).toBe(201);
    expect(heldB.posts).toHaveLength(1);
    heldA.release();
  });
});
