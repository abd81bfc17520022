import { createApp } from '@unicrm/api';
import { createUnicrmCore, type UnicrmCore } from '@unicrm/core';
import { type RunningSandbox, SANDBOX_SEED_IDS, startSandbox } from '@unicrm/sandboxes';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUnicrm } from './embedded';

// The CLI is tested as users run it: the built file, spawned as a real process (the test target builds first),
// in both modes: embedded (--data-dir) and remote (--remote <url> + UNICRM_API_TOKEN, against the API app).
// This file holds the suites; cli-embedded.spec.ts and cli-remote.spec.ts run them, in parallel (jest.config.cjs
// ignores *.shared.spec.ts as a test file).
const CLI = join(__dirname, '../../../../dist/apps/sdk/src/cli.js');
/** What the hints print for a CLI spawned as `node <CLI>` from a directory outside the repository, unicrm not on PATH. */
const RUN = `node ${existsSync(CLI) ? realpathSync(CLI) : CLI}`;
/** The built core (sdk:build builds its dependencies first): what a serving process in another process runs. */
const BUILT_CORE = join(__dirname, '../../../../dist/libs/core/src/index.js');
const TOKEN = 'cli-suite-token';
const SALES = SANDBOX_SEED_IDS.salesPipelineId;
const RENEWALS = SANDBOX_SEED_IDS.renewalsPipelineId;
const [S1, S2, S3, S4, S5] = SANDBOX_SEED_IDS.salesStepIds;
const MISSING_PIPELINE = '99999999-9999-4999-8999-999999999999';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * What a spawned CLI may print before execFile cuts it (its default is 1 MiB, less than `accounts list --all` of a few
 * thousand accounts: the JSON was cut at 1,048,576 bytes). A run past this fails with ERR_CHILD_PROCESS_STDIO_MAXBUFFER.
 */
const CLI_MAX_OUTPUT = 64 * 1024 * 1024;

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<Run> {
  return new Promise((resolve) => {
    const options = { env: { PATH: process.env.PATH, ...env }, timeout: 30_000, cwd, maxBuffer: CLI_MAX_OUTPUT };
    execFile(process.execPath, [CLI, ...args], options, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Resolves once `check` holds, looking every 20 ms (within the test's own timeout). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 20));
}

/**
 * Spawns the CLI, waits until `ready` holds (looked at every 20 ms while it runs), then calls `act` with the child (and
 * what it printed on stderr so far), and resolves with the run once the process ended.
 */
function spawnUntil(
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: () => boolean,
  act: (child: ChildProcess, stderr: () => string) => void | Promise<void>,
): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, cwd: dir });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ended = new Promise<Run>((resolve) => child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr })));
  let running = true;
  void ended.then(() => (running = false));
  return (async () => {
    await until(() => ready() || !running);
    if (running) await act(child, () => stderr);
    return ended;
  })();
}

let sandbox: RunningSandbox;
let dir: string;
let core: UnicrmCore;
let server: Server;
let baseUrl: string;

/** Starts the sandbox and the API (no rate limits) for the file that calls it, and stops them after. */
export function useCliWorld(): void {
  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx nx run sdk:build\` first (nx test does).`);
    sandbox = await startSandbox({ port: 0, contract: true });
    dir = mkdtempSync(join(tmpdir(), 'unicrm-cli-'));
    // No rate limits on this server (the imports below send hundreds of creates for one account); see the remote-only tests.
    core = createUnicrmCore({
      env: {},
      config: { dataDir: join(dir, 'data'), apiToken: TOKEN, logLevel: 'silent', rateLimits: { perToken: 0, perAccount: 0, windowMs: 10_000 } },
    });
    const app = createApp(core);
    server = await new Promise<Server>((resolve) => {
      const s = createServer(app);
      s.listen(0, '127.0.0.1', () => resolve(s));
    });
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(() => expect(sandbox.takeContractViolations()).toEqual([]));
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await core.close();
    await sandbox.close();
    rmSync(dir, { recursive: true, force: true });
  });
}

type Mode = { args: string[]; env: NodeJS.ProcessEnv };
const MODES: Record<'embedded' | 'remote', () => Mode> = {
  embedded: () => ({ args: ['--data-dir', join(dir, 'data')], env: {} }),
  remote: () => ({ args: ['--remote', baseUrl], env: { UNICRM_API_TOKEN: TOKEN } }),
};

