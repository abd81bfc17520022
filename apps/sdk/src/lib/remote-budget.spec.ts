import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createUnicrmClient, type Unicrm, UnicrmError } from '../index';

// The remote client's retry budget bounds the whole call, attempts included: a scripted server answers 429 with
// Retry-After, then hangs. Timings are asserted with wide margins only: the bug this holds (the last attempt ran
// its full timeoutMs past the budget) made the call last budget + 2 s at the very least.
type Step = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let baseUrl: string;
let script: Step[] = [];
const seen: { url: string; closed: Promise<void> }[] = [];

const rateLimited =
  (retryAfter: string): Step =>
  (_req, res) => {
    res.writeHead(429, { 'content-type': 'application/json', 'retry-after': retryAfter });
    res.end(JSON.stringify({ statusCode: 429, error: 'Too Many Requests', message: 'Slow down.' }));
  };
/** Never answers; the client must give up on its own. */
const hang: Step = () => undefined;

beforeAll(async () => {
  server = createServer((req, res) => {
    const closed = new Promise<void>((resolve) => res.once('close', () => resolve()));
    seen.push({ url: req.url ?? '', closed });
    const step = script.shift() ?? hang;
    step(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('the remote client within its retry budget', () => {
  let client: Unicrm;
  afterEach(async () => {
    await client.close();
    seen.length = 0;
  });

  it('cuts the last attempt to what is left of the budget (budget 5 s, timeout 3 s, 429 Retry-After 4, then a hang)', async () => {
    script = [rateLimited('4'), hang];
    client = createUnicrmClient({ baseUrl, token: 't', timeoutMs: 3000, retry: { budgetMs: 5000 } });
    const started = Date.now();
    const error = await client.accounts.list().catch((e: unknown) => e);
    const elapsed = Date.now() - started;

    expect(error).toBeInstanceOf(UnicrmError);
    expect((error as UnicrmError).statusCode).toBe(504);
    expect((error as UnicrmError).message).toContain('within the retry budget of 5000 ms');
    // It waited for Retry-After before the second attempt, and gave up well before 4 s + a full 3 s timeout.
    expect(seen).toHaveLength(2);
    expect(elapsed).toBeGreaterThanOrEqual(4000);
    expect(elapsed).toBeLessThan(5000 + 1500);
    // The hanging request was abandoned by the client, not left open.
    await seen[1]?.closed;
  }, 20_000);

  it('plans no retry whose wait ends past the budget', async () => {
    script = [rateLimited('6'), hang];
    client = createUnicrmClient({ baseUrl, token: 't', timeoutMs: 3000, retry: { budgetMs: 5000 } });
    const error = await client.accounts.list().catch((e: unknown) => e);
    expect((error as UnicrmError).statusCode).toBe(429);
    expect(seen).toHaveLength(1);
  });

  it('keeps the full timeout for an attempt that has the budget to spare', async () => {
    script = [hang];
    client = createUnicrmClient({ baseUrl, token: 't', timeoutMs: 500, retry: { budgetMs: 60_000, maxRetries: 0 } });
    const error = await client.accounts.list().catch((e: unknown) => e);
    expect((error as UnicrmError).statusCode).toBe(504);
    expect((error as UnicrmError).message).toContain('within 500 ms');
  });
});
