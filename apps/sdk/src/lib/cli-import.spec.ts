import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnicrmError } from '@unicrm/model';
import { attachResponseMeta } from './meta';
import type { Unicrm } from './types';
import {
  defaultFailedPath,
  type ImportClock,
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
  rowToBody,
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

/** An SDK whose create answers from a script: an error to throw, or a result (optionally marked replayed). */
function scriptedSdk(script: Array<UnicrmError | { id: string; replayed?: boolean }>): Unicrm & { calls: number } {
  const sdk = {
    calls: 0,
    crm: {
      stages: {
        create: async (_query: unknown, body: { name?: string }) => {
          const step = script[sdk.calls++];
          if (!step) throw new Error('the script ran out');
          if (step instanceof UnicrmError) throw step;
          return attachResponseMeta({ id: step.id, name: body.name }, { statusCode: 201, replayed: step.replayed === true, attempts: 1 });
        },
      },
    },
  };
  return sdk as unknown as Unicrm & { calls: number };
}

function recorder(): ImportProgress & { notices: string[]; updates: unknown[] } {
  const notices: string[] = [];
  const updates: unknown[] = [];
  return { notices, updates, start: () => undefined, update: (_done, counts) => updates.push(counts), notice: (text) => notices.push(text), stop: () => undefined };
}

describe('importStages', () => {
  it('prints the wait it then waits, whatever Retry-After says', async () => {
    // Five retries (a row is tried at most six times).
    const headers = ['1.5', '-1', '0', '3', 'Sun, 29 Nov 2026 20:01:00 GMT'];
    const sdk = scriptedSdk([...headers.map((h) => new UnicrmError(429, 'Too many', {}, { 'retry-after': h })), { id: 's-1' }]);
    const clock = fakeClock();
    const progress = recorder();
    const summary = await importStages(sdk, { file: file('waits.csv', 'name\nWaiting\n'), account: 'acc', concurrency: 1, progress, clock });
    expect(summary).toMatchObject({ created: 1, replayed: 0, failed: 0 });
    const printed = progress.notices.map((n) => Number(/trying again in (\d+) s$/.exec(n)?.[1]) * 1000);
    expect(clock.slept).toEqual(printed);
    // 1.5 and -1: the 429 backoff of attempts 1 and 2; 0: at least 1 s; 3: 3 s; the date: 1 min after the start, 7 s gone.
    expect(printed).toEqual([1000, 2000, 1000, 3000, 53_000]);
  });

  it('waits with the row that paused the import, and says so', async () => {
    // Row 1 hits a 429 asking for 5 s; row 2's 429 asks for 1 s while the import is already paused for 5 s.
    const sdk = scriptedSdk([
      new UnicrmError(429, 'Too many', {}, { 'retry-after': '5' }),
      new UnicrmError(429, 'Too many', {}, { 'retry-after': '1' }),
      { id: 's-1' },
      { id: 's-2' },
    ]);
    const clock = fakeClock();
    const progress = recorder();
    await importStages(sdk, { file: file('pause.csv', 'name\nA\nB\n'), account: 'acc', concurrency: 2, progress, clock });
    const printed = progress.notices.map((n) => Number(/trying again in (\d+) s$/.exec(n)?.[1]) * 1000);
    expect(printed).toEqual([5000, 5000]);
    expect(clock.slept).toEqual([5000, 5000]);
  });

  it('counts rows an earlier run created (replayed) apart from the rows it creates', async () => {
    const path = file('twice.csv', 'name\nA\nB\nC\n');
    const first = await importStages(scriptedSdk([{ id: 'a' }, { id: 'b' }, new UnicrmError(422, 'no')]), { file: path, account: 'acc', concurrency: 1, progress: recorder() });
    expect(first).toMatchObject({ total: 3, created: 2, replayed: 0, failed: 1 });
    const progress = recorder();
    const second = await importStages(scriptedSdk([{ id: 'a', replayed: true }, { id: 'b', replayed: true }, new UnicrmError(422, 'no')]), {
      file: path,
      account: 'acc',
      concurrency: 1,
      progress,
    });
    expect(second).toMatchObject({ total: 3, created: 0, replayed: 2, failed: 1 });
    expect(second.results.slice(0, 2)).toEqual([
      { row: 1, ok: true, id: 'a', name: 'A', replayed: true },
      { row: 2, ok: true, id: 'b', name: 'B', replayed: true },
    ]);
    expect(progress.updates.at(-1)).toEqual({ created: 0, replayed: 2, failed: 1 });
    expect(countsText(second)).toBe('0 created, 2 already created earlier (replayed), 1 failed');
    expect(countsText(first)).toBe('2 created, 1 failed');
  });

  it('counts a replay after its own 5xx as created by this run', async () => {
    // The first try timed out after the server had created the stage; the retry is answered by replay.
    const sdk = scriptedSdk([new UnicrmError(504, 'timeout'), { id: 'a', replayed: true }]);
    const summary = await importStages(sdk, { file: file('own.csv', 'name\nA\n'), account: 'acc', concurrency: 1, progress: recorder(), clock: fakeClock() });
    expect(summary).toMatchObject({ created: 1, replayed: 0, failed: 0 });
  });
});

describe('import progress', () => {
  it('draws a bar on a terminal, with the wait before a retry at its end', async () => {
    let written = '';
    const stream = { isTTY: true, columns: 160, write: (chunk: string) => ((written += chunk), true), cursorTo: () => true, clearLine: () => true, moveCursor: () => true, on: () => stream, removeListener: () => stream };
    const pause = () => new Promise((resolve) => setTimeout(resolve, 250)); // the bar redraws 10 times a second
    const progress = progressReporter(stream);
    progress.start(3);
    progress.update(1, { created: 1, replayed: 0, failed: 0 });
    progress.notice('row 2: 429 Too Many Requests: Rate limit exceeded; trying again in 7 s');
    await pause();
    expect(written).toContain('1/3 rows | 1 created, 0 failed');
    expect(written).toContain('left | waiting 7 s: rate limited');
    progress.update(3, { created: 1, replayed: 1, failed: 1 });
    progress.stop();
    expect(written).toContain('importing |');
    expect(written).toContain('3/3 rows | 1 created, 1 already created earlier (replayed), 1 failed');
    expect(written.slice(written.lastIndexOf('importing |'))).not.toContain('waiting');
  });

  it('writes a plain line every tenth of the rows, and after 5 s of silence, elsewhere', () => {
    const lines: string[] = [];
    let clock = 0;
    const progress = progressReporter({ write: (chunk) => (lines.push(chunk), true) }, () => clock);
    progress.start(20);
    for (let done = 1; done <= 3; done++) progress.update(done, { created: done, replayed: 0, failed: 0 });
    progress.notice('row 4: 429 Too Many Requests: slow down; trying again in 7 s');
    clock = 6000;
    progress.update(5, { created: 5, replayed: 0, failed: 0 });
    progress.stop();
    expect(lines).toEqual([
      'imported 2/20 rows: 2 created, 0 failed\n',
      'row 4: 429 Too Many Requests: slow down; trying again in 7 s\n',
      'imported 5/20 rows: 5 created, 0 failed\n',
    ]);
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
