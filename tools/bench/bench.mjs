// unicrm benchmark: what unicrm adds over the cheapest Node gateway, on the same machine, in one run, for a create,
// a list of 100 stages and a get. Method, process layout and figures: docs/benchmarks.md. Usage:
// tools/bench/README.md (or --help).
//
// Runs against the BUILT code in dist/ (`npm run bench` builds first). Everything listens on 127.0.0.1 and every
// load loop is bounded by time (autocannon's duration) and by count.
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, freemem, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bodiesFor, cpuMsOf, LatencyRecorder, LIST_LIMIT, median, MiB, parseScenarios, rssOf, SCENARIOS, SHAPES, SIZES, workOf } from './lib.mjs';
import { printSummary, summarise } from './prof-top.mjs';
import { GET_STEP_ID, PASSWORD, PIPELINE_NAME, SPACE, stepIdOf, USERNAME } from './upstream.mjs';

const ROOT = resolve(new URL('../../', import.meta.url).pathname);
const HERE = join(ROOT, 'tools/bench');
export const API_TOKEN = 'bench-api-token-0123456789';
/**
 * The four targets of every configuration: Pipeliner directly, the undici passthrough (`floor`, what ratios are
 * taken against), the node:http passthrough (`floor-http`) and unicrm.
 */
const TARGETS = ['direct', 'floor', 'floor-http', 'unicrm'];
const TARGET_LABELS = { direct: 'direct', floor: 'floor (undici)', 'floor-http': 'floor (node:http)', unicrm: 'unicrm' };
/** The goal of issue 13 for create and list at c=64: unicrm's throughput at least this share of the undici floor's. */
const GOAL_RATIO = 0.6;
/** Requests per rate-limit window (10 s) the benchmark's API allows per token and per account: more than any run sends. */
const RATE_LIMIT = 1_000_000_000;
/** Operations one account may run at once, and wait: above every concurrency the benchmark drives (256). */
const BULKHEAD = 1024;
const BASIC_AUTH = `Basic ${Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64')}`;

const HELP = `usage: node tools/bench/bench.mjs [options]     (npm run bench -- [options] builds first)

  --scenario <list>       what to measure: create, list (a page of ${LIST_LIMIT} stages), get (one stage); default all
  --quick                 smoke run: 1 s measurements, 0.3 s warm-ups (still 3 alternating repeats), every scenario
                          at c=64 and 1 KiB only (unless --concurrency or --sizes say otherwise)
  --duration <s>          seconds per measurement (default 5)
  --warmup <s>            seconds of warm-up per target and configuration (default 1)
  --repeats <n>           alternating repeats per configuration, medians reported (default 3)
  --concurrency <list>    concurrencies (default: create 1,16,64,256 at 1 KiB remote_data; list and get 64)
  --sizes <list>          create's remote_data sweep at concurrency 64: 1k,64k,1m (default all)
  --full-matrix           create: every size at every concurrency (about twice as long)
  --shape <fields|wide>   how remote_data is made up: 16 custom fields growing with the size (default), or
                          100-character fields, as many as the size takes (8 728 keys at ~1 MiB; the worst case)
  --no-sdk                skip the SDK in-process comparison
  --soak-minutes <n>      also run unicrm alone at c=64, 1 KiB for n minutes and report RSS start/end
  --soak-only             only the soak (with --soak-minutes, default 5): no sweeps, no SDK comparison
  --profile [seconds]     only profile: API under node --cpu-prof at c=64, 1 KiB (default 15 s); prints the top items
  --profile-scenario <s>  the scenario of the profile run: create (default), list or get
  --profile-size <size>   remote_data size of the profile run (create; default 1k)
  --api-log <path>        where the API's logs go (default: api.log in the run's temporary directory)
  --api-root <dir>        run the API of another checkout or build (its dist/apps/api/src/main.js); default this one
  --json <file>           write every figure to a JSON file
  --keep                  keep the temporary directory (data, logs)
  --import                the bulk-import run instead (tools/bench/import.mjs; its options: --import --help)`;

