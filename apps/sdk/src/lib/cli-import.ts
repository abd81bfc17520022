import { BATCH_MAX_ITEMS, type BatchAnswer, type BatchItemResult, type ErrorBody, type ErrorExtras, isUnicrmError, type StageCreateBody, UnicrmError } from '@unicrm/model';
import { SingleBar } from 'cli-progress';
import { parse as parseCsv } from 'csv-parse/sync';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
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
 * the same import, usually), so the server answered that request's stage and this run created nothing. `checked`: a
 * `--dry-run` found the row valid (nothing was written).
 */
export type RowResult =
  | { row: number; ok: true; id: string; name?: string; replayed: boolean }
  | { row: number; ok: true; checked: true }
  | { row: number; ok: false; error: string };

/** What {@link importStages} did. */
export interface ImportSummary {
  file: string;
  account: string;
  /** True for `--dry-run`: the rows were checked, nothing was written. */
  dry_run: boolean;
  total: number;
  /** Stages this run created (0 in a dry run). */
  created: number;
  /** Rows whose stage an earlier request with the same Idempotency-Key had created (answered by replay). */
  replayed: number;
  /** Rows that failed (in a dry run: the invalid rows). */
  failed: number;
  /** Dry run: the rows found valid (0 otherwise). */
  valid: number;
  /**
   * Failed rows whose last answer was temporary (429, 409, 502, 503, 504 after every try): their write may still be
   * under way or done (a 409: an earlier run's request with the key is running). Running the same import again
   * finishes them (replayed if written); importing them from the failed-rows file would write them anew.
   */
  unfinished: number;
  /** Rows not sent because the import was interrupted (Ctrl-C): running the same command again sends them. */
  not_sent: number;
  /** True when the import was interrupted (the `signal` of {@link ImportOptions}). */
  interrupted: boolean;
  /** Batch requests sent (each up to {@link BATCH_MAX_ITEMS} rows; retries count). */
  batches: number;
  /** Time the import took, in milliseconds (reading the file to the last answer). */
  elapsed_ms: number;
  /** Where the failed rows were written (null when none failed). */
  failed_out: string | null;
  /** Set when the import stopped early (e.g. the token or the account stopped working): the reason. */
  aborted: string | null;
  /** The rows that settled (all but the `not_sent` ones), in file order. */
  results: RowResult[];
}

/** Rows done so far, by outcome (`valid`: rows a dry run found valid). */
export interface ImportCounts {
  created: number;
  replayed: number;
  failed: number;
  valid?: number;
}

/**
 * The counts as words: `2 created, 3 failed`, with `, 1 already created earlier (replayed)` when there are replays;
 * for a dry run `498 valid, 2 invalid`.
 */
export function countsText({ created, replayed, failed, valid }: ImportCounts, dryRun = false): string {
  if (dryRun) return `${valid ?? 0} valid, ${failed} invalid`;
  return `${created} created, ${replayed > 0 ? `${replayed} already created earlier (replayed), ` : ''}${failed} failed`;
}

/** Progress reporting of an import. */
export interface ImportProgress {
  /** @param mode `dryRun`: the rows are checked, not written (the words change) */
  start(total: number, mode?: { dryRun: boolean }): void;
  update(done: number, counts: ImportCounts): void;
  /** Something worth a line (a wait before a retry, an interruption); a progress bar shows a short form at its end. */
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
  /** Batch requests in flight at once (>= 1). */
  concurrency: number;
  /** Rows per batch request, 1 to {@link BATCH_MAX_ITEMS} (default: the most). */
  batchSize?: number;
  /** `true`: check every row (`dry_run=true`) and write nothing; invalid rows go to the failed-rows file. */
  dryRun?: boolean;
  /** Where to write failed rows; default {@link defaultFailedPath}. */
  failedOut?: string;
  progress: ImportProgress;
  /** Default: real time. */
  clock?: ImportClock;
  /**
   * Aborted: send no new batch (waits before a retry end at once), let the batches in flight finish, and answer with
   * `interrupted: true` and the rows not sent counted in `not_sent` (the CLI's Ctrl-C).
   */
  signal?: AbortSignal;
}

