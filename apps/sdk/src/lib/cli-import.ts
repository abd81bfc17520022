import { isUnicrmError, type StageCreateBody } from '@unicrm/model';
import { SingleBar } from 'cli-progress';
import { parse as parseCsv } from 'csv-parse/sync';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { responseMeta } from './meta';
import { retryAfterMs } from './retry';
import type { Unicrm } from './types';

/** The columns (CSV) or keys (JSON) of an import file; `error` is what a failed-rows file adds, ignored on input. */
export const IMPORT_COLUMNS = ['name', 'pipeline', 'position', 'status', 'remote_data'] as const;
const ERROR_COLUMN = 'error';

/** A problem with the file itself (not one row): the CLI reports it as a usage error. */
export class ImportFileError extends Error {}

/** One row of an import file, as read. */
export interface ImportRow {
  /** 1-based row number (data rows; a CSV header is not counted). */
  row: number;
  /** The row as it is in the file: CSV cells as strings, or the JSON object. */
  source: Record<string, unknown>;
}

/** An import file, read. */
export interface ImportFile {
  kind: 'csv' | 'json';
  /** CSV header, in file order, without `error`. */
  columns: string[];
  rows: ImportRow[];
}

/**
 * Outcome of one row. `replayed`: the row's Idempotency-Key had been used by an earlier request (an earlier run of
 * the same import, usually), so the server answered that request's stage and this run created nothing.
 */
export type RowResult = { row: number; ok: true; id: string; name?: string; replayed: boolean } | { row: number; ok: false; error: string };

/** What {@link importStages} did. */
export interface ImportSummary {
  file: string;
  account: string;
  total: number;
  /** Stages this run created. */
  created: number;
  /** Rows whose stage an earlier request with the same Idempotency-Key had created (answered by replay). */
  replayed: number;
  failed: number;
  /** Where the failed rows were written (null when none failed). */
  failed_out: string | null;
  /** Set when the import stopped early (e.g. the token or the account stopped working): the reason. */
  aborted: string | null;
  results: RowResult[];
}

/** Rows done so far, by outcome. */
export interface ImportCounts {
  created: number;
  replayed: number;
  failed: number;
}

/** The counts as words: `2 created, 3 failed`, with `, 1 already created earlier (replayed)` when there are replays. */
export function countsText({ created, replayed, failed }: ImportCounts): string {
  return `${created} created, ${replayed > 0 ? `${replayed} already created earlier (replayed), ` : ''}${failed} failed`;
}

/** Progress reporting of an import. */
export interface ImportProgress {
  start(total: number): void;
  update(done: number, counts: ImportCounts): void;
  /** Something worth a line (a wait before a retry); a progress bar leaves it out. */
  notice(text: string): void;
  stop(): void;
}

function kindOf(path: string): 'csv' | 'json' {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.json') return 'json';
  throw new ImportFileError(`stages import reads .csv or .json files, not "${basename(path)}".`);
}

/**
 * Reads an import file: CSV with a header row (columns name, pipeline, position, status, remote_data; remote_data
 * a JSON object as text), or JSON (an array of objects with the same keys). An `error` column or key, as in a file
 * of failed rows, is ignored.
 * @throws ImportFileError for an unreadable file, unknown CSV columns, a CSV without a name column, or JSON that is not an array
 */
export async function readImportFile(path: string): Promise<ImportFile> {
  const kind = kindOf(path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ImportFileError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (kind === 'json') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new ImportFileError(`${path} is not valid JSON: ${(error as Error).message}`);
    }
    if (!Array.isArray(value)) throw new ImportFileError(`${path} must hold a JSON array of stages, e.g. [{"name": "Qualified"}].`);
    return {
      kind,
      columns: [],
      rows: value.map((item, i) => ({ row: i + 1, source: (typeof item === 'object' && item !== null ? item : { value: item }) as Record<string, unknown> })),
    };
  }
  let header: string[] = [];
  let records: Record<string, string>[];
  try {
    records = parseCsv(text, {
      bom: true,
      skip_empty_lines: true,
      // A quote inside an unquoted cell is kept as text: `{"percent":40}` works without CSV quoting.
      relax_quotes: true,
      columns: (names: string[]) => {
        header = names.map((n) => n.trim());
        return header;
      },
    }) as Record<string, string>[];
  } catch (error) {
    throw new ImportFileError(`${path} is not valid CSV: ${(error as Error).message}`);
  }
  const columns = header.filter((c) => c !== ERROR_COLUMN);
  const unknown = columns.filter((c) => !(IMPORT_COLUMNS as readonly string[]).includes(c));
  if (unknown.length > 0) {
    throw new ImportFileError(`${path}: unknown column${unknown.length > 1 ? 's' : ''} ${unknown.map((c) => `"${c}"`).join(', ')}; the columns are ${IMPORT_COLUMNS.join(', ')}.`);
  }
  if (records.length > 0 && !columns.includes('name')) throw new ImportFileError(`${path} needs a "name" column (the columns are ${IMPORT_COLUMNS.join(', ')}).`);
  return { kind, columns, rows: records.map((source, i) => ({ row: i + 1, source })) };
}

