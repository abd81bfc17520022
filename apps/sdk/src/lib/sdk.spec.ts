import { createApp } from '@unicrm/api';
import { createUnicrmCore, UNICRM_VERSION, type UnicrmCore } from '@unicrm/core';
import { type RunningSandbox, SANDBOX_SEED_IDS, startSandbox } from '@unicrm/sandboxes';
import { createServer, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUnicrm, createUnicrmClient, isUnicrmError, responseMeta, SDK_VERSION, type Stage, type Unicrm, UnicrmError } from '../index';

// One suite, two transports: every test below runs against the embedded client (the core in this process) and the
// remote client (HTTP to the API app on 127.0.0.1), with one data directory, one account and one Pipeliner sandbox.
// The remote client runs with `retry: false` here, so that each failure is seen as the server sent it; its
// retries are tested in remote-retry.spec.ts.

const TOKEN = 'sdk-suite-token';
const SALES = SANDBOX_SEED_IDS.salesPipelineId;
const RENEWALS = SANDBOX_SEED_IDS.renewalsPipelineId;
/** The seed's steps, in id order (Pipeliner's default order): the Sales Pipeline's five, then the Renewals' three. */
const SALES_STEPS = [...SANDBOX_SEED_IDS.salesStepIds];
const RENEWAL_STEPS = [...SANDBOX_SEED_IDS.renewalsStepIds];
const ALL_STEPS = [...SALES_STEPS, ...RENEWAL_STEPS];
const [S1, S2, S3, S4, S5] = SALES_STEPS as [string, string, string, string, string];
const MISSING_STEP = '99999999-57e9-4999-8999-999999999999';
const MISSING_PIPELINE = '99999999-9999-4999-8999-999999999999';
const MISSING_ACCOUNT = '6b1c4f7e-2a3d-4e5f-8a9b-0c1d2e3f4a5b';

let sandbox: RunningSandbox;
let dir: string;
let core: UnicrmCore;
let server: Server;
let baseUrl: string;
let accountId: string;
/** What reached the API over HTTP: path with query, and headers. */
const seen: { url: string; headers: IncomingHttpHeaders }[] = [];

