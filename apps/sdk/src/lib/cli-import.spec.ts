import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BatchAnswer, UnicrmError } from '@unicrm/model';
import type { Unicrm } from './types';
import {
  defaultFailedPath,
  durationText,
  elapsedText,
  type ImportClock,
  type ImportCounts,
  importStages,
  type ImportProgress,
  type ImportFile,
  ImportFileError,
  type ImportRow,
  progressReporter,
  countsText,
  readImportFile,
  retryDelayMs,
  rowIdempotencyKey,
  rowsText,
  rowToBody,
  speedText,
  writeFailedRows,
} from './cli-import';
import { errorLines, keyValueLines, table } from './cli-output';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'unicrm-import-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function row(file: ImportFile, index: number): ImportRow {
  const found = file.rows[index];
  if (!found) throw new Error(`no row ${index}`);
  return found;
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('import files', () => {
  it('reads CSV rows (BOM, quoted JSON, CRLF, blank lines) and turns them into create bodies', async () => {
    const path = file('a.csv', '\uFEFFname,pipeline,position,status,remote_data,error\r\n"Won, finally",p-1, 3 ,active,"{""percent"": 100}",old error\r\n\r\nLoose,,,,,\r\n');
    const read = await readImportFile(path);
    expect(read.kind).toBe('csv');
    expect(read.columns).toEqual(['name', 'pipeline', 'position', 'status', 'remote_data']);
    expect(read.rows.map((r) => r.row)).toEqual([1, 2]);
    expect(rowToBody(row(read, 0))).toEqual({ name: 'Won, finally', pipeline: { id: 'p-1' }, position: 3, status: 'active', remote_data: { percent: 100 } });
    expect(rowToBody(row(read, 1))).toEqual({ name: 'Loose' });
  });

  it('rejects bad cells of one row, not the file', async () => {
    const read = await readImportFile(file('b.csv', 'name,position,remote_data\na,x,\nb,,[1]\nc,,{"p":\n'));
    expect(() => rowToBody(row(read, 0))).toThrow('position must be a number, not "x"');
    expect(() => rowToBody(row(read, 1))).toThrow('remote_data must be a JSON object');
    expect(() => rowToBody(row(read, 2))).toThrow('remote_data must be a JSON object, e.g. {"percent": 40}, not "{\\"p\\":"');
  });

  it('reads JSON arrays, with pipeline as an id or an object, and passes other keys on', async () => {
    const read = await readImportFile(file('c.json', JSON.stringify([{ name: 'a', pipeline: 'p-1', position: 2, error: 'x' }, { name: 'b', pipeline: { id: 'p-2' }, extra: 1 }])));
    expect(read.kind).toBe('json');
    expect(rowToBody(row(read, 0))).toEqual({ name: 'a', pipeline: { id: 'p-1' }, position: 2 });
    expect(rowToBody(row(read, 1))).toEqual({ name: 'b', pipeline: { id: 'p-2' }, extra: 1 });
  });

  it.each([
    ['d.txt', 'x', 'stages import reads .csv or .json files, not "d.txt".'],
    ['e.csv', 'name,colour\nx,red\n', 'unknown column "colour"; the columns are name, pipeline, position, status, remote_data.'],
    ['f.csv', 'pipeline\np-1\n', 'needs a "name" column'],
    ['g.csv', 'name\n"unclosed\n', 'is not valid CSV'],
    ['h.json', '{"name": "x"}', 'must hold a JSON array of stages'],
    ['i.json', '[', 'is not valid JSON'],
  ])('refuses %s as a whole', async (name, text, message) => {
    await expect(readImportFile(file(name, text))).rejects.toThrow(ImportFileError);
    await expect(readImportFile(join(dir, name))).rejects.toThrow(message);
  });

  it('writes failed rows in the input format plus an error column, quoting as CSV needs', async () => {
    const read = await readImportFile(file('j.csv', 'name,remote_data\n"a, b","{""x"": ""y""}"\nplain,\n'));
    const out = join(dir, 'j.failed.csv');
    await writeFailedRows(out, read, read.rows.map((row, i) => ({ row, error: i === 0 ? '400 Bad Request: "name" is odd' : 'line\nbreak' })));
    expect(readFileSync(out, 'utf8')).toBe('name,remote_data,error\n"a, b","{""x"": ""y""}","400 Bad Request: ""name"" is odd"\nplain,,"line\nbreak"\n');
    const again = await readImportFile(out);
    expect(again.rows.map((r) => r.source)).toEqual([
      { name: 'a, b', remote_data: '{"x": "y"}', error: '400 Bad Request: "name" is odd' },
      { name: 'plain', remote_data: '', error: 'line\nbreak' },
    ]);
    expect(defaultFailedPath('/x/stages.csv')).toBe('/x/stages.failed.csv');
    expect(defaultFailedPath('rows.json')).toBe('rows.failed.json');
  });

  it('gives each row a stable idempotency key', () => {
    const row = { row: 1, source: { name: 'a' } };
    const key = rowIdempotencyKey('acc', 'stages.csv', row);
    expect(key).toMatch(/^unicrm-import-[0-9a-f]{40}$/);
    expect(rowIdempotencyKey('acc', join(process.cwd(), 'stages.csv'), { row: 1, source: { name: 'a' } })).toBe(key);
    expect(rowIdempotencyKey('acc', 'stages.csv', { row: 2, source: { name: 'a' } })).not.toBe(key);
    expect(rowIdempotencyKey('acc', 'stages.csv', { row: 1, source: { name: 'b' } })).not.toBe(key);
    expect(rowIdempotencyKey('acc', 'other.csv', row)).not.toBe(key);
    expect(rowIdempotencyKey('acc2', 'stages.csv', row)).not.toBe(key);
  });

  it('retries rate limits, keys in flight and 5xx after Retry-After or a backoff, and nothing else', () => {
    const limited = (retryAfter?: string) => new UnicrmError(429, 'slow down', {}, retryAfter === undefined ? {} : { 'retry-after': retryAfter });
    expect(retryDelayMs(limited('7'), 1)).toBe(7000);
    expect(retryDelayMs(limited(), 3)).toBe(3000);
    expect(retryDelayMs(limited('600'), 1)).toBe(60_000);
    expect(retryDelayMs(limited(new Date(10_000).toUTCString()), 1, 8_000)).toBe(2000);
    expect(retryDelayMs(new UnicrmError(409, 'in flight', {}, { 'retry-after': '1' }), 1)).toBe(1000);
    expect([1, 2, 3, 4].map((attempt) => retryDelayMs(new UnicrmError(504, 'timeout'), attempt))).toEqual([1000, 2000, 4000, 8000]);
    expect(retryDelayMs(new UnicrmError(503, 'busy', {}, { 'retry-after': '5' }), 1)).toBe(5000);
    expect(retryDelayMs(new UnicrmError(502, 'gone'), 9)).toBe(60_000);
    for (const status of [400, 401, 404, 422, 500, 501]) expect(retryDelayMs(new UnicrmError(status, 'x'), 1)).toBeUndefined();
    expect(retryDelayMs(new Error('boom'), 1)).toBeUndefined();
  });

  // Retry-After is read by the SDK's retryAfterMs (RFC 9110), never Date.parse: "1.5" or "-1" are not 2001 dates.
  const now = Date.parse('Sun, 29 Nov 2026 20:00:00 GMT') + 500;
  it.each([
    ['whole seconds', '7', 7000],
    ['zero: at least 1 s', '0', 1000],
    ['a fraction: ignored, the 429 backoff', '1.5', 1000],
    ['a negative number: ignored', '-1', 1000],
    ['a sign: ignored', '+3', 1000],
    ['spaces around: trimmed', ' 5 ', 5000],
    ['2001 is seconds, capped at 60 s', '2001', 60_000],
    ['an HTTP-date 1.5 s ahead: rounded up to whole seconds', 'Sun, 29 Nov 2026 20:00:02 GMT', 2000],
    ['an HTTP-date in the past: at least 1 s', 'Sun, 06 Nov 1994 08:49:37 GMT', 1000],
    ['garbage: ignored', 'soon', 1000],
  ])('waits after a 429 with Retry-After %s', (_name, header, wait) => {
    expect(retryDelayMs(new UnicrmError(429, 'slow down', {}, { 'retry-after': header }), 1, now)).toBe(wait);
  });

  it('falls back to the 5xx backoff when Retry-After is unreadable', () => {
    expect(retryDelayMs(new UnicrmError(503, 'busy', {}, { 'retry-after': '1.5' }), 3, now)).toBe(4000);
  });
});

