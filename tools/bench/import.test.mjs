import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { ceilingOf, importCsv, importSummaryOf, latencySummary, parseArgs, refusalsAfterFirstWindow, rowName, statusCounts, tally } from './import.mjs';

test('ceilingOf: the burst window in rows per second, less the probes, times the rows a request carries', () => {
  // HubSpot: 190 per 10 s, one row a request, two probe creates a second.
  assert.deepEqual(ceilingOf({ max: 190, windowMs: 10_000, probesPerSecond: 2 }), { requestsPerSecond: 19, probeRequestsPerSecond: 2, importRequestsPerSecond: 17, rowsPerSecond: 17 });
  // Pipedrive Premium, API token: 100 per 2 s.
  assert.equal(ceilingOf({ max: 100, windowMs: 2000 }).rowsPerSecond, 50);
  // Pipeliner (assumed): 60 per 10 s, batches of 100 rows, probes of 2 requests each every 500 ms.
  assert.deepEqual(ceilingOf({ max: 60, windowMs: 10_000, rowsPerRequest: 100, probesPerSecond: 2, probeRequests: 2 }), {
    requestsPerSecond: 6, probeRequestsPerSecond: 4, importRequestsPerSecond: 2, rowsPerSecond: 200,
  });
  // Probes that take the whole budget leave nothing (never a negative ceiling).
  assert.equal(ceilingOf({ max: 1, windowMs: 1000, probesPerSecond: 4 }).rowsPerSecond, 0);
  assert.throws(() => ceilingOf({ max: 0, windowMs: 1000 }), /a ceiling needs max, windowMs and rowsPerRequest > 0/);
  assert.throws(() => ceilingOf({ max: 10, windowMs: 1000, rowsPerRequest: 0 }), /> 0/);
});

test('latencySummary: nearest-rank p50 and p99 of unsorted latencies; NaN for none', () => {
  const latencies = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 .. 1
  assert.deepEqual(latencySummary(latencies), { n: 100, p50: 50, p99: 99, max: 100 });
  assert.deepEqual(latencySummary([7, 3]), { n: 2, p50: 3, p99: 7, max: 7 });
  const none = latencySummary([]);
  assert.equal(none.n, 0);
  assert.ok(Number.isNaN(none.p50) && Number.isNaN(none.p99) && Number.isNaN(none.max));
  assert.deepEqual(statusCounts([201, 201, 429, 'error']), { 201: 2, 429: 1, error: 1 });
});

test('refusalsAfterFirstWindow: only the 429s later than the first request plus one window', () => {
  const refusals = [{ at: 1_500 }, { at: 11_000 }, { at: 11_001 }, { at: 30_000 }];
  assert.equal(refusalsAfterFirstWindow(refusals, 1_000, 10_000), 2);
  assert.equal(refusalsAfterFirstWindow(refusals, 1_000, 60_000), 0);
  assert.equal(refusalsAfterFirstWindow([], 1_000, 10_000), 0);
  assert.equal(refusalsAfterFirstWindow(refusals, null, 10_000), 0);
});

test("tally: the run's names found, missing and duplicated; other runs' and probes' names ignored", () => {
  const names = [rowName('r1', 1), rowName('r1', 2), rowName('r1', 2), rowName('r1', 2), rowName('r10', 3), 'bench-probe-r1-1', 'Qualification', rowName('r1', 4)];
  assert.deepEqual(tally(names, 'r1', 4), { found: 5, missing: 1, duplicates: 2 });
  assert.deepEqual(tally([], 'r1', 3), { found: 0, missing: 3, duplicates: 0 });
});

test('importCsv: a header and one row per stage into the pipeline', () => {
  assert.equal(importCsv('run', 2, 'p-1'), 'name,pipeline\nbench-import-run-1,p-1\nbench-import-run-2,p-1\n');
});

test("importSummaryOf: the CLI's JSON summary, or undefined when it printed none", () => {
  const stdout = JSON.stringify({ total: 3, created: 2, replayed: 1, failed: 0, failed_out: null, aborted: false, stages: [], errors: [] }, null, 2);
  assert.deepEqual(importSummaryOf(stdout), { total: 3, created: 2, replayed: 1, failed: 0, aborted: false, errors: [] });
  assert.equal(importSummaryOf(''), undefined);
  assert.equal(importSummaryOf('{"total": 3, "crea'), undefined);
});

test('import.mjs parseArgs: defaults, lists, --import ignored, refusals', () => {
  const o = parseArgs([]);
  assert.deepEqual([o.integrations, o.rows, o.probeMs, o.killRun, o.cliArgs, o.cliTimeoutS, o.keep], [['pipeliner', 'pipedrive', 'hubspot'], 2000, 500, true, [], 1800, false]);
  const p = parseArgs(['--import', '--integrations', 'hubspot,pipeliner', '--rows', '200', '--probe-ms', '0', '--no-kill-run', '--cli-args', '--concurrency 8']);
  assert.deepEqual([p.integrations, p.rows, p.probeMs, p.killRun, p.cliArgs], [['pipeliner', 'hubspot'], 200, 0, false, ['--concurrency', '8']]);
  assert.throws(() => parseArgs(['--integrations', 'salesforce']), /--integrations takes some of pipeliner, pipedrive, hubspot; not "salesforce"/);
  assert.throws(() => parseArgs(['--rows', '1']), /--rows must be a whole number >= 2, not "1"/);
  assert.throws(() => parseArgs(['--rows', '2k']), /--rows must be a whole number/);
  assert.throws(() => parseArgs(['--fast']), /unknown option --fast/);
});