class RowError extends Error {}

/**
 * Turns a row into a create body. Empty CSV cells are left out; `pipeline` is the pipeline id; `position` a number;
 * `remote_data` a JSON object (text in CSV). Other JSON keys are passed on, so that the API names them if unknown.
 * @throws RowError for a position that is not a number or remote_data that is not a JSON object
 */
export function rowToBody(row: ImportRow): StageCreateBody {
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row.source)) {
    if (key === ERROR_COLUMN || value === undefined || value === '') continue;
    if (key === 'pipeline') {
      body.pipeline = typeof value === 'string' ? { id: value.trim() } : value;
    } else if (key === 'position' && typeof value === 'string') {
      const position = Number(value.trim());
      if (value.trim() === '' || !Number.isFinite(position)) throw new RowError(`position must be a number, not "${value}"`);
      body.position = position;
    } else if (key === 'remote_data' && typeof value === 'string') {
      let data: unknown;
      try {
        data = JSON.parse(value);
      } catch {
        throw new RowError(`remote_data must be a JSON object, e.g. {"percent": 40}, not ${JSON.stringify(value)}`);
      }
      if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new RowError('remote_data must be a JSON object, e.g. {"percent": 40}');
      body.remote_data = data;
    } else {
      body[key] = value;
    }
  }
  return body as StageCreateBody;
}

/**
 * The idempotency key of a row: the same for the same account, file (its absolute path), row number and content,
 * so that running an interrupted import again does not create its rows twice (the API replays the first answer
 * for 24 h). A failed-rows file gets other keys (other rows, an `error` column), so its rows are created anew.
 */
export function rowIdempotencyKey(account: string, file: string, row: ImportRow): string {
  const digest = createHash('sha256').update(JSON.stringify([account, resolve(file), row.row, row.source])).digest('hex');
  return `unicrm-import-${digest.slice(0, 40)}`;
}

