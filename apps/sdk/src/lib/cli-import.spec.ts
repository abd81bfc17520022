import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnicrmError } from '@unicrm/model';
import {
  defaultFailedPath,
  type ImportFile,
  ImportFileError,
  type ImportRow,
  progressReporter,
  readImportFile,
  retryDelayMs,
  rowIdempotencyKey,
  rowToBody,
  writeFailedRows,
} from './cli-import';
import { keyValueLines, table } from './cli-output';

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
});

describe('import progress', () => {
  it('draws a bar on a terminal, with the wait before a retry at its end', async () => {
    let written = '';
    const stream = { isTTY: true, columns: 160, write: (chunk: string) => ((written += chunk), true), cursorTo: () => true, clearLine: () => true, moveCursor: () => true, on: () => stream, removeListener: () => stream };
    const pause = () => new Promise((resolve) => setTimeout(resolve, 250)); // the bar redraws 10 times a second
    const progress = progressReporter(stream);
    progress.start(3);
    progress.update(1, 1, 0);
    progress.notice('row 2: 429 Too Many Requests: Rate limit exceeded; trying again in 7 s');
    await pause();
    expect(written).toContain('1/3 rows | 1 created, 0 failed');
    expect(written).toContain('left | waiting 7 s: rate limited');
    progress.update(3, 2, 1);
    progress.stop();
    expect(written).toContain('importing |');
    expect(written).toContain('3/3 rows | 2 created, 1 failed');
    expect(written.slice(written.lastIndexOf('importing |'))).not.toContain('waiting');
  });

  it('writes a plain line every tenth of the rows, and after 5 s of silence, elsewhere', () => {
    const lines: string[] = [];
    let clock = 0;
    const progress = progressReporter({ write: (chunk) => (lines.push(chunk), true) }, () => clock);
    progress.start(20);
    for (let done = 1; done <= 3; done++) progress.update(done, done, 0);
    progress.notice('row 4: 429 Too Many Requests: slow down; trying again in 7 s');
    clock = 6000;
    progress.update(5, 5, 0);
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

  it('draws a small table', () => {
    expect(table(['row', 'error'], [['2', 'bad'], ['10', 'worse']])).toBe('row  error\n2    bad\n10   worse');
  });
});