/** A fake clock: records each wait; a sleep ends on the next turn of the event loop, the clock then at its end. */
function fakeClock(): ImportClock & { slept: number[] } {
  let at = Date.parse('Sun, 29 Nov 2026 20:00:00 GMT');
  const slept: number[] = [];
  return {
    slept,
    now: () => at,
    sleep: (ms) => {
      slept.push(ms);
      const end = at + ms;
      return new Promise<void>((resolve) =>
        setImmediate(() => {
          at = Math.max(at, end);
          resolve();
        }),
      );
    },
  };
}

type SentBatch = { query: Record<string, unknown>; items: { method: string; body: Record<string, unknown>; idempotency_key?: string }[]; options: { idempotencyKey?: string | false; minimal?: boolean } };
/** One answer of a scripted batch: an error for the whole batch, or the answer to the items sent. */
type Step = UnicrmError | ((items: SentBatch['items']) => BatchAnswer);

/** An SDK whose `crm.stages.batch` answers from a script, one step per call, and records what each call sent. */
function scriptedSdk(script: Step[]): Unicrm & { batches: SentBatch[] } {
  const batches: SentBatch[] = [];
  const sdk = {
    batches,
    crm: {
      stages: {
        batch: async (query: Record<string, unknown>, items: SentBatch['items'], options: SentBatch['options']) => {
          batches.push({ query, items, options });
          const step = script[batches.length - 1];
          if (!step) throw new Error('the script ran out');
          if (step instanceof UnicrmError) throw step;
          return step(items);
        },
      },
    },
  };
  return sdk as unknown as Unicrm & { batches: SentBatch[] };
}