/** Every command, in one mode. */
export function defineCliSuite(modeName: 'embedded' | 'remote'): void {
  describe(`unicrm CLI, ${modeName} (spawned)`, () => {
    const modeOf = MODES[modeName];
    let mode: Mode;
    let accountId: string;
    const unicrm = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnCli([...args, ...mode.args], { ...mode.env, ...env }, dir);

    beforeAll(async () => {
      mode = modeOf();
      const added = await unicrm(
        ['accounts', 'add', 'pipeliner', '--service-url', sandbox.serviceUrl, '--space-id', sandbox.spaceId, '--username', sandbox.username, '--tenant-id', modeName],
        { PIPELINER_PASSWORD: sandbox.password },
      );
      expect(added.stderr).toBe('');
      expect(added.code).toBe(0);
      // Human output by default: key: value lines, and what to do next.
      const id = /^id: +(\S+)$/m.exec(added.stdout)?.[1];
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      accountId = id as string;
      expect(added.stdout).toMatch(/^status: +active$/m);
      expect(added.stdout).toMatch(/^tenant_id: +\w+$/m);
      // The next steps: where the pipeline ids are, then a stage in one.
      expect(added.stdout.split('\n').slice(-3)).toEqual([
        `Next: ${RUN} pipelines list --account ${accountId}      (the pipelines and their ids)`,
        `Then: ${RUN} stages create --account ${accountId} --pipeline <pipeline id> --name "Qualified"`,
        '',
      ]);
    });

    beforeEach(() => sandbox.reset());

    it('takes the global options before the command too', async () => {
      const before = await spawnCli([...mode.args, '--output', 'json', 'accounts', 'get', accountId], mode.env, dir);
      expect(before.stderr).toBe('');
      expect(before.code).toBe(0);
      expect(JSON.parse(before.stdout)).toMatchObject({ id: accountId, tenant_id: modeName });
    });

    it('makes a link for a new connection or a reconnect, and manages a webhook (secret printed once)', async () => {
      const link = await unicrm(['links', 'create', '--tenant-id', 'cli-co']);
      expect(link.stderr).toBe('');
      expect(link.code).toBe(0);
      expect(link.stdout).toMatch(/^Open this link in a browser \(single use, until [0-9TZ:.-]+\):\n {2}http:\/\/127\.0\.0\.1:\d+\/connect\?link_token=[\w-]{43}\n$/);
      const reconnect = await unicrm(['--output', 'json', 'links', 'create', '--account', accountId]);
      expect(JSON.parse(reconnect.stdout)).toEqual({ link_token: expect.any(String), expires_at: expect.any(String), url: expect.stringContaining('/connect?link_token=') });
      const neither = await unicrm(['links', 'create']);
      expect(neither.code).toBe(2);
      expect(neither.stderr).toContain('links create takes --tenant-id <id> (a new connection) or --account <id> (a reconnect)');

      const created = await unicrm(['--output', 'json', 'webhooks', 'create', '--url', 'https://hooks.example/cli', '--events', 'integrated_account:created,integrated_account:deleted']);
      expect(created.code).toBe(0);
      const hook = JSON.parse(created.stdout);
      expect(hook).toMatchObject({ target_url: 'https://hooks.example/cli', event_types: ['integrated_account:created', 'integrated_account:deleted'], is_active: true });
      expect(hook.secret).toMatch(/^[0-9a-f]{64}$/);
      const listed = await unicrm(['webhooks', 'list']);
      expect(listed.stdout).toContain(hook.id);
      expect(listed.stdout).not.toContain(hook.secret);
      const updated = await unicrm(['webhooks', 'update', hook.id, '--inactive']);
      expect(updated.stdout).toMatch(/^is_active: +false$/m);
      const test = await unicrm(['webhooks', 'test', hook.id]);
      expect(test.stdout).toMatch(/^Queued test event [0-9a-f-]{36}; see it with: .* webhooks deliveries /);
      const deliveries = await unicrm(['webhooks', 'deliveries', hook.id]);
      expect(deliveries.stdout).toMatch(/test +pending +0/);
      const refused = await unicrm(['webhooks', 'create', '--url', 'http://hooks.example/plain']);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('target_url');
      expect((await unicrm(['webhooks', 'remove', hook.id])).stdout).toBe(`Removed webhook ${hook.id}.\n`);
    });

    it('shows an account without its secrets, as lines or as JSON', async () => {
      const human = await unicrm(['accounts', 'get', accountId]);
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(new RegExp(`^context\\.space_id: +${sandbox.spaceId}$`, 'm'));
      expect(human.stdout).toMatch(new RegExp(`^tenant_id: +${modeName}$`, 'm'));
      const json = await unicrm(['accounts', 'get', accountId, '--output', 'json']);
      expect(JSON.parse(json.stdout)).toMatchObject({ id: accountId, status: 'active', tenant_id: modeName, context: { space_id: sandbox.spaceId } });
      for (const run of [human, json]) {
        expect(run.stdout).not.toContain(sandbox.password);
        expect(run.stdout).not.toContain(sandbox.username);
      }
    });

    it('creates a stage with the same body as the SDK', async () => {
      const args = ['--name', 'CLI stage', '--pipeline', SALES, '--format', 'normalized', '--output', 'json'];
      const run = await unicrm(['stages', 'create', '--account', accountId, ...args]);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const fromCli = JSON.parse(run.stdout);

      sandbox.reset();
      const sdk = createUnicrm({ dataDir: join(dir, 'data') });
      const fromSdk = await sdk.crm.stages.create(
        { integrated_account_id: accountId, truto_response_format: 'normalized' },
        { name: 'CLI stage', pipeline: { id: SALES } },
      );
      await sdk.close();
      const vary = (body: Record<string, unknown>) => ({ ...body, id: '-', created_at: '-', updated_at: '-' });
      expect(vary(fromCli)).toEqual(vary(fromSdk));
      expect(fromCli).toMatchObject({ name: 'CLI stage', status: 'active', pipeline: { id: SALES, name: 'Sales Pipeline' } });
    });

    it('prints a created stage as key: value lines by default', async () => {
      const run = await unicrm(['stages', 'create', '--account', accountId, '--name', 'Proposal Sent', '--pipeline', SALES, '--position', '2']);
      expect(run.code).toBe(0);
      const step = sandbox.steps().find((s) => s.name === 'Proposal Sent');
      expect(run.stdout.split('\n')).toEqual([
        `id:            ${step?.id}`,
        'name:          Proposal Sent',
        'position:      2',
        'status:        active',
        `pipeline.id:   ${SALES}`,
        'pipeline.name: Sales Pipeline',
        expect.stringMatching(/^created_at: {4}\d{4}-\d\d-\d\dT[\d:.]+Z$/),
        expect.stringMatching(/^updated_at: {4}\d{4}-\d\d-\d\dT[\d:.]+Z$/),
        expect.stringMatching(/^remote_data: {3}\{\d+ fields of the provider's record; --output json shows them\}$/),
        '',
      ]);
    });

    it('passes --remote-data and --remote-query to Pipeliner and prints the raw answer', async () => {
      const run = await unicrm([
        'stages', 'create', '--account', accountId, '--name', 'Raw CLI', '--remote-data', '{"percent": 35}',
        '--remote-query', 'expand=pipeline', '--remote-query', 'filter[name]=x', '--format', 'raw', '--output', 'json',
      ]);
      expect(run.code).toBe(0);
      const raw = JSON.parse(run.stdout);
      expect(raw).toMatchObject({ success: true, data: { name: 'Raw CLI', percent: 35 } });
      const post = sandbox.requests.find((r) => r.method === 'POST');
      expect(decodeURIComponent(post?.query ?? '')).toBe('expand=pipeline&filter[name]=x');
    });

    it('takes a whole body with --json (inline or @file) and the field flags', async () => {
      writeFileSync(join(dir, 'body.json'), JSON.stringify({ name: 'From file', position: 1, pipeline: { id: SALES } }));
      const run = await unicrm([
        'stages', 'create', '--account', accountId, '--json', '@body.json', '--ignore-remote-data',
        '--exclude-fields', 'created_at,pipeline.name', '--output', 'json',
      ]);
      expect(run.stderr).toBe('');
      const stage = JSON.parse(run.stdout);
      expect(stage).toEqual({ id: expect.any(String), name: 'From file', position: 1, status: 'active', pipeline: { id: SALES }, updated_at: expect.any(String) });
      const inline = await unicrm(['stages', 'create', '--account', accountId, '--json', '{"name": "Inline", "status": "active"}', '--name', 'Flag wins', '--output', 'json']);
      expect(JSON.parse(inline.stdout)).toMatchObject({ name: 'Flag wins', status: 'active' });
    });

    // The tests below spawn the CLI several times each: on a loaded machine a spawn can take seconds.
    const SPAWNS = 60_000;

    it('lists the pipelines as a table of their stages, or prints the JSON', async () => {
      const human = await unicrm(['pipelines', 'list', '--account', accountId]);
      expect(human.stderr).toBe('');
      expect(human.code).toBe(0);
      expect(human.stdout.split('\n')).toEqual([
        'id                                    name            stages  stage names',
        `${SALES}  Sales Pipeline  5       Qualification, Needs Analysis, Proposal, Negotiation, Closing`,
        `${RENEWALS}  Renewals        3       Renewal Due, Renewal Quoted, Renewed`,
        '',
      ]);
      const json = await unicrm(['pipelines', 'list', '--account', accountId, '--name', 'Renewals', '--output', 'json']);
      expect(JSON.parse(json.stdout)).toEqual({
        result: [expect.objectContaining({ id: RENEWALS, name: 'Renewals', stages: expect.any(Array), remote_data: expect.any(Object) })],
        next_cursor: null,
        prev_cursor: null,
        result_count: 1,
      });
    }, SPAWNS);

    it('shows one pipeline with a table of its stages', async () => {
      const got = await unicrm(['pipelines', 'get', RENEWALS, '--account', accountId]);
      expect(got.code).toBe(0);
      expect(got.stdout.split('\n')).toEqual([
        `id:          ${RENEWALS}`,
        'name:        Renewals',
        'entity:      opportunity',
        'created_at:  2024-01-15T09:00:00.000Z',
        'updated_at:  2024-01-15T09:00:00.000Z',
        expect.stringMatching(/^remote_data: \{\d+ fields of the provider's record; --output json shows them\}$/),
        'stages:      3',
        '',
        'position  stage id                              name            status',
        `0         ${SANDBOX_SEED_IDS.renewalsStepIds[0]}  Renewal Due     active`,
        `1         ${SANDBOX_SEED_IDS.renewalsStepIds[1]}  Renewal Quoted  active`,
        `2         ${SANDBOX_SEED_IDS.renewalsStepIds[2]}  Renewed         active`,
        '',
      ]);
      const missing = await unicrm(['pipelines', 'get', MISSING_PIPELINE, '--account', accountId]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/^error 404 Not Found: /);
    }, SPAWNS);

    it('lists stages a page at a time, with the command for the next page', async () => {
      const first = await unicrm(['stages', 'list', '--account', accountId, '--pipeline', SALES, '--limit', '2']);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const lines = first.stdout.split('\n');
      expect(lines.slice(0, 4)).toEqual([
        'id                                    name            position  status  pipeline',
        `${S1}  Qualification   0         active  Sales Pipeline`,
        `${S2}  Needs Analysis  1         active  Sales Pipeline`,
        '',
      ]);
      const more = /^More: (.+) \(or --all\)$/.exec(lines[4] ?? '');
      expect(more?.[1]).toMatch(new RegExp(`^${RUN} stages list --account ${accountId} --pipeline ${SALES} --limit 2 .* --cursor \\S+$`));
      // The hint runs as printed (its words need no quoting here): the next page.
      const next = await spawnCli((more?.[1] ?? '').slice(RUN.length + 1).split(' '), mode.env, dir);
      expect(next.stdout.split('\n').slice(1, 3).map((line) => line.slice(0, 36))).toEqual([S3, S4]);
      expect(next.stdout).toContain('More: ');
    }, SPAWNS);

    it('lists every page with --all, and prints the JSON envelope', async () => {
      const all = await unicrm(['stages', 'list', '--account', accountId, '--pipeline', SALES, '--limit', '2', '--all']);
      expect(all.stdout.split('\n').map((line) => line.slice(0, 36))).toEqual(['id'.padEnd(36), S1, S2, S3, S4, S5, '']);
      const json = await unicrm(['stages', 'list', '--account', accountId, '--limit', '2', '--output', 'json']);
      expect(JSON.parse(json.stdout)).toEqual({
        result: [expect.objectContaining({ id: S1 }), expect.objectContaining({ id: S2 })],
        next_cursor: expect.any(String),
        prev_cursor: null,
        result_count: 2,
      });
      const allJson = await unicrm(['stages', 'list', '--account', accountId, '--pipeline', RENEWALS, '--limit', '1', '--all', '--output', 'json', '--format', 'normalized']);
      const every = JSON.parse(allJson.stdout);
      expect(every).toMatchObject({ next_cursor: null, prev_cursor: null, result_count: 3 });
      expect(every.result.map((stage: { name: string }) => stage.name)).toEqual(['Renewal Due', 'Renewal Quoted', 'Renewed']);
    }, SPAWNS);

    it('filters stages, prints a raw page as JSON, and exits 2 for a filter the API refuses', async () => {
      const named = await unicrm(['stages', 'list', '--account', accountId, '--name', 'Proposal']);
      expect(named.stdout.split('\n').slice(1)).toEqual([`${S3}  Proposal  2         active  Sales Pipeline`, '']);
      const none = await unicrm(['stages', 'list', '--account', accountId, '--status', 'inactive']);
      expect(none.stdout).toBe('No stages.\n');
      const raw = await unicrm(['stages', 'list', '--account', accountId, '--format', 'raw', '--limit', '1']);
      expect(JSON.parse(raw.stdout.split('\n\nMore: ')[0] ?? '')).toMatchObject({ success: true, data: [{ id: S1 }] });
      const bad = await unicrm(['stages', 'list', '--account', accountId, '--status', 'archived']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('\n  status: ');
    }, SPAWNS);

    it('gets and updates a stage: rename, reorder, move', async () => {
      const got = await unicrm(['stages', 'get', S3, '--account', accountId]);
      expect(got.code).toBe(0);
      expect(got.stdout).toMatch(new RegExp(`^id: +${S3}\nname: +Proposal\nposition: +2\nstatus: +active\npipeline.id: +${SALES}\npipeline.name: +Sales Pipeline\n`));
      const renamed = await unicrm(['stages', 'update', S3, '--account', accountId, '--name', 'Offer Sent', '--position', '0']);
      expect(renamed.stderr).toBe('');
      expect(renamed.stdout).toMatch(/^name: +Offer Sent\nposition: +0\n/m);
      expect(sandbox.steps().find((s) => s.id === S3)).toMatchObject({ name: 'Offer Sent', sort_order: 0 });
      const moved = await unicrm(['stages', 'update', S3, '--account', accountId, '--pipeline', RENEWALS, '--remote-data', '{"percent": 55}', '--output', 'json']);
      expect(JSON.parse(moved.stdout)).toMatchObject({ id: S3, pipeline: { id: RENEWALS, name: 'Renewals' }, remote_data: { percent: 55 } });
      expect(sandbox.steps().find((s) => s.id === S3)).toMatchObject({ pipeline_id: RENEWALS, percent: 55 });
    }, SPAWNS);

    it('refuses an update with nothing to change, status inactive, and a command without an id', async () => {
      const nothing = await unicrm(['stages', 'update', S3, '--account', accountId]);
      expect(nothing.code).toBe(2);
      expect(nothing.stderr).toContain('usage error: stages update needs something to change');
      const inactive = await unicrm(['stages', 'update', S3, '--account', accountId, '--status', 'inactive']);
      expect(inactive.code).toBe(2);
      expect(inactive.stderr).toMatch(/^error 400 Bad Request: .*\n {2}status: Pipeliner has no inactive steps/);
      const noId = await unicrm(['stages', 'get', '--account', accountId]);
      expect(noId.code).toBe(2);
      expect(noId.stderr).toContain('usage error: stages get takes an id: stages get <id> --account <account id>');
      expect(sandbox.requests.filter((r) => r.method !== 'GET')).toHaveLength(0);
    }, SPAWNS);

    it('deletes a stage; a second delete exits 2 with the 404', async () => {
      const deleted = await unicrm(['stages', 'delete', S4, '--account', accountId]);
      expect(deleted.code).toBe(0);
      const out = deleted.stdout.split('\n');
      expect(out).toContain('status:        inactive');
      expect(out.at(-2)).toBe(
        `Deleted stage ${S4}. The provider keeps it as inactive: ${RUN} stages get ${S4} --account ${accountId} shows it.`,
      );
      expect(sandbox.steps().find((s) => s.id === S4)?.is_deleted).toBe(true);
      const listed = await unicrm(['stages', 'list', '--account', accountId, '--status', 'inactive']);
      expect(listed.stdout.split('\n')[1]).toBe(`${S4}  Negotiation  3         inactive  Sales Pipeline`);
      const again = await unicrm(['stages', 'delete', S4, '--account', accountId]);
      expect(again.code).toBe(2);
      expect(again.stdout).toBe('');
      expect(again.stderr).toMatch(new RegExp(`^error 404 Not Found: Entity 'Step' with id '${S4}' was not found\\.\nremote answer: \\{`));
    }, SPAWNS);

    it('deletes once per --idempotency-key and prints the JSON body', async () => {
      const args = ['stages', 'delete', S5 as string, '--account', accountId, '--output', 'json', '--idempotency-key', `cli-delete-${modeName}-${Date.now()}`];
      const json = await unicrm(args);
      expect(JSON.parse(json.stdout)).toMatchObject({ id: S5, status: 'inactive' });
      const replayed = await unicrm(args);
      expect(replayed.code).toBe(0);
      expect(JSON.parse(replayed.stdout)).toEqual(JSON.parse(json.stdout));
      expect(sandbox.requests.filter((r) => r.method === 'DELETE' && r.path.endsWith(S5 as string))).toHaveLength(1);
    }, SPAWNS);

    it('exits 2 with a usage error on stderr', async () => {
      const run = await unicrm(['stages', 'create', '--name', 'x']);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe(`usage error: --account is required\nRun "${RUN} --help" for the commands.\n`);
      const rest = await unicrm(['accounts', 'list', 'extra']);
      expect(rest.code).toBe(2);
      expect(rest.stderr).toContain('accounts list takes flags only, not "extra"');
    });

    it('exits 2 for a body the API rejects and names the field', async () => {
      const run = await unicrm(['stages', 'create', '--account', accountId, '--position=-1', '--name', 'x']);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/^error 400 Bad Request: /);
      expect(run.stderr).toContain('\n  position: ');
      const json = await unicrm(['stages', 'create', '--account', accountId, '--position=-1', '--name', 'x', '--output', 'json']);
      expect(json.code).toBe(2);
      expect(json.stdout).toBe('');
      expect(JSON.parse(json.stderr)).toMatchObject({ statusCode: 400, error: 'Bad Request', details: { failures: [{ path: 'position' }] } });
    });

    it("exits 1 on a remote error and shows Pipeliner's own message", async () => {
      const run = await unicrm(['stages', 'create', '--account', accountId, '--name', 'x', '--pipeline', MISSING_PIPELINE]);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(
        new RegExp(`^error 422 Unprocessable Entity: \\[pipeline_id\\] Relation Step.pipeline_id=${MISSING_PIPELINE} to Pipeline doesn't exist!\n`),
      );
      expect(run.stderr).toContain('remote answer: {');
      expect(run.stderr).toContain('"success":false');
    });

    it('lists accounts as a table, or as JSON', async () => {
      const human = await unicrm(['accounts', 'list', '--tenant-id', modeName]);
      expect(human.code).toBe(0);
      const lines = human.stdout.split('\n');
      expect(lines[0]).toMatch(/^id {36}tenant_id +integration +status +created_at$/);
      expect(lines[1]).toMatch(new RegExp(`^${accountId}  ${modeName} +pipeliner +active +\\d{4}-\\d\\d-\\d\\dT`));
      expect(lines).toHaveLength(3);
      const json = await unicrm(['accounts', 'list', '--tenant-id', modeName, '--output', 'json']);
      expect(JSON.parse(json.stdout)).toEqual({ result: [expect.objectContaining({ id: accountId, tenant_id: modeName })], next_cursor: null, limit: 100 });
      const none = await unicrm(['accounts', 'list', '--tenant-id', 'nobody']);
      expect(none.stdout).toBe('No integrated accounts.\n');
    });

    it('updates an account', async () => {
      const run = await unicrm(['accounts', 'update', accountId, '--tenant-id', `${modeName}-2`]);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^tenant_id: +${modeName}-2$`, 'm'));
    });

    it('imports a CSV, reports the failed rows in a file that can be fed back in', async () => {
      const csv = [
        'name,pipeline,position,remote_data',
        `Discovery,${SALES},1,"{""percent"": 15}"`,
        `,${SALES},,`,
        `Orphan,${MISSING_PIPELINE},,`,
        'Loose,,,',
        'Bad data,,,{oops',
      ].join('\n');
      writeFileSync(join(dir, `${modeName}.csv`), `${csv}\n`);
      const run = await unicrm(['stages', 'import', `${modeName}.csv`, '--account', accountId, '--concurrency', '2']);
      expect(run.code).toBe(1);
      expect(run.stdout).toContain(`Imported ${modeName}.csv into ${accountId}: 2 created, 3 failed (5 rows).`);
      expect(run.stdout).toContain(`Failed rows: ${modeName}.failed.csv. Fix them, then: ${RUN} stages import ${modeName}.failed.csv --account ${accountId}`);
      expect(run.stderr).toContain('imported 5/5 rows: 2 created, 3 failed');
      expect(sandbox.steps().find((s) => s.name === 'Discovery')).toMatchObject({ pipeline_id: SALES, sort_order: 1, percent: 15 });
      expect(sandbox.steps().find((s) => s.name === 'Loose')).toMatchObject({ pipeline_id: null });

      // Running the same file again creates nothing twice: every row carries the same Idempotency-Key as before, and
      // the summary says that the stages were created by the earlier run (the answers were replayed).
      const posts = sandbox.requests.filter((r) => r.method === 'POST').length;
      const human = await unicrm(['stages', 'import', `${modeName}.csv`, '--account', accountId]);
      expect(human.stdout).toContain(`Imported ${modeName}.csv into ${accountId}: 0 created, 2 already created earlier (replayed), 3 failed (5 rows).`);
      expect(human.stderr).toContain('imported 5/5 rows: 0 created, 2 already created earlier (replayed), 3 failed');
      const rerun = await unicrm(['stages', 'import', `${modeName}.csv`, '--account', accountId, '--output', 'json']);
      const replayed = JSON.parse(rerun.stdout);
      expect(replayed).toMatchObject({ total: 5, created: 0, replayed: 2, failed: 3 });
      expect(replayed.stages.every((x: { replayed: boolean }) => x.replayed)).toBe(true);
      expect(sandbox.requests.filter((r) => r.method === 'POST').length).toBe(posts);
      expect(sandbox.steps().filter((s) => s.name === 'Discovery')).toHaveLength(1);
      expect(replayed.stages.map((x: { id: string }) => x.id)).toEqual(
        ['Discovery', 'Loose'].map((name) => sandbox.steps().find((s) => s.name === name)?.id),
      );

      const failed = readFileSync(join(dir, `${modeName}.failed.csv`), 'utf8').split('\n');
      expect(failed[0]).toBe('name,pipeline,position,remote_data,error');
      expect(failed[1]).toMatch(new RegExp(`^,${SALES},,,400 Bad Request: .*name`));
      expect(failed[2]).toMatch(new RegExp(`^Orphan,${MISSING_PIPELINE},,,422 Unprocessable Entity: \\[pipeline_id\\] Relation`));
      expect(failed[3]).toBe('Bad data,,,{oops,"invalid row: remote_data must be a JSON object, e.g. {""percent"": 40}, not ""{oops"""');
      expect(failed).toHaveLength(5);

      // Fix the rows in the failed file and import it again: the error column is ignored.
      const fixed = failed
        .join('\n')
        .replace(/^,/m, 'Named,')
        .replace(MISSING_PIPELINE, SALES)
        .replace('{oops', '"{""percent"": 5}"');
      writeFileSync(join(dir, `${modeName}.failed.csv`), fixed);
      sandbox.reset();
      const again = await unicrm(['stages', 'import', `${modeName}.failed.csv`, '--account', accountId, '--output', 'json']);
      expect(again.stderr).toContain('imported 3/3 rows: 3 created, 0 failed');
      expect(again.code).toBe(0);
      const summary = JSON.parse(again.stdout);
      expect(summary).toMatchObject({ total: 3, created: 3, failed: 0, failed_out: null, aborted: null, errors: [] });
      expect(summary.stages.map((s: { row: number }) => s.row)).toEqual([1, 2, 3]);
      expect(sandbox.steps().filter((s) => ['Named', 'Orphan', 'Bad data'].includes(s.name ?? '')).map((s) => s.id).sort()).toEqual(
        summary.stages.map((s: { id: string }) => s.id).sort(),
      );
    });

    it('imports a JSON file and writes its failed rows as JSON with an error key', async () => {
      const rows = [{ name: 'J1', pipeline: SALES, remote_data: { percent: 20 } }, { name: 'J2', colour: 'red' }, { name: 'J3', position: 4, pipeline: { id: SALES } }];
      writeFileSync(join(dir, `${modeName}.json`), JSON.stringify(rows));
      const run = await unicrm(['stages', 'import', `${modeName}.json`, '--account', accountId, '--failed-out', `${modeName}-bad.json`]);
      expect(run.code).toBe(1);
      expect(run.stdout).toContain('2 created, 1 failed (3 rows)');
      const failed = JSON.parse(readFileSync(join(dir, `${modeName}-bad.json`), 'utf8'));
      expect(failed).toEqual([{ name: 'J2', colour: 'red', error: expect.stringMatching(/^400 Bad Request: .*colour/) }]);
      expect(sandbox.steps().find((s) => s.name === 'J3')).toMatchObject({ sort_order: 4, pipeline_id: SALES });
    });

    it('tries a row again, with the same Idempotency-Key, after Pipeliner answered 503', async () => {
      writeFileSync(join(dir, `${modeName}-retry.csv`), 'name\nRetried\n');
      sandbox.injectFault({ method: 'POST', path: '/entities/Steps', status: 503, times: 1 });
      const run = await unicrm(['stages', 'import', `${modeName}-retry.csv`, '--account', accountId]);
      expect(run.stdout).toContain('1 created, 0 failed (1 rows).');
      expect(run.code).toBe(0);
      expect(run.stderr).toMatch(/^row 1: 503 Service Unavailable: .*; trying again in 1 s$/m);
      expect(sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(2);
      expect(sandbox.steps().filter((s) => s.name === 'Retried')).toHaveLength(1);
    });

    it('refuses an import file with unknown columns, or an unknown account, before creating anything', async () => {
      writeFileSync(join(dir, 'typo.csv'), 'name,pipline\nx,y\n');
      const typo = await unicrm(['stages', 'import', 'typo.csv', '--account', accountId]);
      expect(typo.code).toBe(2);
      expect(typo.stderr).toContain('typo.csv: unknown column "pipline"; the columns are name, pipeline, position, status, remote_data.');
      const missing = await unicrm(['stages', 'import', 'typo.csv', '--account', '6b1c4f7e-2a3d-4e5f-8a9b-0c1d2e3f4a5b']);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('error 404 Not Found: Integrated account 6b1c4f7e-2a3d-4e5f-8a9b-0c1d2e3f4a5b not found.');
      expect(sandbox.requests).toHaveLength(0);
    });

    it('imports 500 rows in batches of at most 100 Steps, with progress, and the counts match the sandbox', async () => {
      const lines = ['name,pipeline,remote_data'];
      for (let i = 1; i <= 500; i++) lines.push(i === 250 ? `,${SALES},` : `Bulk ${i},${SALES},"{""percent"": ${i % 100}}"`);
      writeFileSync(join(dir, 'bulk.csv'), `${lines.join('\n')}\n`);
      const before = sandbox.steps().length;
      const requestsBefore = sandbox.requests.length;
      const run = await unicrm(['stages', 'import', 'bulk.csv', '--account', accountId, '--output', 'json', '--failed-out', `${modeName}-bulk-failed.csv`]);
      const summary = JSON.parse(run.stdout);
      expect(summary).toMatchObject({ total: 500, created: 499, failed: 1, errors: [{ row: 250 }], dry_run: false, interrupted: false, not_sent: 0, batches: 5 });
      expect(run.code).toBe(1);
      expect(sandbox.steps().length - before).toBe(499);
      expect(new Set(summary.stages.map((s: { id: string }) => s.id)).size).toBe(499);
      // The writes went through batch-modify, at most 100 Steps a call, and nothing was read back (ids only).
      const sent = sandbox.requests.slice(requestsBefore);
      const batches = sent.filter((r) => r.method === 'POST' && r.path.endsWith('/entities/Steps/batch-modify'));
      expect(batches.map((r) => JSON.parse(r.body).length).sort((a, b) => b - a)).toEqual([100, 100, 100, 100, 99]);
      expect(sent.filter((r) => r.method !== 'POST' || !r.path.endsWith('/batch-modify'))).toEqual([]);
      const progress = run.stderr.split('\n').filter((l) => l.startsWith('imported '));
      // A line each time a tenth of the rows more is done (a slow machine adds timed lines between them).
      expect(progress.filter((l) => Number(/^imported (\d+)\//.exec(l)?.[1]) % 100 === 0)).toHaveLength(5);
      for (const line of progress) expect(line).toMatch(/^imported \d+\/500 rows: \d+ created, \d+ failed \| (\d+(\.\d)?|-) rows\/s, ETA (\d.*|-)$/);
      expect(progress.at(-1)).toMatch(/^imported 500\/500 rows: 499 created, 1 failed \| \d+(\.\d)? rows\/s, ETA 0 s$/);
    }, 30_000);

    it('checks every row with --dry-run, writes nothing, and writes the invalid rows to the failed-rows file', async () => {
      const csv = ['name,pipeline,position', `Dry one,${SALES},1`, `,${SALES},`, 'Dry two,,x', `Dry three,${SALES},`].join('\n');
      writeFileSync(join(dir, `${modeName}-dry.csv`), `${csv}\n`);
      const before = sandbox.steps().length;
      sandbox.requests.length = 0;
      const run = await unicrm(['stages', 'import', `${modeName}-dry.csv`, '--account', accountId, '--dry-run']);
      expect(run.code).toBe(1);
      expect(run.stdout).toContain(`Checked ${modeName}-dry.csv for ${accountId}: 2 valid, 2 invalid (4 rows); nothing was written.`);
      expect(run.stdout).toContain(`Invalid rows written to ${modeName}-dry.failed.csv, each with its error.`);
      expect(run.stderr).toMatch(/^checked 4\/4 rows: 2 valid, 2 invalid \| .* rows\/s, ETA 0 s$/m);
      // Nothing reached Pipeliner: no write, not even a read.
      expect(sandbox.requests).toEqual([]);
      expect(sandbox.steps().length).toBe(before);
      const invalid = readFileSync(join(dir, `${modeName}-dry.failed.csv`), 'utf8').split('\n');
      expect(invalid[0]).toBe('name,pipeline,position,error');
      expect(invalid[1]).toMatch(new RegExp(`^,${SALES},,400 Bad Request: .*name`));
      expect(invalid[2]).toBe('Dry two,,x,"invalid row: position must be a number, not ""x"""');
      // All valid: exit 0, and the JSON summary says so.
      writeFileSync(join(dir, `${modeName}-dry-ok.csv`), `name\nFine\n`);
      const ok = await unicrm(['stages', 'import', `${modeName}-dry-ok.csv`, '--account', accountId, '--dry-run', '--output', 'json']);
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ dry_run: true, total: 1, valid: 1, invalid: 0, failed_out: null, errors: [] });
      expect(sandbox.requests).toEqual([]);
    });

    it('stops on Ctrl-C after the batches in flight (exit 130, the command to resume), and the same command resumes without duplicates', async () => {
      const rows = ['name', ...Array.from({ length: 500 }, (_, i) => `Resumed ${i + 1}`)];
      writeFileSync(join(dir, `${modeName}-resume.csv`), `${rows.join('\n')}\n`);
      const args = ['stages', 'import', `${modeName}-resume.csv`, '--account', accountId, '--concurrency', '1'];
      // Each batch-modify takes a second, so the import is still running when Ctrl-C comes after the first batch.
      sandbox.injectFault({ method: 'POST', path: 'batch-modify', latencyMs: 1000 });
      const batchModifies = () => sandbox.requests.filter((r) => r.path.endsWith('/batch-modify')).length;
      const before = batchModifies();
      const first = await spawnUntil([...args, ...mode.args], mode.env, () => batchModifies() >= before + 2, (child) => {
        child.kill('SIGINT');
      });
      sandbox.clearFaults();
      expect(first.code).toBe(130);
      const sent = batchModifies() - before;
      const written = sandbox.steps().filter((s) => s.name?.startsWith('Resumed ')).length;
      // The batch in flight at Ctrl-C was let finish; no batch was sent after it.
      expect(sent).toBeGreaterThanOrEqual(2);
      expect(sent).toBeLessThan(5);
      expect(written).toBe(sent * 100);
      expect(first.stderr).toContain('Stopping: no new batches; waiting for the ones in flight (Ctrl-C again quits at once).');
      expect(first.stdout).toContain(`Imported ${modeName}-resume.csv into ${accountId}: ${written} created, 0 failed (500 rows).`);
      expect(first.stdout).toContain(`Interrupted: ${written} of 500 rows done, ${500 - written} not sent.`);
      const resume = first.stdout.split('\n').find((line) => line.startsWith(`  ${RUN} stages import`));
      expect(resume).toBe(`  ${RUN} ${[...args, ...mode.args].join(' ')}`);
      // The command it printed, run again: the rows written are replayed, the others created, none twice.
      const again = await spawnCli((resume as string).trim().slice(RUN.length + 1).split(' '), mode.env, dir);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain(`Imported ${modeName}-resume.csv into ${accountId}: ${500 - written} created, ${written} already created earlier (replayed), 0 failed (500 rows).`);
      const names = sandbox.steps().flatMap((s) => (s.name?.startsWith('Resumed ') ? [s.name] : []));
      expect(names).toHaveLength(500);
      expect(new Set(names).size).toBe(500);
    }, 40_000);

    it('quits at once on a second Ctrl-C, saying how to resume', async () => {
      writeFileSync(join(dir, `${modeName}-quit.csv`), 'name\nQuit 1\nQuit 2\n');
      // A batch that takes a long time: the first Ctrl-C waits for it, the second does not.
      sandbox.injectFault({ method: 'POST', path: 'batch-modify', latencyMs: 20_000, times: 1 });
      const requests = sandbox.requests.length;
      const run = await spawnUntil(
        ['stages', 'import', `${modeName}-quit.csv`, '--account', accountId, ...mode.args],
        mode.env,
        () => sandbox.requests.slice(requests).some((r) => r.path.endsWith('/batch-modify')),
        async (child, output) => {
          child.kill('SIGINT');
          await until(() => output().includes('Stopping: no new batches'));
          child.kill('SIGINT');
        },
      );
      sandbox.clearFaults();
      expect(run.code).toBe(130);
      expect(run.stderr).toContain('Quit at once: the batches in flight may or may not have been written. Resume with the same command (nothing is written twice):');
      expect(run.stderr).toContain(`  ${RUN} stages import ${modeName}-quit.csv --account ${accountId}`);
    }, 30_000);

    it('prints hints with the command that runs it: unicrm on PATH (the bin entry), npm run, or node <file>', async () => {
      // The package's bin entry names the built CLI, which starts with a shebang and is executable.
      const pkg = JSON.parse(readFileSync(join(__dirname, '../../../../package.json'), 'utf8'));
      expect(join(__dirname, '../../../../', pkg.bin.unicrm)).toBe(CLI);
      expect(readFileSync(CLI, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
      // What `npm link` does: a unicrm link on PATH to the file. Run by that name, the hints say unicrm.
      const bin = join(dir, `bin-${modeName}`);
      if (!existsSync(bin)) {
        mkdirSync(bin);
        symlinkSync(CLI, join(bin, 'unicrm'));
      }
      const onPath = await new Promise<Run>((resolve) => {
        execFile('unicrm', ['stages', 'create', '--name', 'x', ...mode.args], { env: { ...mode.env, PATH: `${bin}:${process.env.PATH}` }, cwd: dir }, (error, stdout, stderr) =>
          resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
      expect(onPath.stderr).toBe('usage error: --account is required\nRun "unicrm --help" for the commands.\n');
      expect(onPath.code).toBe(2);
      // Under the root package's script (npm run -s unicrm -- ...).
      const viaNpm = await unicrm(['accounts', 'list', '--limit', '1', '--all', 'extra'], { npm_lifecycle_event: 'unicrm' });
      expect(viaNpm.stderr).toContain('Run "npm run -s unicrm -- --help" for the commands.');
      // Neither: node and the file's path, and the help says what "unicrm" stands for.
      const help = await unicrm(['--help']);
      expect(help.stdout).toContain(`"unicrm" below is "${RUN}" here; "npm link" in the repository puts unicrm on PATH.`);
    });

    it('prints help and removes an account', async () => {
      const help = await unicrm(['--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('unicrm stages import <file.csv|file.json> --account <id> [--dry-run] [--concurrency 2] [--batch-size 100]');
      expect(help.stdout).toContain('--concurrency batch requests in flight at once (default 2, at most 64)');
      expect(help.stdout).toContain('130 an import stopped by Ctrl-C');
      for (const command of ['pipelines list', 'pipelines get <id>', 'stages list', 'stages get <id>', 'stages update <id>', 'stages delete <id>']) {
        expect(help.stdout).toContain(`  unicrm ${command} --account <id>`);
      }
      const removed = await unicrm(['accounts', 'remove', accountId]);
      expect(removed.stdout).toBe(`Removed integrated account ${accountId}.\n`);
      const gone = await unicrm(['accounts', 'get', accountId]);
      expect(gone.code).toBe(2);
      expect(gone.stderr).toBe(`error 404 Not Found: Integrated account ${accountId} not found.\n`);
    });
  });
}

/** What only the remote mode has: UNICRM_URL, tokens, unreachable servers, rate limits. */
export function defineRemoteOnlySuite(): void {
  describe('unicrm CLI, remote mode only (spawned)', () => {
    it('switches to the remote mode with UNICRM_URL and needs UNICRM_API_TOKEN', async () => {
      const noToken = await spawnCli(['accounts', 'get', '6b1c4f7e-2a3d-4e5f-8a9b-0c1d2e3f4a5b'], { UNICRM_URL: baseUrl });
      expect(noToken.code).toBe(2);
      expect(noToken.stderr).toContain(`usage error: the remote mode (${baseUrl}) needs UNICRM_API_TOKEN`);
      const viaEnv = await spawnCli(['accounts', 'get', '6b1c4f7e-2a3d-4e5f-8a9b-0c1d2e3f4a5b'], { UNICRM_URL: baseUrl, UNICRM_API_TOKEN: TOKEN });
      expect(viaEnv.code).toBe(2);
      expect(viaEnv.stderr).toBe('error 404 Not Found: Integrated account 6b1c4f7e-2a3d-4e5f-8a9b-0c1d2e3f4a5b not found.\n');
    });

    it('exits 1 for a bad token, with a hint', async () => {
      const run = await spawnCli(['accounts', 'get', '6b1c4f7e-2a3d-4e5f-8a9b-0c1d2e3f4a5b', '--remote', baseUrl], { UNICRM_API_TOKEN: 'wrong' });
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(
        'error 401 Unauthorized: Missing or invalid API token. Send Authorization: Bearer <token>.\n' +
          'hint: set UNICRM_API_TOKEN to an API token of that server\n',
      );
    });

    it('exits 1 when the server cannot be reached', async () => {
      const closed = await new Promise<Server>((resolve) => {
        const s = createServer();
        s.listen(0, '127.0.0.1', () => resolve(s));
      });
      const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
      await new Promise((resolve) => closed.close(resolve));
      const run = await spawnCli(['stages', 'create', '--account', '6b1c4f7e-2a3d-4e5f-8a9b-0c1d2e3f4a5b', '--name', 'x', '--remote', url], { UNICRM_API_TOKEN: TOKEN });
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(`error 502 Bad Gateway: Could not reach unicrm at ${url} for POST /unified/crm/stages (ECONNREFUSED). Is the server running?\n`);
    });

    it('imports through a rate limit: waits for Retry-After and tries the rows again', async () => {
      const limited = createUnicrmCore({
        env: {},
        config: { dataDir: join(dir, 'data'), apiToken: TOKEN, logLevel: 'silent', rateLimits: { perToken: 0, perAccount: 4, windowMs: 1000 } },
      });
      const limitedServer = await new Promise<Server>((resolve) => {
        const s = createServer(createApp(limited));
        s.listen(0, '127.0.0.1', () => resolve(s));
      });
      try {
        const account = await limited.accounts.create('default', {
          integration: 'pipeliner',
          tenant_id: 'limited',
          context: { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: sandbox.username, password: sandbox.password },
          validate: false,
        });
        const rows = ['name', ...Array.from({ length: 10 }, (_, i) => `Limited ${i + 1}`)];
        writeFileSync(join(dir, 'limited.csv'), `${rows.join('\n')}\n`);
        const url = `http://127.0.0.1:${(limitedServer.address() as AddressInfo).port}`;
        // One row a batch, four batches at once: more requests than the server's limit of 4 a second.
        const run = await spawnCli(['stages', 'import', 'limited.csv', '--account', account.id, '--remote', url, '--concurrency', '4', '--batch-size', '1'], { UNICRM_API_TOKEN: TOKEN }, dir);
        expect(run.stdout).toContain(`Imported limited.csv into ${account.id}: 10 created, 0 failed (10 rows).`);
        expect(run.code).toBe(0);
        expect(run.stderr).toMatch(/^row \d+: 429 Too Many Requests: Rate limit exceeded: 4 requests per 1 s per integrated account\..*; trying again in 1 s$/m);
        expect(sandbox.steps().filter((s) => s.name?.startsWith('Limited '))).toHaveLength(10);
      } finally {
        limitedServer.closeAllConnections();
        await new Promise((resolve) => limitedServer.close(resolve));
        await limited.close();
      }
    }, 30_000);

    it('resumes after the CLI was killed (kill -9) with a batch in flight: every row once, the rerun replays what the server wrote', async () => {
      const account = await core.accounts.create('default', {
        integration: 'pipeliner',
        tenant_id: 'crash',
        context: { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: sandbox.username, password: sandbox.password },
        validate: false,
      });
      const rows = ['name', ...Array.from({ length: 300 }, (_, i) => `Crashed ${i + 1}`)];
      writeFileSync(join(dir, 'crash.csv'), `${rows.join('\n')}\n`);
      const args = ['stages', 'import', 'crash.csv', '--account', account.id, '--remote', baseUrl, '--concurrency', '1'];
      // Each batch-modify takes a second: the CLI is killed while its second batch is at Pipeliner.
      sandbox.injectFault({ method: 'POST', path: 'batch-modify', latencyMs: 1000 });
      const batchModifies = () => sandbox.requests.filter((r) => r.path.endsWith('/batch-modify')).length;
      const before = batchModifies();
      const killed = await spawnUntil(args, { UNICRM_API_TOKEN: TOKEN }, () => batchModifies() >= before + 2, (child) => {
        child.kill('SIGKILL');
      });
      expect(killed.code).toBe(128);
      // The server finishes the batch the CLI left behind.
      await until(() => sandbox.steps().filter((s) => s.name?.startsWith('Crashed ')).length >= 200);
      sandbox.clearFaults();
      const written = sandbox.steps().filter((s) => s.name?.startsWith('Crashed ')).length;
      const rerun = await spawnCli([...args, '--output', 'json'], { UNICRM_API_TOKEN: TOKEN }, dir);
      expect(rerun.code).toBe(0);
      const summary = JSON.parse(rerun.stdout);
      expect(summary).toMatchObject({ total: 300, failed: 0, unfinished: 0, replayed: written, created: 300 - written });
      const names = sandbox.steps().flatMap((s) => (s.name?.startsWith('Crashed ') ? [s.name] : []));
      expect(names).toHaveLength(300);
      expect(new Set(names).size).toBe(300);
    }, 40_000);

    it('refuses --remote together with --data-dir', async () => {
      const run = await spawnCli(['accounts', 'get', 'x', '--remote', baseUrl, '--data-dir', dir], { UNICRM_API_TOKEN: TOKEN });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('--remote and --data-dir do not go together');
    });
  });
}

/** Another process serving a data directory as the API does (`serving: true`), optionally creating accounts non-stop. */
interface ServingProcess {
  child: ChildProcess;
  pid: number;
  /** Accounts it has created so far (each committed before it is counted). */
  created(): number;
  /** The ids of those accounts, in the order they were committed. */
  ids(): string[];
  /** Resolves once it has created at least `n` accounts. */
  until(n: number): Promise<void>;
  /** SIGTERM: it closes the core (the marker goes) and exits. */
  stop(): Promise<void>;
}

const servingProcesses: ChildProcess[] = [];

/**
 * How many accounts a writing serving process creates at most, one per millisecond or so: enough to keep writing
 * through a CLI run, few enough that what the test reads back does not grow with the machine's speed.
 */
const WRITER_LIMIT = 2000;

function startServingProcess(dataDir: string, writeAccounts = false, dropCore = false): Promise<ServingProcess> {
  // dropCore: the core is made and forgotten, then garbage is collected: the claim must hold all the same.
  const script = dropCore
    ? `
    const { createUnicrmCore } = require(${JSON.stringify(BUILT_CORE)});
    (() => createUnicrmCore({ env: {}, config: { dataDir: ${JSON.stringify(dataDir)}, logLevel: 'silent' }, serving: true }))();
    global.gc();
    process.stdout.write('ready\\n');
    setInterval(() => global.gc(), 20);
  `
    : `
    const { createUnicrmCore } = require(${JSON.stringify(BUILT_CORE)});
    const core = createUnicrmCore({ env: {}, config: { dataDir: ${JSON.stringify(dataDir)}, logLevel: 'silent' }, serving: true });
    let n = 0;
    const context = { service_url: 'http://127.0.0.1:9', space_id: 's', username: 'user', password: 'secret' };
    const write = () => core.accounts.create('default', { integration: 'pipeliner', tenant_id: 't' + n, context, validate: false })
      .then((account) => { n++; process.stdout.write(n + ' ' + account.id + '\\n'); if (n < ${WRITER_LIMIT}) setTimeout(write, 1); });
    if (${writeAccounts}) write();
    process.on('SIGTERM', () => core.close().then(() => process.exit(0)));
    setInterval(() => core, 1 << 30); // alive, and so is its core (an API's server keeps both)
    // Ready only once SIGTERM is handled: a test that stops it at once must not kill it before its clean-up is set.
    process.stdout.write('ready\\n');
  `;
  const child = spawn(process.execPath, ['--expose-gc', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  servingProcesses.push(child);
  let created = 0;
  const ids: string[] = [];
  let ready = false;
  let errors = '';
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  child.stderr?.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => !ready && reject(new Error(`the serving process exited (${code}): ${errors}`)));
    let pending = ''; // a chunk may end inside a line
    child.stdout?.on('data', (chunk: Buffer) => {
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop() as string;
      for (const line of lines.filter(Boolean)) {
        if (line === 'ready') {
          ready = true;
          resolve({
            child,
            pid: child.pid as number,
            created: () => created,
            ids: () => [...ids],
            until: (n) => new Promise((done) => (created >= n ? done() : waiters.push({ n, resolve: done }))),
            stop: () =>
              new Promise((done) => {
                child.on('exit', () => done());
                child.kill('SIGTERM');
              }),
          });
        } else {
          const [count, id] = line.split(' ');
          created = Number(count);
          ids.push(id as string);
          for (const waiter of waiters.filter((w) => created >= w.n)) waiter.resolve();
        }
      }
    });
  });
}

/** The commands that work on the data directory itself: tokens, keys, backup and restore. */
export function defineDataDirectorySuite(): void {
  describe('unicrm CLI, data directory commands (spawned)', () => {
    afterEach(() => {
      for (const child of servingProcesses.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });

    it('creates, lists and revokes API tokens that the API then accepts and refuses', async () => {
      const data = ['--data-dir', join(dir, 'data')];
      const created = await spawnCli(['tokens', 'create', '--name', 'ci', '--expires-in', '30', '--output', 'json', ...data]);
      expect(created.code).toBe(0);
      const token = JSON.parse(created.stdout);
      expect(token).toMatchObject({ token: expect.stringMatching(/^ucrm_/), name: 'ci', environment: 'default', expires_at: expect.any(String) });

      const viaApi = await spawnCli(['accounts', 'list', '--remote', baseUrl, '--output', 'json'], { UNICRM_API_TOKEN: token.token });
      expect(viaApi.code).toBe(0);

      const listed = await spawnCli(['tokens', 'list', ...data]);
      expect(listed.stdout).toMatch(new RegExp(`^${token.id} +ci +default +active +`, 'm'));
      expect(listed.stdout).not.toContain(token.token);

      const revoked = await spawnCli(['tokens', 'revoke', token.id, ...data]);
      expect(revoked.stdout).toBe(`Revoked API token ${token.id}: it is refused from the next request on.\n`);
      const refused = await spawnCli(['accounts', 'list', '--remote', baseUrl], { UNICRM_API_TOKEN: token.token });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('error 401 Unauthorized: The API token was revoked; use another one.');

      const remote = await spawnCli(['tokens', 'list', '--remote', baseUrl], { UNICRM_API_TOKEN: TOKEN });
      expect(remote.code).toBe(2);
      expect(remote.stderr).toContain('tokens list works on the data directory, not through the API');
    });

    it('rotates the data key of a data directory (progress on stderr), and the accounts still open', async () => {
      const data = ['--data-dir', join(dir, 'rotate-data')];
      const ids: string[] = [];
      while (ids.length < 3) {
        const added = await spawnCli(
          ['accounts', 'add', 'pipeliner', '--service-url', sandbox.serviceUrl, '--space-id', sandbox.spaceId, '--username', sandbox.username, '--no-validate', '--output', 'json', ...data],
          { PIPELINER_PASSWORD: sandbox.password },
        );
        ids.push(JSON.parse(added.stdout).id);
      }
      const keyFile = join(dir, 'rotate-data', 'encryption.key');
      const before = readFileSync(keyFile, 'utf8');
      const rotated = await spawnCli(['keys', 'rotate', '--batch-size', '2', ...data]);
      expect(rotated.code).toBe(0);
      expect(rotated.stderr).toBe('re-encrypted 2 of 3 integrated accounts\nre-encrypted 3 of 3 integrated accounts\n');
      expect(rotated.stdout).toMatch(/^Rotated to data key [0-9a-f]{12}: re-encrypted 3 integrated accounts; retired [0-9a-f]{12}\.\n$/);
      expect(readFileSync(keyFile, 'utf8')).toBe(before); // the master key stays
      const json = await spawnCli(['keys', 'rotate', '--output', 'json', ...data]);
      expect(JSON.parse(json.stdout)).toEqual({ activeKid: expect.stringMatching(/^[0-9a-f]{12}$/), resumed: false, resealed: 3, retired: [/^Rotated to data key ([0-9a-f]{12})/.exec(rotated.stdout)?.[1]], unreadable: [] });
      sandbox.reset();
      const stage = await spawnCli(['stages', 'create', '--account', ids[2] as string, '--name', 'After data key rotation', '--output', 'json', ...data]);
      expect(stage.code).toBe(0);
      expect(JSON.parse(stage.stdout)).toMatchObject({ name: 'After data key rotation' });
      expect((await spawnCli(['keys', 'rotate', '--batch-size', '0', ...data])).stderr).toContain('--batch-size must be a whole number from 1 to 10000, not "0"');
      expect((await spawnCli(['keys', 'rotate', '--new-key', 'x', ...data])).stderr).toContain('--new-key replaces the master key: keys rotate --master --new-key <key>');
    });

    it('rotates the master key of a data directory, and the accounts still open', async () => {
      const data = ['--data-dir', join(dir, 'rotate')];
      const added = await spawnCli(
        ['accounts', 'add', 'pipeliner', '--service-url', sandbox.serviceUrl, '--space-id', sandbox.spaceId, '--username', sandbox.username, '--no-validate', '--output', 'json', ...data],
        { PIPELINER_PASSWORD: sandbox.password },
      );
      const id = JSON.parse(added.stdout).id;
      const keyFile = join(dir, 'rotate', 'encryption.key');
      const before = readFileSync(keyFile, 'utf8');
      const rotated = await spawnCli(['keys', 'rotate', '--master', ...data]);
      expect(rotated.stderr).toBe('');
      expect(rotated.stdout).toBe(`Replaced the master key: wrapped 1 data key again; the new key is in ${keyFile}.\n`);
      expect(readFileSync(keyFile, 'utf8')).not.toBe(before);
      sandbox.reset();
      const stage = await spawnCli(['stages', 'create', '--account', id, '--name', 'After rotation', '--output', 'json', ...data]);
      expect(stage.code).toBe(0);
      expect(JSON.parse(stage.stdout)).toMatchObject({ name: 'After rotation' });
    });

    it('refuses keys rotate --master while another process serves the directory, naming its pid; not after it stopped or died', async () => {
      const home = join(dir, 'rotate-served');
      const data = ['--data-dir', home];
      const server = await startServingProcess(home);
      const keyFile = join(home, 'encryption.key');
      const before = readFileSync(keyFile, 'utf8');
      const refused = await spawnCli(['keys', 'rotate', '--master', ...data]);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe('');
      expect(refused.stderr).toMatch(
        new RegExp(`^error: keys rotate --master refused: the unicrm API is serving the data directory ${home} \\(pid ${server.pid}, since \\d{4}-[^)]*\\)\\. `),
      );
      expect(refused.stderr).toContain(`(kill -TERM ${server.pid}, or Ctrl-C in its terminal; it finishes its requests and exits), then run keys rotate --master again`);
      expect(refused.stderr).toContain('Nothing was changed.');
      expect(readFileSync(keyFile, 'utf8')).toBe(before);
      expect(existsSync(join(home, 'encryption.key.next'))).toBe(false);

      // Killed: its pid file stays behind, and does not block.
      server.child.kill('SIGKILL');
      await new Promise((resolve) => server.child.on('exit', resolve));
      expect(existsSync(join(home, 'serving', `${server.pid}.json`))).toBe(true);
      const rotated = await spawnCli(['keys', 'rotate', '--master', ...data]);
      expect(rotated.stderr).toBe('');
      expect(rotated.code).toBe(0);
      expect(readFileSync(keyFile, 'utf8')).not.toBe(before);

      // Stopped cleanly: nothing left behind either.
      const again = await startServingProcess(home);
      await again.stop();
      expect(existsSync(join(home, 'serving', `${again.pid}.json`))).toBe(false);
      expect((await spawnCli(['keys', 'rotate', '--master', ...data])).code).toBe(0);
    }, 120_000);

    it('keeps the marker for the life of the serving process, even once its core is garbage', async () => {
      const home = join(dir, 'rotate-gc');
      const server = await startServingProcess(home, false, true);
      await new Promise((resolve) => setTimeout(resolve, 100)); // a few more collections in the server
      const refused = await spawnCli(['keys', 'rotate', '--master', '--data-dir', home]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`(pid ${server.pid}, since `);
    }, 120_000);

    it('backs up while a serving process writes accounts: every account committed before is in it, and it restores', async () => {
      const home = join(dir, 'backup-live');
      const server = await startServingProcess(home, true);
      await server.until(30);
      const committedBefore = server.ids(); // committed before the backup starts; it keeps writing during the backup
      const file = join(dir, 'live-backup.sqlite');
      const backup = await spawnCli(['backup', file, '--data-dir', home]);
      expect(backup.stderr).toBe('');
      expect(backup.code).toBe(0);
      const [first, ...rest] = backup.stdout.trimEnd().split('\n');
      expect(first).toMatch(new RegExp(`^Backed up ${home} to ${file} \\((\\d+) integrated accounts, 0 API tokens, \\d+ bytes\\)\\.$`));
      const inBackup = Number(/\((\d+) integrated accounts/.exec(first as string)?.[1]);
      expect(inBackup).toBeGreaterThanOrEqual(committedBefore.length);
      expect(rest).toEqual([
        `The credentials in it are encrypted with the key in ${join(home, 'encryption.key')}, which is not in the backup: keep a copy of that key apart from`,
        'your backups. A backup without its key cannot be read; a backup kept with its key gives away every credential.',
      ]);
      await server.stop();
      const committed = server.ids();
      expect(committed.length).toBeLessThanOrEqual(WRITER_LIMIT);

      // Restored elsewhere with its key: every account opens.
      const elsewhere = join(dir, 'backup-restored');
      mkdirSync(elsewhere);
      const noKey = await spawnCli(['restore', file, '--data-dir', elsewhere]);
      expect(noKey.code).toBe(1);
      expect(noKey.stderr).toContain(`error: There is no encryption key for ${elsewhere}: ${join(elsewhere, 'encryption.key')} does not exist`);
      copyFileSync(join(home, 'encryption.key'), join(elsewhere, 'encryption.key'));
      const restored = await spawnCli(['restore', file, '--data-dir', elsewhere, '--output', 'json']);
      expect(restored.stderr).toBe('');
      expect(JSON.parse(restored.stdout)).toMatchObject({ accounts: inBackup, previous: null, dataDir: elsewhere, keyFound: true });
      const listed = await spawnCli(['accounts', 'list', '--all', '--output', 'json', '--data-dir', elsewhere]);
      expect(listed.stderr).toBe('');
      const accounts: Array<{ id: string; is_usable: boolean }> = JSON.parse(listed.stdout).result;
      expect(accounts).toHaveLength(inBackup);
      expect(accounts.every((a) => a.is_usable)).toBe(true);
      // Every account committed before the backup is in it, and it holds only accounts the writer committed: the
      // first inBackup of them (each commit is a transaction, so the backup is a consistent cut of the sequence).
      const restoredIds = accounts.map((a) => a.id).sort();
      expect(restoredIds).toEqual(expect.arrayContaining(committedBefore));
      expect(restoredIds).toEqual(committed.slice(0, inBackup).sort());
    }, 120_000);

    it('restores a backup over later changes; refuses while served, and refuses a file that is not a unicrm backup', async () => {
      const home = join(dir, 'restore-trip');
      const data = ['--data-dir', home];
      const add = (tenant: string) =>
        spawnCli(
          ['accounts', 'add', 'pipeliner', '--service-url', sandbox.serviceUrl, '--space-id', sandbox.spaceId, '--username', sandbox.username, '--tenant-id', tenant, '--no-validate', '--output', 'json', ...data],
          { PIPELINER_PASSWORD: sandbox.password },
        ).then((run) => JSON.parse(run.stdout).id as string);
      const kept = await add('kept');
      const file = join(dir, 'trip.sqlite');
      expect((await spawnCli(['backup', file, ...data])).code).toBe(0);
      expect((await spawnCli(['backup', file, ...data])).stderr).toContain(`usage error: ${file} exists already; name a new file (or --force to replace it).`);
      const later = await add('later');
      expect((await spawnCli(['accounts', 'remove', kept, ...data])).code).toBe(0);

      const server = await startServingProcess(home);
      const refused = await spawnCli(['restore', file, ...data]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`error: restore refused: the unicrm API is serving the data directory ${home} (pid ${server.pid}, since `);
      await server.stop();

      const notBackup = join(dir, 'stages.csv');
      writeFileSync(notBackup, 'name\nQualified\n');
      const wrong = await spawnCli(['restore', notBackup, ...data]);
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toContain(`usage error: ${notBackup} is not a unicrm backup: file is not a database (not a SQLite database).`);

      const restored = await spawnCli(['restore', file, ...data]);
      expect(restored.stderr).toBe('');
      expect(restored.code).toBe(0);
      const lines = restored.stdout.trimEnd().split('\n');
      expect(lines[0]).toBe(`Restored ${file} into ${home} (1 integrated account, 0 API tokens); its key check opens with ${join(home, 'encryption.key')}.`);
      expect(lines[1]).toMatch(new RegExp(`^The database it replaced is kept as ${join(home, 'unicrm.sqlite')}\\.before-restore-\\S+; delete it once you no longer need it\\.$`));
      const listed = JSON.parse((await spawnCli(['accounts', 'list', '--output', 'json', ...data])).stdout);
      expect(listed.result.map((a: { id: string }) => a.id)).toEqual([kept]);
      expect(listed.result.map((a: { id: string }) => a.id)).not.toContain(later);
      sandbox.reset();
      expect((await spawnCli(['stages', 'create', '--account', kept, '--name', 'After restore', ...data])).code).toBe(0);
    }, 120_000);
  });
}
