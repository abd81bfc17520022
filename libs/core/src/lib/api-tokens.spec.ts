import { type ApiTokenStore, TOKENS, UnicrmError } from '@unicrm/model';
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
const refusal = (header: string | undefined): UnicrmError => {
  try {
    api.tokens.authenticate(header);
  } catch (error) {
    return error as UnicrmError;
  }
  throw new Error('expected a 401');
};

/** Lets the event loop turn, as between two requests. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('ApiTokenService.authenticate: served from memory', () => {
  it('hashes and looks a token up once while nothing changes, and answers a new object each time', () => {
    const { token, record } = api.tokens.issue({ name: 'ci', environment: 'staging' });
    const first = api.tokens.authenticate(`Bearer ${token}`);
    const second = api.tokens.authenticate(`Bearer ${token}`);
    expect(first).toEqual({ environmentId: 'staging', tokenId: record.id });
    expect(second).toEqual(first);
    expect(second).not.toBe(first);
    expect(lookups()).toBe(1);
  });

  it('judges expiry on each request from the remembered record and the clock', () => {
    const { token } = api.tokens.issue({ name: 'short', expiresInDays: 1 });
    expect(api.tokens.authenticate(`Bearer ${token}`).environmentId).toBe(DEFAULT_ENVIRONMENT);
    now = new Date('2026-06-02T11:59:59.999Z');
    expect(api.tokens.authenticate(`Bearer ${token}`).environmentId).toBe(DEFAULT_ENVIRONMENT);
    now = new Date('2026-06-02T12:00:00.000Z');
    expect(refusal(`Bearer ${token}`).message).toBe('The API token expired at 2026-06-02T12:00:00.000Z; use another one.');
    expect(refusal(`Bearer ${token}`).statusCode).toBe(401);
    expect(lookups()).toBe(1);
  });

  it('does not remember unknown tokens: each one is looked up, and a token issued since is accepted', () => {
    for (let i = 0; i < 3; i++) expect(refusal('Bearer ucrm_unknown').statusCode).toBe(401);
    expect(lookups()).toBe(3);
    const issued = otherProcess().tokens.issue({ name: 'new' });
    expect(api.tokens.authenticate(`Bearer ${issued.token}`)).toEqual({ environmentId: DEFAULT_ENVIRONMENT, tokenId: issued.record.id });
  });

  it('remembers only the header written "Bearer <token>"; other spellings are checked the long way each time', () => {
    const { token, record } = api.tokens.issue({ name: 'ci' });
    const spellings = [`bearer ${token}`, `Bearer  ${token}`, `Bearer ${token} `, `BEARER\t${token}`];
    for (let round = 0; round < 2; round++) {
      for (const header of spellings) expect(api.tokens.authenticate(header).tokenId).toBe(record.id);
    }
    expect(lookups()).toBe(8);
    api.tokens.authenticate(`Bearer ${token}`);
    api.tokens.authenticate(`Bearer ${token}`);
    expect(lookups()).toBe(9);
  });

  it('keeps at most TOKEN_CACHE_SIZE headers, dropping the one seen first', () => {
    const tokens = Array.from({ length: TOKEN_CACHE_SIZE + 1 }, (_, n) => api.tokens.issue({ name: `t${n}` }));
    for (const { token } of tokens) api.tokens.authenticate(`Bearer ${token}`);
    expect(lookups()).toBe(TOKEN_CACHE_SIZE + 1);
    expect(api.tokens.authenticate(`Bearer ${tokens[TOKEN_CACHE_SIZE]?.token}`).tokenId).toBe(tokens[TOKEN_CACHE_SIZE]?.record.id);
    expect(api.tokens.authenticate(`Bearer ${tokens[1]?.token}`).tokenId).toBe(tokens[1]?.record.id);
    expect(lookups()).toBe(TOKEN_CACHE_SIZE + 1);
    expect(api.tokens.authenticate(`Bearer ${tokens[0]?.token}`).tokenId).toBe(tokens[0]?.record.id);
    expect(lookups()).toBe(TOKEN_CACHE_SIZE + 2);
  }, 30_000);

  it('answers UNICRM_API_TOKEN without the store, before and after the store changes', async () => {
    await api.close();
    api = apiCore({ UNICRM_API_TOKEN: 'static-token' });
    expect(api.tokens.authenticate('Bearer static-token')).toEqual({ environmentId: DEFAULT_ENVIRONMENT, tokenId: 'static' });
    expect(api.tokens.authenticate('Bearer static-token')).toEqual({ environmentId: DEFAULT_ENVIRONMENT, tokenId: 'static' });
    expect(calls).toEqual({});
    const { token, record } = api.tokens.issue({ name: 'stored' });
    expect(api.tokens.authenticate(`Bearer ${token}`).tokenId).toBe(record.id);
    expect(api.tokens.authenticate('Bearer static-token').tokenId).toBe('static');
    expect(refusal('Bearer static-tokem').statusCode).toBe(401);
    expect(refusal('Bearer static-tokem').statusCode).toBe(401);
    expect(lookups()).toBe(3);
  });
});

describe('ApiTokenService.authenticate: revocation', () => {
  it('refuses a token revoked in this process on the next request', () => {
    const { token, record } = api.tokens.issue({ name: 'ci' });
    api.tokens.authenticate(`Bearer ${token}`);
    api.tokens.revoke(record.id);
    expect(refusal(`Bearer ${token}`).message).toBe('The API token was revoked; use another one.');
  });

  it('refuses a token another process revoked (unicrm tokens revoke) on the very next request', async () => {
    const { token, record } = api.tokens.issue({ name: 'ci' });
    const other = api.tokens.issue({ name: 'other' });
    expect(api.tokens.authenticate(`Bearer ${token}`).tokenId).toBe(record.id);
    expect(api.tokens.authenticate(`Bearer ${other.token}`).tokenId).toBe(other.record.id);
    otherProcess().tokens.revoke(record.id);
    await nextTurn(); // a request after the revocation: another process's commit is seen from the next event-loop turn on
    expect(refusal(`Bearer ${token}`).message).toBe('The API token was revoked; use another one.');
    expect(api.tokens.authenticate(`Bearer ${other.token}`).tokenId).toBe(other.record.id);
  });

  it('refuses a token another client in this process revoked, with no turn in between', () => {
    const { token, record } = api.tokens.issue({ name: 'ci' });
    expect(api.tokens.authenticate(`Bearer ${token}`).tokenId).toBe(record.id);
    otherProcess().tokens.revoke(record.id); // a second core on the same data directory, in this process
    expect(refusal(`Bearer ${token}`).message).toBe('The API token was revoked; use another one.');
  });

  it('refuses a token revoked by plain SQL on another connection', async () => {
    const { token, record } = api.tokens.issue({ name: 'ci' });
    api.tokens.authenticate(`Bearer ${token}`);
    const raw = new Database(join(dir, 'unicrm.sqlite'));
    raw.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ?').run('2026-06-01T12:00:00.000Z', record.id);
    raw.close();
    await nextTurn();
    expect(refusal(`Bearer ${token}`).message).toBe('The API token was revoked; use another one.');
  });
});