/** Each item's answer: `pick(name, index)` gives a status (201 created, with `replayed`, or an error's status). */
function answer(pick: (name: string, index: number) => { status: number; replayed?: boolean; message?: string } = () => ({ status: 201 })) {
  return (items: SentBatch['items']): BatchAnswer => {
    const result = items.map((item, index) => {
      const name = String(item.body.name);
      const { status, replayed, message } = pick(name, index);
      return status < 300
        ? { index, method: 'create' as const, status, result: { id: `id-${name}` }, ...(replayed && { replayed: true }) }
        : { index, method: 'create' as const, status, error: { statusCode: status, error: 'Error', message: message ?? `failed ${status}` } };
    });
    const succeeded = result.filter((r) => r.status < 300).length;
    return { result, succeeded, failed: result.length - succeeded };
  };
}

function recorder(): ImportProgress & { notices: string[]; updates: ImportCounts[] } {
  const notices: string[] = [];
  const updates: ImportCounts[] = [];
  return { notices, updates, start: () => undefined, update: (_done, counts) => updates.push(counts), notice: (text) => notices.push(text), stop: () => undefined };
}

const names = (count: number, prefix = 'Row') => `name\n${Array.from({ length: count }, (_, i) => `${prefix} ${i + 1}`).join('\n')}\n`;