/** A row on its way: its create body, its key, and how its tries went. */
interface PendingRow {
  index: number;
  row: ImportRow;
  body: StageCreateBody;
  key: string;
  /** The number of the next try (1 = the first). */
  attempt: number;
  /** A 5xx may have come after the server created the stage: a replay after one is this run's own create. */
  mayHaveCreated: boolean;
  /**
   * Ask for the whole stage (no `Prefer: return=minimal`): the row's key was used by an import of a unicrm before
   * batches, whose single create kept the whole stage as its answer; only the same request replays it.
   */
  whole: boolean;
}

/** The error of an item that a batch answered with an error body (the item's own answer, as its single request's). */
function itemError(item: BatchItemResult | undefined, index: number): UnicrmError {
  if (!item) return new UnicrmError(502, `The batch answer has no result for its item ${index}.`);
  const body: Partial<ErrorBody> = item.error ?? {};
  const { statusCode: _status, message, ...rest } = body;
  // The item's Retry-After (a 429; a 409 of a key still settling) paces its retry as a whole answer's would.
  const headers: Record<string, string> = item.retry_after === undefined ? {} : { 'retry-after': String(item.retry_after) };
  return new UnicrmError(item.status, message ?? `The item failed with ${item.status}.`, rest as ErrorExtras, headers);
}

/** The 422 of a key whose first request differs: for an import row, one kept by a single create (before batches). */
function isKeyOfAnotherRequest(error: UnicrmError): boolean {
  return error.statusCode === 422 && /Idempotency-Key was used with a different request/.test(error.message);
}