function listen(handler: RequestListener): Promise<Server> {
  return new Promise((resolve) => {
    const s = createServer(handler);
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}
const urlOf = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
const close = (s: Server) => new Promise<void>((resolve) => s.close(() => resolve()));

async function failure(promise: Promise<unknown>): Promise<UnicrmError> {
  const error = await promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
  if (!isUnicrmError(error)) throw error;
  expect(error).toBeInstanceOf(UnicrmError);
  return error;
}

/** Removes what differs between two creates of the same stage: ids, revisions and server times. */
function stable(body: unknown): unknown {
  return JSON.parse(JSON.stringify(body), (key, value) =>
    ['id', 'created', 'modified', 'created_at', 'updated_at', 'revision'].includes(key) && value !== null ? '<varies>' : value,
  );
}

beforeAll(async () => {
  sandbox = await startSandbox({ port: 0, contract: true });
  dir = mkdtempSync(join(tmpdir(), 'unicrm-sdk-'));
  // No rate limits here (the suite sends more than 50 creates per 10 s for one account); cli.spec.ts tests them.
  core = createUnicrmCore({
    env: {},
    config: { dataDir: dir, apiToken: TOKEN, logLevel: 'silent', rateLimits: { perToken: 0, perAccount: 0, windowMs: 10_000 } },
  });
  const app = createApp(core);
  server = await listen((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    app(req, res);
  });
  baseUrl = urlOf(server);
  const account = await core.accounts.create('default', {
    integration: 'pipeliner',
    tenant_id: 'acme',
    context: { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: sandbox.username, password: sandbox.password },
  });
  accountId = account.id;
});

afterEach(() => expect(sandbox.takeContractViolations()).toEqual([]));
afterAll(async () => {
  server.closeAllConnections();
  await close(server);
  await core.close();
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  sandbox.reset();
  seen.length = 0;
});

const transports: [string, () => Unicrm][] = [
  ['embedded', () => createUnicrm({ dataDir: dir })],
  ['remote', () => createUnicrmClient({ baseUrl, token: TOKEN, retry: false })],
];

describe.each(transports)('the %s SDK', (_name, make) => {
  let sdk: Unicrm;
  beforeAll(() => {
    sdk = make();
  });
  afterAll(() => sdk.close());

  describe('crm.stages.create', () => {
    it('creates a stage in Pipeliner and answers the unified stage', async () => {
      const stage = await sdk.crm.stages.create(
        { integrated_account_id: accountId },
        { name: 'Contract Sent', pipeline: { id: SALES }, position: 3 },
      );
      const step = sandbox.steps().find((s) => s.id === stage.id);
      expect(step).toMatchObject({ name: 'Contract Sent', pipeline_id: SALES, sort_order: 3 });
      expect(stage).toMatchObject({
        name: 'Contract Sent',
        position: 3,
        status: 'active',
        pipeline: { id: SALES, name: 'Sales Pipeline' },
        remote_data: { id: stage.id, name: 'Contract Sent', pipeline_id: SALES, sort_order: 3, is_deleted: false },
      });
      expect(stage.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(stage.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Object.keys(stage)).toEqual(['id', 'name', 'position', 'status', 'pipeline', 'created_at', 'updated_at', 'remote_data']);
    });

    it("answers Pipeliner's own body, parsed, in the raw format", async () => {
      const raw = await sdk.crm.stages.create(
        { integrated_account_id: accountId, truto_response_format: 'raw', truto_exclude_fields: ['data'] },
        { name: 'Raw', pipeline: { id: SALES } },
      );
      expect(raw).toMatchObject({ success: true, data: { name: 'Raw', pipeline_id: SALES, is_deleted: false } });
      expect(Object.keys(raw)).toEqual(['success', 'data']);
    });

    it('answers every field with nulls and no remote_data in the normalized format', async () => {
      const stage = await sdk.crm.stages.create(
        { integrated_account_id: accountId, truto_response_format: 'normalized' },
        { name: 'Loose step' },
      );
      expect(Object.keys(stage)).toEqual(['id', 'name', 'position', 'status', 'pipeline', 'created_at', 'updated_at']);
      expect(stage).toMatchObject({ name: 'Loose step', status: 'active', pipeline: null });
      expect(typeof stage.id).toBe('string');
    });

    it('applies truto_ignore_remote_data and truto_exclude_fields (dot paths)', async () => {
      const lean = await sdk.crm.stages.create(
        { integrated_account_id: accountId, truto_ignore_remote_data: true },
        { name: 'Lean', pipeline: { id: SALES } },
      );
      expect(lean.remote_data).toBeUndefined();
      expect(lean.pipeline).toEqual({ id: SALES, name: 'Sales Pipeline' });

      const trimmed = await sdk.crm.stages.create(
        { integrated_account_id: accountId, truto_exclude_fields: ['pipeline.name', 'created_at', 'remote_data.revision'] },
        { name: 'Trimmed', pipeline: { id: SALES } },
      );
      expect(trimmed.pipeline).toEqual({ id: SALES });
      expect(trimmed).not.toHaveProperty('created_at');
      expect(trimmed.updated_at).toBeDefined();
      expect(trimmed.remote_data).not.toHaveProperty('revision');
      expect(trimmed.remote_data).toHaveProperty('sort_order');
    });

    it('sends remote_query to Pipeliner as bracket keys and merges remote_data into its body', async () => {
      const stage = await sdk.crm.stages.create(
        { integrated_account_id: accountId, remote_query: { expand: 'pipeline', filter: { name: 'a b' } } },
        { name: 'Expanded', pipeline: { id: SALES }, remote_data: { percent: 40 } },
      );
      const post = sandbox.requests.find((r) => r.method === 'POST');
      expect(decodeURIComponent(post?.query ?? '')).toBe('validation-level=8&expand=pipeline&filter[name]=a b');
      expect(JSON.parse(post?.body ?? '{}')).toEqual({ name: 'Expanded', pipeline_id: SALES, percent: 40 });
      expect(stage.remote_data).toMatchObject({ percent: 40, pipeline: { id: SALES, name: 'Sales Pipeline' } });
      // The expanded pipeline gave its name: no second call to Pipeliner.
      expect(sandbox.requests).toHaveLength(1);
    });

    it('rejects an invalid body with 400 naming each field', async () => {
      const error = await failure(
        sdk.crm.stages.create({ integrated_account_id: accountId }, { name: 'x', position: -1, colour: 'red' } as never),
      );
      expect(error.statusCode).toBe(400);
      expect(error.isRemote).toBe(false);
      expect(error.body.details?.failures.map((f) => f.path).sort()).toEqual(['colour', 'position']);
      expect(sandbox.requests).toHaveLength(0);
    });

    it('rejects a bad query with 400 naming the parameter', async () => {
      const error = await failure(
        sdk.crm.stages.create({ integrated_account_id: accountId, truto_response_format: 'xml' as 'raw' }, { name: 'x' }),
      );
      expect(error.statusCode).toBe(400);
      expect(error.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(error.body.details?.failures).toEqual([{ path: 'truto_response_format', message: 'must be one of: unified, raw, normalized' }]);
    });

    it('rejects a missing name with the missing_required_body_fields insight', async () => {
      const error = await failure(sdk.crm.stages.create({ integrated_account_id: accountId }, { name: '  ' }));
      expect(error.statusCode).toBe(400);
      expect(error.body.truto_error_insight?.missing_required_body_fields?.value).toEqual(['name']);
    });

    it("mirrors a remote error: Pipeliner's status, message and body", async () => {
      const error = await failure(
        sdk.crm.stages.create({ integrated_account_id: accountId }, { name: 'Orphan', pipeline: { id: MISSING_PIPELINE } }),
      );
      expect(error.statusCode).toBe(422);
      expect(error.isRemote).toBe(true);
      expect(error.body).toMatchObject({ statusCode: 422, error: 'Unprocessable Entity', truto_is_remote_error: true });
      expect(error.message).toBe(error.body.message);
      expect(error.message.length).toBeGreaterThan(0);
      expect(error.body.raw_response).toMatchObject({ success: false, http_status: 422 });
      expect(error.body.truto_error_insight?.remote_error).toBeDefined();
      expect(sandbox.steps().some((s) => s.name === 'Orphan')).toBe(false);
    });

    it('forwards Retry-After of a rate-limited Pipeliner answer on error.headers', async () => {
      // The core waits out a short Retry-After itself and sends again (its pacing); one longer than it waits (30 s) is
      // answered. The account then rests for that long: an account of this test's own, so the others do not wait.
      const resting = await core.accounts.create('default', {
        integration: 'pipeliner',
        tenant_id: `resting-${Math.random().toString(36).slice(2)}`,
        context: { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: sandbox.username, password: sandbox.password },
        validate: false,
      });
      sandbox.injectFault({ method: 'POST', path: '/entities/Steps', status: 429, retryAfter: 90, times: 1 });
      const error = await failure(sdk.crm.stages.create({ integrated_account_id: resting.id }, { name: 'Busy' }));
      expect(error.statusCode).toBe(429);
      expect(error.headers).toEqual({ 'retry-after': '90' });
      expect(error.body.truto_error_insight?.rate_limit_error).toBeDefined();
    });

    it('creates once per idempotency key and answers a repeat with the first answer', async () => {
      const key = `sdk-suite-${Math.random().toString(36).slice(2)}`;
      const query = { integrated_account_id: accountId, truto_response_format: 'normalized' as const };
      const first = await sdk.crm.stages.create(query, { name: 'Once', pipeline: { id: SALES } }, { idempotencyKey: key });
      const again = await sdk.crm.stages.create(query, { name: 'Once', pipeline: { id: SALES } }, { idempotencyKey: key });
      expect(again).toEqual(first);
      expect(sandbox.steps().filter((s) => s.name === 'Once')).toHaveLength(1);
      expect(sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(1);

      const reused = await failure(sdk.crm.stages.create(query, { name: 'Other' }, { idempotencyKey: key }));
      expect(reused.statusCode).toBe(422);
      expect(reused.message).toBe('This Idempotency-Key was used with a different request; use a new key for a new request.');
      const bad = await failure(sdk.crm.stages.create(query, { name: 'x' }, { idempotencyKey: 'ü' }));
      expect(bad.statusCode).toBe(400);
      expect(bad.body.details?.failures).toEqual([{ path: 'Idempotency-Key', message: 'must be 1 to 255 printable ASCII characters' }]);
    });

    it('tells a replayed answer from a new create with responseMeta, without changing the body', async () => {
      const key = `sdk-meta-${Math.random().toString(36).slice(2)}`;
      const query = { integrated_account_id: accountId };
      const first = await sdk.crm.stages.create(query, { name: 'Meta', pipeline: { id: SALES } }, { idempotencyKey: key });
      const again = await sdk.crm.stages.create(query, { name: 'Meta', pipeline: { id: SALES } }, { idempotencyKey: key });
      expect(responseMeta(first)).toEqual({ statusCode: 201, replayed: false, idempotencyKey: key, attempts: 1 });
      expect(responseMeta(again)).toEqual({ statusCode: 201, replayed: true, idempotencyKey: key, attempts: 1 });
      // Not enumerable: the body is still exactly the API's.
      expect(Object.keys(again)).toEqual(Object.keys(first));
      expect(JSON.stringify(again)).toBe(JSON.stringify(first));
      expect(responseMeta({ ...again })).toBeUndefined();
      // A create without a key: never replayed; the remote client sends one of its own (and says which).
      const loose = await sdk.crm.stages.create(query, { name: 'Meta 2' });
      expect(responseMeta(loose)).toMatchObject({ statusCode: 201, replayed: false });
      expect(responseMeta(await sdk.accounts.get(accountId))).toBeUndefined();
      // A replayed error (Pipeliner's 422, stored for the key) carries the mark on error.headers.
      const orphan = `sdk-meta-${Math.random().toString(36).slice(2)}`;
      const missing = { name: 'Orphan', pipeline: { id: MISSING_PIPELINE } };
      const once = await failure(sdk.crm.stages.create(query, missing, { idempotencyKey: orphan }));
      const twice = await failure(sdk.crm.stages.create(query, missing, { idempotencyKey: orphan }));
      expect([once.statusCode, twice.statusCode]).toEqual([422, 422]);
      expect(once.headers['idempotent-replayed']).toBeUndefined();
      expect(twice.headers['idempotent-replayed']).toBe('true');
    });

    it('answers 404 for an unknown integrated account', async () => {
      const error = await failure(sdk.crm.stages.create({ integrated_account_id: MISSING_ACCOUNT }, { name: 'x' }));
      expect(error.statusCode).toBe(404);
      expect(error.message).toBe(`Integrated account ${MISSING_ACCOUNT} not found.`);
    });
  });

  describe('crm.stages.batch', () => {
    const unique = () => Math.random().toString(36).slice(2);
    const batchModifies = () => sandbox.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/entities/Steps/batch-modify'));

    it('creates 100 stages with one batch-modify when asked for ids only, and answers each in order', async () => {
      const items = Array.from({ length: 100 }, (_, n) => ({ method: 'create' as const, body: { name: `Bulk ${n}`, pipeline: { id: SALES } } }));
      const answer = await sdk.crm.stages.batch({ integrated_account_id: accountId }, items, { minimal: true });
      expect(answer).toMatchObject({ succeeded: 100, failed: 0 });
      expect(answer.result.map((item) => item.index)).toEqual(items.map((_, n) => n));
      const byName = new Map(sandbox.steps().map((step) => [step.name, step.id]));
      expect(answer.result[42]).toEqual({ index: 42, method: 'create', status: 201, result: { id: byName.get('Bulk 42') } });
      expect(answer.result.every((item, n) => item.result?.id === byName.get(`Bulk ${n}`))).toBe(true);
      // One provider call: nothing read back.
      expect(sandbox.requests).toHaveLength(1);
      expect(JSON.parse(batchModifies()[0]?.body ?? '[]')).toHaveLength(100);
      expect(responseMeta(answer)).toMatchObject({ statusCode: 200, replayed: false, preferenceApplied: 'return=minimal' });
    });

    it('answers each item as its single request would: the stage in the asked format, or its own error', async () => {
      const answer = await sdk.crm.stages.batch({ integrated_account_id: accountId, truto_ignore_remote_data: true }, [
        { method: 'create', body: { name: 'Batched', pipeline: { id: SALES }, position: 2 } },
        { method: 'create', body: { pipeline: { id: SALES } } as unknown as { name: string } },
        { method: 'update', id: S2, body: { name: 'Renamed in a batch' } },
        { method: 'update', id: MISSING_STEP, body: { name: 'Nobody' } },
      ]);
      expect(answer).toMatchObject({ succeeded: 2, failed: 2 });
      const [created, invalid, updated, missing] = answer.result;
      expect(created).toEqual({ index: 0, method: 'create', status: 201, result: expect.objectContaining({ name: 'Batched', position: 2, pipeline: { id: SALES, name: 'Sales Pipeline' } }) });
      expect(created?.result).not.toHaveProperty('remote_data');
      expect(invalid).toMatchObject({ index: 1, status: 400, error: { statusCode: 400, error: 'Bad Request' } });
      expect(updated).toMatchObject({ index: 2, method: 'update', status: 200, result: { id: S2, name: 'Renamed in a batch' } });
      expect(missing).toMatchObject({ index: 3, status: 404, error: { statusCode: 404, truto_is_remote_error: true } });
      expect(sandbox.steps().find((step) => step.id === S2)?.name).toBe('Renamed in a batch');
      expect(responseMeta(answer)?.preferenceApplied).toBeUndefined();
    });

    it("replays an item whose idempotency_key a single create used, and the whole batch sent again with its key", async () => {
      const rowKey = `row-${unique()}`;
      const query = { integrated_account_id: accountId };
      const single = await sdk.crm.stages.create(query, { name: 'Keyed row', pipeline: { id: SALES } }, { idempotencyKey: rowKey });
      const items = [
        { method: 'create' as const, body: { name: 'Keyed row', pipeline: { id: SALES } }, idempotency_key: rowKey },
        { method: 'create' as const, body: { name: 'New row', pipeline: { id: SALES } }, idempotency_key: `row-${unique()}` },
      ];
      const batchKey = `batch-${unique()}`;
      const first = await sdk.crm.stages.batch(query, items, { idempotencyKey: batchKey });
      expect(first.result[0]).toEqual({ index: 0, method: 'create', status: 201, result: single, replayed: true });
      expect(first.result[1]).toMatchObject({ status: 201, result: { name: 'New row' } });
      expect(responseMeta(first)).toMatchObject({ replayed: false, idempotencyKey: batchKey });
      const again = await sdk.crm.stages.batch(query, items, { idempotencyKey: batchKey });
      expect(again).toEqual(first);
      expect(responseMeta(again)?.replayed).toBe(true);
      expect(sandbox.steps().filter((step) => step.name === 'Keyed row')).toHaveLength(1);
      expect(sandbox.steps().filter((step) => step.name === 'New row')).toHaveLength(1);
      expect(batchModifies()).toHaveLength(1);
      const other = await failure(sdk.crm.stages.batch(query, items.slice(1), { idempotencyKey: batchKey }));
      expect(other.statusCode).toBe(422);
    });

    it('checks every item with dry_run and writes nothing', async () => {
      const answer = await sdk.crm.stages.batch({ integrated_account_id: accountId, dry_run: true }, [
        { method: 'create', body: { name: 'Dry', pipeline: { id: SALES } } },
        { method: 'create', body: { name: 'Dry', colour: 'red' } as { name: string } },
        { method: 'update', id: S1, body: { name: 'Dry rename' } },
      ]);
      expect(answer.result.map((item) => item.status)).toEqual([200, 400, 200]);
      expect(answer.result[0]?.result).toEqual({ name: 'Dry', pipeline: { id: SALES } });
      expect(answer.result[1]?.error?.message).toContain('colour');
      expect(answer).toMatchObject({ succeeded: 2, failed: 1 });
      expect(sandbox.requests).toHaveLength(0);
    });

    it('refuses a batch that is not 1 to 100 well-formed items, naming each problem, before any call', async () => {
      const query = { integrated_account_id: accountId };
      const tooMany = await failure(sdk.crm.stages.batch(query, Array.from({ length: 101 }, (_, n) => ({ method: 'create' as const, body: { name: `n${n}` } }))));
      expect(tooMany.statusCode).toBe(400);
      expect(tooMany.message).toContain('1 to 100 items');
      const empty = await failure(sdk.crm.stages.batch(query, []));
      expect(empty.statusCode).toBe(400);
      const malformed = await failure(sdk.crm.stages.batch(query, [{ method: 'update', body: {} } as unknown as { method: 'update'; id: string; body: object }]));
      expect(malformed.body.details?.failures.map((f) => f.path)).toEqual(['items.0.id']);
      const account = await failure(sdk.crm.stages.batch({ integrated_account_id: MISSING_ACCOUNT }, [{ method: 'create', body: { name: 'x' } }]));
      expect(account.statusCode).toBe(404);
      expect(sandbox.requests).toHaveLength(0);
    });
  });

  describe('crm.stages.list', () => {
    const lean = () => ({ integrated_account_id: accountId, truto_ignore_remote_data: true });
    const stepCalls = () => sandbox.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/entities/Steps'));

    it('walks every stage one page at a time with limit=1, fetching nothing until iterated', async () => {
      const list = sdk.crm.stages.list({ ...lean(), limit: 1 });
      expect(sandbox.requests).toHaveLength(0);
      const pages = [];
      for await (const page of list) pages.push(page);
      expect(pages.map((page) => page.result.map((stage) => stage.id))).toEqual(ALL_STEPS.map((id) => [id]));
      expect(pages.map((page) => page.result_count)).toEqual(ALL_STEPS.map(() => 1));
      expect(pages[0]?.prev_cursor).toBeNull();
      expect(pages.slice(0, -1).every((page) => typeof page.next_cursor === 'string')).toBe(true);
      expect(pages.at(-1)?.next_cursor).toBeNull();
      expect(pages[1]?.result[0]).toEqual({
        id: S2,
        name: 'Needs Analysis',
        position: 1,
        status: 'active',
        pipeline: { id: SALES, name: 'Sales Pipeline' },
        created_at: '2024-01-15T09:00:00.000Z',
        updated_at: '2024-01-15T09:00:00.000Z',
      });
      // One Pipeliner call per page, and the cursors on responseMeta too.
      expect(stepCalls()).toHaveLength(ALL_STEPS.length);
      expect(responseMeta(pages[1])).toEqual({
        statusCode: 200,
        replayed: false,
        attempts: 1,
        nextCursor: pages[1]?.next_cursor,
        prevCursor: pages[1]?.prev_cursor,
      });
      // Each iteration is a walk of its own, from the first page.
      let again = 0;
      for await (const _page of list) again += 1;
      expect(again).toBe(ALL_STEPS.length);
    });

    it('fetches each page when the loop asks: stages reordered or deleted mid-walk are neither repeated nor skipped', async () => {
      const seen: string[] = [];
      for await (const page of sdk.crm.stages.list({ ...lean(), pipeline: { id: SALES }, limit: 1 })) {
        seen.push(...page.result.map((stage) => stage.id));
        if (seen.length === 2) {
          // Between two pages: one stage ahead deleted, one moved to the front, one already seen moved to the end.
          await sdk.crm.stages.delete(S4, lean());
          await sdk.crm.stages.update(S5, lean(), { position: 0 });
          await sdk.crm.stages.update(S1, lean(), { position: 4 });
        }
      }
      expect(seen).toEqual([S1, S2, S3, S5]);
    });

    it('answers every record with all(), the first page with first(), one record at a time with items()', async () => {
      const list = sdk.crm.stages.list({ ...lean(), pipeline: { id: SALES }, limit: 2 });
      const all: Stage[] = await list.all();
      expect(all.map((stage) => stage.name)).toEqual(['Qualification', 'Needs Analysis', 'Proposal', 'Negotiation', 'Closing']);
      expect(all.map((stage) => stage.position)).toEqual([0, 1, 2, 3, 4]);
      expect(stepCalls()).toHaveLength(3);
      expect(decodeURIComponent(stepCalls()[0]?.query ?? '')).toBe(`first=2&filter[pipeline_id]=${SALES}`);

      sandbox.requests.length = 0;
      const first = await list.first();
      expect(first.result.map((stage) => stage.id)).toEqual([S1, S2]);
      expect(first).toMatchObject({ result_count: 2, prev_cursor: null, next_cursor: expect.any(String) });
      expect(stepCalls()).toHaveLength(1);

      const names: string[] = [];
      for await (const stage of list.items()) {
        names.push(stage.name as string);
        if (names.length === 3) break; // stops fetching: the third page is never asked for
      }
      expect(names).toEqual(['Qualification', 'Needs Analysis', 'Proposal']);
      expect(stepCalls()).toHaveLength(3);
    });

    it("pages the raw format by the API's cursor headers, each page Pipeliner's own body", async () => {
      const list = sdk.crm.stages.list({ integrated_account_id: accountId, truto_response_format: 'raw', limit: 3 });
      const pages = [];
      for await (const page of list) pages.push(page);
      expect(pages.map((page) => (page.data as { id: string }[]).map((step) => step.id))).toEqual([ALL_STEPS.slice(0, 3), ALL_STEPS.slice(3, 6), ALL_STEPS.slice(6)]);
      expect(pages.map((page) => page.success)).toEqual([true, true, true]);
      expect(pages[0]).toHaveProperty('page_info');
      expect(pages[0]).not.toHaveProperty('next_cursor');
      expect(responseMeta(pages[0])?.nextCursor).toEqual(expect.any(String));
      expect(responseMeta(pages[1])?.prevCursor).toEqual(expect.any(String));
      expect(responseMeta(pages[2])?.nextCursor).toBeNull();
      // A raw page is the SDK's item: it cannot know where a provider keeps its records.
      expect(await list.all()).toEqual(pages);
    });

    it('filters by name, status and dates, keys by a field, and resumes from a cursor', async () => {
      const proposal = await sdk.crm.stages.list({ ...lean(), name: 'Proposal' }).all();
      expect(proposal.map((stage) => stage.id)).toEqual([S3]);

      await sdk.crm.stages.delete(S2, lean());
      const inactive = await sdk.crm.stages.list({ ...lean(), status: 'inactive' }).all();
      expect(inactive.map((stage) => [stage.id, stage.status])).toEqual([[S2, 'inactive']]);
      const active = await sdk.crm.stages.list({ ...lean(), pipeline: { id: SALES } }).all();
      expect(active.map((stage) => stage.id)).toEqual([S1, S3, S4, S5]);

      const recent = await sdk.crm.stages.list({ ...lean(), updated_at: { gte: '2025-01-01T00:00:00Z' }, status: 'inactive' }).all();
      expect(recent.map((stage) => stage.id)).toEqual([S2]);
      const old = await sdk.crm.stages.list({ ...lean(), created_at: { lte: '2024-01-15T09:00:00Z' }, pipeline: { id: RENEWALS } }).all();
      expect(old.map((stage) => stage.id)).toEqual(RENEWAL_STEPS);

      const keyed = await sdk.crm.stages.list({ ...lean(), pipeline: { id: RENEWALS }, truto_key_by: 'name' }).first();
      expect(Object.keys(keyed.result)).toEqual(['Renewal Due', 'Renewal Quoted', 'Renewed']);
      expect(keyed.result['Renewed']?.id).toBe(RENEWAL_STEPS[2]);
      expect(keyed.result_count).toBe(3);
      const keyedAll = await sdk.crm.stages.list({ ...lean(), pipeline: { id: RENEWALS }, truto_key_by: 'id', limit: 2 }).all();
      expect(keyedAll.map((stage) => stage.id)).toEqual(RENEWAL_STEPS);

      const head = await sdk.crm.stages.list({ ...lean(), limit: 3 }).first();
      expect(head.result.map((stage) => stage.id)).toEqual([S1, S3, S4]); // S2 is deleted
      const tail = await sdk.crm.stages.list({ ...lean(), limit: 3, next_cursor: head.next_cursor as string }).all();
      expect(tail.map((stage) => stage.id)).toEqual([S5, ...RENEWAL_STEPS]);
    });

    it('rejects, while iterating, a bad filter, a cursor unicrm did not issue and a cursor of another list', async () => {
      const bad = await failure(sdk.crm.stages.list({ ...lean(), status: 'archived' as 'active' }).first());
      expect(bad.statusCode).toBe(400);
      expect(bad.body.details?.failures.map((f) => f.path)).toEqual(['status']);
      const forged = await failure(sdk.crm.stages.list({ ...lean(), next_cursor: 'not-a-cursor' }).all());
      expect(forged.statusCode).toBe(400);
      const sales = await sdk.crm.stages.list({ ...lean(), pipeline: { id: SALES }, limit: 1 }).first();
      const other = await failure(sdk.crm.stages.list({ ...lean(), pipeline: { id: RENEWALS }, next_cursor: sales.next_cursor as string }).first());
      expect(other.statusCode).toBe(400);
      const unknown = await failure(sdk.crm.stages.list({ ...lean(), colour: 'red' } as never).first());
      expect(unknown.statusCode).toBe(400);
      expect(unknown.body.details?.failures[0]?.path).toBe('colour');
      expect(stepCalls()).toHaveLength(1);
    });
  });

  describe('crm.stages.get, update, delete', () => {
    const query = () => ({ integrated_account_id: accountId });
    const step = (id: string) => sandbox.steps().find((s) => s.id === id);
    const salesOrder = () =>
      sandbox
        .steps()
        .filter((s) => s.pipeline_id === SALES && !s.is_deleted)
        .sort((a, b) => (a.sort_order ?? 0) - (b.sort_order ?? 0))
        .map((s) => s.id);

    it('reads one stage in each format, and answers 404 for one Pipeliner does not have', async () => {
      const stage = await sdk.crm.stages.get(S3, query());
      expect(stage).toMatchObject({ id: S3, name: 'Proposal', position: 2, status: 'active', pipeline: { id: SALES, name: 'Sales Pipeline' } });
      expect(stage.remote_data).toMatchObject({ id: S3, percent: 50 });
      expect(responseMeta(stage)).toEqual({ statusCode: 200, replayed: false, attempts: 1 });
      const normalized = await sdk.crm.stages.get(S3, { ...query(), truto_response_format: 'normalized' });
      expect(Object.keys(normalized)).toEqual(['id', 'name', 'position', 'status', 'pipeline', 'created_at', 'updated_at']);
      const raw = await sdk.crm.stages.get(S3, { ...query(), truto_response_format: 'raw' });
      expect(raw).toMatchObject({ success: true, data: { id: S3, name: 'Proposal', sort_order: 2 } });

      const missing = await failure(sdk.crm.stages.get(MISSING_STEP, query()));
      expect(missing.statusCode).toBe(404);
      expect(missing.isRemote).toBe(true);
      expect(missing.body.raw_response).toMatchObject({ success: false, http_status: 404 });
    });

    it('refuses an id a URL path cannot carry, before any call', async () => {
      for (const id of ['', '.', '..']) {
        const error = await failure(sdk.crm.stages.get(id, query()));
        expect(error.statusCode).toBe(400);
        expect(error.body.details?.failures[0]?.path).toBe('id');
        expect((await failure(sdk.crm.stages.delete(id, query()))).statusCode).toBe(400);
      }
      expect(sandbox.requests).toHaveLength(0);
    });

    it('renames, reorders and moves a stage', async () => {
      const renamed = await sdk.crm.stages.update(S1, query(), { name: 'Qualify' });
      expect(renamed).toMatchObject({ id: S1, name: 'Qualify', position: 0, pipeline: { id: SALES, name: 'Sales Pipeline' } });
      expect(step(S1)?.name).toBe('Qualify');
      expect(responseMeta(renamed)).toEqual({
        statusCode: 200,
        replayed: false,
        attempts: 1,
        // The remote client sends a key of its own with every write; the embedded one only the caller's.
        ...(_name === 'remote' && { idempotencyKey: expect.stringMatching(/^unicrm-sdk-[0-9a-f-]{36}$/) }),
      });

      const reordered = await sdk.crm.stages.update(S5, query(), { position: 1 });
      expect(reordered).toMatchObject({ id: S5, name: 'Closing', position: 1 });
      expect(salesOrder()).toEqual([S1, S5, S2, S3, S4]);
      const patch = sandbox.requests.filter((r) => r.method === 'PATCH').at(-1);
      expect(decodeURIComponent(patch?.query ?? '')).toBe('validation-level=8');

      const moved = await sdk.crm.stages.update(S4, { ...query(), truto_ignore_remote_data: true }, { pipeline: { id: RENEWALS }, position: 0, remote_data: { percent: 80 } });
      expect(moved).toMatchObject({ id: S4, name: 'Negotiation', position: 0, pipeline: { id: RENEWALS, name: 'Renewals' } });
      expect(step(S4)).toMatchObject({ pipeline_id: RENEWALS, sort_order: 0, percent: 80 });
      expect(salesOrder()).toEqual([S1, S5, S2, S3]);
    });

    it('updates once per idempotency key, and refuses what Pipeliner cannot apply', async () => {
      const key = `sdk-update-${Math.random().toString(36).slice(2)}`;
      const first = await sdk.crm.stages.update(S3, query(), { name: 'Offer' }, { idempotencyKey: key });
      const again = await sdk.crm.stages.update(S3, query(), { name: 'Offer' }, { idempotencyKey: key });
      expect(again).toEqual(first);
      expect(responseMeta(again)).toMatchObject({ statusCode: 200, replayed: true, idempotencyKey: key });
      expect(sandbox.requests.filter((r) => r.method === 'PATCH')).toHaveLength(1);

      const inactive = await failure(sdk.crm.stages.update(S3, query(), { status: 'inactive' }));
      expect(inactive.statusCode).toBe(400);
      expect(inactive.body.details?.failures[0]).toMatchObject({ path: 'status', message: expect.stringContaining('DELETE') });
      const unknown = await failure(sdk.crm.stages.update(S3, query(), { colour: 'red' } as never));
      expect(unknown.statusCode).toBe(400);
      expect(unknown.body.details?.failures.map((f) => f.path)).toEqual(['colour']);
      const orphan = await failure(sdk.crm.stages.update(S3, query(), { pipeline: { id: MISSING_PIPELINE } }));
      expect(orphan.statusCode).toBe(422);
      expect(orphan.isRemote).toBe(true);
      expect(step(S3)).toMatchObject({ name: 'Offer', pipeline_id: SALES });
    });

    it('deletes a stage, answers it inactive; a second delete is a 404, and so is an update of it', async () => {
      const deleted = await sdk.crm.stages.delete(S2, query());
      expect(deleted).toMatchObject({ id: S2, name: 'Needs Analysis', status: 'inactive', pipeline: { id: SALES } });
      expect(responseMeta(deleted)).toMatchObject({ statusCode: 200, replayed: false, attempts: 1 });
      expect(step(S2)?.is_deleted).toBe(true);

      const again = await failure(sdk.crm.stages.delete(S2, query()));
      expect(again.statusCode).toBe(404);
      expect(again.isRemote).toBe(true);
      expect(again.message).toContain(S2);
      expect((await failure(sdk.crm.stages.get(S2, query()))).statusCode).toBe(404);
      const shown = await sdk.crm.stages.get(S2, { ...query(), remote_query: { 'include-deleted': 'true' } });
      expect(shown).toMatchObject({ id: S2, status: 'inactive' });

      // Pipeliner's documented API does not restore a deleted step: an update of it is Pipeliner's 404.
      const update = await failure(sdk.crm.stages.update(S2, query(), { status: 'active' }));
      expect(update.statusCode).toBe(404);
      expect(step(S2)?.is_deleted).toBe(true);
    });

    it('deletes once per idempotency key: a repeat answers the first answer', async () => {
      const key = `sdk-delete-${Math.random().toString(36).slice(2)}`;
      const first = await sdk.crm.stages.delete(S5, query(), { idempotencyKey: key });
      const again = await sdk.crm.stages.delete(S5, query(), { idempotencyKey: key });
      expect(again).toEqual(first);
      expect(responseMeta(again)).toMatchObject({ replayed: true, idempotencyKey: key });
      expect(sandbox.requests.filter((r) => r.method === 'DELETE')).toHaveLength(1);
    });
  });

  describe('crm.pipelines', () => {
    const lean = () => ({ integrated_account_id: accountId, truto_ignore_remote_data: true });

    it('lists the pipelines with their stages in order, page by page, and filters by name', async () => {
      const all = await sdk.crm.pipelines.list(lean()).all();
      const stagesOf = (pipeline: string, ids: string[], names: string[]) =>
        ids.map((id, i) => ({ id, name: names[i], status: 'active', pipeline: { id: pipeline } }));
      expect(all).toEqual([
        {
          id: SALES,
          name: 'Sales Pipeline',
          entity: 'opportunity',
          stages: stagesOf(SALES, SALES_STEPS, ['Qualification', 'Needs Analysis', 'Proposal', 'Negotiation', 'Closing']),
          created_at: '2024-01-15T09:00:00.000Z',
          updated_at: '2024-01-15T09:00:00.000Z',
        },
        {
          id: RENEWALS,
          name: 'Renewals',
          entity: 'opportunity',
          stages: stagesOf(RENEWALS, RENEWAL_STEPS, ['Renewal Due', 'Renewal Quoted', 'Renewed']),
          created_at: '2024-01-15T09:00:00.000Z',
          updated_at: '2024-01-15T09:00:00.000Z',
        },
      ]);
      const pages = [];
      for await (const page of sdk.crm.pipelines.list({ ...lean(), limit: 1 })) pages.push(page);
      expect(pages.map((page) => [page.result.map((p) => p.id), page.next_cursor === null])).toEqual([
        [[SALES], false],
        [[RENEWALS], true],
      ]);
      const named = await sdk.crm.pipelines.list({ ...lean(), name: 'Renewals' }).all();
      expect(named.map((p) => p.id)).toEqual([RENEWALS]);
      const normalized = await sdk.crm.pipelines.list({ integrated_account_id: accountId, truto_response_format: 'normalized' }).first();
      expect(Object.keys(normalized.result[0] ?? {})).toEqual(['id', 'name', 'entity', 'stages', 'created_at', 'updated_at']);
    });

    it('reads one pipeline with its stages, and answers 404 for an unknown one', async () => {
      const pipeline = await sdk.crm.pipelines.get(RENEWALS, { integrated_account_id: accountId });
      expect(pipeline).toMatchObject({ id: RENEWALS, name: 'Renewals', remote_data: { id: RENEWALS, name: 'Renewals' } });
      expect(pipeline.stages?.map((stage) => stage.name)).toEqual(['Renewal Due', 'Renewal Quoted', 'Renewed']);
      const missing = await failure(sdk.crm.pipelines.get(MISSING_PIPELINE, { integrated_account_id: accountId }));
      expect(missing.statusCode).toBe(404);
      expect(missing.isRemote).toBe(true);
    });
  });

  describe('proxy', () => {
    const query = () => ({ integrated_account_id: accountId });

    it("lists a Pipeliner entity in the list envelope, paged by unicrm's cursors, other parameters forwarded", async () => {
      const first = await sdk.proxy({ method: 'GET', resource: 'Steps', query: { ...query(), limit: 5 } });
      expect(first.result.map((step) => step.id)).toEqual(SALES_STEPS);
      expect(first).toMatchObject({ result_count: 5, prev_cursor: null, next_cursor: expect.any(String) });
      expect(first.result[0]).toMatchObject({ id: S1, name: 'Qualification', sort_order: 0, pipeline_id: SALES });
      const second = await sdk.proxy({ method: 'GET', resource: 'Steps', query: { ...query(), limit: 5, next_cursor: first.next_cursor as string } });
      expect(second.result.map((step) => step.id)).toEqual(RENEWAL_STEPS);
      expect(second.next_cursor).toBeNull();

      sandbox.requests.length = 0;
      const renewals = await sdk.proxy({ method: 'GET', resource: 'Steps', query: { ...query(), filter: { pipeline_id: RENEWALS } } });
      expect(renewals.result.map((step) => step.id)).toEqual(RENEWAL_STEPS);
      expect(decodeURIComponent(sandbox.requests[0]?.query ?? '')).toBe(`filter[pipeline_id]=${RENEWALS}&first=30`);
    });

    it("reads, creates, updates and deletes through the proxy, answering Pipeliner's bodies as they came", async () => {
      type StepAnswer = { success: boolean; data: { id: string; name: string; sort_order: number } };
      const got = await sdk.proxy<StepAnswer>({ method: 'GET', resource: 'Steps', id: S1, query: query() });
      expect(got).toMatchObject({ success: true, data: { id: S1, name: 'Qualification' } });
      expect(responseMeta(got)).toEqual({ statusCode: 200, replayed: false, attempts: 1 });

      // Pipeliner's own rules apply: pipeline_id is read-only unless validation-level=8 says otherwise.
      const created = await sdk.proxy<StepAnswer>({
        method: 'POST',
        resource: 'Steps',
        query: { ...query(), 'validation-level': 8 },
        body: { name: 'Via proxy', pipeline_id: SALES },
      });
      expect(created).toMatchObject({ success: true, data: { name: 'Via proxy' } });
      expect(responseMeta(created)?.statusCode).toBe(201);
      const id = created.data.id;
      const patched = await sdk.proxy<StepAnswer>({ method: 'PATCH', resource: 'Steps', id, query: query(), body: { name: 'Renamed via proxy' } });
      expect(patched.data.name).toBe('Renamed via proxy');
      const deleted = await sdk.proxy({ method: 'DELETE', resource: 'Steps', id, query: query() });
      expect(deleted).toEqual({ success: true, data: id });
      expect(sandbox.steps().find((s) => s.id === id)).toMatchObject({ name: 'Renamed via proxy', pipeline_id: SALES, is_deleted: true });

      const missing = await failure(sdk.proxy({ method: 'GET', resource: 'Steps', id: MISSING_STEP, query: query() }));
      expect(missing.statusCode).toBe(404);
      expect(missing.isRemote).toBe(true);
    });

    it('creates once per idempotency key, and refuses a call it cannot make before sending it', async () => {
      const key = `sdk-proxy-${Math.random().toString(36).slice(2)}`;
      const request = { method: 'POST' as const, resource: 'Steps', query: query(), body: { name: 'Proxy once' }, idempotencyKey: key };
      const first = await sdk.proxy(request);
      const again = await sdk.proxy(request);
      expect(again).toEqual(first);
      expect(responseMeta(again)).toMatchObject({ statusCode: 201, replayed: true, idempotencyKey: key });
      expect(sandbox.steps().filter((s) => s.name === 'Proxy once')).toHaveLength(1);

      sandbox.requests.length = 0;
      const noId = await failure(sdk.proxy({ method: 'PATCH', resource: 'Steps', query: query(), body: {} }));
      expect(noId.body.details?.failures).toEqual([{ path: 'id', message: 'is required for PATCH' }]);
      const noResource = await failure(sdk.proxy({ method: 'GET', resource: '', query: query() }));
      expect(noResource.body.details?.failures[0]?.path).toBe('resource');
      expect(sandbox.requests).toHaveLength(0);
      const badName = await failure(sdk.proxy({ method: 'GET', resource: 'steps!', query: query() }));
      expect(badName.statusCode).toBe(400);
      const truto = await failure(sdk.proxy({ method: 'GET', resource: 'Steps', query: { ...query(), truto_response_format: 'raw' } }));
      expect(truto.body.details?.failures).toEqual([{ path: 'truto_response_format', message: 'is not a parameter of the proxy' }]);
      expect(sandbox.requests).toHaveLength(0);
    });
  });

  describe('accounts', () => {
    it('creates, reads, updates and deletes an integrated account without showing its secrets', async () => {
      const context = { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: 'u-secret', password: 'p-secret' };
      const created = await sdk.accounts.create({ integration: 'pipeliner', tenant_id: 'globex', context, validate: false });
      expect(created).toMatchObject({
        tenant_id: 'globex',
        environment_id: 'default',
        integration: { name: 'pipeliner', category: 'crm' },
        status: 'active',
        context: { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId },
        last_error: null,
      });
      expect(JSON.stringify(created)).not.toMatch(/secret/);
      expect(sandbox.requests).toHaveLength(0); // validate: false

      expect(await sdk.accounts.get(created.id)).toEqual(created);
      const updated = await sdk.accounts.update(created.id, { tenant_id: 'globex-2', context: { space_id: 'other_space' }, validate: false });
      expect(updated).toMatchObject({ id: created.id, tenant_id: 'globex-2', context: { space_id: 'other_space' } });
      expect(await sdk.accounts.delete(created.id)).toEqual({ id: created.id });
      const gone = await failure(sdk.accounts.get(created.id));
      expect(gone.statusCode).toBe(404);
      expect((await failure(sdk.accounts.delete(created.id))).statusCode).toBe(404);
    });

    it('checks the credentials with Pipeliner first, and stores nothing when it refuses them', async () => {
      const context = { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: sandbox.username, password: 'wrong' };
      const error = await failure(sdk.accounts.create({ integration: 'pipeliner', tenant_id: 'refused', context }));
      expect(error.statusCode).toBe(422);
      expect(error.isRemote).toBe(true);
      expect(error.message).toMatch(/^pipeliner rejected the credentials \(401: .*\)\. Nothing was stored\.$/);
      expect((await sdk.accounts.list({ tenant_id: 'refused' })).result).toEqual([]);
    });

    it('lists accounts with filters and a cursor', async () => {
      const tenant = `list-${Math.random().toString(36).slice(2)}`;
      const context = { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId, username: sandbox.username, password: sandbox.password };
      const a = await sdk.accounts.create({ integration: 'pipeliner', tenant_id: tenant, context });
      const b = await sdk.accounts.create({ integration: 'pipeliner', tenant_id: tenant, context });
      const all = await sdk.accounts.list({ tenant_id: tenant });
      expect(all).toEqual({ result: [a, b], next_cursor: null, limit: 100 });
      const first = await sdk.accounts.list({ tenant_id: tenant, limit: 1 });
      expect(first.result).toEqual([a]);
      expect(first.next_cursor).toEqual(expect.any(String));
      const second = await sdk.accounts.list({ tenant_id: tenant, limit: 1, next_cursor: first.next_cursor as string });
      expect(second).toEqual({ result: [b], next_cursor: null, limit: 1 });
      expect((await sdk.accounts.list()).result.map((x) => x.id)).toEqual(expect.arrayContaining([a.id, b.id, accountId]));
      const bad = await failure(sdk.accounts.list({ limit: 0 }));
      expect(bad.statusCode).toBe(400);
      expect(bad.body.details?.failures[0]?.path).toBe('limit');
    });

    it('rejects an invalid account with 400 naming each field', async () => {
      const error = await failure(sdk.accounts.create({ integration: 'pipeliner', tenant_id: '', context: {} }));
      expect(error.statusCode).toBe(400);
      expect(error.body.details?.failures.map((f) => f.path)).toContain('tenant_id');
    });
  });

  describe('linkTokens and webhooks', () => {
    it('makes link tokens for a new connection and for a reconnect, and refuses a body with neither', async () => {
      const link = await sdk.linkTokens.create({ tenant_id: 'acme' });
      expect(link.url).toMatch(/\/connect\?link_token=[A-Za-z0-9_-]{43}$/);
      expect(Date.parse(link.expires_at)).toBeGreaterThan(Date.now());
      const again = await sdk.linkTokens.create({ integrated_account_id: accountId });
      expect(again.link_token).not.toBe(link.link_token);
      expect((await failure(sdk.linkTokens.create({}))).statusCode).toBe(400);
      expect((await failure(sdk.linkTokens.create({ integrated_account_id: MISSING_ACCOUNT }))).statusCode).toBe(404);
    });

    it('creates, lists, reads, updates, tests and deletes a webhook; its secret only in the creation answer', async () => {
      const hook = await sdk.webhooks.create({ target_url: 'https://hooks.example/sdk', event_types: ['integrated_account:created'] });
      expect(hook.secret).toMatch(/^[0-9a-f]{64}$/);
      const read = await sdk.webhooks.get(hook.id);
      expect(read).toEqual(Object.fromEntries(Object.entries(hook).filter(([key]) => key !== 'secret')));
      expect((await sdk.webhooks.list({ limit: 500 })).result.map((w) => w.id)).toContain(hook.id);
      expect(await sdk.webhooks.update(hook.id, { is_active: false })).toMatchObject({ id: hook.id, is_active: false });
      const queued = await sdk.webhooks.test(hook.id);
      expect(queued).toMatchObject({ event: 'test', webhook_id: hook.id });
      const deliveries = await sdk.webhooks.deliveries(hook.id);
      expect(deliveries.result[0]).toMatchObject({ id: queued.id, event: 'test', status: 'pending', attempts: [] });
      expect(await sdk.webhooks.delete(hook.id)).toEqual({ id: hook.id });
      expect((await failure(sdk.webhooks.get(hook.id))).statusCode).toBe(404);
      const refused = await failure(sdk.webhooks.create({ target_url: 'http://hooks.example/plain-http' }));
      expect(refused.statusCode).toBe(400);
      expect(refused.body.details?.failures[0]?.path).toBe('target_url');
    });
  });
});

describe('both transports', () => {
  let embedded: Unicrm;
  let remote: Unicrm;
  beforeAll(() => {
    embedded = createUnicrm({ dataDir: dir });
    remote = createUnicrmClient({ baseUrl, token: TOKEN, retry: false });
  });
  afterAll(async () => {
    await embedded.close();
    await remote.close();
  });

  it.each(['unified', 'raw', 'normalized'] as const)('answer the same body in the %s format', async (format) => {
    const query = { integrated_account_id: accountId, truto_response_format: format, truto_exclude_fields: ['remote_data.percent'] };
    const body = { name: 'Twin', pipeline: { id: SALES }, position: 2, remote_data: { percent: 60 } };
    sandbox.reset();
    const a = await embedded.crm.stages.create(query, body);
    sandbox.reset();
    const b = await remote.crm.stages.create(query, body);
    expect(stable(b)).toEqual(stable(a));
  });

  it('send the JSON of the body: a getter is read once, and the idempotency fingerprint is what Pipeliner got', async () => {
    for (const [name, sdk] of [['embedded', embedded], ['remote', remote]] as const) {
      sandbox.reset();
      let reads = 0;
      const remoteData = {
        get percent() {
          reads += 1;
          return 10 * reads;
        },
      };
      const key = `getter-${name}-${Math.random().toString(36).slice(2)}`;
      const query = { integrated_account_id: accountId };
      await sdk.crm.stages.create(query, { name: `Getter ${name}`, remote_data: remoteData }, { idempotencyKey: key });
      expect([name, reads]).toEqual([name, 1]);
      expect(sandbox.steps().find((step) => step.name === `Getter ${name}`)?.percent).toBe(10);
      // The same JSON again is a replay, not a 422: the fingerprint was taken of what was sent.
      await sdk.crm.stages.create(query, { name: `Getter ${name}`, remote_data: { percent: 10 } }, { idempotencyKey: key });
      expect(sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    }
  });

  it('answer the same bodies for list, get, update and delete, and the same errors', async () => {
    const query = { integrated_account_id: accountId };
    const outcomes = [];
    for (const sdk of [embedded, remote]) {
      sandbox.reset();
      const pages = [];
      for await (const page of sdk.crm.stages.list({ ...query, limit: 4 })) pages.push({ ...page, next_cursor: typeof page.next_cursor, prev_cursor: typeof page.prev_cursor });
      const pipelines = await sdk.crm.pipelines.list({ ...query, truto_response_format: 'normalized' }).all();
      const got = await sdk.crm.pipelines.get(SALES, query);
      const updated = await sdk.crm.stages.update(S4, query, { name: 'Twin', position: 0 });
      const deleted = await sdk.crm.stages.delete(S4, { ...query, truto_exclude_fields: ['remote_data.modified'] });
      const again = await failure(sdk.crm.stages.delete(S4, query));
      // Only the times of the update and the delete differ (ids and revisions restart with the sandbox).
      const times = (body: unknown) => JSON.parse(JSON.stringify(body), (key, value) => (['updated_at', 'modified'].includes(key) ? '<time>' : value));
      outcomes.push(times({ pages, pipelines, got, updated, deleted, again: [again.statusCode, again.body] }));
    }
    expect(outcomes[1]).toEqual(outcomes[0]);
  });

  it('refuse a body that cannot be JSON (embedded: a 400 naming why)', async () => {
    const body: Record<string, unknown> = { name: 'Cycle' };
    body.remote_data = { self: body };
    const error = await failure(embedded.crm.stages.create({ integrated_account_id: accountId }, body as { name: string }));
    expect(error.statusCode).toBe(400);
    expect(error.message).toMatch(/^The body cannot be written as JSON: .*circular/i);
    expect(sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
  });

  it.each([
    ['a validation error', { integrated_account_id: accountId, truto_exclude_fields: ['a..b'] }, { name: 'x' }],
    ['a remote error', { integrated_account_id: accountId }, { name: 'x', pipeline: { id: MISSING_PIPELINE } }],
    ['an unknown account', { integrated_account_id: MISSING_ACCOUNT }, { name: 'x' }],
  ])('throw the same UnicrmError for %s', async (_what, query, body) => {
    const a = await failure(embedded.crm.stages.create(query, body));
    const b = await failure(remote.crm.stages.create(query, body));
    expect(b.statusCode).toBe(a.statusCode);
    expect(b.message).toBe(a.message);
    expect(b.body).toEqual(a.body);
    expect(b.headers).toEqual(a.headers);
  });
});

describe('the remote SDK only', () => {
  it('sends Bearer auth, its User-Agent and the query in the qs indices format', async () => {
    const sdk = createUnicrmClient({ baseUrl, token: TOKEN, userAgent: 'acme-app/2.1', retry: false });
    await sdk.crm.stages.create(
      {
        integrated_account_id: accountId,
        truto_ignore_remote_data: true,
        truto_exclude_fields: ['created_at', 'pipeline.name'],
        remote_query: { expand: 'pipeline' },
      },
      { name: 'Headers' },
      { idempotencyKey: 'key-1' },
    );
    await sdk.close();
    const request = seen.find((s) => s.url.startsWith('/unified/crm/stages'));
    expect(request?.url).toBe(
      `/unified/crm/stages?integrated_account_id=${accountId}&truto_ignore_remote_data=true` +
        '&truto_exclude_fields%5B0%5D=created_at&truto_exclude_fields%5B1%5D=pipeline.name&remote_query%5Bexpand%5D=pipeline',
    );
    expect(request?.headers).toMatchObject({
      authorization: `Bearer ${TOKEN}`,
      'user-agent': `acme-app/2.1 unicrm-sdk/${SDK_VERSION}`,
      accept: 'application/json',
      'content-type': 'application/json',
      'idempotency-key': 'key-1',
    });
    expect(SDK_VERSION).toBe(UNICRM_VERSION);
  });

  it('sends list filters in the qs indices format, and a key of its own with every write but none with a read', async () => {
    const sdk = createUnicrmClient({ baseUrl, token: TOKEN, retry: false });
    const query = { integrated_account_id: accountId, truto_ignore_remote_data: true };
    await sdk.crm.stages.list({ ...query, pipeline: { id: SALES }, created_at: { gte: '2024-01-01T00:00:00Z' }, limit: 2 }).first();
    await sdk.crm.stages.get(S1, query);
    await sdk.crm.stages.update(S1, query, { name: 'Keyed' });
    await sdk.crm.stages.update(S1, query, { name: 'Keyless' }, { idempotencyKey: false });
    await sdk.crm.stages.delete(S1, query);
    await sdk.proxy({ method: 'GET', resource: 'Steps', id: S2, query: { integrated_account_id: accountId, 'load-only': 'id,name' } });
    await sdk.close();
    const calls = seen.filter((s) => s.url.startsWith('/unified/') || s.url.startsWith('/proxy/'));
    expect(calls.map((c) => c.url)).toEqual([
      `/unified/crm/stages?integrated_account_id=${accountId}&truto_ignore_remote_data=true&pipeline%5Bid%5D=${SALES}` +
        '&created_at%5Bgte%5D=2024-01-01T00%3A00%3A00Z&limit=2',
      `/unified/crm/stages/${S1}?integrated_account_id=${accountId}&truto_ignore_remote_data=true`,
      `/unified/crm/stages/${S1}?integrated_account_id=${accountId}&truto_ignore_remote_data=true`,
      `/unified/crm/stages/${S1}?integrated_account_id=${accountId}&truto_ignore_remote_data=true`,
      `/unified/crm/stages/${S1}?integrated_account_id=${accountId}&truto_ignore_remote_data=true`,
      `/proxy/Steps/${S2}?integrated_account_id=${accountId}&load-only=id%2Cname`,
    ]);
    const keys = calls.map((c) => c.headers['idempotency-key']);
    expect(keys[0]).toBeUndefined();
    expect(keys[1]).toBeUndefined();
    expect(keys[2]).toMatch(/^unicrm-sdk-[0-9a-f-]{36}$/);
    expect(keys[3]).toBeUndefined();
    expect(keys[4]).toMatch(/^unicrm-sdk-[0-9a-f-]{36}$/);
    expect(keys[4]).not.toBe(keys[2]);
    expect(keys[5]).toBeUndefined();
  });

  it('sends a batch to POST /unified/crm/stages/batch with Prefer, dry_run and a key of its own unless given one', async () => {
    const sdk = createUnicrmClient({ baseUrl, token: TOKEN, retry: false });
    const query = { integrated_account_id: accountId, truto_ignore_remote_data: true };
    const items = [{ method: 'create' as const, body: { name: 'Sent' }, idempotency_key: 'sent-row-1' }];
    await sdk.crm.stages.batch({ ...query, dry_run: true }, items);
    const minimal = await sdk.crm.stages.batch(query, items, { minimal: true, idempotencyKey: 'sent-batch' });
    await sdk.crm.stages.batch(query, items, { idempotencyKey: false });
    await sdk.close();
    const calls = seen.filter((s) => s.url.startsWith('/unified/'));
    expect(calls.map((c) => c.url)).toEqual([
      `/unified/crm/stages/batch?integrated_account_id=${accountId}&truto_ignore_remote_data=true&dry_run=true`,
      `/unified/crm/stages/batch?integrated_account_id=${accountId}&truto_ignore_remote_data=true`,
      `/unified/crm/stages/batch?integrated_account_id=${accountId}&truto_ignore_remote_data=true`,
    ]);
    expect(calls[0]?.headers['idempotency-key']).toMatch(/^unicrm-sdk-[0-9a-f-]{36}$/);
    expect(calls[0]?.headers.prefer).toBeUndefined();
    expect(calls[1]?.headers).toMatchObject({ 'idempotency-key': 'sent-batch', prefer: 'return=minimal' });
    expect(calls[2]?.headers['idempotency-key']).toBeUndefined();
    expect(responseMeta(minimal)).toMatchObject({ idempotencyKey: 'sent-batch', preferenceApplied: 'return=minimal', attempts: 1 });
    // The item's own key: the third batch replays the second's write of it.
    expect(sandbox.steps().filter((step) => step.name === 'Sent')).toHaveLength(1);
  });

  it('stops a list whose server answers the cursor it was given, instead of looping', async () => {
    const urls: string[] = [];
    const looping = await listen((req, res) => {
      urls.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result: [{ id: 'x' }], next_cursor: 'same', prev_cursor: null, result_count: 1 }));
    });
    const sdk = createUnicrmClient({ baseUrl: urlOf(looping), token: TOKEN, retry: false });
    const error = await failure(sdk.crm.stages.list({ integrated_account_id: accountId }).all());
    await sdk.close();
    looping.closeAllConnections();
    await close(looping);
    expect(error.statusCode).toBe(502);
    expect(error.message).toBe('The API answered GET /unified/crm/stages with the next_cursor it was given: the list would never end. Stopped.');
    expect(urls).toHaveLength(2);
    expect(urls[1]).toContain('next_cursor=same');
  });

  it('answers null for a proxy answer without a body, and 502 for a success that is not JSON', async () => {
    const fake = await listen((req, res) => {
      if (req.url?.startsWith('/proxy/Empty')) res.writeHead(204).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end('not json');
    });
    const sdk = createUnicrmClient({ baseUrl: urlOf(fake), token: TOKEN, retry: false });
    const empty = await sdk.proxy({ method: 'DELETE', resource: 'Empty', id: '1', query: { integrated_account_id: accountId } });
    expect(empty).toBeNull();
    const broken = await failure(sdk.proxy({ method: 'GET', resource: 'Broken', id: '1', query: { integrated_account_id: accountId } }));
    expect(broken.statusCode).toBe(502);
    expect(broken.message).toBe(`unicrm at ${urlOf(fake)} answered GET /proxy/Broken/:id with 200 and a body that is not JSON: not json`);
    await sdk.close();
    fake.closeAllConnections();
    await close(fake);
  });

  it('rejects a bad token with a 401 that is not a remote error', async () => {
    const sdk = createUnicrmClient({ baseUrl, token: 'wrong-token', retry: false });
    const error = await failure(sdk.accounts.get(accountId));
    await sdk.close();
    expect(error.statusCode).toBe(401);
    expect(error.isRemote).toBe(false);
    expect(error.body).toEqual({ statusCode: 401, error: 'Unauthorized', message: expect.stringContaining('token') });
  });

  it('gives up after timeoutMs with a 504', async () => {
    sandbox.injectFault({ method: 'POST', path: '/entities/Steps', hang: true, times: 1 });
    const sdk = createUnicrmClient({ baseUrl, token: TOKEN, timeoutMs: 300, retry: false });
    const started = Date.now();
    const error = await failure(sdk.crm.stages.create({ integrated_account_id: accountId }, { name: 'Slow' }));
    await sdk.close();
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error.statusCode).toBe(504);
    expect(error.isRemote).toBe(false);
    expect(error.message).toBe(
      `unicrm at ${baseUrl} did not answer POST /unified/crm/stages within 300 ms. A create may still have been carried out.`,
    );
    sandbox.reset(); // ends the hung Pipeliner request
  });

  it('reports an unreachable server as a 502 naming the address', async () => {
    const gone = await listen(() => undefined);
    const url = urlOf(gone);
    await close(gone);
    const sdk = createUnicrmClient({ baseUrl: url, token: TOKEN, retry: false });
    const error = await failure(sdk.accounts.get(accountId));
    await sdk.close();
    expect(error.statusCode).toBe(502);
    expect(error.message).toBe(`Could not reach unicrm at ${url} for GET /integrated-account/:id (ECONNREFUSED). Is the server running?`);
    expect((error as Error & { cause?: unknown }).cause).toBeDefined();
  });

  it('turns answers that are not unicrm JSON into UnicrmErrors', async () => {
    const proxy = await listen((req, res) => {
      if (req.url?.startsWith('/integrated-account/html')) {
        res.writeHead(503, { 'content-type': 'text/html', 'retry-after': '30' }).end('<html><body>Service Unavailable</body></html>');
      } else {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('OK');
      }
    });
    const sdk = createUnicrmClient({ baseUrl: `${urlOf(proxy)}/`, token: TOKEN, retry: false });
    const html = await failure(sdk.accounts.get('html'));
    expect(html.statusCode).toBe(503);
    expect(html.message).toBe(
      `${urlOf(proxy)} answered GET /integrated-account/:id with 503 Service Unavailable and a body that is not a unicrm error: ` +
        '<html><body>Service Unavailable</body></html>',
    );
    expect(html.headers).toEqual({ 'retry-after': '30' });
    const text = await failure(sdk.accounts.get('text'));
    expect(text.statusCode).toBe(502);
    expect(text.message).toBe(`unicrm at ${urlOf(proxy)} answered GET /integrated-account/:id with 200 and a body that is not JSON: OK`);
    await sdk.close();
    proxy.closeAllConnections();
    await close(proxy);
  });

  it('checks its options and refuses calls once closed', async () => {
    expect(() => createUnicrmClient({ baseUrl: 'ftp://x', token: TOKEN, retry: false })).toThrow(TypeError);
    expect(() => createUnicrmClient({ baseUrl: 'not a url', token: TOKEN, retry: false })).toThrow('baseUrl must be an http(s) URL');
    expect(() => createUnicrmClient({ baseUrl, token: ' ', retry: false })).toThrow('token must be a non-empty API token.');
    expect(() => createUnicrmClient({ baseUrl, token: TOKEN, timeoutMs: 0, retry: false })).toThrow('timeoutMs must be a positive number');
    const sdk = createUnicrmClient({ baseUrl, token: TOKEN, retry: false });
    await sdk.close();
    await sdk.close();
    await expect(sdk.accounts.get(accountId)).rejects.toThrow('This unicrm client is closed.');
  });
});
