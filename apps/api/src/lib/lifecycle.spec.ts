import { claimExclusive, createUnicrmCore, DataDirectoryInUseError } from '@unicrm/core';
import Database from 'better-sqlite3';
import { type RunningSandbox, startSandbox } from '@unicrm/sandboxes';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';

// The API as it runs in production: the built main.js in its own process (the test target builds first).
const MAIN = join(__dirname, '../../../../dist/apps/api/src/main.js');
const TOKEN = 'lifecycle-token';
const SALES = '00000000-5a1e-4000-8000-000000000001';

interface Api {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

const started: ChildProcess[] = [];

function startApi(dataDir: string): Promise<Api> {
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      UNICRM_DATA_DIR: dataDir,
      UNICRM_API_TOKEN: TOKEN,
      UNICRM_LOG_LEVEL: 'warn',
      UNICRM_RATE_LIMIT_PER_ACCOUNT: '0',
      UNICRM_RATE_LIMIT_PER_TOKEN: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the API did not start: ${output}`)), 15_000);
    const poll = setInterval(() => {
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearInterval(poll);
        clearTimeout(timer);
        resolve({ child, url: match[1] as string, output: () => output, exited });
      }
    }, 20);
  });
}

async function call(api: Api, method: 'GET' | 'POST', path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await request(`${api.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as Record<string, unknown> };
}

let sandbox: RunningSandbox;
let dir: string;
beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npx nx run api:build\` first (nx test does).`);
  sandbox = await startSandbox({ port: 0 });
});
afterAll(() => sandbox.close());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'unicrm-lifecycle-'));
  sandbox.reset();
});
afterEach(() => {
  // Never leave a server behind, whatever the test did.
  for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function connect(api: Api): Promise<string> {
  const res = await call(api, 'POST', '/integrated-account', {
    integration: 'pipeliner',
    tenant_id: 'acme',
    context: { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: sandbox.username, password: sandbox.password },
  });
  return res.body.id as string;
}

describe('the API process', () => {
  jest.setTimeout(40_000);

  it('on SIGTERM stops accepting, finishes in-flight creates, closes and exits 0', async () => {
    const api = await startApi(dir);
    const accountId = await connect(api);
    sandbox.injectFault({ method: 'POST', path: '/entities/Steps', latencyMs: 600 });
    const inFlight = [1, 2, 3].map((n) => call(api, 'POST', `/unified/crm/stages?integrated_account_id=${accountId}`, { name: `In flight ${n}`, pipeline: { id: SALES } }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    api.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const late = await call(api, 'GET', '/health').then(() => 'answered', (error: Error & { code?: string }) => error.code ?? error.message);
    const answers = await Promise.all(inFlight);
    expect(answers.map((a) => a.status)).toEqual([201, 201, 201]);
    expect(late).toBe('ECONNREFUSED');
    expect(await api.exited).toBe(0);
    expect(api.output()).toContain('SIGTERM: no new connections; finishing in-flight requests');
    expect(api.output()).toContain('stopped');
    expect(sandbox.steps().filter((s) => s.name.startsWith('In flight'))).toHaveLength(3);
  });

  it('marks its data directory as served while it runs: a master key rotation elsewhere is refused, naming its pid (issue 12)', async () => {
    const api = await startApi(dir);
    const accountId = await connect(api);
    const pid = api.child.pid as number;
    expect(JSON.parse(readFileSync(join(dir, 'serving', `${pid}.json`), 'utf8'))).toMatchObject({ pid, script: MAIN });
    const keyBefore = readFileSync(join(dir, 'encryption.key'), 'utf8');
    const cli = createUnicrmCore({ env: {}, config: { dataDir: dir, logLevel: 'silent' } }); // what `unicrm keys rotate --master` opens
    try {
      let refusal: unknown;
      try {
        cli.rotateEncryptionKey();
      } catch (error) {
        refusal = error;
      }
      expect(refusal).toBeInstanceOf(DataDirectoryInUseError);
      expect((refusal as Error).message).toContain(`keys rotate --master refused: the unicrm API is serving the data directory ${dir} (pid ${pid}, since `);
      expect((refusal as Error).message).toContain(`(kill -TERM ${pid}, or Ctrl-C in its terminal;`);
    } finally {
      await cli.close();
    }
    expect(readFileSync(join(dir, 'encryption.key'), 'utf8')).toBe(keyBefore);
    // The API still uses the account: nothing was rotated under it.
    sandbox.reset();
    expect((await call(api, 'POST', `/unified/crm/stages?integrated_account_id=${accountId}`, { name: 'Still works' })).status).toBe(201);

    api.child.kill('SIGTERM');
    expect(await api.exited).toBe(0);
    expect(existsSync(join(dir, 'serving', `${pid}.json`))).toBe(false);
    claimExclusive(dir, 'keys rotate --master').release();
  });

  it('rotates the data key while it serves (issue 14): no request fails, every account opens with the new key afterwards', async () => {
    const api = await startApi(dir);
    const accounts = [];
    for (let i = 0; i < 12; i++) accounts.push(await connect(api));
    sandbox.reset();
    const cli = createUnicrmCore({ env: {}, config: { dataDir: dir, logLevel: 'silent' } }); // what `unicrm keys rotate` opens
    const statuses: number[] = [];
    let rotating = true;
    // Load while the rotation runs: reads of every account (its credentials opened) and account updates.
    const load = (async () => {
      for (let i = 0; rotating || i < 24; i++) {
        const id = accounts[i % accounts.length] as string;
        const [read, write] = await Promise.all([
          call(api, 'GET', `/unified/crm/pipelines?integrated_account_id=${id}`),
          request(`${api.url}/integrated-account/${id}`, {
            method: 'PATCH',
            headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
            body: JSON.stringify({ tenant_id: `tenant-${i}` }),
          }).then(async (res) => (await res.body.dump(), res.statusCode)),
        ]);
        statuses.push(read.status, write);
      }
    })();
    let rotation;
    try {
      rotation = await cli.rotateDataKey({ batchSize: 2 });
      const second = await cli.rotateDataKey({ batchSize: 5 });
      expect(second.retired).toEqual([rotation.activeKid]);
    } finally {
      rotating = false;
      await load;
      await cli.close();
    }
    expect(rotation.resealed).toBe(12);
    expect(rotation.retired).toHaveLength(1);
    expect(statuses.length).toBeGreaterThanOrEqual(48);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    // A create after the rotation seals with the API's reloaded keyring and opens in a new process.
    expect((await call(api, 'POST', `/unified/crm/stages?integrated_account_id=${accounts[0]}`, { name: 'After rotation' })).status).toBe(201);
    api.child.kill('SIGTERM');
    expect(await api.exited).toBe(0);
    // Every credential is sealed with the last active data key, and opens in a new API process.
    const raw = new Database(join(dir, 'unicrm.sqlite'), { readonly: true });
    const sealed = raw.prepare('SELECT id, sealed_context FROM integrated_accounts').all() as Array<{ id: string; sealed_context: string }>;
    const states = raw.prepare('SELECT state FROM encryption_keys ORDER BY created_at').pluck().all();
    raw.close();
    expect(states).toEqual(['retired', 'retired', 'active']);
    expect(new Set(sealed.map((row) => row.sealed_context.split(':')[1]))).toHaveProperty('size', 1);
    const restarted = await startApi(dir);
    for (const id of accounts) expect((await call(restarted, 'GET', `/unified/crm/pipelines?integrated_account_id=${id}`)).status).toBe(200);
    restarted.child.kill('SIGTERM');
    expect(await restarted.exited).toBe(0);
  });

  it('leaves no marker that outlives a SIGKILL: the lock goes with the process, the pid file is ignored (issue 12)', async () => {
    const api = await startApi(dir);
    const pid = api.child.pid as number;
    expect(() => claimExclusive(dir, 'restore')).toThrow(DataDirectoryInUseError);
    api.child.kill('SIGKILL');
    expect(await api.exited).toBeNull();
    expect(existsSync(join(dir, 'serving', `${pid}.json`))).toBe(true);
    claimExclusive(dir, 'restore').release();
    expect(existsSync(join(dir, 'serving', `${pid}.json`))).toBe(false);
  });

  it('after SIGKILL mid-load restarts with every committed account and idempotency record', async () => {
    const api = await startApi(dir);
    const accountId = await connect(api);
    const answered = new Map<string, unknown>();
    let stop = false;
    const load = Array.from({ length: 4 }, async (_, worker) => {
      for (let i = 0; !stop; i++) {
        const key = `w${worker}-${i}`;
        try {
          const res = await call(api, 'POST', `/unified/crm/stages?integrated_account_id=${accountId}`, { name: key }, { 'idempotency-key': key });
          if (res.status === 201) answered.set(key, res.body);
        } catch {
          return;
        }
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    api.child.kill('SIGKILL');
    stop = true;
    await Promise.all(load);
    expect(await api.exited).toBeNull();
    expect(answered.size).toBeGreaterThan(5);

    const again = await startApi(dir);
    const account = await call(again, 'GET', `/integrated-account/${accountId}`);
    expect(account.status).toBe(200);
    for (const [key, body] of answered) {
      const replay = await call(again, 'POST', `/unified/crm/stages?integrated_account_id=${accountId}`, { name: key }, { 'idempotency-key': key });
      expect([key, replay.status, replay.headers['idempotent-replayed']]).toEqual([key, 201, 'true']);
      expect(replay.body).toEqual(body);
    }
    for (const key of answered.keys()) expect(sandbox.steps().filter((s) => s.name === key)).toHaveLength(1);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});
