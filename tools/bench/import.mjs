// `npm run bench -- --import`: bulk import against each sandbox with its rate limit on (issue 18). For each
// integration: the built API (SQLite, a throwaway data directory) and the provider's sandbox (in this process, its
// limits on: the provider's documented numbers, Pipeliner's assumed ones), an integrated account, then
//   1. the built CLI `unicrm stages import <file> --account <id>` (remote mode) on a file of --rows new stages in the
//      sandbox's seeded pipeline, timed from spawn to exit: rows per second against the ceiling the provider's limits
//      allow; meanwhile a single create through the API every --probe-ms (their p50, p99 and statuses); then the
//      sandbox's 429s, in all and after the first window;
//   2. the same with another file, the CLI killed (SIGKILL) once half the rows are in the sandbox, and the same
//      command run again: the run's stages in the sandbox, missing and duplicated.
// Method and figures: docs/benchmarks.md "Bulk import at the provider's ceiling"; usage: tools/bench/README.md.
//
// Runs against the BUILT code in dist/ (`npm run bench` builds first). Everything listens on 127.0.0.1; every CLI run
// is bounded by --cli-timeout; every process started here is stopped at the end (also on Ctrl-C).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile } from '../lib/measure.mjs';

const ROOT = resolve(new URL('../../', import.meta.url).pathname);

/** The integrations measured, in order. */
export const INTEGRATIONS = ['pipeliner', 'pipedrive', 'hubspot'];

const HELP = `usage: node tools/bench/import.mjs [options]     (npm run bench -- --import [options] builds first)

  --integrations <list>   which sandboxes: ${INTEGRATIONS.join(',')} (default all)
  --rows <n>              rows of each import file (default 2000)
  --probe-ms <ms>         a single create through the API every <ms> while the import runs (default 500; 0 = none)
  --no-kill-run           skip the second run (CLI killed halfway, then run again)
  --cli-args <args>       extra arguments of \`unicrm stages import\`, space-separated (e.g. "--concurrency 8")
  --cli-timeout <s>       longest a CLI run may take before it is stopped and counted as failed (default 1800)
  --json <file>           where the figures go (default tmp/bench-import.json)
  --keep                  keep the temporary directory (import files, data directory, API log)`;

/**
 * The options of an import run.
 * @returns {{ integrations: string[], rows: number, probeMs: number, killRun: boolean, cliArgs: string[], cliTimeoutS: number, json: string, keep: boolean }}
 * @throws Error for an unknown option or integration, or a value out of range
 */
