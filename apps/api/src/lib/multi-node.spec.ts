/**
 * Several nodes on one PostgreSQL (issue 14): three API processes (the built main.js) on a throwaway cluster and the
 * Pipeliner sandbox, requests spread over them. Skipped with a line saying how to run it when PostgreSQL is not
 * installed; a failure instead with UNICRM_REQUIRE_POSTGRES=1 (CI).
 */
import { createUnicrmCore, type UnicrmCore } from '@unicrm/core';
import { type RunningPipedriveSandbox, type RunningSandbox, startPipedriveSandbox, startSandbox } from '@unicrm/sandboxes';
import { postgresAvailable, startTestCluster, type TestCluster } from '@unicrm/store/testing';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';

const MAIN = join(__dirname, '../../../../dist/apps/api/src/main.js');
const TOKEN = 'multi-node-token';
const SALES = '00000000-5a1e-4000-8000-000000000001';
const KEY = randomBytes(32).toString('base64');
/** How long a change on one node may take to reach the others: the change feed's poll (1 s), with a wide margin. */
const PROPAGATION_BOUND_MS = 10_000;

interface Node {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];

function startNode(databaseUrl: string, env: Record<string, string> = {}): Promise<Node> {
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      UNICRM_DATABASE_URL: databaseUrl,
      UNICRM_ENCRYPTION_KEY: KEY,
      UNICRM_API_TOKEN: TOKEN,
      UNICRM_LOG_LEVEL: 'warn',
      UNICRM_RATE_LIMIT_PER_ACCOUNT: '0',
      UNICRM_RATE_LIMIT_PER_TOKEN: '0',
      // Short enough that an abandoned key settles within the test: the lease ends 1 s after its node died, and a
      // write sent before may land for 2 × the remote timeout after that.
      UNICRM_IDEMPOTENCY_LEASE_MS: '1000',
      UNICRM_REMOTE_TIMEOUT_MS: '1500',
      UNICRM_OPERATION_TIMEOUT_MS: '5000',
      UNICRM_WEBHOOK_POLL_MS: '50',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the API did not start: ${output}`)), 30_000);
    const poll = setInterval(() => {
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearInterval(poll);
        clearTimeout(timer);
        resolve({ child, url: match[1] as string, output: () => output, exited });
      }
      if (child.exitCode !== null) {
        clearInterval(poll);
        clearTimeout(timer);
        reject(new Error(`the API exited: ${output}`));
      }
    }, 20);
  });
}

async function call(node: Node, method: 'GET' | 'POST' | 'PATCH', path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await request(`${node.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.statusCode, headers: res.headers, body: (await res.body.json()) as Record<string, unknown> };
}

