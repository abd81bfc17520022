import type { Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { type Harness, startHarness, TEST_TOKEN } from '../testing/harness';
import { createHttpServer, SLOW_CLIENT_BOUNDS } from './server';

// Issue 12 item 7: the documented bounds on a slow client (head 15 s, whole request 60 s) held only at 43 s and 73 s,
// because Node checks them every connectionsCheckingInterval (30 s by default). Here with 1 s / 2 s bounds: a
// connection must be answered 408 and closed well before 5 s (a wide margin: the old check came after 30 s).

let h: Harness;
let server: Server;
let port: number;
const drips = new Set<NodeJS.Timeout>();
beforeAll(async () => {
  h = await startHarness();
  server = createHttpServer(h.app, { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  for (const timer of drips) clearInterval(timer);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await h.close();
});

/** Opens a raw connection, writes `head`, then one byte of `drip` every 200 ms; resolves with what came back and when. */
function slowClient(head: string, drip: string): Promise<{ answer: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket: Socket = connect(port, '127.0.0.1', () => socket.write(head));
    let answer = '';
    let next = 0;
    const timer = setInterval(() => {
      if (socket.writable && next < drip.length) socket.write(drip[next++] as string);
    }, 200);
    drips.add(timer);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      clearInterval(timer);
      drips.delete(timer);
      resolve({ answer, closedAfterMs: Date.now() - started });
    });
  });
}

describe('slow clients', () => {
  it('keeps the documented bounds by default', () => {
    expect(SLOW_CLIENT_BOUNDS).toEqual({ headersTimeoutMs: 15_000, requestTimeoutMs: 60_000 });
    const fresh = createHttpServer(h.app);
    expect([fresh.headersTimeout, fresh.requestTimeout]).toEqual([15_000, 60_000]);
  });

  it('answers 408 and closes a connection whose request head drips, soon after the head bound', async () => {
    const { answer, closedAfterMs } = await slowClient('POST /unified/crm/stages HTTP/1.1\r\nHost: x\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
    expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(answer).toContain('"message":"The request did not arrive in time."');
    expect(closedAfterMs).toBeLessThan(5_000);
  });

  it('answers 408 and closes a connection whose body drips, soon after the request bound', async () => {
    const head =
      `POST /unified/crm/stages?integrated_account_id=${h.accountId} HTTP/1.1\r\nHost: x\r\n` +
      `Authorization: Bearer ${TEST_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n`;
    const { answer, closedAfterMs } = await slowClient(head, `{"name":"${'s'.repeat(150)}"}`);
    expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(closedAfterMs).toBeLessThan(5_000);
    expect(h.sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
  });
});