/** Row numbers as short text: `row 7`, `rows 1-3, 9` (sorted). */
export function rowsText(rows: number[]): string {
  const sorted = [...rows].sort((a, b) => a - b);
  const ranges: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j++;
    ranges.push(j === i ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return `${sorted.length === 1 ? 'row' : 'rows'} ${ranges.join(', ')}`;
}

/**
 * Writes (or with `dryRun` checks) one stage per row of a CSV or JSON file through the SDK (either transport) with
 * the batch write: rows go in file order, in batches of up to `batchSize` (100) items, at most `concurrency` batches
 * in flight. Each item carries the row's {@link rowIdempotencyKey} as its `idempotency_key` and the batch asks for
 * ids only (`Prefer: return=minimal`), so that running the same import again replays the rows already written
 * instead of writing them twice (`replayed`). A row whose key an import of a unicrm before batches used (a single
 * create, its whole stage kept) answers 422 to the minimal form and is sent again asking for the whole stage, which
 * replays it.
 *
 * Retries: a row answered 429, 409, 502, 503 or 504 (its item, or the whole batch) is sent again in a later batch
 * with its same key, after {@link retryDelayMs}; the whole import waits that long (a rate limit slows every batch),
 * at most 6 tries a row. Other failures are final for their row. A failure that every later row would repeat (401,
 * an unknown account, an unreachable server) stops the import; the rows not attempted fail with "not attempted".
 * Rows that failed are written to a file in the input's format with an `error` column.
 *
 * `signal` (Ctrl-C): no new batch is sent, the ones in flight finish, and the rows not sent are counted in
 * `not_sent` (not failed: running the same import again sends them).
 * @throws ImportFileError when the file cannot be read (nothing is written then)
 */
export async function importStages(unicrm: Unicrm, options: ImportOptions): Promise<ImportSummary> {
  const clock = options.clock ?? REAL_CLOCK;
  const started = clock.now();
  const file = await readImportFile(options.file);
  const total = file.rows.length;
  const dryRun = options.dryRun === true;
  const batchSize = Math.max(1, Math.min(BATCH_MAX_ITEMS, Math.floor(options.batchSize ?? BATCH_MAX_ITEMS)));
  const results: (RowResult | undefined)[] = new Array(total);
  const counts: ImportCounts = { created: 0, replayed: 0, failed: 0, valid: 0 };
  let aborted: string | null = null;
  let batches = 0;
  let unfinished = 0;
  let next = 0;
  /** Rows to send again, in row order (sent before new rows). */
  let retries: PendingRow[] = [];
  let inFlight = 0;
  // After a retryable answer every batch waits until then, so that the whole import slows down.
  let resumeAt = 0;

  const stopped = () => aborted !== null || options.signal?.aborted === true;
  const interrupted = new Promise<void>((resolve) => {
    if (options.signal?.aborted) resolve();
    options.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  /** Waits `ms` on the clock, or less when the import is interrupted meanwhile. */
  const pause = (ms: number) => Promise.race([clock.sleep(ms), interrupted]);
  // Idle workers wait for a batch in flight to settle: its rows may come back for a retry.
  let changed: () => void = () => undefined;
  let change = new Promise<void>((resolve) => (changed = resolve));
  const notify = () => {
    const done = changed;
    change = new Promise<void>((resolve) => (changed = resolve));
    done();
  };

  const settle = (index: number, result: RowResult) => {
    results[index] = result;
    if (!result.ok) counts.failed++;
    else if ('checked' in result) counts.valid = (counts.valid ?? 0) + 1;
    else if (result.replayed) counts.replayed++;
    else counts.created++;
  };
  const report = () => options.progress.update(counts.created + counts.replayed + counts.failed + (counts.valid ?? 0), { ...counts });

  /** The next batch: rows to retry first, then new rows in file order; rows that cannot be read fail here. */
  const take = (): PendingRow[] => {
    const chunk: PendingRow[] = [];
    const sameForm = (row: PendingRow) => chunk.length === 0 || row.whole === (chunk[0] as PendingRow).whole;
    while (retries.length > 0 && chunk.length < batchSize && sameForm(retries[0] as PendingRow)) chunk.push(retries.shift() as PendingRow);
    while (next < total && chunk.length < batchSize && (chunk.length === 0 || !(chunk[0] as PendingRow).whole)) {
      const index = next++;
      const row = file.rows[index] as ImportRow;
      try {
        chunk.push({ index, row, body: rowToBody(row), key: rowIdempotencyKey(options.account, options.file, row), attempt: 1, mayHaveCreated: false, whole: false });
      } catch (error) {
        settle(index, { row: row.row, ok: false, error: describeFailure(error) });
      }
    }
    return chunk;
  };

  /** Sends one batch and settles, retries or fails each of its rows. */
  const send = async (chunk: PendingRow[]) => {
    batches++;
    const whole = (chunk[0] as PendingRow).whole;
    let answer: BatchAnswer | undefined;
    let batchError: unknown;
    try {
      answer = await unicrm.crm.stages.batch(
        { integrated_account_id: options.account, truto_ignore_remote_data: true, ...(dryRun && { dry_run: true }) },
        chunk.map((pending) => ({ method: 'create' as const, body: pending.body, ...(!dryRun && { idempotency_key: pending.key }) })),
        // The rows' own keys guard each row; a key for the batch would only keep one more answer on the server.
        { idempotencyKey: false, minimal: !dryRun && !whole },
      );
    } catch (error) {
      batchError = error;
    }
    const now = clock.now();
    const waits = new Map<string, { rows: number[]; wait: number }>();
    const again: PendingRow[] = [];
    chunk.forEach((pending, at) => {
      const item = answer?.result[at];
      if (answer && item && item.index === at && item.status < 300) {
        if (dryRun) settle(pending.index, { row: pending.row.row, ok: true, checked: true });
        else {
          const id = typeof item.result?.id === 'string' ? item.result.id : '';
          const name = typeof item.result?.name === 'string' ? item.result.name : undefined;
          settle(pending.index, { row: pending.row.row, ok: true, id, ...(name !== undefined && { name }), replayed: item.replayed === true && !pending.mayHaveCreated });
        }
        return;
      }
      const error = answer ? itemError(item?.index === at ? item : undefined, at) : batchError;
      if (!dryRun && !whole && isUnicrmError(error) && isKeyOfAnotherRequest(error)) {
        again.push({ ...pending, whole: true });
        const entry = waits.get('whole') ?? { rows: [], wait: 0 };
        entry.rows.push(pending.row.row);
        waits.set('whole', entry);
        return;
      }
      const delay = pending.attempt < MAX_ATTEMPTS ? retryDelayMs(error, pending.attempt, now) : undefined;
      if (delay === undefined) {
        if (isUnicrmError(error) && RETRIED.has(error.statusCode)) unfinished++;
        settle(pending.index, { row: pending.row.row, ok: false, error: describeFailure(error) });
        if (isFatal(error) && aborted === null) aborted = describeFailure(error);
        return;
      }
      again.push({ ...pending, attempt: pending.attempt + 1, mayHaveCreated: pending.mayHaveCreated || (isUnicrmError(error) && error.statusCode >= 500) });
      const text = describeFailure(error).replace(/\.$/, '');
      const entry = waits.get(text) ?? { rows: [], wait: 0 };
      entry.rows.push(pending.row.row);
      entry.wait = Math.max(entry.wait, delay);
      waits.set(text, entry);
    });
    for (const [text, { rows, wait: delay }] of waits) {
      if (text === 'whole') {
        options.progress.notice(`${rowsText(rows)}: written by an earlier import that kept each whole stage; asking for the whole stages to replay them`);
        continue;
      }
      // Whole seconds: this batch's own wait, or longer when another batch already paused the import past it.
      const wait = Math.max(delay, Math.ceil((resumeAt - now) / 1000) * 1000);
      resumeAt = Math.max(resumeAt, now + wait);
      options.progress.notice(`${rowsText(rows)}: ${text}; trying again in ${wait / 1000} s`);
    }
    retries = [...retries, ...again].sort((a, b) => a.index - b.index);
    report();
  };

  const worker = async (): Promise<void> => {
    while (!stopped()) {
      const wait = resumeAt - clock.now();
      if (wait > 0) {
        await pause(wait);
        continue;
      }
      const chunk = take();
      if (chunk.length === 0) {
        report();
        if (inFlight === 0) return;
        await Promise.race([change, interrupted]);
        continue;
      }
      inFlight++;
      try {
        await send(chunk);
      } finally {
        inFlight--;
        notify();
      }
    }
  };

  options.progress.start(total, { dryRun });
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, Math.ceil(total / batchSize) || 1)) }, worker));
  } finally {
    options.progress.stop();
  }
  let notSent = 0;
  for (let index = 0; index < total; index++) {
    if (results[index] !== undefined) continue;
    if (aborted !== null) settle(index, { row: (file.rows[index] as ImportRow).row, ok: false, error: `not attempted: the import stopped (${aborted})` });
    else notSent++;
  }

  const settled = results.filter((result): result is RowResult => result !== undefined);
  const failedRows = results.flatMap((result, index) => (result && !result.ok ? [{ row: file.rows[index] as ImportRow, error: result.error }] : []));
  let failedOut: string | null = null;
  if (failedRows.length > 0) {
    failedOut = options.failedOut ?? defaultFailedPath(options.file);
    await writeFailedRows(failedOut, file, failedRows);
  }
  return {
    file: options.file,
    account: options.account,
    dry_run: dryRun,
    total,
    created: counts.created,
    replayed: counts.replayed,
    failed: counts.failed,
    valid: counts.valid ?? 0,
    unfinished,
    not_sent: notSent,
    interrupted: options.signal?.aborted === true,
    batches,
    elapsed_ms: Math.max(0, clock.now() - started),
    failed_out: failedOut,
    aborted,
    results: settled,
  };
}

