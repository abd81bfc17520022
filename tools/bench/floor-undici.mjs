// The floor of any Node gateway (issue 13): a bare passthrough on a gateway's own undici client, in front of the
// upstream. An undici Pool of 128 connections (the size of unicrm's undici Agent per origin) and `stream()`, which
// writes the upstream's answer straight into the client's response: it forwards method, path and query, headers
// (all but the hop-by-hop ones) and the body both ways, and parses nothing. It beat the node:http passthrough
// (floor.mjs) in CPU per request, and unicrm, which also calls Pipeliner with undici, ran faster than that one in
// some runs: whatever a real gateway adds on top of this one is its own cost.
//
// Run as a child process of bench.mjs: `node floor-undici.mjs <upstream port> [port]`; prints `{"port":n}` once
// listening. Listens on 127.0.0.1 only.
import { createServer } from 'node:http';
import { Pool } from 'undici';

/**
 * Request headers not forwarded: hop-by-hop ones (RFC 9110 §7.6.1; undici refuses `connection` values other than
 * keep-alive/close, `transfer-encoding`, `keep-alive`, `upgrade` and `expect`), and `host`, which undici sets to the
 * upstream's.
 */
const NOT_FORWARDED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect', 'host']);

/** Writes the upstream's status and headers (less hop-by-hop ones) and hands undici the response to write into. */
function intoResponse({ statusCode, headers, opaque: res }) {
  delete headers.connection;
  delete headers['keep-alive'];
  delete headers['transfer-encoding'];
  res.writeHead(statusCode, headers);
  return res;
}

/**
 * Starts the undici passthrough in front of `127.0.0.1:<upstreamPort>`.
 * @returns {Promise<{ server: import('node:http').Server, port: number, close: () => Promise<void> }>}
 */
export function startUndiciFloor(upstreamPort, port = 0) {
  if (!Number.isInteger(upstreamPort) || upstreamPort <= 0) throw new Error('usage: node floor-undici.mjs <upstream port> [port]');
  const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 128, pipelining: 1, keepAliveTimeout: 10_000 });
  const server = createServer((req, res) => {
    const raw = req.rawHeaders;
    const headers = [];
    for (let i = 0; i < raw.length; i += 2) if (!NOT_FORWARDED.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1]);
    const length = req.headers['content-length'];
    const hasBody = length === undefined ? req.headers['transfer-encoding'] !== undefined : length !== '0';
    // The request's body is streamed as it comes (undici sends it with its Content-Length, or chunked without one).
    // A client that goes away mid-answer fails undici's write into `res`, which aborts the upstream request; one that
    // goes away mid-body fails the body stream, with the same effect: no pooled connection is left half used.
    pool.stream({ path: req.url, method: req.method, headers, body: hasBody ? req : null, opaque: res }, intoResponse, (error) => {
      if (!error) return;
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end('{"statusCode":502}');
      } else {
        res.destroy(error);
      }
    });
  });
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const close = async () => {
        server.closeAllConnections();
        await new Promise((done) => server.close(() => done()));
        await pool.destroy();
      };
      resolve({ server, port: server.address().port, close });
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { port } = await startUndiciFloor(Number(process.argv[2]), Number(process.argv[3] ?? 0));
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.on('SIGTERM', () => process.exit(0));
}
