import { UnicrmError } from '@unicrm/model';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { type Lookup, UndiciTransport } from './undici-transport';

// UNICRM_REMOTE_TIMEOUT_MS is a deadline for the whole call (issue 12 item 4): undici's bodyTimeout is only the idle
// time between chunks, and time queued for a pooled connection was not counted at all.

let server: Server;
let base: string;
/** Requests the upstream holds without answering, in arrival order. */
let held: Array<{ req: IncomingMessage; res: ServerResponse }>;
let seen: number;
const drips = new Set<NodeJS.Timeout>();

beforeEach(async () => {
  held = [];
  seen = 0;
  server = createServer((req, res) => {
    seen += 1;
    if (req.url === '/drip') {
      // Answers at once, then one byte of body every 100 ms, forever: never idle for long, never done.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('[');
      const timer = setInterval(() => res.write(' '), 100);
      drips.add(timer);
      res.on('close', () => {
        clearInterval(timer);
        drips.delete(timer);
      });
      return;
    }
    if (req.url === '/hold') {
      held.push({ req, res });
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  for (const timer of drips) clearInterval(timer);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const failure = async (promise: Promise<unknown>): Promise<UnicrmError> => {
  try {
    await promise;
  } catch (error) {
    return error as UnicrmError;
  }
  throw new Error('the call succeeded');
};

describe('UndiciTransport deadline', () => {
  it('ends a call whose answer drips one byte per 100 ms at the deadline: 504, the request may have arrived', async () => {
    const transport = new UndiciTransport({ remoteTimeoutMs: 500, connectTimeoutMs: 1000 });
    try {
      const started = Date.now();
      const error = await failure(transport.request({ method: 'POST', url: `${base}/drip`, headers: {}, body: '{}' }));
      const elapsed = Date.now() - started;
      expect(error).toBeInstanceOf(UnicrmError);
      expect(error.statusCode).toBe(504);
      expect(error.message).toMatch(/^http:\/\/127\.0\.0\.1:\d+ did not answer within 500 ms \(the call's deadline, from waiting for a connection to the answer's last byte\)\.$/);
      expect(error.requestMayHaveArrived).toBe(true);
      expect(error.isRemote).toBe(true);
      // The body never idles for 500 ms, so undici's bodyTimeout alone would have waited forever. Wide margin.
      expect(elapsed).toBeLessThan(5000);
    } finally {
      await transport.close();
    }
  });

  it('counts the time queued for a pooled connection, and a call that never got one did not reach the provider', async () => {
    const transport = new UndiciTransport({ remoteTimeoutMs: 60_000, connectTimeoutMs: 1000 });
    try {
      // The pool has 128 connections per origin: 128 held calls take them all.
      const holding = Array.from({ length: 128 }, () => transport.request({ method: 'GET', url: `${base}/hold`, headers: {} }).catch((e: unknown) => e));
      await until(() => held.length === 128);
      const controller = new AbortController();
      const queued = failure(
        transport.request({ method: 'POST', url: `${base}/hold`, headers: {}, body: '{}', signal: controller.signal }),
      );
      // The 129th waits in the queue; its caller's deadline (an operation's) passes while it waits.
      controller.abort(new UnicrmError(504, 'The operation did not finish in time.', { truto_is_remote_error: true }));
      const error = await queued;
      expect(error.statusCode).toBe(504);
      expect(error.message).toBe('The operation did not finish in time.');
      expect(error.requestMayHaveArrived).toBe(false);
      expect(seen).toBe(128);
      for (const { res } of held) res.end('{}');
      expect((await Promise.all(holding)).every((r) => (r as { status?: number }).status === 200)).toBe(true);
    } finally {
      await transport.close();
    }
  });

  it('counts the time before sending (a TLS handshake that never ends) against the deadline: 504, not sent', async () => {
    // A TCP server that accepts and never answers: undici's connect timeout alone (60 s here) would wait it out.
    const sockets = new Set<Socket>();
    const silent = createNetServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const transport = new UndiciTransport({ remoteTimeoutMs: 400, connectTimeoutMs: 60_000 });
    try {
      const error = await failure(
        transport.request({ method: 'POST', url: `https://127.0.0.1:${(silent.address() as AddressInfo).port}/x`, headers: {}, body: '{}' }),
      );
      expect(error.statusCode).toBe(504);
      expect(error.message).toContain('did not answer within 400 ms');
      expect(error.requestMayHaveArrived).toBe(false);
    } finally {
      // undici still holds the handshake (its close waits for it): end it from the server's side.
      for (const socket of sockets) socket.destroy();
      await transport.close();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('hands a caller abort that is a UnicrmError through as a copy, marked by whether the request was sent', async () => {
    const transport = new UndiciTransport({ remoteTimeoutMs: 60_000, connectTimeoutMs: 1000 });
    try {
      const controller = new AbortController();
      const call = failure(transport.request({ method: 'POST', url: `${base}/hold`, headers: {}, body: '{}', signal: controller.signal }));
      await until(() => held.length === 1);
      const reason = new UnicrmError(504, 'deadline', { truto_is_remote_error: true });
      controller.abort(reason);
      const error = await call;
      expect(error).not.toBe(reason);
      expect(error.body).toEqual(reason.body);
      expect(error.requestMayHaveArrived).toBe(true);
      expect(reason.requestMayHaveArrived).toBe(false);
    } finally {
      await transport.close();
    }
  });

  it('answers normally within the deadline and says a refused connection never arrived', async () => {
    const transport = new UndiciTransport({ remoteTimeoutMs: 5000, connectTimeoutMs: 1000 });
    try {
      const answer = await transport.request({ method: 'GET', url: `${base}/ok`, headers: {} });
      expect(answer).toMatchObject({ status: 200, bodyText: '{"ok":true}' });
      const port = (server.address() as AddressInfo).port;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      const error = await failure(transport.request({ method: 'POST', url: `http://127.0.0.1:${port}/x`, headers: {}, body: '{}' }));
      expect(error.statusCode).toBe(502);
      expect(error.requestMayHaveArrived).toBe(false);
      server = createServer();
      server.listen(0, '127.0.0.1');
    } finally {
      await transport.close();
    }
  });
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('UndiciTransport outbound policy on resolved addresses (docs/connect.md "Webhooks", DESIGN.md §4)', () => {
  // A resolver that answers a fixed address for every name, in both of dns.lookup's shapes (one address, or `all`).
  const resolvingTo =
    (...addresses: string[]): Lookup =>
    (_host, options, callback) => {
      const all = addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
      if (options?.all) callback(null, all);
      else callback(null, all[0]?.address ?? '', all[0]?.family);
    };
  const port = () => (server.address() as AddressInfo).port;

  it('reaches a name that resolves to a loopback address over http (the control)', async () => {
    const transport = new UndiciTransport({ remoteTimeoutMs: 5000, connectTimeoutMs: 5000 }, { lookup: resolvingTo('127.0.0.1') });
    const answer = await transport.request({ method: 'GET', url: `http://receiver.example:${port()}/`, headers: {} });
    expect(answer.status).toBe(200);
    expect(seen).toBe(1);
    await transport.close();
  });

  it.each([
    ['a metadata address', ['169.254.169.254'], 'link-local or metadata'],
    ['an IPv4-mapped metadata address', ['::ffff:169.254.169.254'], 'link-local or metadata'],
    ['a non-loopback address over http', ['10.0.0.7'], 'not a loopback address'],
    ['a loopback and a metadata address (any forbidden one refuses)', ['127.0.0.1', '169.254.169.254'], 'link-local or metadata'],
  ])('refuses a name that resolves to %s, before connecting: 502 naming the policy', async (_what, addresses, reason) => {
    const transport = new UndiciTransport({ remoteTimeoutMs: 5000, connectTimeoutMs: 5000 }, { lookup: resolvingTo(...addresses) });
    const error = await failure(transport.request({ method: 'POST', url: `http://rebind.example:${port()}/hook`, headers: {}, body: '{}' }));
    expect(error).toBeInstanceOf(UnicrmError);
    expect(error.statusCode).toBe(502);
    expect(error.message).toContain('outbound policy');
    expect(error.message).toContain(reason);
    expect(error.requestMayHaveArrived).toBe(false);
    expect(seen).toBe(0);
    await transport.close();
  });
});