export function parseArgs(argv) {
  const o = { integrations: [...INTEGRATIONS], rows: 2000, probeMs: 500, killRun: true, cliArgs: [], cliTimeoutS: 1800, json: join(ROOT, 'tmp/bench-import.json'), keep: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    const whole = (name, text, min) => {
      const n = Number(text);
      if (!/^\d+$/.test(text) || n < min) throw new Error(`${name} must be a whole number >= ${min}, not "${text}"`);
      return n;
    };
    switch (arg) {
      case '--help': case '-h': console.log(HELP); process.exit(0); break;
      case '--import': break; // the flag bench.mjs dispatches on
      case '--integrations': case '--integration': {
        const names = value().split(',').map((name) => name.trim().toLowerCase()).filter(Boolean);
        const unknown = names.filter((name) => !INTEGRATIONS.includes(name));
        if (unknown.length > 0 || names.length === 0) throw new Error(`--integrations takes some of ${INTEGRATIONS.join(', ')}; not "${unknown.join(',')}"`);
        o.integrations = INTEGRATIONS.filter((name) => names.includes(name));
        break;
      }
      case '--rows': o.rows = whole('--rows', value(), 2); break;
      case '--probe-ms': o.probeMs = whole('--probe-ms', value(), 0); break;
      case '--no-kill-run': o.killRun = false; break;
      case '--cli-args': o.cliArgs = value().split(/\s+/).filter(Boolean); break;
      case '--cli-timeout': o.cliTimeoutS = whole('--cli-timeout', value(), 1); break;
      case '--json': o.json = resolve(value()); break;
      case '--keep': o.keep = true; break;
      default: throw new Error(`unknown option ${arg}\n\n${HELP}`);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------------------------------
// pure helpers (tested in import.test.mjs)

/**
 * The most rows per second a provider's limits allow an import, after what the probes spend: `max` requests per
 * `windowMs` (the burst window), less `probesPerSecond` × `probeRequests` requests a second, each request carrying
 * `rowsPerRequest` rows (1 without a batch endpoint; Pipeliner's batch size with one).
 * @returns {{ requestsPerSecond: number, probeRequestsPerSecond: number, importRequestsPerSecond: number, rowsPerSecond: number }}
 *   (`rowsPerSecond` 0 when the probes alone use the whole budget)
 * @throws Error for a window or a batch size that is not a positive number
 */
export function ceilingOf({ max, windowMs, rowsPerRequest = 1, probesPerSecond = 0, probeRequests = 1 }) {
  if (!(max > 0) || !(windowMs > 0) || !(rowsPerRequest > 0)) throw new Error(`a ceiling needs max, windowMs and rowsPerRequest > 0 (got ${max}, ${windowMs}, ${rowsPerRequest})`);
  const requestsPerSecond = max / (windowMs / 1000);
  const probeRequestsPerSecond = probesPerSecond * probeRequests;
  const importRequestsPerSecond = Math.max(0, requestsPerSecond - probeRequestsPerSecond);
  return { requestsPerSecond, probeRequestsPerSecond, importRequestsPerSecond, rowsPerSecond: importRequestsPerSecond * rowsPerRequest };
}

/**
 * p50, p99 and max of latencies in ms (nearest rank, as every tool of the repository reads percentiles), and the
 * count; NaN for none.
 */
export function latencySummary(latencies) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.length > 0 ? sorted[sorted.length - 1] : NaN };
}

/** How many answers had each status: `{ "201": 12, "429": 1 }` (`error` for a request without an answer). */
export function statusCounts(statuses) {
  const counts = {};
  for (const status of statuses) counts[String(status)] = (counts[String(status)] ?? 0) + 1;
  return counts;
}

/**
 * The refusals (`{ at }`, epoch ms) that came after the first window of the run: later than `firstRequestAt` +
 * `windowMs`. A pacing client may meet the limit inside the first window while it learns it; never after.
 */
export function refusalsAfterFirstWindow(refusals, firstRequestAt, windowMs) {
  if (firstRequestAt === null || firstRequestAt === undefined) return 0;
  return refusals.filter((refusal) => refusal.at > firstRequestAt + windowMs).length;
}

/** The name of row `n` (1-based) of a run: `bench-import-<run>-<n>`. */
export const rowName = (run, n) => `bench-import-${run}-${n}`;

/**
 * The stages of a run among the sandbox's names: how many of its `rows` names are there, missing, or there more than
 * once (`duplicates`: the extra copies).
 */
export function tally(names, run, rows) {
  const prefix = `bench-import-${run}-`;
  const seen = new Map();
  for (const name of names) if (name.startsWith(prefix)) seen.set(name, (seen.get(name) ?? 0) + 1);
  let missing = 0;
  let duplicates = 0;
  for (let n = 1; n <= rows; n++) {
    const count = seen.get(rowName(run, n)) ?? 0;
    if (count === 0) missing += 1;
    else duplicates += count - 1;
  }
  const found = [...seen.values()].reduce((sum, count) => sum + count, 0);
  return { found, missing, duplicates };
}

/** The CSV import file of a run: a `name,pipeline` header and `rows` rows into `pipelineId`. */
export function importCsv(run, rows, pipelineId) {
  const lines = ['name,pipeline'];
  for (let n = 1; n <= rows; n++) lines.push(`${rowName(run, n)},${pipelineId}`);
  return `${lines.join('\n')}\n`;
}

/** The CLI's summary from its stdout (`--output json`), or undefined when it printed none (killed, crashed). */
export function importSummaryOf(stdout) {
  const start = stdout.indexOf('{');
  if (start === -1) return undefined;
  try {
    const summary = JSON.parse(stdout.slice(start));
    return {
      total: summary.total,
      created: summary.created,
      replayed: summary.replayed,
      failed: summary.failed,
      aborted: summary.aborted,
      errors: (summary.errors ?? []).slice(0, 5),
      // The import's own time (first batch sent to last answer), without Node's start and the file read; absent from
      // CLIs before batches.
      ...(typeof summary.elapsed_ms === 'number' && { elapsedMs: summary.elapsed_ms }),
      ...(typeof summary.batches === 'number' && { batches: summary.batches }),
    };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// the sandboxes, in process

const require = createRequire(import.meta.url);

/** What the harness needs of each sandbox: its module, the pipeline the rows go into, the stage names it holds. */
function integrationsOf(sandboxes) {
  return {
    pipeliner: {
      module: sandboxes.pipelinerSandbox,
      pipelineId: sandboxes.SANDBOX_SEED_IDS.salesPipelineId,
      names: (instance) => instance.store.allSteps().filter((step) => !step.is_deleted).map((step) => step.name),
      rowsPerRequest: (settings) => settings.batchMax,
      // A single create: the POST (the pipeline's name is cached for a minute).
      probeRequests: 1,
    },
    pipedrive: {
      module: sandboxes.pipedriveSandbox,
      pipelineId: String(sandboxes.PIPEDRIVE_SEED.pipelineId),
      names: (instance) => [...instance.store.stages.values()].filter((stage) => !stage.is_deleted).map((stage) => stage.name),
      rowsPerRequest: () => 1,
      probeRequests: 1,
      createCost: () => sandboxes.pipedriveTokenCost('POST', '/api/v2/stages'),
    },
    hubspot: {
      module: sandboxes.hubspotSandbox,
      pipelineId: sandboxes.HUBSPOT_SEED.dealPipelineId,
      names: (instance) => (instance.store.pipelines.get('deals') ?? []).flatMap((pipeline) => pipeline.stages).filter((stage) => !stage.archived).map((stage) => stage.label),
      rowsPerRequest: () => 1,
      // A single create reads the pipeline (its name, the next displayOrder), then POSTs: two requests.
      probeRequests: 2,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// processes

const cliChildren = new Set();

/**
 * Runs the built CLI's `stages import` in remote mode; `killWhen` (polled every 50 ms) may return true to SIGKILL it.
 * @returns {Promise<{ ms: number, code: number | null, signal: string | null, killed: boolean, timedOut: boolean, stdout: string, stderr: string }>}
 */
async function runImport({ file, accountId, apiUrl, token, cwd, cliArgs, timeoutS, killWhen }) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('UNICRM_')));
  Object.assign(env, { UNICRM_URL: apiUrl, UNICRM_API_TOKEN: token });
  const args = [join(ROOT, 'dist/apps/sdk/src/cli.js'), 'stages', 'import', file, '--account', accountId, '--output', 'json', ...cliArgs];
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  cliChildren.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-20_000)));
  let killed = false;
  let timedOut = false;
  const exited = new Promise((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal })));
  const deadline = Date.now() + timeoutS * 1000;
  let result;
  for (;;) {
    result = await Promise.race([exited, sleep(50).then(() => undefined)]);
    if (result) break;
    if (!killed && killWhen?.()) {
      killed = true;
      child.kill('SIGKILL');
    } else if (!killed && Date.now() > deadline) {
      timedOut = true;
      killed = true;
      child.kill('SIGKILL');
    }
  }
  cliChildren.delete(child);
  return { ms: performance.now() - started, ...result, killed, timedOut, stdout, stderr };
}