export function parseArgs(argv) {
  const o = {
    scenarios: [...SCENARIOS], quick: false, duration: 5, warmup: 1, repeats: 3, concurrency: undefined, sizes: undefined,
    fullMatrix: false, shape: 'fields', sdk: true, soakOnly: false, apiRoot: ROOT, soakMinutes: 0, profile: 0, profileScenario: 'create', profileSize: '1k', apiLog: undefined, json: undefined, keep: false,
  };
  const set = new Set();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '--help': case '-h': console.log(HELP); process.exit(0); break;
      case '--scenario': case '--scenarios': o.scenarios = parseScenarios(value()); break;
      case '--quick': o.quick = true; break;
      case '--duration': o.duration = Number(value()); set.add('duration'); break;
      case '--warmup': o.warmup = Number(value()); set.add('warmup'); break;
      case '--repeats': o.repeats = Number(value()); break;
      case '--concurrency': o.concurrency = value().split(',').map(Number); break;
      case '--sizes': o.sizes = value().split(','); break;
      case '--full-matrix': o.fullMatrix = true; break;
      case '--shape': o.shape = value(); break;
      case '--no-sdk': o.sdk = false; break;
      case '--soak-minutes': o.soakMinutes = Number(value()); break;
      case '--soak-only': o.soakOnly = true; break;
      case '--profile': o.profile = /^\d+$/.test(argv[i + 1] ?? '') ? Number(argv[++i]) : 15; break;
      case '--profile-scenario': o.profileScenario = parseScenarios(value())[0]; break;
      case '--profile-size': o.profileSize = value(); break;
      case '--api-log': o.apiLog = resolve(value()); break;
      case '--api-root': o.apiRoot = resolve(value()); break;
      case '--json': o.json = resolve(value()); break;
      case '--keep': o.keep = true; break;
      default: throw new Error(`unknown option ${arg}\n\n${HELP}`);
    }
  }
  if (o.quick) {
    if (!set.has('duration')) o.duration = 1;
    if (!set.has('warmup')) o.warmup = 0.3;
  }
  // Concurrencies per scenario: --concurrency for all of them; else create's sweep and c=64 for list and get (c=64
  // only for every scenario with --quick). Sizes are create's: all three, 1 KiB only with --quick.
  o.createConcurrency = o.concurrency ?? (o.quick ? [64] : [1, 16, 64, 256]);
  o.readConcurrency = o.concurrency ?? [64];
  o.sizes ??= o.quick ? ['1k'] : ['1k', '64k', '1m'];
  if (!SHAPES.includes(o.shape)) throw new Error(`--shape must be one of ${SHAPES.join(', ')}`);
  for (const size of [...o.sizes, o.profileSize]) if (!SIZES[size]) throw new Error(`unknown size ${size}; known: ${Object.keys(SIZES).join(', ')}`);
  if (!(o.duration > 0 && o.duration <= 600) || !(o.warmup >= 0 && o.warmup <= 60)) throw new Error('--duration must be in (0, 600], --warmup in [0, 60]');
  if (!Number.isInteger(o.repeats) || o.repeats < 1 || o.repeats > 20) throw new Error('--repeats must be 1..20');
  if ([...o.createConcurrency, ...o.readConcurrency].some((c) => !Number.isInteger(c) || c < 1 || c > 1024)) throw new Error('--concurrency values must be 1..1024');
  if (o.soakOnly) {
    o.sdk = false;
    o.soakMinutes ||= 5;
  }
  if (!(o.soakMinutes >= 0 && o.soakMinutes <= 60)) throw new Error('--soak-minutes must be 0..60');
  return o;
}

// ---------------------------------------------------------------------------------------------------------------
// processes

const children = new Set();

/** Starts `node <script> ...args` and waits for its first stdout line, JSON with the port. */
export async function startChild(name, script, args, nodeFlags = []) {
  const child = spawn(process.execPath, [...nodeFlags, join(HERE, script), ...args.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const line = await new Promise((resolveLine, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 10 s`)), 10_000);
    child.stdout.on('data', (chunk) => {
      text += chunk;
      const end = text.indexOf('\n');
      if (end >= 0) {
        clearTimeout(timer);
        resolveLine(text.slice(0, end));
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before starting`)));
  });
  child.stdout.resume();
  return { child, pid: child.pid, port: JSON.parse(line).port };
}

