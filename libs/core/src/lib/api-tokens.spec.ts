import { type ApiTokenRecord, type ApiTokenStore, TOKENS, UnicrmError } from '@unicrm/model';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ENVIRONMENT, TOKEN_CACHE_SIZE } from './api-tokens';
import { createUnicrmCore, type UnicrmCore } from './core';
import { counting } from '../testing/fakes';

let dir: string;
/** The API's core: its token store counts its calls. */
let api: UnicrmCore;
let calls: Record<string, number>;
let now: Date;
const others: UnicrmCore[] = [];

function apiCore(env: NodeJS.ProcessEnv = {}): UnicrmCore {
  calls = {};
  return createUnicrmCore({
    env,
    config: { dataDir: dir, logLevel: 'silent' },
    register: (c) => {
      c.register(TOKENS.Clock, { useValue: { now: () => now } });
      c.register(TOKENS.ApiTokenStore, { useValue: counting(c.resolve<ApiTokenStore>(TOKENS.ApiTokenStore), calls) });
    },
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'unicrm-tokens-'));
  now = new Date('2026-06-01T12:00:00.000Z');
  api = apiCore();
});
afterEach(async () => {
  for (const core of others.splice(0)) await core.close();
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Another process on the same data directory (`unicrm tokens ...` in embedded mode): its own connection. */
function otherProcess(): UnicrmCore {
  const core = createUnicrmCore({ env: {}, config: { dataDir: dir, logLevel: 'silent' } });
  others.push(core);
  return core;
}

const lookups = () => calls.findByHash ?? 0;
const refusal = async (header: string | undefined): Promise<UnicrmError> => {
  try {
    await api.tokens.authenticate(header);
  } catch (error) {
    return error as UnicrmError;
  }
  throw new Error('expected a 401');
};

/** Lets the event loop turn, as between two requests. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('ApiTokenService.authenticate: served from memory', () => {
  it('hashes and looks a token up once while nothing changes, and answers a new object each time', async () => {
    const { token, record } = await api.tokens.issue({ name: 'ci', environment: 'staging' });
    const first = await api.tokens.authenticate(`Bearer ${token}`);
    const second = await api.tokens.authenticate(`Bearer ${token}`);
    expect(first).toEqual({ environmentId: 'staging', tokenId: record.id });
    expect(second).toEqual(first);
    expect(second).not.toBe(first);
    expect(lookups()).toBe(1);
  });

  it('judges expiry on each request from the remembered record and the clock', async () => {
    const { token } = await api.tokens.issue({ name: 'short', expiresInDays: 1 });
    expect((await api.tokens.authenticate(`Bearer ${token}`)).environmentId).toBe(DEFAULT_ENVIRONMENT);
    now = new Date('2026-06-02T11:59:59.999Z');
    expect((await api.tokens.authenticate(`Bearer ${token}`)).environmentId).toBe(DEFAULT_ENVIRONMENT);
    now = new Date('2026-06-02T12:00:00.000Z');
    expect((await refusal(`Bearer ${token}`)).message).toBe('The API token expired at 2026-06-02T12:00:00.000Z; use another one.');
    expect((await refusal(`Bearer ${token}`)).statusCode).toBe(401);
    expect(lookups()).toBe(1);
  });

  it('does not remember unknown tokens: each one is looked up, and a token issued since is accepted', async () => {
    for (let i = 0; i < 3; i++) expect((await refusal('Bearer ucrm_unknown')).statusCode).toBe(401);
    expect(lookups()).toBe(3);
    const issued = await otherProcess().tokens.issue({ name: 'new' });
    expect(await api.tokens.authenticate(`Bearer ${issued.token}`)).toEqual({ environmentId: DEFAULT_ENVIRONMENT, tokenId: issued.record.id });
  });

  it('remembers only the header written "Bearer <token>"; other spellings are checked the long way each time', async () => {
    const { token, record } = await api.tokens.issue({ name: 'ci' });
    const spellings = [`bearer ${token}`, `Bearer  ${token}`, `Bearer ${token} `, `BEARER\t${token}`];
    for (let round = 0; round < 2; round++) {
      for (const header of spellings) expect((await api.tokens.authenticate(header)).tokenId).toBe(record.id);
    }
    expect(lookups()).toBe(8);
    await api.tokens.authenticate(`Bearer ${token}`);
    await api.tokens.authenticate(`Bearer ${token}`);
    expect(lookups()).toBe(9);
  });

  it('keeps at most TOKEN_CACHE_SIZE headers, dropping the one seen first', async () => {
    const tokens: Array<{ token: string; record: ApiTokenRecord }> = [];
    for (let n = 0; n <= TOKEN_CACHE_SIZE; n++) tokens.push(await api.tokens.issue({ name: `t${n}` }));
    for (const { token } of tokens) await api.tokens.authenticate(`Bearer ${token}`);
    expect(lookups()).toBe(TOKEN_CACHE_SIZE + 1);
    expect((await api.tokens.authenticate(`Bearer ${tokens[TOKEN_CACHE_SIZE]?.token}`)).tokenId).toBe(tokens[TOKEN_CACHE_SIZE]?.record.id);
    expect((await api.tokens.authenticate(`Bearer ${tokens[1]?.token}`)).tokenId).toBe(tokens[1]?.record.id);
    expect(lookups()).toBe(TOKEN_CACHE_SIZE + 1);
    expect((await api.tokens.authenticate(`Bearer ${tokens[0]?.token}`)).tokenId).toBe(tokens[0]?.record.id);
    expect(lookups()).toBe(TOKEN_CACHE_SIZE + 2);
  }, 30_000);

  it('answers UNICRM_API_TOKEN without the store, before and after the store changes', async () => {
    await api.close();
    api = apiCore({ UNICRM_API_TOKEN: 'static-token' });
    expect(await api.tokens.authenticate('Bearer static-token')).toEqual({ environmentId: DEFAULT_ENVIRONMENT, tokenId: 'static' });
    expect(await api.tokens.authenticate('Bearer static-token')).toEqual({ environmentId: DEFAULT_ENVIRONMENT, tokenId: 'static' });
    expect(calls).toEqual({});
    const { token, record } = await api.tokens.issue({ name: 'stored' });
    expect((await api.tokens.authenticate(`Bearer ${token}`)).tokenId).toBe(record.id);
    expect((await api.tokens.authenticate('Bearer static-token')).tokenId).toBe('static');
    expect((await refusal('Bearer static-tokem')).statusCode).toBe(401);
    expect((await refusal('Bearer static-tokem')).statusCode).toBe(401);
    expect(lookups()).toBe(3);
  });
});

describe('ApiTokenService.authenticate: revocation', () => {
  it('refuses a token revoked in this process on the next request', async () => {
    const { token, record } = await api.tokens.issue({ name: 'ci' });
    await api.tokens.authenticate(`Bearer ${token}`);
    await api.tokens.revoke(record.id);
    expect((await refusal(`Bearer ${token}`)).message).toBe('The API token was revoked; use another one.');
  });

  it('refuses a token another process revoked (unicrm tokens revoke) on the very next request', async () => {
    const { token, record } = await api.tokens.issue({ name: 'ci' });
    const other = await api.tokens.issue({ name: 'other' });
    expect((await api.tokens.authenticate(`Bearer ${token}`)).tokenId).toBe(record.id);
    expect((await api.tokens.authenticate(`Bearer ${other.token}`)).tokenId).toBe(other.record.id);
    await otherProcess().tokens.revoke(record.id);
    await nextTurn(); // a request after the revocation: another process's commit is seen from the next event-loop turn on
    expect((await refusal(`Bearer ${token}`)).message).toBe('The API token was revoked; use another one.');
    expect((await api.tokens.authenticate(`Bearer ${other.token}`)).tokenId).toBe(other.record.id);
  });

  it('refuses a token another client in this process revoked, with no turn in between', async () => {
    const { token, record } = await api.tokens.issue({ name: 'ci' });
    expect((await api.tokens.authenticate(`Bearer ${token}`)).tokenId).toBe(record.id);
    await otherProcess().tokens.revoke(record.id); // a second core on the same data directory, in this process
    expect((await refusal(`Bearer ${token}`)).message).toBe('The API token was revoked; use another one.');
  });

  it('refuses a token revoked by plain SQL on another connection', async () => {
    const { token, record } = await api.tokens.issue({ name: 'ci' });
    await api.tokens.authenticate(`Bearer ${token}`);
    const raw = new Database(join(dir, 'unicrm.sqlite'));
    raw.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ?').run('2026-06-01T12:00:00.000Z', record.id);
    raw.close();
    await nextTurn();
    expect((await refusal(`Bearer ${token}`)).message).toBe('The API token was revoked; use another one.');
  });
});
