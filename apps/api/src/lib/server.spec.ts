import type { Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { type Harness, startHarness, TEST_TOKEN } from '../testing/harness';
import { createHttpServer, SLOW_CLIENT_BOUNDS } from './server';

// Issue 12 item 7: the documented bounds on a slow client (head 15 s, whole request 60 s) held only at 43 s and 73 s,
// because Node checks them every connectionsCheckingInterval (30 s by default). Both bounds count from the request's
// first byte (from the connection's opening while it has sent nothing). Here with 1 s / 2 s bounds, checked every
// 250 ms: the 408 must come no sooner than the bound and well within 3 s after it (a wide margin: it is due within
// one check interval; the old check came after 30 s). A demo whose client waited a second before its first byte
// read 16.4 s from the connection for the 15 s head bound: 15.4 s from that first byte.

let h: Harness;
let server: Server;
let port: number;
const drips = new Set<NodeJS.Timeout>();
beforeAll(async () => {
  h = await startHarness();
  server = createHttpServer(h.app, BOUNDS);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  for (const timer of drips) clearTimeout(timer);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await h.close();
});

const BOUNDS = { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 };
/** Timers and clocks may disagree by a few milliseconds; nothing here is judged closer than this. */
const CLOCK_SLACK_MS = 50;
/** How late after its bound a 408 may come in these tests: one check interval (250 ms) plus a wide margin. */
const LATE_MARGIN_MS = 3_000;

interface SlowRun {
  answer: string;
  /** From the connection's opening to its close (ms). */
  closedAfterMs: number;
  /** From the request's first byte to the close (ms); undefined when no byte was sent. */
  closedAfterFirstByteMs: number | undefined;
}

/**
 * Opens a raw connection, waits `idleMs`, writes `head` (skipped when empty), then one byte of `drip` every 200 ms;
 * resolves with what came back and when.
 */
function slowClient(head: string, drip: string, idleMs = 0): Promise<SlowRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let firstByteAt: number | undefined;
    let answer = '';
    let next = 0;
    const timers: NodeJS.Timeout[] = [];
    const send = (text: string) => {
      if (!socket.writable || text === '') return;
      firstByteAt ??= Date.now();
      socket.write(text);
    };
    const socket: Socket = connect(port, '127.0.0.1', () => {
      const idle = setTimeout(() => {
        send(head);
        const timer = setInterval(() => next < drip.length && send(drip[next++] as string), 200);
        timers.push(timer);
        drips.add(timer);
      }, idleMs);
      timers.push(idle);
      drips.add(idle);
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      for (const timer of timers) {
        clearTimeout(timer);
        drips.delete(timer);
      }
      const now = Date.now();
      resolve({ answer, closedAfterMs: now - started, closedAfterFirstByteMs: firstByteAt === undefined ? undefined : now - firstByteAt });
    });
  });
}

describe('slow clients', () => {
  it('keeps the documented bounds by default', () => {
    expect(SLOW_CLIENT_BOUNDS).toEqual({ headersTimeoutMs: 15_000, requestTimeoutMs: 60_000 });
    const fresh = createHttpServer(h.app);
    expect([fresh.headersTimeout, fresh.requestTimeout]).toEqual([15_000, 60_000]);
  });

  it('answers 408 and closes a connection whose request head drips, within the check interval after the head bound, counted from its first byte', async () => {
    // The client idles 600 ms before its first byte: the bound runs from that byte, not from the connection.
    const run = await slowClient('POST /unified/crm/stages HTTP/1.1\r\nHost: x\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 600);
    expect(run.answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(run.answer).toContain('"message":"The request did not arrive in time."');
    expect(run.closedAfterFirstByteMs).toBeGreaterThanOrEqual(BOUNDS.headersTimeoutMs - CLOCK_SLACK_MS);
    expect(run.closedAfterFirstByteMs).toBeLessThan(BOUNDS.headersTimeoutMs + LATE_MARGIN_MS);
  });

  it('answers 408 and closes a connection that sends nothing, the head bound after it opened', async () => {
    const run = await slowClient('', '');
    expect(run.answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(run.closedAfterFirstByteMs).toBeUndefined();
    expect(run.closedAfterMs).toBeGreaterThanOrEqual(BOUNDS.headersTimeoutMs - CLOCK_SLACK_MS);
    expect(run.closedAfterMs).toBeLessThan(BOUNDS.headersTimeoutMs + LATE_MARGIN_MS);
  });

  it('answers 408 and closes a connection whose body drips, within the check interval after the request bound, counted from its first byte', async () => {
    const head =
      `POST /unified/crm/stages?integrated_account_id=${h.accountId} HTTP/1.1\r\nHost: x\r\n` +
      `Authorization: Bearer ${TEST_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n`;
    const run = await slowClient(head, `{"name":"${'s'.repeat(150)}"}`);
    expect(run.answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(run.closedAfterFirstByteMs).toBeGreaterThanOrEqual(BOUNDS.requestTimeoutMs - CLOCK_SLACK_MS);
    expect(run.closedAfterFirstByteMs).toBeLessThan(BOUNDS.requestTimeoutMs + LATE_MARGIN_MS);
    expect(h.sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
  });
});
