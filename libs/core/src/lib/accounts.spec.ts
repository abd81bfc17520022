import { type AccountStore, type HttpResponse, type StoredAccount, TOKENS, UnicrmError } from '@unicrm/model';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACCOUNT_CACHE_SIZE } from './accounts';
import { DEFAULT_ENVIRONMENT } from './api-tokens';
import { createUnicrmCore, type UnicrmCore } from './core';
import { FakeTransport, counting } from '../testing/fakes';

const PIPELINE = '11111111-1111-4111-8111-111111111111';
const json = (status: number, body: unknown): HttpResponse => ({ status, headers: {}, bodyText: JSON.stringify(body) });
const context = { service_url: 'https://eu-central.api.pipelinersales.com', space_id: 'fr_Myself', username: 'api-token', password: 'api-password' };
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

let dir: string;
/** The API's core: its account store counts its calls. */
let api: UnicrmCore;
let reads: Record<string, number>;
let transport: FakeTransport;
let now: Date;
const others: UnicrmCore[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'unicrm-accounts-'));
  transport = new FakeTransport();
  now = new Date('2026-06-01T12:00:00.000Z');
  reads = {};
  api = createUnicrmCore({
    env: {},
    config: { dataDir: dir, logLevel: 'silent' },
    register: (c) => {
      c.register(TOKENS.HttpTransport, { useValue: transport });
      c.register(TOKENS.Clock, { useValue: { now: () => now } });
      c.register(TOKENS.AccountStore, { useValue: counting(c.resolve<AccountStore>(TOKENS.AccountStore), reads) });
    },
  });
});
afterEach(async () => {
  for (const core of others.splice(0)) await core.close();
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Another process on the same data directory (the CLI in embedded mode): its own connection. */
function otherProcess(): UnicrmCore {
  const core = createUnicrmCore({ env: {}, config: { dataDir: dir, logLevel: 'silent' }, register: (c) => c.register(TOKENS.HttpTransport, { useValue: transport }) });
  others.push(core);
  return core;
}

async function connect(tenant = 'acme'): Promise<string> {
  return (await api.accounts.create(DEFAULT_ENVIRONMENT, { integration: 'pipeliner', tenant_id: tenant, context, validate: false })).id;
}

const storeReads = () => reads.get ?? 0;
const caught = async (fn: () => unknown): Promise<UnicrmError> => {
  try {
    await fn();
  } catch (error) {
    return error as UnicrmError;
  }
  throw new Error('expected a throw');
};

/** Lets the event loop turn, as between a request and another process's commit. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('IntegratedAccountService.load: served from memory', () => {
  it('reads an account once while nothing changes and hands out one frozen object', async () => {
    const id = await connect();
    const first = await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    const second = await api.accounts.load(DEFAULT_ENVIRONMENT, id.toUpperCase());
    expect(storeReads()).toBe(1);
    expect(second).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(first).toMatchObject({ id, environmentId: DEFAULT_ENVIRONMENT, tenantId: 'acme', status: 'active', context });

    for (let i = 0; i < 2; i++) {
      transport.answers.push(json(201, { success: true, data: { id: `step-${i}`, name: 'Won', pipeline_id: PIPELINE } }));
      // The pipeline's name is read once: the second create finds it in the connector's name cache.
      if (i === 0) transport.answers.push(json(200, { success: true, data: { id: PIPELINE, name: 'Sales' } }));
      const answer = await api.unified.create({ model: 'crm', resource: 'stages', environmentId: DEFAULT_ENVIRONMENT, query: `integrated_account_id=${id}`, body: { name: 'Won' } });
      expect(answer.statusCode).toBe(201);
    }
    expect(storeReads()).toBe(1);
    expect(transport.requests.map((r) => r.headers.authorization)).toEqual(Array(3).fill(basic('api-token', 'api-password')));
  });

  it('gives each get() caller its own context to change', async () => {
    const id = await connect();
    const shown = await api.accounts.get(DEFAULT_ENVIRONMENT, id);
    (shown.context as Record<string, unknown>).space_id = 'changed by a caller';
    expect((await api.accounts.get(DEFAULT_ENVIRONMENT, id)).context).toEqual({ service_url: context.service_url, space_id: 'fr_Myself' });
    expect(storeReads()).toBe(1);
  });

  it('does not remember a missing account, nor serve an account to another environment', async () => {
    const id = await connect();
    const missing = '33333333-3333-4333-8333-333333333333';
    expect((await caught(() => api.accounts.load(DEFAULT_ENVIRONMENT, missing))).statusCode).toBe(404);
    expect((await caught(() => api.accounts.load(DEFAULT_ENVIRONMENT, missing))).statusCode).toBe(404);
    expect(storeReads()).toBe(2);
    await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    expect((await caught(() => api.accounts.load('staging', id))).message).toBe(`Integrated account ${id} not found.`);
    expect(storeReads()).toBe(4);
  });

  it('keeps at most ACCOUNT_CACHE_SIZE accounts, dropping the one read first', async () => {
    const ids: string[] = [];
    for (let n = 0; n <= ACCOUNT_CACHE_SIZE; n++) ids.push(await connect(`tenant-${n}`));
    for (const id of ids) await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    expect(storeReads()).toBe(ACCOUNT_CACHE_SIZE + 1);
    expect((await api.accounts.load(DEFAULT_ENVIRONMENT, ids[ACCOUNT_CACHE_SIZE] as string)).tenantId).toBe(`tenant-${ACCOUNT_CACHE_SIZE}`);
    expect((await api.accounts.load(DEFAULT_ENVIRONMENT, ids[1] as string)).tenantId).toBe('tenant-1');
    expect(storeReads()).toBe(ACCOUNT_CACHE_SIZE + 1);
    expect((await api.accounts.load(DEFAULT_ENVIRONMENT, ids[0] as string)).tenantId).toBe('tenant-0');
    expect(storeReads()).toBe(ACCOUNT_CACHE_SIZE + 2);
  }, 60_000);
});

describe('IntegratedAccountService.load: changes in this process', () => {
  it('reads again after an update (tenant, credentials)', async () => {
    const id = await connect();
    await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    now = new Date('2026-06-01T12:00:05.000Z');
    await api.accounts.update(DEFAULT_ENVIRONMENT, id, { tenant_id: 'globex', context: { password: 'new-password' }, validate: false });
    const loaded = await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    expect(loaded).toMatchObject({ tenantId: 'globex', updatedAt: '2026-06-01T12:00:05.000Z', context: { ...context, password: 'new-password' } });
    expect(storeReads()).toBe(2); // the first load (the update's load is served from memory), the load after the update
  });

  it('refuses a deleted account', async () => {
    const id = await connect();
    await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    expect(await api.accounts.delete(DEFAULT_ENVIRONMENT, id)).toEqual({ id });
    expect((await caught(() => api.accounts.load(DEFAULT_ENVIRONMENT, id))).statusCode).toBe(404);
  });

  it('sees markNeedsReauth, and a create after a remote 401 answers 401 without calling Pipeliner', async () => {
    const id = await connect();
    const request = { model: 'crm', resource: 'stages', environmentId: DEFAULT_ENVIRONMENT, query: `integrated_account_id=${id}`, body: { name: 'Won' } };
    transport.answers.push(json(401, { success: false, http_status: 401, message: 'Invalid credentials' }));
    await expect(api.unified.create(request)).rejects.toMatchObject({ statusCode: 401, isRemote: true });
    expect(await api.accounts.load(DEFAULT_ENVIRONMENT, id)).toMatchObject({ status: 'needs_reauth', lastError: 'pipeliner answered 401: Invalid credentials' });
    await expect(api.unified.create(request)).rejects.toMatchObject({
      statusCode: 401,
      isRemote: false,
      message: `Integrated account ${id} needs re-authentication: pipeliner rejected its credentials. Update them with PATCH /integrated-account/:id.`,
    });
    expect(transport.requests).toHaveLength(1);
  });

  it('keeps an update made while a rejected call was under way (markNeedsReauth with the old account changes nothing)', async () => {
    const id = await connect();
    const before = await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    now = new Date('2026-06-01T12:00:05.000Z');
    await api.accounts.update(DEFAULT_ENVIRONMENT, id, { context: { password: 'new-password' }, validate: false });
    await api.accounts.markNeedsReauth(before, 'late 401');
    expect(await api.accounts.load(DEFAULT_ENVIRONMENT, id)).toMatchObject({ status: 'active', lastError: null, context: { password: 'new-password' } });
  });
});

describe('IntegratedAccountService.load: changes by another process on the same data directory', () => {
  it('sees new credentials and a new service URL', async () => {
    const id = await connect();
    await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    const cli = otherProcess();
    await cli.accounts.update(DEFAULT_ENVIRONMENT, id, {
      context: { service_url: 'https://us-east.api.pipelinersales.com', username: 'other-token', password: 'other-password' },
      validate: false,
    });
    await nextTurn(); // another process's commit is seen from the next event-loop turn on
    expect((await api.accounts.load(DEFAULT_ENVIRONMENT, id)).context).toEqual({
      service_url: 'https://us-east.api.pipelinersales.com',
      space_id: 'fr_Myself',
      username: 'other-token',
      password: 'other-password',
    });
  });

  it('sees a status change', async () => {
    const id = await connect();
    await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    const cli = otherProcess();
    await cli.accounts.markNeedsReauth(await cli.accounts.load(DEFAULT_ENVIRONMENT, id), 'rejected elsewhere');
    await nextTurn(); // another process's commit is seen from the next event-loop turn on
    expect(await api.accounts.load(DEFAULT_ENVIRONMENT, id)).toMatchObject({ status: 'needs_reauth', lastError: 'rejected elsewhere' });
  });

  it('refuses an account another process removed', async () => {
    const id = await connect();
    await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    await otherProcess().accounts.delete(DEFAULT_ENVIRONMENT, id);
    await nextTurn(); // another process's commit is seen from the next event-loop turn on
    expect((await caught(() => api.accounts.load(DEFAULT_ENVIRONMENT, id))).statusCode).toBe(404);
  });

  it('sees a plain SQL change made on another connection', async () => {
    const id = await connect();
    await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    const raw = new Database(join(dir, 'unicrm.sqlite'));
    raw.prepare("UPDATE integrated_accounts SET tenant_id = 'renamed', status = 'validation_error' WHERE id = ?").run(id);
    raw.close();
    await nextTurn(); // another process's commit is seen from the next event-loop turn on
    expect(await api.accounts.load(DEFAULT_ENVIRONMENT, id)).toMatchObject({ tenantId: 'renamed', status: 'validation_error' });
  });

  it('keeps serving after a data key rotation elsewhere: the re-sealed credentials are read again with the new key', async () => {
    const id = await connect();
    await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    const readsBefore = storeReads();
    expect((await otherProcess().rotateDataKey()).resealed).toBe(1);
    await nextTurn(); // another process's commit is seen from the next event-loop turn on
    expect((await api.accounts.load(DEFAULT_ENVIRONMENT, id)).context).toEqual(context);
    expect(storeReads()).toBe(readsBefore + 1);
  });

  it('does not keep serving credentials after a master key change and a data key rotation elsewhere (500 until restarted with the new key)', async () => {
    const id = await connect();
    await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    const readsBefore = storeReads();
    expect(otherProcess().rotateEncryptionKey().dataKeys).toBe(1);
    expect((await otherProcess().rotateDataKey()).resealed).toBe(1);
    await nextTurn(); // another process's commit is seen from the next event-loop turn on
    expect((await caught(() => api.accounts.load(DEFAULT_ENVIRONMENT, id))).statusCode).toBe(500);
    expect(storeReads()).toBe(readsBefore + 1);
    expect((await otherProcess().accounts.load(DEFAULT_ENVIRONMENT, id)).context).toEqual(context);
  });

  it('reads again after a master key change through its own connection, and keeps serving (its data key did not change)', async () => {
    const id = await connect();
    await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    const readsBefore = storeReads();
    api.rotateEncryptionKey();
    await nextTurn(); // another process's commit is seen from the next event-loop turn on
    expect((await api.accounts.load(DEFAULT_ENVIRONMENT, id)).context).toEqual(context);
    expect(storeReads()).toBe(readsBefore + 1);
  });

  it('serves from memory again once the change is read', async () => {
    const id = await connect();
    await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    await otherProcess().accounts.update(DEFAULT_ENVIRONMENT, id, { tenant_id: 'globex', validate: false });
    await nextTurn(); // another process's commit is seen from the next event-loop turn on
    const first: StoredAccount = await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    const readsAfter = storeReads();
    await nextTurn(); // another process's commit is seen from the next event-loop turn on
    expect(await api.accounts.load(DEFAULT_ENVIRONMENT, id)).toBe(first);
    expect(first.tenantId).toBe('globex');
    expect(storeReads()).toBe(readsAfter);
  });
});

describe('IntegratedAccountService.load: another client in this process on the same data directory', () => {
  it('refuses an account the other client removed, and sees its new credentials, with no turn in between', async () => {
    const id = await connect();
    await api.accounts.load(DEFAULT_ENVIRONMENT, id);
    const sdk = otherProcess(); // a second core in this process (two createUnicrm() on one data directory)
    await sdk.accounts.update(DEFAULT_ENVIRONMENT, id, { context: { password: 'changed-password' }, validate: false });
    expect((await api.accounts.load(DEFAULT_ENVIRONMENT, id)).context.password).toBe('changed-password');
    await sdk.accounts.delete(DEFAULT_ENVIRONMENT, id);
    expect((await caught(() => api.accounts.load(DEFAULT_ENVIRONMENT, id))).statusCode).toBe(404);
  });
});
