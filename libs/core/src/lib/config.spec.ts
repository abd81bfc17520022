import { configFromEnv, redactDatabaseUrl } from './config';

describe('configFromEnv: the deadlines, the lease and the bulkhead (issue 12)', () => {
  it('has the documented defaults', () => {
    expect(configFromEnv({})).toMatchObject({
      remoteTimeoutMs: 30_000,
      operationTimeoutMs: 60_000,
      idempotencyLeaseMs: 30_000,
      bulkhead: { maxInFlight: 16, maxQueued: 64 },
    });
  });

  it('reads each variable', () => {
    expect(
      configFromEnv({
        UNICRM_OPERATION_TIMEOUT_MS: '45000',
        UNICRM_IDEMPOTENCY_LEASE_MS: '9000',
        UNICRM_MAX_IN_FLIGHT_PER_ACCOUNT: '0',
        UNICRM_MAX_QUEUED_PER_ACCOUNT: '5',
      }),
    ).toMatchObject({ operationTimeoutMs: 45_000, idempotencyLeaseMs: 9_000, bulkhead: { maxInFlight: 0, maxQueued: 5 } });
  });

  it.each([
    ['UNICRM_OPERATION_TIMEOUT_MS', '0', 'UNICRM_OPERATION_TIMEOUT_MS must be a whole number >= 1, not "0".'],
    ['UNICRM_IDEMPOTENCY_LEASE_MS', '10', 'UNICRM_IDEMPOTENCY_LEASE_MS must be a whole number >= 30, not "10".'],
    ['UNICRM_MAX_IN_FLIGHT_PER_ACCOUNT', '-1', 'UNICRM_MAX_IN_FLIGHT_PER_ACCOUNT must be a whole number >= 0, not "-1".'],
    ['UNICRM_MAX_QUEUED_PER_ACCOUNT', '2.5', 'UNICRM_MAX_QUEUED_PER_ACCOUNT must be a whole number >= 0, not "2.5".'],
  ])('refuses a malformed %s', (name, value, message) => {
    expect(() => configFromEnv({ [name]: value })).toThrow(message);
  });
});

describe('redactDatabaseUrl (found by a review: a ?password= parameter was printed at start)', () => {
  it.each([
    ['postgres://unicrm:secret@db:5432/unicrm', 'postgres://unicrm:***@db:5432/unicrm'],
    ['postgres://db:5432/unicrm?user=unicrm&password=pgsecretpw', 'postgres://db:5432/unicrm?user=unicrm&password=***'],
    ['postgres://db/unicrm?PASSWORD=x&sslmode=require', 'postgres://db/unicrm?PASSWORD=***&sslmode=require'],
    ['postgres://db/unicrm', 'postgres://db/unicrm'],
  ])('%s -> %s', (url, shown) => {
    expect(redactDatabaseUrl(url)).toBe(shown);
    expect(redactDatabaseUrl(url)).not.toMatch(/secret|pgsecretpw|=x&/);
  });
});
