import { type HttpResponse, TOKENS, UnicrmError } from '@unicrm/model';
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ENVIRONMENT } from './api-tokens';
import { createUnicrmCore, type UnicrmCore } from './core';
import { backupDataDirectory, DataDirectoryInUseError, restoreDataDirectory } from './data-directory';
import { FakeTransport } from '../testing/fakes';

// Issue 12, items 2 and 11: an account the API cannot use is listed, shown and deletable, and calls on it answer a
// 500 that tells the operator what to do (never a 400 blaming the caller, never "delete the account").
const PIPELINE = '11111111-1111-4111-8111-111111111111';
const json = (status: number, body: unknown): HttpResponse => ({ status, headers: {}, bodyText: JSON.stringify(body) });
const created = json(201, {
  success: true,
  data: { id: '22222222-2222-4222-8222-222222222222', name: 'Won', sort_order: 5, is_deleted: false, pipeline_id: PIPELINE, created: '2024-07-09 12:51:48.050073+00:00', modified: '2024-07-09 12:51:48.050073+00:00' },
});
const pipelineName = json(200, { success: true, data: { id: PIPELINE, name: 'Sales' } });
const context = { service_url: 'https://eu-central.api.pipelinersales.com', space_id: 'fr_Myself', username: 'api-token-SECRET', password: 'api-password-SECRET' };
const env = DEFAULT_ENVIRONMENT;

let dir: string;
let core: UnicrmCore;
let transport: FakeTransport;
const others: UnicrmCore[] = [];
/** Each account is created a millisecond after the one before: listings come in creation order. */
let ticks = 0;

function open(options: { serving?: boolean } = {}): UnicrmCore {
  return createUnicrmCore({
    env: {},
    config: { dataDir: dir, logLevel: 'silent' },
    serving: options.serving,
    register: (c) => {
      c.register(TOKENS.HttpTransport, { useValue: transport });
      c.register(TOKENS.Clock, { useValue: { now: () => new Date(Date.UTC(2026, 0, 1, 0, 0, 0, ticks++)) } });
    },
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'unicrm-unusable-'));
  transport = new FakeTransport();
  core = open();
});
afterEach(async () => {
  for (const other of others.splice(0)) await other.close();
  await core.close();
  rmSync(dir, { recursive: true, force: true });
});

async function connect(tenant: string): Promise<string> {
  return (await core.accounts.create(env, { integration: 'pipeliner', tenant_id: tenant, context, validate: false })).id;
}

/** Changes a row directly in SQLite, as someone with the database file could (another connection). */
function tamper(id: string, sql: string, value: string): void {
  const raw = new Database(join(dir, 'unicrm.sqlite'));
  raw.prepare(`UPDATE integrated_accounts SET ${sql} = ? WHERE id = ?`).run(value, id);
  raw.close();
}

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: UnicrmError) => e,
  );
const caught = async (fn: () => unknown): Promise<UnicrmError> => {
  try {
    await fn();
  } catch (error) {
    return error as UnicrmError;
  }
  throw new Error('expected a throw');
};
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** What no answer about an unusable account may say. */
function expectNoSecretNorDeleteAdvice(text: string): void {
  expect(text).not.toMatch(/SECRET/);
  expect(text).not.toMatch(/delete/i);
}

