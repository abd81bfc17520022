import { createUnicrmCore, redactDatabaseUrl, type UnicrmCore } from '@unicrm/core';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { createApp, metricsListener, type UnicrmApp } from './lib/app';
import { createHttpServer } from './lib/server';

/**
 * Starts the unicrm HTTP API: `PORT` (default 8000; 0 = any free port) on `HOST` (default 127.0.0.1),
 * data in `UNICRM_DATA_DIR`, which it marks as served (`serving` of `createUnicrmCore`). Prints a new API token once
 * on a first start without `UNICRM_API_TOKEN`.
 * Stops cleanly on SIGINT/SIGTERM: stops accepting, lets in-flight requests finish (at most
 * `UNICRM_SHUTDOWN_TIMEOUT_MS`, default 10 000), closes the upstream pools and the database, exits 0.
 */
async function main(): Promise<void> {
  let core: UnicrmCore;
  try {
    // Marks the data directory as served until exit: `unicrm keys rotate` and `restore` refuse meanwhile.
    core = createUnicrmCore({ serving: true });
  } catch (error) {
    console.error(`unicrm cannot start: ${(error as Error).message}`);
    process.exit(1);
  }
  try {
    // PostgreSQL: migrations (once across nodes), the key check, the change feed.
    await core.start();
  } catch (error) {
    console.error(`unicrm cannot start: ${(error as Error).message}`);
    await core.close().catch(() => undefined);
    process.exit(1);
  }
  const token = await core.tokens.bootstrap();
  const port = Number(process.env.PORT ?? 8000);
  const host = process.env.HOST || '127.0.0.1';
  const shutdownTimeoutMs = Number(process.env.UNICRM_SHUTDOWN_TIMEOUT_MS || 10_000);
  const app = createApp(core);
  const server = createHttpServer(app).listen(port, host, () => {
    const actual = (server.address() as AddressInfo).port;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${actual}`;
    const store = core.config.databaseUrl ? `store: PostgreSQL ${redactDatabaseUrl(core.config.databaseUrl)}` : `data directory: ${core.config.dataDir}`;
    const lines = [`unicrm API listening on ${url}`, store];
    if (token) {
      lines.push(
        '',
        'A new API token was created. It is shown only this once; keep it:',
        `  export UNICRM_API_TOKEN=${token}`,
        'Send it as: Authorization: Bearer $UNICRM_API_TOKEN',
      );
    } else if (core.config.apiToken) {
      lines.push('API token: the value of UNICRM_API_TOKEN');
    }
    console.log(lines.join('\n'));
  });
  // The webhook worker: every serving node delivers the outbox's events (one delivery per event across nodes).
  core.webhookDispatcher.start();
  const metricsServer = serveMetrics(app);
  server.on('error', (error) => {
    const hint = (error as NodeJS.ErrnoException).code === 'EADDRINUSE' ? ' Set PORT to a free port (PORT=8001 npm start).' : '';
    console.error(`unicrm cannot listen on ${host}:${port}: ${error.message}.${hint}`);
    process.exit(1);
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: no new connections; finishing in-flight requests (at most ${shutdownTimeoutMs} ms)`);
    const force = setTimeout(() => {
      console.log('shutdown timeout: closing the remaining connections');
      server.closeAllConnections();
    }, shutdownTimeoutMs);
    force.unref();
    metricsServer?.close();
    server.close(() => {
      app.close();
      core
        .close()
        .then(() => {
          console.log('stopped');
          process.exit(0);
        })
        .catch((error: unknown) => {
          console.error(`error while stopping: ${(error as Error).message}`);
          process.exit(1);
        });
    });
    server.closeIdleConnections();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error(`unicrm cannot start: ${(error as Error).message}`);
  process.exit(1);
});

/**
 * The metrics listener: `UNICRM_METRICS_PORT` (default 9464, Prometheus' exporter range; `off` for none; 0 for any
 * free port) on `UNICRM_METRICS_HOST` (default 127.0.0.1, so not public unless chosen). A port in use is logged and
 * the API serves on without metrics.
 */
function serveMetrics(app: UnicrmApp): Server | undefined {
  const portText = process.env.UNICRM_METRICS_PORT || '9464';
  if (portText === 'off') return undefined;
  const port = Number(portText);
  const host = process.env.UNICRM_METRICS_HOST || '127.0.0.1';
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`UNICRM_METRICS_PORT must be a port number or off, not "${portText}": metrics are not served.`);
    return undefined;
  }
  const server = createServer(metricsListener(app.metrics));
  server.on('error', (error) => {
    console.error(`metrics not served: cannot listen on ${host}:${port}: ${error.message} (set UNICRM_METRICS_PORT to a free port, or off).`);
  });
  server.listen(port, host, () => {
    const actual = (server.address() as AddressInfo).port;
    console.log(`metrics: http://${host.includes(':') ? `[${host}]` : host}:${actual}/metrics`);
  });
  return server;
}