function csvCell(value: unknown): string {
  const text = value === undefined || value === null ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The default file of failed rows: `<input name>.failed.<ext>` beside the input. */
export function defaultFailedPath(input: string): string {
  const ext = extname(input);
  return join(dirname(input), `${basename(input, ext)}.failed${ext}`);
}

/**
 * Writes the failed rows in the input's format plus an `error` column (CSV) or key (JSON), so that the file can be
 * fixed and imported again.
 */
export async function writeFailedRows(path: string, file: ImportFile, failed: { row: ImportRow; error: string }[]): Promise<void> {
  if (file.kind === 'json') {
    const items = failed.map(({ row, error }) => {
      const { [ERROR_COLUMN]: _old, ...rest } = row.source;
      return { ...rest, [ERROR_COLUMN]: error };
    });
    await writeFile(path, `${JSON.stringify(items, null, 2)}\n`);
    return;
  }
  const columns = [...file.columns, ERROR_COLUMN];
  const lines = [columns.map(csvCell).join(',')];
  for (const { row, error } of failed) {
    lines.push(columns.map((c) => csvCell(c === ERROR_COLUMN ? error : row.source[c])).join(','));
  }
  await writeFile(path, `${lines.join('\n')}\n`);
}

/** The text of a row's failure: `<status> <reason>: <message>`, plus each failing field. */
function describeFailure(error: unknown): string {
  if (error instanceof RowError) return `invalid row: ${error.message}`;
  if (isUnicrmError(error)) return `${error.statusCode} ${error.body.error}: ${error.message}`;
  return `failed: ${(error as Error)?.message ?? String(error)}`;
}

/** Longest wait before a retry, in milliseconds; and how often a row is tried. */
const MAX_WAIT_MS = 60_000;
const MAX_ATTEMPTS = 6;

/** Statuses after which a row is tried again, always with its same Idempotency-Key. */
const RETRIED = new Set([409, 429, 502, 503, 504]);

/**
 * How long to wait before trying a row again, or undefined when it must not be retried. Every try of a row carries
 * the same Idempotency-Key, so a retry never creates a stage twice: 429 (a rate limit) and 409 (the same key still
 * running) mean the create did not happen; after a 502/503/504 the server either did nothing, or marked the key
 * ambiguous and looks for the stage before creating it again (docs/reliability.md). Other failures are final.
 * The wait is `Retry-After` as {@link retryAfterMs} reads it (RFC 9110: whole seconds or an HTTP-date; anything
 * else is ignored), else 1 s × attempt for 409/429 and 1, 2, 4, 8 ... s for 5xx; rounded up to whole seconds,
 * at least 1 s and at most 60 s, so that the "trying again in N s" the CLI prints is the wait itself.
 * @returns milliseconds, a multiple of 1000
 */
export function retryDelayMs(error: unknown, attempt: number, now: number = Date.now()): number | undefined {
  if (!isUnicrmError(error) || !RETRIED.has(error.statusCode)) return undefined;
  const backoff = error.statusCode >= 500 ? 1000 * 2 ** (attempt - 1) : 1000 * attempt;
  const ms = retryAfterMs(error.headers['retry-after'], now) ?? backoff;
  return Math.min(MAX_WAIT_MS, Math.max(1000, Math.ceil(ms / 1000) * 1000));
}

/** The clock of an import: real time by default; tests pass a fake one. */
export interface ImportClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const REAL_CLOCK: ImportClock = { now: () => Date.now(), sleep: (ms) => new Promise<void>((done) => setTimeout(done, ms)) };

/**
 * Failures that every later row would repeat: the token, the account (gone, or needing re-authentication), or a
 * unicrm server that cannot be reached at all (the remote client's own 502, after the retries).
 */
function isFatal(error: unknown): boolean {
  if (!isUnicrmError(error)) return false;
  if (error.statusCode === 401) return true;
  if (error.statusCode === 404 && /integrated account/i.test(error.message)) return true;
  return error.statusCode === 502 && !error.isRemote && /^Could not reach unicrm at /.test(error.message);
}

/** Options of {@link importStages}. */
export interface ImportOptions {
  file: string;
  account: string;
  /** Creates running at once (>= 1). */
  concurrency: number;
  /** Where to write failed rows; default {@link defaultFailedPath}. */
  failedOut?: string;
  progress: ImportProgress;
  /** Default: real time. */
  clock?: ImportClock;
}

/**
 * Creates one stage per row of a CSV or JSON file through the SDK (either transport), at most `concurrency` at a
 * time, and writes the rows that failed to a file in the same format with an `error` column. A failure that every
 * later row would repeat (401, unknown account) stops the import; the rows not attempted go to the failed file too.
 * @throws ImportFileError when the file cannot be read (nothing is created then)
 */
export async function importStages(unicrm: Unicrm, options: ImportOptions): Promise<ImportSummary> {
  const file = await readImportFile(options.file);
  const total = file.rows.length;
  const results: RowResult[] = new Array(total);
  const clock = options.clock ?? REAL_CLOCK;
  let next = 0;
  const counts: ImportCounts = { created: 0, replayed: 0, failed: 0 };
  let aborted: string | null = null;

  // After a 429 every worker waits until then, so that the whole import slows down, not only one row.
  let resumeAt = 0;
  const attemptRow = async (row: ImportRow, index: number) => {
    const body = rowToBody(row);
    const key = rowIdempotencyKey(options.account, options.file, row);
    // A 5xx may have come after the server created the stage: a replay after one is this run's own create.
    let mayHaveCreated = false;
    for (let attempt = 1; ; attempt++) {
      const pause = resumeAt - clock.now();
      if (pause > 0) await clock.sleep(pause);
      try {
        const stage = await unicrm.crm.stages.create(
          { integrated_account_id: options.account, truto_ignore_remote_data: true },
          body,
          { idempotencyKey: key },
        );
        const replayed = responseMeta(stage)?.replayed === true && !mayHaveCreated;
        results[index] = { row: row.row, ok: true, id: stage.id, ...(stage.name !== undefined && { name: stage.name }), replayed };
        return;
      } catch (error) {
        const delay = attempt < MAX_ATTEMPTS ? retryDelayMs(error, attempt, clock.now()) : undefined;
        if (delay === undefined) throw error;
        if (isUnicrmError(error) && error.statusCode >= 500) mayHaveCreated = true;
        // Whole seconds: this row's own wait, or longer when another row already paused the import past it.
        const now = clock.now();
        const wait = Math.max(delay, Math.ceil((resumeAt - now) / 1000) * 1000);
        resumeAt = Math.max(resumeAt, now + wait);
        options.progress.notice(`row ${row.row}: ${describeFailure(error).replace(/\.$/, '')}; trying again in ${wait / 1000} s`);
        await clock.sleep(wait);
      }
    }
  };

  options.progress.start(total);
  const worker = async () => {
    while (next < total && aborted === null) {
      const index = next++;
      const row = file.rows[index] as ImportRow;
      try {
        await attemptRow(row, index);
        if ((results[index] as { replayed?: boolean }).replayed) counts.replayed++;
        else counts.created++;
      } catch (error) {
        results[index] = { row: row.row, ok: false, error: describeFailure(error) };
        counts.failed++;
        if (isFatal(error) && aborted === null) aborted = describeFailure(error);
      }
      options.progress.update(counts.created + counts.replayed + counts.failed, { ...counts });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, total)) }, worker));
  } finally {
    options.progress.stop();
  }
  for (let index = 0; index < total; index++) {
    if (results[index] === undefined) {
      results[index] = { row: (file.rows[index] as ImportRow).row, ok: false, error: `not attempted: the import stopped (${aborted})` };
      counts.failed++;
    }
  }

  const failedRows = results.flatMap((result, index) => (result.ok ? [] : [{ row: file.rows[index] as ImportRow, error: result.error }]));
  let failedOut: string | null = null;
  if (failedRows.length > 0) {
    failedOut = options.failedOut ?? defaultFailedPath(options.file);
    await writeFailedRows(failedOut, file, failedRows);
  }
  return { file: options.file, account: options.account, total, ...counts, failed_out: failedOut, aborted, results };
}