/** A free loopback port (bound and released; the API's main.js prints the configured port, not the bound one). */
function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/** Starts the API as production does (`node dist/apps/api/src/main.js`), logs to `logPath`, and waits for /health. */
export async function startApi({ dataDir, logPath, nodeFlags = [], root = ROOT, extraEnv = {} }) {
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('UNICRM_') && k !== 'PORT' && k !== 'HOST'));
  Object.assign(env, {
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    UNICRM_DATA_DIR: dataDir,
    UNICRM_API_TOKEN: API_TOKEN,
    UNICRM_LOG_LEVEL: 'info',
    // The rate limiters stay on (their cost is part of every request) with limits no run reaches.
    UNICRM_RATE_LIMIT_PER_TOKEN: String(RATE_LIMIT),
    UNICRM_RATE_LIMIT_PER_ACCOUNT: String(RATE_LIMIT),
    // The per-account bulkhead stays on too, wide enough for the widest run: every run drives one account, and the
    // benchmark measures the gateway's cost, not its fairness between accounts (docs/benchmarks.md "Method").
    UNICRM_MAX_IN_FLIGHT_PER_ACCOUNT: String(BULKHEAD),
    UNICRM_MAX_QUEUED_PER_ACCOUNT: String(BULKHEAD),
    UNICRM_METRICS_PORT: 'off',
    ...extraEnv,
  });
  const fd = openSync(logPath, 'a');
  const child = spawn(process.execPath, [...nodeFlags, join(root, 'dist/apps/api/src/main.js')], { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  children.add(child);
  child.on('exit', () => children.delete(child));
  const deadline = Date.now() + 15_000;
  let healthy = false;
  while (Date.now() < deadline && !healthy) {
    if (child.exitCode !== null) throw new Error(`the API exited with ${child.exitCode}; see ${logPath}`);
    healthy = await fetch(`http://127.0.0.1:${port}/health`).then((res) => res.status === 200, () => false);
    if (!healthy) await sleep(50);
  }
  if (!healthy) throw new Error(`the API did not answer GET /health within 15 s; see ${logPath}`);
  return { child, pid: child.pid, port };
}

export async function stop(proc) {
  if (!proc || proc.child.exitCode !== null) return;
  const exited = new Promise((r) => proc.child.once('exit', r));
  proc.child.kill('SIGTERM');
  await Promise.race([exited, sleep(15_000)]);
  if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
}

export function killAll() {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
}

// ---------------------------------------------------------------------------------------------------------------
// measurement

/**
 * The HTTP request of one target for one scenario's work (`workOf`): unicrm's unified call, or the Pipeliner call
 * unicrm makes for it, straight at the upstream (`direct`) or through a floor:
 *   create: POST /unified/crm/stages            | POST {base}/Steps?validation-level=8 with the Step body
 *   list:   GET /unified/crm/stages?limit=100   | GET {base}/Steps?first=100
 *   get:    GET /unified/crm/stages/{id}        | GET {base}/Steps/{id}
 * (unicrm also reads the pipeline's name, `GET {base}/Pipelines/{id}?load-only=id,name`, for create, and for list
 * and get once a minute per pipeline: part of its cost, not of the floors'.)
 * @returns {{ method: string, url: string, headers: Record<string, string>, body?: string, pid: number }}
 */
export function requestFor(target, env, work) {
  const { scenario } = work;
  if (target === 'unicrm') {
    const api = `http://127.0.0.1:${env.api.port}/unified/crm/stages`;
    const account = `integrated_account_id=${env.accountId}`;
    const authorization = `Bearer ${API_TOKEN}`;
    if (scenario === 'create') return { method: 'POST', url: `${api}?${account}`, headers: { authorization, 'content-type': 'application/json' }, body: work.bodies.unifiedText, pid: env.api.pid };
    if (scenario === 'list') return { method: 'GET', url: `${api}?${account}&limit=${LIST_LIMIT}`, headers: { authorization }, pid: env.api.pid };
    return { method: 'GET', url: `${api}/${GET_STEP_ID}?${account}`, headers: { authorization }, pid: env.api.pid };
  }
  const proc = target === 'direct' ? env.upstream : target === 'floor' ? env.floor : env.floorHttp;
  const base = `http://127.0.0.1:${proc.port}/api/v100/rest/spaces/${SPACE}/entities/`;
  const authorization = env.basicAuth;
  if (scenario === 'create') return { method: 'POST', url: `${base}Steps?validation-level=8`, headers: { authorization, 'content-type': 'application/json' }, body: work.bodies.stepText, pid: proc.pid };
  if (scenario === 'list') return { method: 'GET', url: `${base}Steps?first=${LIST_LIMIT}`, headers: { authorization }, pid: proc.pid };
  return { method: 'GET', url: `${base}Steps/${GET_STEP_ID}`, headers: { authorization }, pid: proc.pid };
}

/**
 * One autocannon run of `target` doing `work` (`workOf`); latencies recorded at full resolution (autocannon's own
 * histogram has 1 ms steps); CPU per answered request of the target's process, the upstream and the load generator.
 */
export async function measure(env, target, work, concurrency, seconds) {
  const req = requestFor(target, env, work);
  const recorder = new LatencyRecorder();
  let non2xx = 0;
  let rssPeak = rssOf(req.pid);
  const rssSamples = [];
  const sampler = setInterval(() => {
    const rss = rssOf(req.pid);
    rssSamples.push(rss);
    rssPeak = Math.max(rssPeak, rss);
  }, 100);
  const cpu0 = { server: cpuMsOf(req.pid), upstream: cpuMsOf(env.upstream.pid), loadgen: process.cpuUsage() };
  const started = performance.now();
  const result = await new Promise((resolveRun, reject) => {
    const instance = autocannon(
      {
        url: req.url, method: req.method, headers: req.headers, body: req.body,
        connections: concurrency, pipelining: 1, duration: seconds, timeout: 30,
      },
      (error, res) => (error ? reject(error) : resolveRun(res)),
    );
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) recorder.add(ms);
      else non2xx++;
    });
  });
  const elapsed = (performance.now() - started) / 1000;
  clearInterval(sampler);
  rssPeak = Math.max(rssPeak, rssOf(req.pid));
  const loadgen = process.cpuUsage(cpu0.loadgen);
  const ok = recorder.count;
  if (ok === 0) console.log(`  warning: ${target} answered no 2xx in ${elapsed.toFixed(1)} s (${work.scenario}, c=${concurrency}, ${work.label}; errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${non2xx})`);
  const cpuPerReq = (ms) => (ok > 0 ? (ms * 1000) / ok : NaN);
  await sleep(200); // let closed connections settle before the next run
  return {
    target, scenario: work.scenario, concurrency, size: work.size, seconds: elapsed, ok, non2xx, errors: result.errors, timeouts: result.timeouts,
    rps: ok / elapsed,
    ...recorder.stats(),
    rssPeakMiB: rssPeak / MiB,
    // The median of the 100 ms samples: what the process holds between collections, not where one sample landed.
    rssMedianMiB: rssSamples.length > 0 ? median(rssSamples) / MiB : NaN,
    cpuUsPerReq: {
      server: cpuPerReq(cpuMsOf(req.pid) - cpu0.server),
      upstream: target === 'direct' ? NaN : cpuPerReq(cpuMsOf(env.upstream.pid) - cpu0.upstream),
      loadgen: cpuPerReq((loadgen.user + loadgen.system) / 1000),
    },
  };
}

const METRICS = ['rps', 'p50', 'p99', 'p999', 'max'];
export function medians(runs) {
  const out = { runs: runs.length };
  for (const m of METRICS) out[m] = median(runs.map((r) => r[m]));
  out.rssPeakMiB = Math.max(...runs.map((r) => r.rssPeakMiB));
  out.cpuUsPerReq = {
    server: median(runs.map((r) => r.cpuUsPerReq.server)),
    upstream: median(runs.map((r) => r.cpuUsPerReq.upstream)),
    loadgen: median(runs.map((r) => r.cpuUsPerReq.loadgen)),
  };
  out.failed = runs.reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0);
  return out;
}

