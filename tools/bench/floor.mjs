// The node:http floor: a bare node:http passthrough proxy with a keep-alive agent in front of the upstream. It
// forwards method, path and headers, streams the body both ways and parses nothing. Since issue 13 the benchmark's
// floor is the undici passthrough (floor-undici.mjs), which costs less per request; this one is measured beside it
// as "floor (node:http)", the gateway built on Node's own client.
//
// Run as a child process of bench.mjs: `node floor.mjs <upstream port> [port]`; prints `{"port":n}` once listening.
// Listens on 127.0.0.1 only.
import { Agent, createServer, request } from 'node:http';

/**
 * Starts the node:http passthrough in front of `127.0.0.1:<upstreamPort>`.
 * @returns {Promise<{ server: import('node:http').Server, port: number, close: () => Promise<void> }>}
 */
export function startHttpFloor(upstreamPort, port = 0) {
  if (!Number.isInteger(upstreamPort) || upstreamPort <= 0) throw new Error('usage: node floor.mjs <upstream port> [port]');
  // Same pool size as unicrm's undici Agent (128 connections per origin).
  const agent = new Agent({ keepAlive: true, maxSockets: 128, keepAliveMsecs: 10_000 });
  const server = createServer((req, res) => {
    const headers = { ...req.headers, host: `127.0.0.1:${upstreamPort}` };
    delete headers.connection;
    const upstream = request(
      { agent, host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers },
      (answer) => {
        const out = { ...answer.headers };
        delete out.connection;
        delete out['keep-alive'];
        res.writeHead(answer.statusCode ?? 502, out);
        answer.pipe(res);
      },
    );
    // A client that goes away mid-request (the load generator stops at the end of a run) must not leave the
    // upstream request half sent: its pooled socket would never come back.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end('{"statusCode":502}');
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const close = () => new Promise((done) => {
        server.closeAllConnections();
        server.close(() => done());
        agent.destroy();
      });
      resolve({ server, port: server.address().port, close });
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { port } = await startHttpFloor(Number(process.argv[2]), Number(process.argv[3] ?? 0));
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.on('SIGTERM', () => process.exit(0));
}