/**
 * Speed and time left as words: `120 rows/s, ETA 3 s` (`ETA 2 min 05 s`, `ETA 1 h 02 min`), from the rows done in
 * `elapsedMs`; `- rows/s, ETA -` before there is a rate to go by. Rates below 10 rows/s keep one decimal.
 */
export function speedText(done: number, total: number, elapsedMs: number): string {
  if (done <= 0 || elapsedMs <= 0) return `- rows/s, ETA ${done >= total ? '0 s' : '-'}`;
  const rate = (done * 1000) / elapsedMs;
  const shown = rate >= 10 ? String(Math.round(rate)) : rate.toFixed(1);
  return `${shown} rows/s, ETA ${durationText(((total - done) / rate) * 1000)}`;
}

/** A duration in words, rounded up to whole seconds: `0 s`, `42 s`, `2 min 05 s`, `1 h 02 min`. */
export function durationText(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
  return `${Math.floor(seconds / 3600)} h ${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')} min`;
}

/** Time taken, in words: milliseconds below a second (`270 ms`), tenths of a second below a minute (`12.3 s`), else as {@link durationText}. */
export function elapsedText(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  return ms < 59_950 ? `${(ms / 1000).toFixed(1)} s` : durationText(ms);
}

/** Where progress goes: a bar on a terminal, else a plain line every tenth of the rows (and at least every 5 s). */
export interface ProgressStream {
  isTTY?: boolean;
  write(chunk: string): boolean;
}