describe('importStages', () => {
  it('sends the rows in file order, in batches of the batch size, each with its row key, asking for ids only', async () => {
    const path = file('batched.csv', names(250));
    const sdk = scriptedSdk([answer(), answer(), answer()]);
    const summary = await importStages(sdk, { file: path, account: 'acc', concurrency: 1, progress: recorder() });
    expect(summary).toMatchObject({ total: 250, created: 250, replayed: 0, failed: 0, batches: 3, dry_run: false, interrupted: false, not_sent: 0 });
    expect(sdk.batches.map((b) => b.items.length)).toEqual([100, 100, 50]);
    const read = await readImportFile(path);
    expect(sdk.batches.flatMap((b) => b.items)).toEqual(read.rows.map((r) => ({ method: 'create', body: { name: r.source.name }, idempotency_key: rowIdempotencyKey('acc', path, r) })));
    for (const batch of sdk.batches) {
      expect(batch.query).toEqual({ integrated_account_id: 'acc', truto_ignore_remote_data: true });
      // The rows' keys guard each row; the batch has none of its own.
      expect(batch.options).toEqual({ idempotencyKey: false, minimal: true });
    }
    expect(summary.results[249]).toEqual({ row: 250, ok: true, id: 'id-Row 250', replayed: false });
    const small = scriptedSdk(Array.from({ length: 5 }, () => answer()));
    await importStages(small, { file: path, account: 'acc', concurrency: 2, batchSize: 60, progress: recorder() });
    expect(small.batches.map((b) => b.items.length).sort()).toEqual([10, 60, 60, 60, 60]);
  });

  it('prints the wait it then waits, whatever Retry-After says', async () => {
    // Five retries of the whole batch (a row is tried at most six times).
    const headers = ['1.5', '-1', '0', '3', 'Sun, 29 Nov 2026 20:01:00 GMT'];
    const sdk = scriptedSdk([...headers.map((h) => new UnicrmError(429, 'Too many', {}, { 'retry-after': h })), answer()]);
    const clock = fakeClock();
    const progress = recorder();
    const summary = await importStages(sdk, { file: file('waits.csv', 'name\nWaiting\n'), account: 'acc', concurrency: 1, progress, clock });
    expect(summary).toMatchObject({ created: 1, replayed: 0, failed: 0, batches: 6 });
    const printed = progress.notices.map((n) => Number(/trying again in (\d+) s$/.exec(n)?.[1]) * 1000);
    expect(clock.slept).toEqual(printed);
    // 1.5 and -1: the 429 backoff of attempts 1 and 2; 0: at least 1 s; 3: 3 s; the date: 1 min after the start, 7 s gone.
    expect(printed).toEqual([1000, 2000, 1000, 3000, 53_000]);
    expect(progress.notices[0]).toBe('row 1: 429 Too Many Requests: Too many; trying again in 1 s');
    // Every try carried the row's same key.
    expect(new Set(sdk.batches.map((b) => b.items[0]?.idempotency_key)).size).toBe(1);
  });

  it('waits with the batch that paused the import, and says so', async () => {
    // Row 1's batch hits a 429 asking for 5 s; row 2's asks for 1 s while the import is already paused for 5 s.
    const sdk = scriptedSdk([
      new UnicrmError(429, 'Too many', {}, { 'retry-after': '5' }),
      new UnicrmError(429, 'Too many', {}, { 'retry-after': '1' }),
      answer(),
      answer(),
    ]);
    const clock = fakeClock();
    const progress = recorder();
    await importStages(sdk, { file: file('pause.csv', 'name\nA\nB\n'), account: 'acc', concurrency: 2, batchSize: 1, progress, clock });
    const printed = progress.notices.map((n) => Number(/trying again in (\d+) s$/.exec(n)?.[1]) * 1000);
    expect(printed).toEqual([5000, 5000]);
    expect(clock.slept).toEqual([5000, 5000]);
  });

  it("sends again only the items answered 429, 409 or 5xx, with their same keys, and says which rows wait", async () => {
    const tries = new Map<string, number>();
    const flaky = answer((name) => {
      const n = (tries.get(name) ?? 0) + 1;
      tries.set(name, n);
      if (name === 'B' && n === 1) return { status: 503, message: 'Pipeliner is busy.' };
      if (name === 'D' && n === 1) return { status: 503, message: 'Pipeliner is busy.' };
      if (name === 'C') return { status: 422, message: 'Relation not found.' };
      return { status: 201 };
    });
    const sdk = scriptedSdk([flaky, flaky]);
    const progress = recorder();
    const summary = await importStages(sdk, { file: file('flaky.csv', 'name\nA\nB\nC\nD\n'), account: 'acc', concurrency: 1, progress, clock: fakeClock() });
    expect(summary).toMatchObject({ created: 3, failed: 1, batches: 2 });
    expect(sdk.batches[1]?.items.map((i) => i.body.name)).toEqual(['B', 'D']);
    expect(sdk.batches[1]?.items.map((i) => i.idempotency_key)).toEqual([sdk.batches[0]?.items[1]?.idempotency_key, sdk.batches[0]?.items[3]?.idempotency_key]);
    expect(progress.notices).toEqual(['rows 2, 4: 503 Error: Pipeliner is busy; trying again in 1 s']);
    expect(summary.results.find((r) => r.row === 3)).toEqual({ row: 3, ok: false, error: '422 Error: Relation not found.' });
  });

  it('counts rows an earlier run created (replayed) apart from the rows it creates', async () => {
    const path = file('twice.csv', 'name\nA\nB\nC\n');
    const first = await importStages(scriptedSdk([answer((name) => ({ status: name === 'C' ? 422 : 201 }))]), { file: path, account: 'acc', concurrency: 1, progress: recorder() });
    expect(first).toMatchObject({ total: 3, created: 2, replayed: 0, failed: 1 });
    const progress = recorder();
    const second = await importStages(scriptedSdk([answer((name) => (name === 'C' ? { status: 422 } : { status: 201, replayed: true }))]), {
      file: path,
      account: 'acc',
      concurrency: 1,
      progress,
    });
    expect(second).toMatchObject({ total: 3, created: 0, replayed: 2, failed: 1 });
    expect(second.results.slice(0, 2)).toEqual([
      { row: 1, ok: true, id: 'id-A', replayed: true },
      { row: 2, ok: true, id: 'id-B', replayed: true },
    ]);
    expect(progress.updates.at(-1)).toEqual({ created: 0, replayed: 2, failed: 1, valid: 0 });
    expect(countsText(second)).toBe('0 created, 2 already created earlier (replayed), 1 failed');
    expect(countsText(first)).toBe('2 created, 1 failed');
  });

  it('counts the rows that ended on a temporary error apart (unfinished): the same import finishes them', async () => {
    const busy = answer((name) => (name === 'Busy' ? { status: 409, message: 'A request with this Idempotency-Key is still being processed.' } : { status: 201 }));
    const sdk = scriptedSdk([busy, busy, busy, busy, busy, busy]);
    const summary = await importStages(sdk, { file: file('busy.csv', 'name\nBusy\nFree\n'), account: 'acc', concurrency: 1, progress: recorder(), clock: fakeClock() });
    expect(summary).toMatchObject({ created: 1, failed: 1, unfinished: 1, batches: 6 });
    expect(sdk.batches.slice(1).map((b) => b.items.map((i) => i.body.name))).toEqual(Array.from({ length: 5 }, () => ['Busy']));
  });

  it('counts a replay after its own 5xx as created by this run', async () => {
    // The first try timed out after the server had created the stage; the retry is answered by replay.
    const sdk = scriptedSdk([new UnicrmError(504, 'timeout'), answer(() => ({ status: 201, replayed: true }))]);
    const summary = await importStages(sdk, { file: file('own.csv', 'name\nA\n'), account: 'acc', concurrency: 1, progress: recorder(), clock: fakeClock() });
    expect(summary).toMatchObject({ created: 1, replayed: 0, failed: 0 });
  });

  it('asks for the whole stage of a row whose key an import before batches used (a 422 to the minimal form)', async () => {
    const reused = 'This Idempotency-Key was used with a different request; use a new key for a new request.';
    const sdk = scriptedSdk([answer((name) => (name === 'Old' ? { status: 422, message: reused } : { status: 201 })), answer(() => ({ status: 201, replayed: true }))]);
    const progress = recorder();
    const summary = await importStages(sdk, { file: file('old.csv', 'name\nOld\nNew\n'), account: 'acc', concurrency: 1, progress, clock: fakeClock() });
    expect(summary).toMatchObject({ created: 1, replayed: 1, failed: 0, batches: 2 });
    expect(sdk.batches[1]?.options).toEqual({ idempotencyKey: false, minimal: false });
    expect(sdk.batches[1]?.items).toEqual([sdk.batches[0]?.items[0]]);
    expect(progress.notices).toEqual(['row 1: written by an earlier import that kept each whole stage; asking for the whole stages to replay them']);
  });

  it('with dryRun checks every row (dry_run=true, no keys), counts valid and invalid, and writes the invalid rows', async () => {
    const path = file('dry.csv', 'name,position\nGood,1\nBad,x\nRefused,2\n');
    const sdk = scriptedSdk([answer((name) => (name === 'Refused' ? { status: 400, message: 'Invalid body: name is odd' } : { status: 200 }))]);
    const summary = await importStages(sdk, { file: path, account: 'acc', concurrency: 1, dryRun: true, progress: recorder(), failedOut: join(dir, 'dry-invalid.csv') });
    expect(summary).toMatchObject({ dry_run: true, total: 3, valid: 1, failed: 2, created: 0, replayed: 0, failed_out: join(dir, 'dry-invalid.csv') });
    expect(sdk.batches).toEqual([
      { query: { integrated_account_id: 'acc', truto_ignore_remote_data: true, dry_run: true }, items: [{ method: 'create', body: { name: 'Good', position: 1 } }, { method: 'create', body: { name: 'Refused', position: 2 } }], options: { idempotencyKey: false, minimal: false } },
    ]);
    expect(readFileSync(join(dir, 'dry-invalid.csv'), 'utf8')).toBe(
      'name,position,error\nBad,x,"invalid row: position must be a number, not ""x"""\nRefused,2,400 Error: Invalid body: name is odd\n',
    );
    expect(countsText(summary, true)).toBe('1 valid, 2 invalid');
  });

  it('stops at a failure every row would repeat (401): the rows not attempted fail as such', async () => {
    const sdk = scriptedSdk([answer(), new UnicrmError(401, 'The account needs to be connected again.')]);
    const summary = await importStages(sdk, { file: file('fatal.csv', names(5)), account: 'acc', concurrency: 1, batchSize: 2, progress: recorder() });
    expect(summary).toMatchObject({ created: 2, failed: 3, batches: 2, aborted: '401 Unauthorized: The account needs to be connected again.', not_sent: 0 });
    expect(summary.results.at(-1)).toEqual({ row: 5, ok: false, error: 'not attempted: the import stopped (401 Unauthorized: The account needs to be connected again.)' });
  });

  it('when interrupted sends no new batch, lets the one in flight finish, and counts the rows not sent', async () => {
    const stop = new AbortController();
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const sdk = scriptedSdk([answer(), answer(), answer()]);
    const batch = sdk.crm.stages.batch.bind(sdk.crm.stages);
    // The second batch is in flight when Ctrl-C comes; its answer comes after.
    (sdk.crm.stages as { batch: unknown }).batch = async (...args: Parameters<typeof batch>) => {
      const answered = batch(...args);
      if (sdk.batches.length === 2) {
        stop.abort();
        await held;
      }
      return answered;
    };
    setImmediate(() => release());
    const summary = await importStages(sdk, { file: file('stop.csv', names(5)), account: 'acc', concurrency: 1, batchSize: 2, progress: recorder(), signal: stop.signal });
    expect(summary).toMatchObject({ interrupted: true, created: 4, failed: 0, not_sent: 1, batches: 2, failed_out: null, aborted: null });
    expect(summary.results.map((r) => r.row)).toEqual([1, 2, 3, 4]);
  });

  it('when interrupted during a wait before a retry, ends the wait at once', async () => {
    const stop = new AbortController();
    const clock = fakeClock();
    const sleep = clock.sleep;
    clock.sleep = (ms) => {
      stop.abort();
      return ms > 0 ? new Promise<void>(() => undefined) : sleep(ms); // a wait that would never end by itself
    };
    const sdk = scriptedSdk([new UnicrmError(429, 'Too many', {}, { 'retry-after': '60' })]);
    const summary = await importStages(sdk, { file: file('waiting.csv', names(3)), account: 'acc', concurrency: 1, progress: recorder(), clock, signal: stop.signal });
    expect(summary).toMatchObject({ interrupted: true, created: 0, failed: 0, not_sent: 3, batches: 1 });
  });
});