describe.each([
  ['credentials that fail their integrity check', 'sealed_context', 'v1:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA==:AAAA', 'fail their integrity check'],
  ['a public context that is not JSON', 'public_context', '{"service_url": ', 'is not a JSON object'],
  ['an integration this unicrm does not have', 'integration', 'salesforce', 'belongs to the integration "salesforce", which this unicrm does not have (it has: hubspot, pipedrive, pipeliner)'],
])('an account with %s', (_name, column, value, reason) => {
  let good: string;
  let bad: string;
  let last: string;
  beforeEach(async () => {
    good = await connect('a');
    bad = await connect('b');
    last = await connect('c');
    tamper(bad, column, value);
    await nextTurn();
  });

  it('is listed with is_usable: false and why, and the others as before (no 400 "next_cursor")', async () => {
    const page = await core.accounts.list(env, '');
    expect(page.result.map((a) => [a.id, a.is_usable])).toEqual([
      [good, true],
      [bad, false],
      [last, true],
    ]);
    const shown = page.result[1];
    expect(shown?.status).toBe('active'); // the stored status is kept
    expect(shown?.last_error).toContain(`Integrated account ${bad} cannot be used`);
    expect(shown?.last_error).toContain(reason);
    expectNoSecretNorDeleteAdvice(JSON.stringify(page));
    // Pages that end or start on it.
    const first = await core.accounts.list(env, 'limit=2');
    expect(first.result.map((a) => a.id)).toEqual([good, bad]);
    expect((await core.accounts.list(env, { limit: 2, next_cursor: first.next_cursor })).result.map((a) => a.id)).toEqual([last]);
    // A real bad cursor is still the caller's 400.
    expect((await caught(() => core.accounts.list(env, 'next_cursor=not-a-cursor'))).body).toMatchObject({
      statusCode: 400,
      details: { failures: [{ path: 'next_cursor', message: 'is not a cursor this API gave out' }] },
    });
  });

  it('is shown by get, and can be deleted', async () => {
    const shown = await core.accounts.get(env, bad);
    expect(shown).toMatchObject({ id: bad, is_usable: false, last_error: expect.stringContaining(reason) });
    expect(await core.accounts.delete(env, bad)).toEqual({ id: bad });
    expect((await caught(() => core.accounts.get(env, bad))).statusCode).toBe(404);
    expect((await core.accounts.list(env, '')).result.map((a) => a.id)).toEqual([good, last]);
  });

  it('answers a create on it with a 500 that says what to do, and sends nothing', async () => {
    const error = await rejection(core.unified.create({ model: 'crm', resource: 'stages', environmentId: env, query: `integrated_account_id=${bad}`, body: { name: 'Won' } }));
    expect(error).toBeInstanceOf(UnicrmError);
    expect(error.statusCode).toBe(500);
    expect(error.isRemote).toBe(false);
    expect(error.message).toContain(reason);
    expectNoSecretNorDeleteAdvice(error.message);
    expect((await caught(() => core.unified.meta({ environmentId: env, model: 'crm', resource: 'stages', method: 'create', query: `integrated_account_id=${bad}` }))).statusCode).toBe(500);
    expect(transport.requests).toHaveLength(0);
    // The other accounts work.
    transport.answers.push(created, pipelineName);
    expect((await core.unified.create({ model: 'crm', resource: 'stages', environmentId: env, query: `integrated_account_id=${good}`, body: { name: 'Won', pipeline: { id: PIPELINE } } })).statusCode).toBe(201);
  });
});

describe('repairing an unusable account with PATCH', () => {
  it('writes a public context that is not JSON again from the credentials', async () => {
    const id = await connect('a');
    tamper(id, 'public_context', 'not json');
    await nextTurn();
    expect((await core.accounts.get(env, id)).last_error).toContain(`PATCH /integrated-account/${id} with {"context": {}} writes that context again`);
    const repaired = await core.accounts.update(env, id, { context: {}, validate: false });
    expect(repaired).toMatchObject({ is_usable: true, last_error: null, context: { service_url: context.service_url, space_id: context.space_id } });
    expect((await core.accounts.load(env, id)).context).toEqual(context);
  });

  it('asks for the whole context when the credentials do not decrypt, and takes it', async () => {
    const id = await connect('a');
    tamper(id, 'sealed_context', 'v1:AAAA:AAAA:AAAA');
    await nextTurn();
    const message = (await core.accounts.get(env, id)).last_error as string;
    expect(message).toContain(`PATCH /integrated-account/${id} and the whole context, secrets included (service_url, space_id, username, password)`);
    expect(message).toContain('restore a backup made before the damage (unicrm restore)');
    // A partial context cannot be merged into credentials nobody can read.
    for (const body of [{ tenant_id: 'x' }, { context: { password: 'new-password' } }]) {
      const refused = await rejection(core.accounts.update(env, id, { ...body, validate: false }));
      expect(refused.statusCode).toBe(500);
      expect(refused.message).toBe(message);
    }
    const fresh = { ...context, password: 'new-password' };
    expect(await core.accounts.update(env, id, { context: fresh, validate: false })).toMatchObject({ is_usable: true, last_error: null });
    expect((await core.accounts.load(env, id)).context).toEqual(fresh);
  });
});

