import { createUnicrmCore } from '@unicrm/core';
import { createApp } from './lib/app';
import { createHttpServer } from './lib/server';

/**
 * Starts the unicrm HTTP API: `PORT` (default 8000) on `HOST` (default 127.0.0.1), data in
 * `UNICRM_DATA_DIR`. Prints a new API token once on a first start without `UNICRM_API_TOKEN`.
 * Stops cleanly on SIGINT/SIGTERM: no new connections, in-flight requests finish, pools and database close.
 */
function main(): void {
  let core;
  try {
    core = createUnicrmCore();
  } catch (error) {
    console.error(`unicrm cannot start: ${(error as Error).message}`);
    process.exit(1);
  }
  const token = core.tokens.bootstrap();
  const port = Number(process.env.PORT || 8000);
  const host = process.env.HOST || '127.0.0.1';
  const server = createHttpServer(createApp(core)).listen(port, host, () => {
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const lines = [`unicrm API listening on ${url}`, `data directory: ${core.config.dataDir}`];
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
  server.on('error', (error) => {
    console.error(`unicrm cannot listen on ${host}:${port}: ${error.message}`);
    process.exit(1);
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: finishing in-flight requests`);
    const force = setTimeout(() => server.closeAllConnections(), 10_000);
    force.unref();
    server.close(() => {
      void core.close().then(() => process.exit(0));
    });
    server.closeIdleConnections();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main();