/**
 * Progress on stderr: a cli-progress bar when the stream is a terminal (rows done of all, the counts, rows per second
 * and the time left, refreshed every second), otherwise plain lines with the same numbers
 * (`imported 200/500 rows: 199 created, 1 failed | 180 rows/s, ETA 2 s`; a dry run: `checked ...: 199 valid, 1
 * invalid`; replayed rows counted apart, see {@link countsText}) each time a tenth of the rows more is done, at least
 * every 5 s, and at the end. Rows per second count every row settled by this run since {@link ImportProgress.start}.
 * @param now the clock (ms), for the rate and the 5 s
 */
export function progressReporter(stream: ProgressStream, now: () => number = Date.now): ImportProgress {
  let total = 0;
  let startedAt = 0;
  let dryRun = false;
  let latest: [number, ImportCounts] = [0, { created: 0, replayed: 0, failed: 0, valid: 0 }];
  const speed = () => speedText(latest[0], total, now() - startedAt);
  if (stream.isTTY) {
    const bar = new SingleBar({
      stream: stream as unknown as NodeJS.WritableStream,
      format: '{verb} |{bar}| {value}/{total} rows | {counts} | {speed}{note}',
      barCompleteChar: '█',
      barIncompleteChar: '░',
      hideCursor: true,
      clearOnComplete: false,
    });
    // A notice (a wait before a retry, an interruption) shows at the end of the bar until the next batch is done.
    const short = (text: string) => {
      const wait = /trying again in (\d+ s)$/.exec(text);
      if (wait) return ` | waiting ${wait[1]}: ${/\b(429|409)\b/.exec(text)?.[1] === '409' ? 'in flight' : /\b429\b/.test(text) ? 'rate limited' : 'server error'}`;
      return /^stopping/i.test(text) ? ' | stopping: waiting for the batches in flight' : '';
    };
    let timer: NodeJS.Timeout | undefined;
    return {
      start: (n, mode) => {
        total = n;
        dryRun = mode?.dryRun === true;
        startedAt = now();
        bar.start(n, 0, { verb: dryRun ? 'checking' : 'importing', counts: countsText(latest[1], dryRun), speed: speed(), note: '' });
        // The rate and the time left move between answers too.
        timer = setInterval(() => bar.update({ speed: speed() }), 1000);
        timer.unref();
      },
      update: (done, counts) => {
        latest = [done, counts];
        bar.update(done, { counts: countsText(counts, dryRun), speed: speed(), note: '' });
      },
      notice: (text) => bar.update({ note: short(text) }),
      stop: () => {
        if (timer) clearInterval(timer);
        bar.update({ speed: speed() });
        bar.stop();
      },
    };
  }
  let step = 1;
  let lastLine = 0;
  let lastDone = -1;
  const line = () => {
    stream.write(`${dryRun ? 'checked' : 'imported'} ${latest[0]}/${total} rows: ${countsText(latest[1], dryRun)} | ${speed()}\n`);
    lastLine = now();
    lastDone = latest[0];
  };
  return {
    start: (n, mode) => {
      total = n;
      dryRun = mode?.dryRun === true;
      step = Math.max(1, Math.ceil(n / 10));
      startedAt = now();
      lastLine = startedAt;
    },
    update: (done, counts) => {
      latest = [done, counts];
      if (done === lastDone) return;
      // A line each time another tenth of the rows is done (batches move by many rows at once), at the end, and
      // after 5 s without one.
      if (Math.floor(done / step) > Math.floor(Math.max(0, lastDone) / step) || done === total || now() - lastLine >= 5000) line();
    },
    notice: (text) => {
      stream.write(`${text}\n`);
    },
    stop: () => {
      if (latest[0] !== lastDone && total > 0) line();
    },
  };
}
