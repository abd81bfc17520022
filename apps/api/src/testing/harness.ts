import { type CreateCoreOptions, createUnicrmCore, type UnicrmCore } from '@unicrm/core';
import { type RunningSandbox, startSandbox } from '@unicrm/sandboxes';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import request from 'supertest';
import { createApp, type UnicrmApp } from '../lib/app';

/** The API token every harness accepts. */
export const TEST_TOKEN = 'conformance-token-0123456789';
export const AUTH = { authorization: `Bearer ${TEST_TOKEN}` } as const;

/** A running API (core on a temporary data directory) in front of a sandbox, with captured logs. */
export interface Harness {
  app: UnicrmApp;
  core: UnicrmCore;
  sandbox: RunningSandbox;
  /** An account connected to the sandbox with the right credentials. */
  accountId: string;
  /** Every log line written so far, parsed. */
  logs: Array<Record<string, unknown>>;
  /** Connects one more Pipeliner account (context overrides merged over the sandbox's; `validate` as the API's). */
  connect(context?: Record<string, unknown>, validate?: boolean): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts the sandbox on an ephemeral port and an API core/app on a temporary data directory, with logs at
 * `debug` captured in memory, and connects one account.
 */
export async function startHarness(options: { core?: Partial<CreateCoreOptions> } = {}): Promise<Harness> {
  const sandbox = await startSandbox({ port: 0, faults: true, contract: true });
  const dir = mkdtempSync(join(tmpdir(), 'unicrm-harness-'));
  const logs: Array<Record<string, unknown>> = [];
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      done();
    },
  });
  const core = createUnicrmCore({
    env: {},
    logStream,
    ...options.core,
    config: {
      dataDir: dir,
      apiToken: TEST_TOKEN,
      logLevel: 'debug',
      rateLimits: { perToken: 0, perAccount: 0, windowMs: 10_000 },
      ...options.core?.config,
    },
  });
  const app = createApp(core);
  const connect = async (context: Record<string, unknown> = {}, validate = true) => {
    const res = await request(app)
      .post('/integrated-account')
      .set(AUTH)
      .send({
        integration: 'pipeliner',
        tenant_id: 'acme',
        context: { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: sandbox.username, password: sandbox.password, ...context },
        validate,
      });
    if (res.status !== 201) throw new Error(`could not connect an account: ${res.status} ${res.text}`);
    return res.body.id as string;
  };
  const accountId = await connect();
  return {
    app,
    core,
    sandbox,
    accountId,
    logs,
    connect,
    async close() {
      app.close();
      await core.close();
      await sandbox.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