/** Where progress goes: a bar on a terminal, else a plain line every tenth of the rows (and at least every 5 s). */
export interface ProgressStream {
  isTTY?: boolean;
  write(chunk: string): boolean;
}

/**
 * Progress on stderr: a cli-progress bar when the stream is a terminal, otherwise plain lines
 * (`imported 50/500 rows: 49 created, 1 failed`; replayed rows counted apart, see {@link countsText}) every tenth of the rows, at least every 5 s, and at the end.
 */
export function progressReporter(stream: ProgressStream, now: () => number = Date.now): ImportProgress {
  if (stream.isTTY) {
    const bar = new SingleBar({
      stream: stream as unknown as NodeJS.WritableStream,
      format: 'importing |{bar}| {value}/{total} rows | {counts} | {eta_formatted} left{note}',
      barCompleteChar: '█',
      barIncompleteChar: '░',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    });
    // A notice (a wait before a retry) shows at the end of the bar until the next row is done.
    const waitNote = (text: string) => {
      const wait = /trying again in (\d+ s)$/.exec(text);
      return wait ? ` | waiting ${wait[1]}: ${/\b(429|409)\b/.exec(text)?.[1] === '409' ? 'in flight' : 'rate limited'}` : '';
    };
    return {
      start: (total) => bar.start(total, 0, { counts: countsText({ created: 0, replayed: 0, failed: 0 }), note: '' }),
      update: (done, counts) => bar.update(done, { counts: countsText(counts), note: '' }),
      notice: (text) => bar.update({ note: waitNote(text) }),
      stop: () => bar.stop(),
    };
  }
  let total = 0;
  let step = 1;
  let lastLine = 0;
  let lastDone = -1;
  const line = (done: number, counts: ImportCounts) => {
    stream.write(`imported ${done}/${total} rows: ${countsText(counts)}\n`);
    lastLine = now();
    lastDone = done;
  };
  let latest: [number, ImportCounts] = [0, { created: 0, replayed: 0, failed: 0 }];
  return {
    start: (n) => {
      total = n;
      step = Math.max(1, Math.ceil(n / 10));
      lastLine = now();
    },
    update: (done, counts) => {
      latest = [done, counts];
      if (done % step === 0 || done === total || now() - lastLine >= 5000) line(done, counts);
    },
    notice: (text) => {
      stream.write(`${text}\n`);
    },
    stop: () => {
      if (latest[0] !== lastDone && total > 0) line(...latest);
    },
  };
}
