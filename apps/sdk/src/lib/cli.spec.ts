import { type RunningSandbox, SANDBOX_SEED_IDS, startSandbox } from '@unicrm/pipeliner-sandbox';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUnicrm } from './embedded';

// The CLI is tested as users run it: the built file, spawned as a real process (the test target builds first).
const CLI = join(__dirname, '../../../../dist/apps/sdk/src/cli.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function unicrm(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let sandbox: RunningSandbox;
let dir: string;
let accountId: string;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx nx run sdk:build\` first (nx test does).`);
  sandbox = await startSandbox({ port: 0 });
  dir = mkdtempSync(join(tmpdir(), 'unicrm-cli-'));
  const added = await unicrm(
    ['accounts', 'add', 'pipeliner', '--service-url', sandbox.serviceUrl, '--space-id', sandbox.spaceId, '--username', sandbox.username, '--data-dir', dir],
    { PIPELINER_PASSWORD: sandbox.password },
  );
  expect(added.stderr).toBe('');
  expect(added.code).toBe(0);
  accountId = JSON.parse(added.stdout).id;
});

afterAll(async () => {
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('unicrm CLI (spawned)', () => {
  it('adds an account without printing its secrets', async () => {
    const got = await unicrm(['accounts', 'get', accountId, '--data-dir', dir]);
    expect(got.code).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({ id: accountId, status: 'active', context: { space_id: sandbox.spaceId } });
    expect(got.stdout).not.toContain(sandbox.password);
    expect(got.stdout).not.toContain(sandbox.username);
  });

  it('creates a stage with the same body as the SDK', async () => {
    const args = ['--name', 'CLI stage', '--pipeline', SANDBOX_SEED_IDS.salesPipelineId, '--format', 'normalized'];
    sandbox.reset();
    const run = await unicrm(['stages', 'create', '--account', accountId, ...args, '--data-dir', dir]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const fromCli = JSON.parse(run.stdout);

    sandbox.reset();
    const sdk = createUnicrm({ dataDir: dir });
    const fromSdk = await sdk.crm.stages.create(
      { integrated_account_id: accountId, truto_response_format: 'normalized' },
      { name: 'CLI stage', pipeline: { id: SANDBOX_SEED_IDS.salesPipelineId } },
    );
    await sdk.close();
    const vary = (body: Record<string, unknown>) => ({ ...body, id: '-', created_at: '-', updated_at: '-' });
    expect(vary(fromCli)).toEqual(vary(fromSdk as Record<string, unknown>));
    expect(fromCli).toMatchObject({ name: 'CLI stage', status: 'active', pipeline: { id: SANDBOX_SEED_IDS.salesPipelineId, name: 'Sales Pipeline' } });
  });

  it('passes --remote-data and --remote-query to Pipeliner and prints the raw answer', async () => {
    sandbox.reset();
    const run = await unicrm([
      'stages', 'create', '--account', accountId, '--name', 'Raw CLI', '--remote-data', '{"percent": 35}',
      '--remote-query', 'expand=pipeline', '--format', 'raw', '--data-dir', dir,
    ]);
    expect(run.code).toBe(0);
    const raw = JSON.parse(run.stdout);
    expect(raw).toMatchObject({ success: true, data: { name: 'Raw CLI', percent: 35 } });
    const post = sandbox.requests.find((r) => r.method === 'POST');
    expect(post?.query).toBe('expand=pipeline');
  });

  it('exits 2 with a usage error on stderr', async () => {
    const run = await unicrm(['stages', 'create', '--name', 'x', '--data-dir', dir]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('--account is required');
  });

  it('exits 2 for an invalid body and names the field', async () => {
    const run = await unicrm(['stages', 'create', '--account', accountId, '--position', '-1', '--name', 'x', '--data-dir', dir]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('position');
  });

  it("exits 1 on a remote error and shows Pipeliner's own message", async () => {
    const run = await unicrm([
      'stages', 'create', '--account', accountId, '--name', 'x', '--pipeline', '99999999-9999-4999-8999-999999999999', '--data-dir', dir,
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^error 422 Unprocessable Entity: /);
    expect(run.stderr).toContain('remote answer: {');
    expect(run.stderr).toContain('"success":false');
  });

  it('prints help and removes an account', async () => {
    const help = await unicrm(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('unicrm stages create --account <id>');
    const removed = await unicrm(['accounts', 'remove', accountId, '--data-dir', dir]);
    expect(JSON.parse(removed.stdout)).toEqual({ id: accountId });
    const gone = await unicrm(['accounts', 'get', accountId, '--data-dir', dir]);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('not found');
  });
});