/** Ratios of one configuration's medians. `unicrmOverFloorRps` is against the undici floor (`floor`). */
export function ratiosOf(m) {
  const minus = (a, b) => ({ p50: a.p50 - b.p50, p99: a.p99 - b.p99, p999: a.p999 - b.p999 });
  return {
    unicrmOverFloorRps: m.unicrm.rps / m.floor.rps,
    unicrmOverFloorHttpRps: m.unicrm.rps / m['floor-http'].rps,
    floorHttpOverFloorRps: m['floor-http'].rps / m.floor.rps,
    floorOverDirectRps: m.floor.rps / m.direct.rps,
    unicrmMinusDirect: minus(m.unicrm, m.direct),
    floorMinusDirect: minus(m.floor, m.direct),
    floorHttpMinusDirect: minus(m['floor-http'], m.direct),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// output

const f = (v, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : '-');
const pad = (cells, widths) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
const plus = (v) => (Number.isFinite(v) && v < 0 ? f(v) : `+${f(v)}`);

/** `create, c=64, 1 KiB` / `list, c=64, page of 100`. */
const configName = (config) => `${config.scenario}, c=${config.concurrency}, ${config.label}`;

function printConfig(config) {
  const { medians: m, ratios: r } = config;
  const what =
    config.scenario === 'create'
      ? `remote_data ${config.label} (${config.remoteDataKeys} keys; unified body ${config.bodyBytes} B)`
      : `${config.label} (Pipeliner's answer ${config.answerBytes?.direct ?? '?'} B, unicrm's ${config.answerBytes?.unicrm ?? '?'} B)`;
  console.log(`\n${config.scenario}: concurrency ${config.concurrency}, ${what}, medians of ${m.unicrm.runs}`);
  const widths = [17, 9, 8, 8, 9, 9, 13, 15, 8];
  console.log(pad(['target', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'RSS MiB', 'server µs/req', 'upstream µs/req', 'failed'], widths));
  for (const t of TARGETS) {
    const x = m[t];
    console.log(pad([TARGET_LABELS[t], f(x.rps, 0), f(x.p50), f(x.p99), f(x.p999), f(x.rssPeakMiB, 1), f(x.cpuUsPerReq.server, 0), f(x.cpuUsPerReq.upstream, 0), x.failed], widths));
  }
  console.log(
    `unicrm ÷ floor (undici) ${f(r.unicrmOverFloorRps)} (÷ floor (node:http) ${f(r.unicrmOverFloorHttpRps)}); API CPU ${f(m.unicrm.cpuUsPerReq.server, 0)} µs/req; ` +
      `unicrm − direct: p50 ${plus(r.unicrmMinusDirect.p50)} ms, p99 ${plus(r.unicrmMinusDirect.p99)} ms` +
      `  (floor (undici) − direct: p50 ${plus(r.floorMinusDirect.p50)}, p99 ${plus(r.floorMinusDirect.p99)}; floor (node:http) − direct: p50 ${plus(r.floorHttpMinusDirect.p50)}, p99 ${plus(r.floorHttpMinusDirect.p99)})`,
  );
}

/** One line per configuration: what the brief of issue 13 asks to report. */
function printSummaryTable(configs) {
  const widths = [26, 8, 15, 18, 8, 14, 11, 13, 13];
  console.log(`\nsummary (medians; req/s of each target, unicrm ÷ the undici floor, unicrm's API CPU per request, unicrm − direct latency)`);
  console.log(pad(['configuration', 'direct', 'floor (undici)', 'floor (node:http)', 'unicrm', 'unicrm ÷ floor', 'API µs/req', 'added p50 ms', 'added p99 ms'], widths));
  for (const c of configs) {
    const m = c.medians;
    console.log(
      pad(
        [configName(c), f(m.direct.rps, 0), f(m.floor.rps, 0), f(m['floor-http'].rps, 0), f(m.unicrm.rps, 0), f(c.ratios.unicrmOverFloorRps), f(m.unicrm.cpuUsPerReq.server, 0), plus(c.ratios.unicrmMinusDirect.p50), plus(c.ratios.unicrmMinusDirect.p99)],
        widths,
      ),
    );
  }
}

function markdownTable(configs) {
  const lines = [
    '| scenario | c | body / page | target | req/s | p50 ms | p99 ms | p99.9 ms | peak RSS MiB | server CPU µs/req | unicrm ÷ floor (undici) | unicrm − direct p50 / p99 ms |',
    '|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const c of configs) {
    for (const t of TARGETS) {
      const x = c.medians[t];
      const ratio = t === 'unicrm' ? f(c.ratios.unicrmOverFloorRps) : '';
      const added =
        t === 'unicrm'
          ? `${plus(c.ratios.unicrmMinusDirect.p50)} / ${plus(c.ratios.unicrmMinusDirect.p99)}`
          : t === 'floor'
            ? `(${plus(c.ratios.floorMinusDirect.p50)} / ${plus(c.ratios.floorMinusDirect.p99)})`
            : t === 'floor-http'
              ? `(${plus(c.ratios.floorHttpMinusDirect.p50)} / ${plus(c.ratios.floorHttpMinusDirect.p99)})`
              : '';
      lines.push(`| ${c.scenario} | ${c.concurrency} | ${c.label} | ${TARGET_LABELS[t]} | ${f(x.rps, 0)} | ${f(x.p50)} | ${f(x.p99)} | ${f(x.p999)} | ${f(x.rssPeakMiB, 1)} | ${f(x.cpuUsPerReq.server, 0)} | ${ratio} | ${added} |`);
    }
  }
  return lines.join('\n');
}

/**
 * The goals of issue 13 (create at 1 KiB and list at c=64: unicrm ≥ 0.6 × the undici floor) and the targets of
 * issue 8 (the create at c=64: throughput, added latency, RSS, ~1 MiB, soak), now read against the undici floor.
 * Each: { issue, target, want, got, met }; a goal whose configuration was not run is not listed.
 */
export function evaluateTargets(configs, soak) {
  const at = (scenario, c, size) => configs.find((x) => x.scenario === scenario && x.concurrency === c && (size === undefined || x.size === size));
  const out = [];
  const goal = (config, what) => {
    if (!config) return;
    const r = config.ratios.unicrmOverFloorRps;
    out.push({ issue: 13, target: `${what}: unicrm ÷ floor (undici) throughput at c=64`, want: `>= ${GOAL_RATIO}`, got: f(r), met: r >= GOAL_RATIO });
  };
  goal(at('create', 64, '1k'), 'create (1 KiB)');
  goal(at('list', 64), `list (page of ${LIST_LIMIT})`);
  const c64 = at('create', 64, '1k');
  if (c64) {
    const r = c64.ratios;
    out.push({ issue: 8, target: 'create: unicrm ÷ floor (undici) throughput at c=64, 1 KiB', want: '>= 0.85', got: f(r.unicrmOverFloorRps), met: r.unicrmOverFloorRps >= 0.85 });
    out.push({ issue: 8, target: 'create: added p50 over direct at c=64, 1 KiB', want: '<= 0.5 ms', got: `${f(r.unicrmMinusDirect.p50)} ms`, met: r.unicrmMinusDirect.p50 <= 0.5 });
    out.push({ issue: 8, target: 'create: added p99 over direct at c=64, 1 KiB', want: '<= 3 ms', got: `${f(r.unicrmMinusDirect.p99)} ms`, met: r.unicrmMinusDirect.p99 <= 3 });
    out.push({ issue: 8, target: 'create: unicrm peak RSS at c=64, 1 KiB', want: '<= 150 MiB', got: `${f(c64.medians.unicrm.rssPeakMiB, 1)} MiB`, met: c64.medians.unicrm.rssPeakMiB <= 150 });
  }
  const big = at('create', 64, '1m');
  if (big) {
    out.push({ issue: 8, target: 'create: unicrm ÷ floor (undici) throughput at c=64, ~1 MiB', want: '>= 0.6', got: f(big.ratios.unicrmOverFloorRps), met: big.ratios.unicrmOverFloorRps >= 0.6 });
  }
  if (soak) {
    out.push({
      issue: 8,
      target: `no RSS growth over ${soak.minutes} min (create, c=64, 1 KiB)`,
      want: 'median RSS of the last minute <= that of minute 1 + 10 %',
      got: `median minute 1 ${f(soak.firstMinuteMedianMiB, 1)} MiB, last minute ${f(soak.lastMinuteMedianMiB, 1)} MiB (end samples ${f(soak.firstMinuteMiB, 1)} -> ${f(soak.endMiB, 1)} MiB, max ${f(soak.maxMiB, 1)} MiB)`,
      met: soak.lastMinuteMedianMiB <= soak.firstMinuteMedianMiB * 1.1,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// SDK in-process

function runSdkClient(options) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [join(HERE, 'sdk-client.mjs'), JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(child);
    let text = '';
    child.stdout.on('data', (chunk) => (text += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), (options.durationMs + options.warmupMs) + 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      if (code !== 0) return reject(new Error(`sdk-client (${options.mode}) exited with ${code}`));
      resolveRun(JSON.parse(text.trim().split('\n').at(-1)));
    });
  });
}

async function sdkComparison(env, o, bodies) {
  const results = [];
  for (const concurrency of [1, 64]) {
    const runs = { undici: [], sdk: [] };
    for (let r = 0; r < o.repeats; r++) {
      for (const mode of ['undici', 'sdk']) {
        const run = await runSdkClient({
          mode, concurrency, durationMs: o.duration * 1000, warmupMs: o.warmup * 1000, root: ROOT,
          dataDir: env.dataDir, accountId: env.accountId, upstreamUrl: `http://127.0.0.1:${env.upstream.port}`,
          space: SPACE, basicAuth: env.basicAuth, stepBody: bodies.step, unifiedBody: bodies.unified,
        });
        if (run.errors > 0) console.log(`  ${mode} c=${concurrency}: ${run.errors} errors (${run.firstError})`);
        runs[mode].push(run);
      }
    }
    const m = {};
    for (const mode of ['undici', 'sdk']) {
      m[mode] = {};
      for (const k of ['rps', 'p50', 'p99', 'p999']) m[mode][k] = median(runs[mode].map((x) => x[k]));
      m[mode].rssPeakMiB = Math.max(...runs[mode].map((x) => x.rssPeak)) / MiB;
      m[mode].errors = runs[mode].reduce((n, x) => n + x.errors, 0);
    }
    const entry = {
      concurrency, size: bodies.size, runs, medians: m,
      ratios: { sdkOverUndiciRps: m.sdk.rps / m.undici.rps, sdkMinusUndici: { p50: m.sdk.p50 - m.undici.p50, p99: m.sdk.p99 - m.undici.p99 } },
    };
    results.push(entry);
    console.log(`\nSDK in-process create vs undici straight to the upstream: concurrency ${concurrency}, remote_data ${bodies.label}, medians of ${o.repeats}`);
    const widths = [8, 9, 8, 8, 9, 9, 7];
    console.log(pad(['caller', 'calls/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'RSS MiB', 'errors'], widths));
    for (const mode of ['undici', 'sdk']) {
      const x = m[mode];
      console.log(pad([mode, f(x.rps, 0), f(x.p50, 3), f(x.p99, 3), f(x.p999, 3), f(x.rssPeakMiB, 1), x.errors], widths));
    }
    console.log(`sdk/undici throughput ${f(entry.ratios.sdkOverUndiciRps)}; sdk − undici: p50 +${f(entry.ratios.sdkMinusUndici.p50, 3)} ms, p99 +${f(entry.ratios.sdkMinusUndici.p99, 3)} ms`);
  }
  return results;
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * Starts the upstream, both floors and the API, connects the account, and checks one request of every target in
 * every scenario of `o.scenarios` (`sanityCheck`). A scenario unicrm cannot serve (an API without the route, an
 * API bug) is left out and named in `env.skipped`; a failure of direct or a floor throws (the bench's own fault).
 */
export async function setUp(o, dir, nodeFlags = []) {
  const upstream = await startChild('upstream', 'upstream.mjs', [0]);
  const floor = await startChild('floor (undici)', 'floor-undici.mjs', [upstream.port]);
  const floorHttp = await startChild('floor (node:http)', 'floor.mjs', [upstream.port]);
  const dataDir = join(dir, 'data');
  const logPath = o.apiLog ?? join(dir, 'api.log');
  const api = await startApi({ dataDir, logPath, nodeFlags, root: o.apiRoot });
  const accountId = await connectAccount(api, upstream);
  const env = { upstream, floor, floorHttp, api, dataDir, logPath, accountId, basicAuth: BASIC_AUTH, answerBytes: {}, skipped: [] };
  for (const scenario of o.scenarios) {
    try {
      env.answerBytes[scenario] = await sanityCheck(env, workOf(scenario));
    } catch (error) {
      if (error.target !== 'unicrm') throw error;
      env.skipped.push({ scenario, reason: error.message });
      console.log(`scenario ${scenario} left out: ${error.message}`);
    }
  }
  return env;
}

/** Connects the upstream as a Pipeliner account through the API; returns its id. */
export async function connectAccount(api, upstream) {
  const res = await fetch(`http://127.0.0.1:${api.port}/integrated-account`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      integration: 'pipeliner',
      tenant_id: 'bench',
      context: { service_url: `http://127.0.0.1:${upstream.port}`, space_id: SPACE, username: USERNAME, password: PASSWORD },
    }),
  });
  const account = await res.json();
  if (res.status !== 201) throw new Error(`could not connect the account: ${res.status} ${JSON.stringify(account)}`);
  return account.id;
}

/**
 * What is wrong with one target's answer in a scenario, or undefined when it is what the scenario measures:
 * create 201 with the Step (unicrm: the unified stage with its pipeline's name and remote_data); list 200 with a
 * page of LIST_LIMIT Steps and a next page (unicrm: `result` of LIST_LIMIT stages in Pipeliner's order, with the
 * pipeline's name, and a `next_cursor`); get 200 with the Step GET_STEP_ID (unicrm: that stage, with the name).
 */
export function answerProblem(target, scenario, status, text) {
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return `HTTP ${status}, not JSON: ${text.slice(0, 300)}`;
  }
  const want = scenario === 'create' ? 201 : 200;
  if (status !== want) return `HTTP ${status} (want ${want}) ${text.slice(0, 500)}`;
  const unexpected = `an unexpected body: ${text.slice(0, 500)}`;
  if (scenario === 'create') {
    if (target === 'unicrm') {
      return body.pipeline?.name === PIPELINE_NAME && body.remote_data?.cf_bench_00001 !== undefined && body.created_at !== undefined ? undefined : unexpected;
    }
    return typeof body.data?.id === 'string' ? undefined : 'no Step in the answer';
  }
  if (scenario === 'list') {
    if (target === 'unicrm') {
      const items = body.result;
      if (!Array.isArray(items) || items.length !== LIST_LIMIT) return `result is not a page of ${LIST_LIMIT}: ${text.slice(0, 500)}`;
      if (items.some((item, i) => item.id !== stepIdOf(i) || item.pipeline?.name !== PIPELINE_NAME)) return `the stages are not Pipeliner's first ${LIST_LIMIT} with the pipeline's name: ${text.slice(0, 500)}`;
      return typeof body.next_cursor === 'string' ? undefined : `no next_cursor: ${text.slice(0, 300)}`;
    }
    return Array.isArray(body.data) && body.data.length === LIST_LIMIT && body.page_info?.has_next_page === true ? undefined : `not a page of ${LIST_LIMIT} Steps`;
  }
  if (target === 'unicrm') return body.id === GET_STEP_ID && body.pipeline?.name === PIPELINE_NAME ? undefined : unexpected;
  return body.data?.id === GET_STEP_ID ? undefined : 'not the Step asked for';
}

/**
 * One request of each target for `work` (`workOf`), checked with `answerProblem`.
 * @returns the size in bytes of each target's answer
 * @throws Error with `target` (the first target whose answer is wrong) and `scenario`
 */
export async function sanityCheck(env, work, targets = TARGETS) {
  const sizes = {};
  for (const target of targets) {
    const req = requestFor(target, env, work);
    const res = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body });
    const text = await res.text();
    sizes[target] = Buffer.byteLength(text);
    const problem = answerProblem(target, work.scenario, res.status, text);
    if (problem !== undefined) {
      throw Object.assign(new Error(`${work.scenario}: ${target} ${req.method} ${new URL(req.url).pathname}: ${problem}`), { target, scenario: work.scenario });
    }
  }
  return sizes;
}

function machine() {
  const cpu = cpus();
  return {
    nproc: cpu.length, cpuModel: cpu[0]?.model, totalMemMiB: Math.round(totalmem() / MiB), freeMemMiB: Math.round(freemem() / MiB),
    node: process.version, loadavgAtStart: loadavg().map((x) => Number(x.toFixed(2))),
  };
}

async function profileRun(o, dir) {
  const profDir = join(ROOT, 'tmp/bench-profile');
  mkdirSync(profDir, { recursive: true });
  const before = new Set(readdirSync(profDir));
  const env = await setUp({ ...o, scenarios: [o.profileScenario] }, dir, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  if (env.skipped.length > 0) throw new Error(`cannot profile ${o.profileScenario}: ${env.skipped[0].reason}`);
  const work = workOf(o.profileScenario, o.profileSize, o.shape);
  console.log(`profiling the API (pid ${env.api.pid}): ${work.scenario} at c=64, ${work.label} for ${o.profile} s (after a ${o.warmup} s warm-up)`);
  await measure(env, 'unicrm', work, 64, o.warmup || 1);
  const run = await measure(env, 'unicrm', work, 64, o.profile);
  console.log(`  ${f(run.rps, 0)} req/s, p50 ${f(run.p50)} ms, p99 ${f(run.p99)} ms (under the profiler)`);
  await stop(env.api);
  await stop(env.floor);
  await stop(env.floorHttp);
  await stop(env.upstream);
  const file = readdirSync(profDir).filter((name) => name.endsWith('.cpuprofile') && !before.has(name)).map((name) => join(profDir, name)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!file) throw new Error(`no .cpuprofile was written in ${profDir}`);
  console.log(`profile: ${file}\n`);
  const summary = summarise(JSON.parse(readFileSync(file, 'utf8')), 25);
  printSummary(summary);
  if (o.json) writeFileSync(o.json, JSON.stringify({ machine: machine(), profile: { file, run, summary } }, null, 2));
}

async function soakRun(env, o, dir) {
  const work = workOf('create', '1k');
  const minutes = o.soakMinutes;
  // A fresh API process, so that what earlier runs (1 MiB bodies) left in its heap does not count.
  await stop(env.api);
  env.api = await startApi({ dataDir: join(dir, 'soak-data'), logPath: env.logPath, root: o.apiRoot });
  env.accountId = await connectAccount(env.api, env.upstream);
  console.log(`\nsoak: unicrm alone (a fresh API process, pid ${env.api.pid}) at c=64, 1 KiB for ${minutes} min (RSS sampled at the end of every minute)`);
  await measure(env, 'unicrm', work, 64, Math.max(o.warmup, 1));
  const startMiB = rssOf(env.api.pid) / MiB;
  const perMinute = [];
  for (let i = 0; i < Math.ceil(minutes); i++) {
    const seconds = Math.min(60, minutes * 60 - i * 60);
    const run = await measure(env, 'unicrm', work, 64, seconds);
    perMinute.push({ minute: i + 1, rps: run.rps, p50: run.p50, p99: run.p99, rssEndMiB: rssOf(env.api.pid) / MiB, rssMedianMiB: run.rssMedianMiB, rssPeakMiB: run.rssPeakMiB });
    console.log(`  minute ${i + 1}: ${f(run.rps, 0)} req/s, p50 ${f(run.p50)} ms, p99 ${f(run.p99)} ms, RSS now ${f(perMinute.at(-1).rssEndMiB, 1)} MiB, median ${f(run.rssMedianMiB, 1)} MiB, peak ${f(run.rssPeakMiB, 1)} MiB`);
  }
  // Growth is judged on the median RSS of the first minute (heap sized for the load) against the last one: a single
  // sample at the end can land on a collection cycle's top (tens of MiB) and say nothing about a trend.
  const soak = {
    minutes, startMiB, firstMinuteMiB: perMinute[0].rssEndMiB, endMiB: perMinute.at(-1).rssEndMiB,
    firstMinuteMedianMiB: perMinute[0].rssMedianMiB, lastMinuteMedianMiB: perMinute.at(-1).rssMedianMiB,
    maxMiB: Math.max(...perMinute.map((m) => m.rssPeakMiB)), perMinute,
  };
  console.log(
    `soak RSS: after warm-up ${f(soak.startMiB, 1)} MiB; median minute 1 ${f(soak.firstMinuteMedianMiB, 1)} MiB, last minute ${f(soak.lastMinuteMedianMiB, 1)} MiB; ` +
      `at the end of minute 1 ${f(soak.firstMinuteMiB, 1)} MiB, of the last ${f(soak.endMiB, 1)} MiB; max ${f(soak.maxMiB, 1)} MiB`,
  );
  return soak;
}

/**
 * The configurations of a run, in order: create (each of `o.createConcurrency` at 1 KiB, then each other size at
 * c=64; every pair with `o.fullMatrix`), then list and get at each of `o.readConcurrency`; only the scenarios in
 * `o.scenarios`, none with `o.soakOnly`.
 * @returns {Array<{ scenario: string, concurrency: number, size: string | null }>}
 */
export function planOf(o) {
  const plan = [];
  if (o.soakOnly) return plan;
  for (const scenario of o.scenarios) {
    if (scenario === 'create') {
      if (o.fullMatrix) {
        for (const size of o.sizes) for (const c of o.createConcurrency) plan.push({ scenario, concurrency: c, size });
      } else {
        if (o.sizes.includes('1k')) for (const c of o.createConcurrency) plan.push({ scenario, concurrency: c, size: '1k' });
        for (const size of o.sizes.filter((s) => s !== '1k')) plan.push({ scenario, concurrency: 64, size });
      }
    } else {
      for (const c of o.readConcurrency) plan.push({ scenario, concurrency: c, size: null });
    }
  }
  return plan;
}

/** The measurements of one configuration: a warm-up of each target, then `o.repeats` alternating runs; medians. */
async function runConfig(env, o, { scenario, concurrency, size }) {
  const work = workOf(scenario, size ?? '1k', o.shape);
  for (const target of TARGETS) await measure(env, target, work, concurrency, o.warmup || 0.1);
  const runs = Object.fromEntries(TARGETS.map((t) => [t, []]));
  for (let r = 0; r < o.repeats; r++) {
    // Alternate the order too, so no target always runs right after another.
    const order = r % 2 === 0 ? TARGETS : [...TARGETS].reverse();
    for (const target of order) runs[target].push(await measure(env, target, work, concurrency, o.duration));
  }
  const m = Object.fromEntries(TARGETS.map((t) => [t, medians(runs[t])]));
  const config = { scenario, concurrency, size: work.size, label: work.label, answerBytes: env.answerBytes[scenario], runs, medians: m, ratios: ratiosOf(m) };
  if (work.bodies) {
    const { bodies } = work;
    Object.assign(config, { bodyBytes: Buffer.byteLength(bodies.unifiedText), stepBodyBytes: Buffer.byteLength(bodies.stepText), remoteDataBytes: bodies.remoteDataBytes, remoteDataKeys: bodies.remoteDataKeys, shape: bodies.shape });
  }
  return config;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  for (const file of ['dist/apps/api/src/main.js', 'dist/apps/sdk/src/index.js']) {
    if (!existsSync(join(ROOT, file))) throw new Error(`${file} is missing: run \`npm run bench\` (it builds first).`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'unicrm-bench-'));
  const cleanUp = () => {
    killAll();
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanUp();
    process.exit(130);
  });
  try {
    const info = machine();
    console.log(`unicrm benchmark: node ${info.node}, ${info.nproc} × ${info.cpuModel}, ${info.totalMemMiB} MiB RAM, load average ${info.loadavgAtStart.join(' ')}`);
    if (o.profile) return await profileRun(o, dir);

    if (o.soakOnly) o.scenarios = ['create'];
    const env = await setUp(o, dir);
    console.log(
      `processes: load generator (autocannon) pid ${process.pid}; upstream pid ${env.upstream.pid} :${env.upstream.port}; ` +
        `floor (undici) pid ${env.floor.pid} :${env.floor.port}; floor (node:http) pid ${env.floorHttp.pid} :${env.floorHttp.port}; ` +
        `unicrm API pid ${env.api.pid} :${env.api.port}, logs (info) -> ${env.logPath}` +
        (o.apiRoot === ROOT ? '' : `; API of ${o.apiRoot}`),
    );
    const skipped = new Set(env.skipped.map((s) => s.scenario));
    const plan = planOf(o).filter((c) => !skipped.has(c.scenario));
    const perConfig = o.warmup * TARGETS.length + o.duration * TARGETS.length * o.repeats + 0.2 * TARGETS.length * (o.repeats + 1);
    console.log(
      `plan: ${plan.length} configurations (${[...new Set(plan.map((c) => c.scenario))].join(', ') || 'none'}) × ${TARGETS.length} targets × ${o.repeats} alternating repeats of ${o.duration} s ` +
        `(+${o.warmup} s warm-up each): about ${Math.ceil((plan.length * perConfig + (o.sdk ? 4 * o.repeats * (o.duration + o.warmup + 0.7) : 0) + o.soakMinutes * 60) / 60)} min`,
    );

    const configs = [];
    for (const entry of plan) {
      const config = await runConfig(env, o, entry);
      configs.push(config);
      printConfig(config);
    }

    const sdk = o.sdk ? await sdkComparison(env, o, bodiesFor('1k')) : undefined;
    const soak = o.soakMinutes > 0 && !skipped.has('create') ? await soakRun(env, o, dir) : undefined;
    const apiRssEndMiB = rssOf(env.api.pid) / MiB;
    await stop(env.api);
    await stop(env.floor);
    await stop(env.floorHttp);
    await stop(env.upstream);
    const logBytes = existsSync(env.logPath) ? statSync(env.logPath).size : 0;

    if (configs.length > 0) {
      console.log('\n' + markdownTable(configs));
      printSummaryTable(configs);
    }
    const targets = evaluateTargets(configs, soak);
    for (const [issue, title] of [[13, 'goals (issue 13; docs/benchmarks.md "Goals"): against the undici floor'], [8, 'targets (issue 8, the create; now against the undici floor)']]) {
      const rows = targets.filter((t) => t.issue === issue);
      if (rows.length === 0) continue;
      console.log(`\n${title}:`);
      for (const t of rows) console.log(`  ${t.met ? 'met   ' : 'MISSED'}  ${t.target}: ${t.got} (want ${t.want})`);
    }
    for (const s of env.skipped) console.log(`\nNOT MEASURED: ${s.scenario}: ${s.reason}`);
    const kept = o.apiLog || o.keep ? `written to ${env.logPath}` : 'written to the run\'s temporary directory, removed now (keep it with --keep or --api-log <path>)';
    console.log(`\nAPI RSS at the end: ${f(apiRssEndMiB, 1)} MiB; API log: ${(logBytes / MiB).toFixed(1)} MiB ${kept}`);
    if (o.json) {
      writeFileSync(o.json, JSON.stringify({ machine: machine(), startedWith: info, options: o, targetNames: TARGET_LABELS, configs, skipped: env.skipped, sdk, soak, targets, apiRssEndMiB, logBytes }, null, 2));
      console.log(`figures written to ${o.json}`);
    }
  } finally {
    cleanUp();
  }
}

if (import.meta.url === `file://${process.argv[1]}` && process.argv.includes('--import')) {
  // `npm run bench -- --import [options]`: the bulk import against the rate-limited sandboxes (import.mjs).
  import('./import.mjs')
    .then((run) => run.main(process.argv.slice(2).filter((arg) => arg !== '--import')))
    .catch((error) => {
      console.error(error?.stack ?? error);
      killAll();
      process.exit(1);
    });
} else if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(error?.stack ?? error);
    killAll();
    process.exit(1);
  });
}