async function eventually(check: () => Promise<boolean>, boundMs: number, what: string): Promise<void> {
  const end = Date.now() + boundMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${boundMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const describeIf = postgresAvailable() ? describe : describe.skip;

describeIf('three API nodes on one PostgreSQL', () => {
  let cluster: TestCluster;
  let sandbox: RunningSandbox;
  let nodes: Node[];
  let accountId: string;
  const context = () => ({ service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: sandbox.username, password: sandbox.password });
  const named = (name: string) => sandbox.steps().filter((s) => s.name === name);

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npx nx run api:build\` first (nx test does).`);
    cluster = await startTestCluster();
    sandbox = await startSandbox({ port: 0 });
    // Started together: the migrations run once, under the advisory lock.
    nodes = await Promise.all([0, 1, 2].map(() => startNode(cluster.url)));
    const created = await call(nodes[0] as Node, 'POST', '/integrated-account', { integration: 'pipeliner', tenant_id: 'acme', context: context() });
    expect(created.status).toBe(201);
    accountId = created.body.id as string;
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await sandbox?.close();
    await cluster?.stop();
  });
  afterEach(() => sandbox.clearFaults());

  it('is ready on every node, and each reads an account another node created', async () => {
    for (const node of nodes) {
      const ready = await request(`${node.url}/ready`);
      expect(ready.statusCode).toBe(200);
      expect(await ready.body.json()).toEqual({ status: 'ready', store: 'postgres' });
      const res = await call(node, 'GET', `/unified/crm/pipelines?integrated_account_id=${accountId}`);
      expect(res.status).toBe(200);
    }
  });

  it('creates once when one Idempotency-Key reaches three nodes at once', async () => {
    // The sandbox holds each create 700 ms, so the three requests overlap.
    sandbox.injectFault({ method: 'POST', path: '/entities/Steps', latencyMs: 700 });
    const body = { name: 'Once across nodes', pipeline: { id: SALES } };
    const answers = await Promise.all(
      (nodes as Node[]).map((node) => call(node, 'POST', `/unified/crm/stages?integrated_account_id=${accountId}`, body, { 'idempotency-key': 'three-nodes-1' })),
    );
    expect(named('Once across nodes')).toHaveLength(1);
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 201).length).toBeGreaterThanOrEqual(1);
    // The requests overlapped: the key was in flight on one node when another got it.
    expect(statuses).toContain(409);
    for (const answer of answers) {
      if (answer.status === 201) expect(answer.body.id).toBe(named('Once across nodes')[0]?.id);
      else expect(answer.status).toBe(409);
    }
    // After it finished, every node replays it.
    for (const node of nodes) {
      const replay = await call(node, 'POST', `/unified/crm/stages?integrated_account_id=${accountId}`, body, { 'idempotency-key': 'three-nodes-1' });
      expect(replay.status).toBe(201);
      expect(replay.headers['idempotent-replayed']).toBe('true');
    }
    expect(named('Once across nodes')).toHaveLength(1);
  });

  it("uses credentials PATCHed on node A in node B's next call", async () => {
    const [a, b] = nodes as [Node, Node];
    // B has the account in its cache.
    expect((await call(b, 'GET', `/unified/crm/pipelines?integrated_account_id=${accountId}`)).status).toBe(200);
    const patched = await call(a, 'PATCH', `/integrated-account/${accountId}`, { context: { ...context(), password: 'wrong-password' }, validate: false });
    expect(patched.status).toBe(200);
    // B sends the new (wrong) password: the sandbox refuses it, and the account needs re-authentication on every node.
    await eventually(async () => (await call(b, 'GET', `/unified/crm/pipelines?integrated_account_id=${accountId}`)).status === 401, PROPAGATION_BOUND_MS, 'B uses the new credentials');
    await eventually(async () => (await call(a, 'GET', `/integrated-account/${accountId}`)).body.status === 'needs_reauth', PROPAGATION_BOUND_MS, 'A sees needs_reauth');
    expect((await call(a, 'PATCH', `/integrated-account/${accountId}`, { context: context() })).status).toBe(200);
    await eventually(async () => (await call(b, 'GET', `/unified/crm/pipelines?integrated_account_id=${accountId}`)).status === 200, PROPAGATION_BOUND_MS, 'B uses the repaired credentials');
  });

  it('refuses on every node a token revoked elsewhere, within the bound', async () => {
    // The tool's path (`unicrm tokens create` / `revoke`): a core on the same database.
    const tool: UnicrmCore = createUnicrmCore({ env: {}, config: { databaseUrl: cluster.url, encryptionKey: KEY, logLevel: 'silent' } });
    try {
      const { token, record } = await tool.tokens.issue({ name: 'short-lived' });
      for (const node of nodes) {
        await eventually(async () => (await request(`${node.url}/integrated-account`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => (await r.body.dump(), r.statusCode))) === 200, PROPAGATION_BOUND_MS, 'the token is accepted');
      }
      await tool.tokens.revoke(record.id);
      // The master key cannot be replaced on PostgreSQL yet: refused, nothing changed (docs/security.md "Rotating").
      expect(() => tool.rotateEncryptionKey(randomBytes(32).toString('base64'))).toThrow(/master key cannot be replaced yet.*Nothing was changed/);
      for (const node of nodes) {
        await eventually(
          async () => (await request(`${node.url}/integrated-account`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => (await r.body.dump(), r.statusCode))) === 401,
          PROPAGATION_BOUND_MS,
          'the revoked token is refused',
        );
      }
    } finally {
      await tool.close();
    }
  });

  it('rotates the data key while the three nodes serve: no request fails, the old key is retired', async () => {
    // More accounts, made on every node, each with its credentials cached by some node before the rotation.
    const ids = [accountId];
    for (let i = 0; i < 15; i++) {
      const created = await call(nodes[i % 3] as Node, 'POST', '/integrated-account', { integration: 'pipeliner', tenant_id: `rot-${i}`, context: context(), validate: false });
      expect(created.status).toBe(201);
      ids.push(created.body.id as string);
    }
    for (const [i, id] of ids.entries()) expect((await call(nodes[i % 3] as Node, 'GET', `/unified/crm/pipelines?integrated_account_id=${id}`)).status).toBe(200);
    const tool: UnicrmCore = createUnicrmCore({ env: {}, config: { databaseUrl: cluster.url, encryptionKey: KEY, logLevel: 'silent' } });
    const statuses: number[] = [];
    let rotating = true;
    // Reads (credentials opened), PATCHes (credentials sealed again) and creates of accounts, over the three nodes.
    const load = (async () => {
      for (let i = 0; rotating || i < 30; i++) {
        const node = nodes[i % 3] as Node;
        const id = ids[i % ids.length] as string;
        const answers = await Promise.all([
          call(node, 'GET', `/unified/crm/pipelines?integrated_account_id=${id}`),
          call(nodes[(i + 1) % 3] as Node, 'PATCH', `/integrated-account/${id}`, { context: context(), validate: false }),
          call(nodes[(i + 2) % 3] as Node, 'POST', '/integrated-account', { integration: 'pipeliner', tenant_id: `during-${i}`, context: context(), validate: false }),
        ]);
        statuses.push(...answers.map((answer) => answer.status));
        const made = answers[2]?.body.id;
        if (typeof made === 'string') ids.push(made);
      }
    })();
    let rotation;
    try {
      rotation = await tool.rotateDataKey({ batchSize: 3 });
    } finally {
      rotating = false;
      await load;
      await tool.close();
    }
    expect(rotation.retired).toHaveLength(1);
    expect(rotation.unreadable).toEqual([]);
    expect(statuses.length).toBeGreaterThanOrEqual(90);
    expect(statuses.filter((status) => status !== 200 && status !== 201)).toEqual([]);
    // Every account, including those made during the rotation, opens on every node.
    for (const [i, id] of ids.entries()) expect((await call(nodes[i % 3] as Node, 'GET', `/unified/crm/pipelines?integrated_account_id=${id}`)).status).toBe(200);
  });

  it('lets exactly N requests of an account pass a limit of N per window, counted across nodes', async () => {
    // Two more nodes with a per-account limit of 10 a minute (the three above have none).
    const limited = await Promise.all([0, 1].map(() => startNode(cluster.url, { UNICRM_RATE_LIMIT_PER_ACCOUNT: '10', UNICRM_RATE_LIMIT_WINDOW_MS: '60000' })));
    const statuses = await Promise.all(
      Array.from({ length: 30 }, (_, i) => call(limited[i % 2] as Node, 'GET', `/unified/crm/pipelines?integrated_account_id=${accountId}`).then((r) => r.status)),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20);
    for (const node of limited) node.child.kill('SIGTERM');
    await Promise.all(limited.map((node) => node.exited));
  });

  it('refreshes an expired OAuth token once for 20 calls spread over the three nodes', async () => {
    const pipedrive: RunningPipedriveSandbox = await startPipedriveSandbox({ port: 0 });
    try {
      const issued = pipedrive.issueTokens(-60);
      const context = {
        api_domain: pipedrive.url,
        access_token: issued.access_token,
        refresh_token: issued.refresh_token,
        expires_at: issued.expires_at,
        client_id: pipedrive.instance.config.clientId,
        client_secret: pipedrive.instance.config.clientSecret,
        token_url: pipedrive.tokenUrl,
      };
      const created = await call(nodes[0] as Node, 'POST', '/integrated-account', { integration: 'pipedrive', tenant_id: 'acme', context, validate: false });
      expect(created.status).toBe(201);
      const id = created.body.id as string;
      // Every node has the account (and its expired token) before the calls.
      for (const node of nodes) expect((await call(node, 'GET', `/integrated-account/${id}`)).status).toBe(200);
      const statuses = await Promise.all(Array.from({ length: 20 }, (_, i) => call(nodes[i % 3] as Node, 'GET', `/unified/crm/pipelines?integrated_account_id=${id}`).then((r) => r.status)));
      expect(statuses).toEqual(Array(20).fill(200));
      expect(pipedrive.refreshRequests()).toBe(1);
    } finally {
      await pipedrive.close();
    }
  });

  it('delivers each webhook event once though every node runs a worker (issue 17)', async () => {
    const received: string[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body).id as string);
        res.end('ok');
      });
    });
    await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
    try {
      const hook = await call(nodes[0] as Node, 'POST', '/webhook', { target_url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/in`, event_types: ['test'] });
      expect(hook.status).toBe(201);
      const ids = await Promise.all(
        Array.from({ length: 45 }, async (_, i) => {
          const queued = await call(nodes[i % 3] as Node, 'POST', '/webhook/test', { id: hook.body.id });
          expect(queued.status).toBe(202);
          return queued.body.id as string;
        }),
      );
      await eventually(
        async () => {
          const page = await call(nodes[1] as Node, 'GET', `/webhook/${hook.body.id as string}/deliveries?limit=100`);
          return (page.body.result as Array<{ status: string }>).filter((d) => d.status === 'delivered').length === 45;
        },
        PROPAGATION_BOUND_MS * 3,
        'every event delivered',
      );
      expect([...received].sort()).toEqual([...ids].sort());
    } finally {
      await new Promise<void>((done) => receiver.close(() => done()));
    }
  });

  it('leaves no duplicate when a node is killed in the middle of a create', async () => {
    const [a, , c] = nodes as [Node, Node, Node];
    sandbox.injectFault({ method: 'POST', path: '/entities/Steps', latencyMs: 1000, times: 1 });
    const body = { name: 'Killed mid-create', pipeline: { id: SALES } };
    const pending = call(c, 'POST', `/unified/crm/stages?integrated_account_id=${accountId}`, body, { 'idempotency-key': 'killed-1' }).catch((error: Error) => error);
    // The request is at the sandbox (held by the latency): kill its node.
    const before = sandbox.requests.length;
    await eventually(async () => sandbox.requests.slice(before).some((r) => r.method === 'POST' && r.path.includes('/entities/Steps')), 5_000, 'the create reached the sandbox');
    c.child.kill('SIGKILL');
    expect(await pending).toBeInstanceOf(Error);
    // Another node answers 409 while the dead node's key settles, then looks for the Step before creating again.
    let last = await call(a, 'POST', `/unified/crm/stages?integrated_account_id=${accountId}`, body, { 'idempotency-key': 'killed-1' });
    const seen = [last.status];
    await eventually(
      async () => {
        if (last.status === 409) {
          last = await call(a, 'POST', `/unified/crm/stages?integrated_account_id=${accountId}`, body, { 'idempotency-key': 'killed-1' });
          seen.push(last.status);
        }
        return last.status !== 409;
      },
      20_000,
      'the key settles',
    );
    expect(last.status).toBe(201);
    expect(new Set(seen)).toEqual(new Set(seen.filter((s) => s === 409 || s === 201)));
    expect(named('Killed mid-create')).toHaveLength(1);
    expect(last.body.id).toBe(named('Killed mid-create')[0]?.id);
  });
});