describe('a key rotated by another process while this one runs', () => {
  it('is refused while this core serves the data directory', async () => {
    const api = open({ serving: true });
    others.push(api);
    const id = (await api.accounts.create(env, { integration: 'pipeliner', tenant_id: 't', context, validate: false })).id;
    const keyBefore = readFileSync(join(dir, 'encryption.key'), 'utf8');
    const error = await caught(() => core.rotateEncryptionKey());
    expect(error).toBeInstanceOf(DataDirectoryInUseError);
    expect(error.message).toContain(`keys rotate --master refused: the unicrm API is serving the data directory ${dir} (pid ${process.pid}`);
    expect(readFileSync(join(dir, 'encryption.key'), 'utf8')).toBe(keyBefore);
    expect((await api.accounts.load(env, id)).context).toEqual(context);
    // The data key is rotated while it serves.
    expect((await core.rotateDataKey()).resealed).toBe(1);
    expect((await api.accounts.load(env, id)).context).toEqual(context);
    await api.close();
    expect(core.rotateEncryptionKey().dataKeys).toBe(1);
  });

  it('makes this process answer 500 "restart" after a master key change and a data key rotation, and it never stores an account with the old key', async () => {
    const id = await connect('a');
    const rotating = open();
    others.push(rotating);
    rotating.rotateEncryptionKey();
    const withNewKey = open();
    others.push(withNewKey);
    await withNewKey.rotateDataKey();
    await nextTurn();

    const list = await core.accounts.list(env, '');
    expect(list.result.map((a) => a.is_usable)).toEqual([false]);
    expect(list.result[0]?.last_error).toContain('another process changed the key (unicrm keys rotate --master, or unicrm restore) while this one was running. Restart this process');
    const call = await rejection(core.unified.create({ model: 'crm', resource: 'stages', environmentId: env, query: `integrated_account_id=${id}`, body: { name: 'Won' } }));
    expect(call.statusCode).toBe(500);
    expect(call.message).toContain(`Restart this process (the API: stop it and start it again) so that it loads the current key from ${dir}/encryption.key`);
    expectNoSecretNorDeleteAdvice(call.message);

    const create = await rejection(core.accounts.create(env, { integration: 'pipeliner', tenant_id: 'b', context, validate: false }));
    expect(create.statusCode).toBe(500);
    expect(create.message).toMatch(/^The integrated account was not stored\. The encryption key this process loaded at start no longer opens/);
    const patch = await rejection(core.accounts.update(env, id, { tenant_id: 'renamed', validate: false }));
    expect(patch.statusCode).toBe(500);
    // Nothing was written with the old key: a process started with the current key reads everything there is.
    const restarted = open();
    others.push(restarted);
    expect((await restarted.accounts.list(env, '')).result.map((a) => [a.id, a.tenant_id, a.is_usable])).toEqual([[id, 'a', true]]);
    expect(transport.requests).toHaveLength(0);
  });
});

describe('backupDataDirectory and restoreDataDirectory', () => {
  it('find the data directory and the key as the API does, and say where the key is', async () => {
    const id = await connect('a');
    const file = join(dir, '..', `${dir.split('/').pop()}-backup.sqlite`);
    try {
      const backup = await backupDataDirectory(file, { env: { UNICRM_DATA_DIR: dir } });
      expect(backup).toMatchObject({ dataDir: dir, file, accounts: 1, keyLocation: join(dir, 'encryption.key'), keyFound: true });
      const withEnvKey = await backupDataDirectory(file, { env: { UNICRM_DATA_DIR: dir, UNICRM_ENCRYPTION_KEY: 'k' }, overwrite: true });
      expect(withEnvKey).toMatchObject({ keyLocation: 'UNICRM_ENCRYPTION_KEY', keyFound: false });

      await core.accounts.delete(env, id);
      await core.close();
      const restored = await restoreDataDirectory(file, { dataDir: dir });
      expect(restored).toMatchObject({ dataDir: dir, accounts: 1, keyLocation: join(dir, 'encryption.key'), keyFound: true });
      expect(existsSync(restored.previous as string)).toBe(true);
      core = open();
      expect((await core.accounts.load(env, id)).context).toEqual(context);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