describe('import progress', () => {
  it('says the speed and the time left in words', () => {
    expect(speedText(0, 500, 0)).toBe('- rows/s, ETA -');
    expect(speedText(100, 500, 1000)).toBe('100 rows/s, ETA 4 s');
    expect(speedText(3, 500, 1000)).toBe('3.0 rows/s, ETA 2 min 46 s');
    expect(speedText(500, 500, 2000)).toBe('250 rows/s, ETA 0 s');
    expect(durationText(3_725_000)).toBe('1 h 02 min');
    expect(elapsedText(1234)).toBe('1.2 s');
    expect(elapsedText(270)).toBe('270 ms');
    expect(elapsedText(125_000)).toBe('2 min 05 s');
  });

  it('draws a bar on a terminal with rows per second and the time left, and the wait before a retry at its end', async () => {
    let written = '';
    const stream = { isTTY: true, columns: 200, write: (chunk: string) => ((written += chunk), true), cursorTo: () => true, clearLine: () => true, moveCursor: () => true, on: () => stream, removeListener: () => stream };
    const pause = () => new Promise((resolve) => setTimeout(resolve, 250)); // the bar redraws 10 times a second
    let now = 0;
    const progress = progressReporter(stream, () => now);
    progress.start(300);
    now = 2000;
    progress.update(100, { created: 100, replayed: 0, failed: 0 });
    progress.notice('rows 101-200: 429 Too Many Requests: Rate limit exceeded; trying again in 7 s');
    await pause();
    expect(written).toContain('100/300 rows | 100 created, 0 failed | 50 rows/s, ETA 4 s');
    expect(written).toContain('ETA 4 s | waiting 7 s: rate limited');
    now = 4000;
    progress.update(300, { created: 100, replayed: 199, failed: 1 });
    progress.stop();
    expect(written).toContain('importing |');
    expect(written).toContain('300/300 rows | 100 created, 199 already created earlier (replayed), 1 failed | 75 rows/s, ETA 0 s');
    expect(written.slice(written.lastIndexOf('importing |'))).not.toContain('waiting');
  });

  it('writes a plain line each tenth of the rows and after 5 s of silence, with the rate and the time left, elsewhere', () => {
    const lines: string[] = [];
    let clock = 0;
    const progress = progressReporter({ write: (chunk) => (lines.push(chunk), true) }, () => clock);
    progress.start(1000);
    clock = 1000;
    progress.update(100, { created: 100, replayed: 0, failed: 0 });
    clock = 1500;
    progress.update(150, { created: 150, replayed: 0, failed: 0 });
    progress.notice('rows 151-250: 429 Too Many Requests: slow down; trying again in 7 s');
    clock = 7000;
    progress.update(160, { created: 160, replayed: 0, failed: 0 });
    clock = 8000;
    progress.update(400, { created: 399, replayed: 0, failed: 1 });
    progress.stop();
    expect(lines).toEqual([
      'imported 100/1000 rows: 100 created, 0 failed | 100 rows/s, ETA 9 s\n',
      'rows 151-250: 429 Too Many Requests: slow down; trying again in 7 s\n',
      'imported 160/1000 rows: 160 created, 0 failed | 23 rows/s, ETA 37 s\n',
      'imported 400/1000 rows: 399 created, 1 failed | 50 rows/s, ETA 12 s\n',
    ]);
  });

  it('says "checked" and valid / invalid in a dry run', () => {
    const lines: string[] = [];
    const progress = progressReporter({ write: (chunk) => (lines.push(chunk), true) }, () => 1000);
    progress.start(2, { dryRun: true });
    progress.update(2, { created: 0, replayed: 0, failed: 1, valid: 1 });
    progress.stop();
    expect(lines).toEqual(['checked 2/2 rows: 1 valid, 1 invalid | - rows/s, ETA 0 s\n']);
  });

  it('names rows compactly', () => {
    expect(rowsText([7])).toBe('row 7');
    expect(rowsText([9, 1, 2, 3, 5])).toBe('rows 1-3, 5, 9');
  });
});