/**
 * Sends a single create through the API every `everyMs` until `stop()`: each one's latency and status.
 * @returns {{ stop: () => Promise<Array<{ ms: number, status: number | string }>> }}
 */
function startProbes({ apiUrl, token, accountId, pipelineId, run, everyMs }) {
  const results = [];
  const pending = new Set();
  let n = 0;
  const send = () => {
    n += 1;
    const started = performance.now();
    const request = fetch(`${apiUrl}/unified/crm/stages?integrated_account_id=${accountId}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `bench-probe-${run}-${n}`, pipeline: { id: pipelineId } }),
      signal: AbortSignal.timeout(60_000),
    })
      .then(async (res) => {
        await res.arrayBuffer();
        results.push({ ms: performance.now() - started, status: res.status });
      })
      .catch(() => results.push({ ms: performance.now() - started, status: 'error' }))
      .finally(() => pending.delete(request));
    pending.add(request);
  };
  const timer = everyMs > 0 ? setInterval(send, everyMs) : undefined;
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.all([...pending]);
      return results;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// one integration

const f = (value, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

async function measureIntegration(name, o, ctx) {
  const spec = ctx.integrations[name];
  const sandbox = await ctx.sandboxes.startProviderSandbox(spec.module, { port: 0, rateLimit: true, logRequests: false });
  try {
    const description = sandbox.describe();
    const res = await fetch(`${ctx.apiUrl}/integrated-account`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ctx.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ integration: description.integration, tenant_id: `bench-import-${name}`, context: description.context }),
    });
    const account = await res.json();
    if (res.status !== 201) throw new Error(`${name}: could not connect the account: ${res.status} ${JSON.stringify(account)}`);
    const { settings, windows } = sandbox.rateLimits.snapshot();
    const window = windows[0];
    const probesPerSecond = o.probeMs > 0 ? 1000 / o.probeMs : 0;
    const ceiling = ceilingOf({ max: window.max, windowMs: window.windowMs, rowsPerRequest: spec.rowsPerRequest(settings), probesPerSecond, probeRequests: spec.probeRequests });
    const names = () => spec.names(sandbox.instance);
    const out = { integration: name, account: account.id, rows: o.rows, limits: { settings, windows }, ceiling };
    if (spec.createCost) {
      const cost = spec.createCost();
      out.tokenBudget = { costPerCreate: cost, needed: (o.rows + Math.ceil((o.rows / Math.max(ceiling.rowsPerSecond, 0.01)) * probesPerSecond)) * cost, budget: windows[1]?.max };
    }
    console.log(
      `\n${name}: limits ${windows.map((w) => `${w.name} ${w.max}/${w.windowMs} ms`).join(', ')}; ceiling ${f(ceiling.rowsPerSecond)} rows/s ` +
        `(${f(ceiling.requestsPerSecond)} req/s − ${f(ceiling.probeRequestsPerSecond)} req/s of probes, × ${spec.rowsPerRequest(settings)} rows per request)` +
        (out.tokenBudget ? `; daily token budget ${out.tokenBudget.budget}, this run needs about ${out.tokenBudget.needed} (${out.tokenBudget.costPerCreate} a create)` : ''),
    );

    // Run 1: the whole import, timed, with probes.
    const run = `${ctx.runId}-${name}`;
    const file = join(ctx.dir, `${run}.csv`);
    writeFileSync(file, importCsv(run, o.rows, spec.pipelineId));
    sandbox.rateLimits.clear();
    const probes = startProbes({ apiUrl: ctx.apiUrl, token: ctx.token, accountId: account.id, pipelineId: spec.pipelineId, run, everyMs: o.probeMs });
    const cli = await runImport({ file, accountId: account.id, apiUrl: ctx.apiUrl, token: ctx.token, cwd: ctx.dir, cliArgs: o.cliArgs, timeoutS: o.cliTimeoutS });
    const probeResults = await probes.stop();
    const stats = sandbox.rateLimits.snapshot();
    const counted = tally(names(), run, o.rows);
    const summary = importSummaryOf(cli.stdout);
    const rowsPerSecond = (o.rows - counted.missing) / (cli.ms / 1000);
    // The same over the CLI's own elapsed time (without the process's start), when it reports one.
    const importRowsPerSecond = summary?.elapsedMs ? (o.rows - counted.missing) / (summary.elapsedMs / 1000) : undefined;
    out.import = {
      seconds: cli.ms / 1000,
      exit: cli.code ?? cli.signal,
      timedOut: cli.timedOut,
      cli: summary,
      rowsPerSecond,
      ratio: ceiling.rowsPerSecond > 0 ? rowsPerSecond / ceiling.rowsPerSecond : NaN,
      ...(importRowsPerSecond !== undefined && { importSeconds: (summary?.elapsedMs ?? 0) / 1000, importRowsPerSecond, importRatio: importRowsPerSecond / ceiling.rowsPerSecond }),
      // Upstream requests per stage created (rows and probes answered 2xx): the connector's requests per create.
      sandbox: { ...counted, requestsAllowed: stats.allowed, requestsPerCreate: stats.allowed / Math.max(1, counted.found + probeResults.filter((p) => typeof p.status === 'number' && p.status < 300).length) },
      refused: stats.refused,
      refusedBy: stats.refusedBy,
      refusedAfterFirstWindow: refusalsAfterFirstWindow(stats.refusals, stats.firstRequestAt, window.windowMs),
      firstRefusalMs: stats.refusals[0] ? stats.refusals[0].at - (stats.firstRequestAt ?? stats.refusals[0].at) : null,
      probes: { everyMs: o.probeMs, ...latencySummary(probeResults.map((p) => p.ms)), statuses: statusCounts(probeResults.map((p) => p.status)) },
    };
    if (!summary) out.import.stderrTail = cli.stderr.slice(-2000);
    const i = out.import;
    console.log(
      `  import: ${o.rows} rows in ${f(i.seconds)} s = ${f(i.rowsPerSecond)} rows/s, ${f(i.ratio, 2)} × the ceiling` +
        (i.importRowsPerSecond !== undefined ? ` (the CLI's own ${f(i.importSeconds)} s: ${f(i.importRowsPerSecond)} rows/s, ${f(i.importRatio, 2)} ×)` : '') +
        `; exit ${i.exit}` +
        (summary ? ` (${summary.created} created, ${summary.replayed} replayed, ${summary.failed} failed)` : ' (no summary)') +
        `; in the sandbox: ${counted.found} found, ${counted.missing} missing, ${counted.duplicates} duplicated`,
    );
    console.log(
      `  sandbox: ${stats.allowed} requests allowed (${f(i.sandbox.requestsPerCreate, 2)} per create), ${stats.refused} refused (429)` +
        `, ${i.refusedAfterFirstWindow} after the first window (${window.windowMs} ms)` +
        (i.firstRefusalMs !== null ? `; first 429 at +${i.firstRefusalMs} ms` : ''),
    );
    console.log(`  probes (one create every ${o.probeMs} ms): n=${i.probes.n}, p50 ${f(i.probes.p50)} ms, p99 ${f(i.probes.p99)} ms, max ${f(i.probes.max)} ms, statuses ${JSON.stringify(i.probes.statuses)}`);

    // Run 2: killed halfway, run again.
    if (o.killRun) {
      const killRun = `${ctx.runId}-${name}-k`;
      const killFile = join(ctx.dir, `${killRun}.csv`);
      writeFileSync(killFile, importCsv(killRun, o.rows, spec.pipelineId));
      sandbox.rateLimits.clear();
      const half = Math.floor(o.rows / 2);
      let killedAt = 0;
      const first = await runImport({
        file: killFile, accountId: account.id, apiUrl: ctx.apiUrl, token: ctx.token, cwd: ctx.dir, cliArgs: o.cliArgs, timeoutS: o.cliTimeoutS,
        killWhen: () => {
          killedAt = tally(names(), killRun, o.rows).found;
          return killedAt >= half;
        },
      });
      // What the API still finishes after the kill (requests in flight) lands before the rerun starts or during it.
      const afterKill = tally(names(), killRun, o.rows).found;
      const again = await runImport({ file: killFile, accountId: account.id, apiUrl: ctx.apiUrl, token: ctx.token, cwd: ctx.dir, cliArgs: o.cliArgs, timeoutS: o.cliTimeoutS });
      const final = tally(names(), killRun, o.rows);
      const killStats = sandbox.rateLimits.snapshot();
      out.killAndRerun = {
        killed: first.killed && !first.timedOut,
        killedAtRows: killedAt,
        rowsAfterKill: afterKill,
        firstSeconds: first.ms / 1000,
        rerunSeconds: again.ms / 1000,
        rerunExit: again.code ?? again.signal,
        rerun: importSummaryOf(again.stdout),
        ...final,
        refused: killStats.refused,
      };
      const k = out.killAndRerun;
      console.log(
        `  killed at ${k.killed ? `${k.killedAtRows} rows (${f(k.firstSeconds)} s; ${k.rowsAfterKill} in the sandbox after the kill)` : `- (the first run ended first, exit ${first.code ?? first.signal})`}` +
          `, rerun ${f(k.rerunSeconds)} s, exit ${k.rerunExit}` +
          (k.rerun ? ` (${k.rerun.created} created, ${k.rerun.replayed} replayed, ${k.rerun.failed} failed)` : '') +
          `: ${k.missing} missing, ${k.duplicates} duplicated (${k.found} found of ${o.rows})`,
      );
    }
    return out;
  } finally {
    await sandbox.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------

function printTable(results) {
  const rows = [
    ['integration', 'rows', 's', 'rows/s', 'ceiling', 'ratio', 'CLI s', 'CLI ratio', 'req/create', '429', '429 late', 'failed', 'missing', 'dup', 'probe p50', 'probe p99', 'probe statuses', 'kill: missing', 'kill: dup'],
    ...results.map((r) => [
      r.integration, String(r.rows), f(r.import.seconds), f(r.import.rowsPerSecond), f(r.ceiling.rowsPerSecond), f(r.import.ratio, 2),
      r.import.importSeconds === undefined ? '-' : f(r.import.importSeconds), r.import.importRatio === undefined ? '-' : f(r.import.importRatio, 2), f(r.import.sandbox.requestsPerCreate, 2),
      String(r.import.refused), String(r.import.refusedAfterFirstWindow), String(r.import.cli?.failed ?? '?'), String(r.import.sandbox.missing), String(r.import.sandbox.duplicates),
      f(r.import.probes.p50), f(r.import.probes.p99), JSON.stringify(r.import.probes.statuses),
      r.killAndRerun ? String(r.killAndRerun.missing) : '-', r.killAndRerun ? String(r.killAndRerun.duplicates) : '-',
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  console.log('\n' + rows.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n'));
  console.log("(ceiling: rows/s the provider's burst limit allows after the probes' requests; ratio: over the CLI process's time, spawn to exit; CLI ratio: over the import's own elapsed time, without Node's start; 429 late: refusals after the first window)");
}

export async function main(argv) {
  const o = parseArgs(argv);
  for (const file of ['dist/apps/api/src/main.js', 'dist/apps/sdk/src/cli.js', 'dist/apps/sandboxes/src/index.js']) {
    if (!existsSync(join(ROOT, file))) throw new Error(`${file} is missing: run \`npm run bench -- --import\` (it builds first).`);
  }
  // bench.mjs's process helpers (API start and stop); imported here so that `node import.mjs` works too.
  const { API_TOKEN, killAll, startApi, stop } = await import('./bench.mjs');
  const sandboxes = require(join(ROOT, 'dist/apps/sandboxes/src/index.js'));
  const dir = mkdtempSync(join(tmpdir(), 'unicrm-bench-import-'));
  const cleanUp = () => {
    for (const child of cliChildren) if (child.exitCode === null) child.kill('SIGKILL');
    killAll();
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanUp();
    process.exit(130);
  });
  try {
    console.log(`unicrm import benchmark: node ${process.version}, ${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ${o.rows} rows into ${o.integrations.join(', ')}; temporary directory ${dir}`);
    const api = await startApi({ dataDir: join(dir, 'data'), logPath: join(dir, 'api.log') });
    const ctx = { dir, sandboxes, integrations: integrationsOf(sandboxes), apiUrl: `http://127.0.0.1:${api.port}`, token: API_TOKEN, runId: `${Date.now().toString(36)}${randomBytes(2).toString('hex')}` };
    console.log(`API pid ${api.pid} on ${ctx.apiUrl} (its own rate limits out of reach); CLI: node dist/apps/sdk/src/cli.js stages import <file> --account <id> --output json ${o.cliArgs.join(' ')}`);
    const results = [];
    for (const name of o.integrations) results.push(await measureIntegration(name, o, ctx));
    await stop(api);
    printTable(results);
    mkdirSync(dirname(o.json), { recursive: true });
    writeFileSync(o.json, JSON.stringify({ startedAt: new Date().toISOString(), node: process.version, cores: cpus().length, options: o, results }, null, 2));
    console.log(`figures written to ${o.json}`);
  } finally {
    cleanUp();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((error) => {
    console.error(error?.stack ?? error);
    for (const child of cliChildren) if (child.exitCode === null) child.kill('SIGKILL');
    process.exit(1);
  });
}