describe('human output', () => {
  it('aligns key: value lines, flattens nested objects and summarises remote_data', () => {
    expect(keyValueLines({ id: 'a', pipeline: { id: 'p', name: null }, tags: ['x', 1], empty: {}, remote_data: { a: 1, b: 2 } }).split('\n')).toEqual([
      'id:            a',
      'pipeline.id:   p',
      'pipeline.name: null',
      'tags:          x, 1',
      'empty:         {}',
      "remote_data:   {2 fields of the provider's record; --output json shows them}",
    ]);
  });

  it('prints Retry-After as the seconds it stands for, and says when it is unreadable', () => {
    const now = Date.parse('Sun, 29 Nov 2026 20:00:00 GMT');
    const line = (value: string) => errorLines(new UnicrmError(429, 'Slow down.', {}, { 'retry-after': value }), true, now).split('\n')[1];
    expect(line('7')).toBe('retry after: 7 s');
    expect(line('Sun, 29 Nov 2026 20:00:30 GMT')).toBe('retry after: 30 s');
    expect(line('Sun, 06 Nov 1994 08:49:37 GMT')).toBe('retry after: 0 s');
    expect(line('1.5')).toBe('retry after: "1.5" (not whole seconds or an HTTP-date; ignored)');
    expect(line('-1')).toBe('retry after: "-1" (not whole seconds or an HTTP-date; ignored)');
  });

  it('draws a small table', () => {
    expect(table(['row', 'error'], [['2', 'bad'], ['10', 'worse']])).toBe('row  error\n2    bad\n10   worse');
  });
});
