// A/B comparison of unicrm builds: one API process per build (each a checkout/copy with its own dist/ and
// node_modules/), the same canned upstream, measurements alternated between the builds, medians reported, for each
// scenario asked (create, list, get). For before/after figures of a change (issue 13: the create path must not get
// slower than main's, CPU per create within +10 %) and for "what would X gain" experiments on a patched copy of dist/.
//
//   node tools/bench/compare.mjs --root /tmp/bench-main --root . [--label main --label branch]
//        [--scenario create,list] [--quick] [--duration 5] [--warmup 1] [--repeats 5] [--concurrency 64]
//        [--size 1k] [--shape fields] [--json out.json]
//
// A build that cannot serve a scenario (main has no GET /unified/crm/stages) is named and left out of that
// scenario's table; the others are still compared. The first --root is the base of every ratio.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { basename, join, resolve } from 'node:path';
import { connectAccount, killAll, measure, medians, sanityCheck, startApi, startChild, stop } from './bench.mjs';
import { parseScenarios, SHAPES, SIZES, workOf } from './lib.mjs';
import { PASSWORD, USERNAME } from './upstream.mjs';

/** The create path may cost at most this much more API CPU per request than the base build (issue 13). */
export const CREATE_CPU_BUDGET = 1.1;

const HELP = `usage: node tools/bench/compare.mjs --root <checkout A> --root <checkout B> [options]

  --root <dir>        a build to compare: a directory with dist/apps/api/src/main.js and its node_modules
                      (give two or more; the first is the base of the ratios)
  --label <name>      a name for each --root, in the same order (default: the directory's name)
  --scenario <list>   create, list, get (default create,list)
  --quick             smoke run: 1 s measurements, 0.3 s warm-up, 3 repeats
  --duration <s>      seconds per measurement (default 5)
  --warmup <s>        seconds of warm-up per build and scenario (default 1)
  --repeats <n>       alternating repeats, medians reported (default 5)
  --concurrency <n>   concurrent callers (default 64)
  --size <size>       create's remote_data: 1k, 64k, 1m (default 1k)
  --shape <shape>     create's remote_data shape: fields, wide (default fields)
  --stores <list>     run each build once per store: sqlite, postgres (a throwaway PostgreSQL cluster, Debian's
                      postgresql package); e.g. --stores sqlite,postgres compares the two stores in one run
  --json <file>       write every figure to a JSON file`;

/** The throwaway PostgreSQL cluster of `--stores postgres`. */
let cluster;

/**
 * Starts a throwaway PostgreSQL cluster with the test helper of @unicrm/store as built in this checkout's dist/.
 * @returns {Promise<{ database(name: string): Promise<string>, stop(): Promise<void> }>} `database` creates an empty
 *   database and gives its URL
 */
async function startPostgres() {
  const require = createRequire(import.meta.url);
  const helperPath = resolve(new URL('../../', import.meta.url).pathname, 'dist/libs/store/src/testing/postgres-cluster.js');
  const helper = require(helperPath);
  if (!helper.postgresAvailable()) throw new Error("--stores postgres needs PostgreSQL's programs (Debian's postgresql package)");
  const started = await helper.startTestCluster();
  const { Client } = require('pg');
  return {
    async database(name) {
      const client = new Client({ connectionString: started.url });
      await client.connect();
      await client.query(`CREATE DATABASE ${name}`);
      await client.end();
      return started.url.replace(/\/postgres$/, `/${name}`);
    },
    stop: () => started.stop(),
  };
}

export function parseArgs(argv) {
  const o = { roots: [], labels: [], stores: undefined, scenarios: ['create', 'list'], duration: 5, warmup: 1, repeats: 5, concurrency: 64, size: '1k', shape: 'fields', json: undefined };
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
      case '--root': o.roots.push(resolve(value())); break;
      case '--label': o.labels.push(value()); break;
      case '--scenario': case '--scenarios': o.scenarios = parseScenarios(value()); break;
      case '--quick': o.quick = true; break;
      case '--duration': o.duration = Number(value()); set.add('duration'); break;
      case '--warmup': o.warmup = Number(value()); set.add('warmup'); break;
      case '--repeats': o.repeats = Number(value()); set.add('repeats'); break;
      case '--concurrency': o.concurrency = Number(value()); break;
      case '--size': o.size = value(); break;
      case '--shape': o.shape = value(); break;
      case '--json': o.json = resolve(value()); break;
      case '--stores': o.stores = value().split(',').map((s) => s.trim()); break;
      default: throw new Error(`unknown option ${arg}\n\n${HELP}`);
    }
  }
  if (o.quick) {
    if (!set.has('duration')) o.duration = 1;
    if (!set.has('warmup')) o.warmup = 0.3;
    if (!set.has('repeats')) o.repeats = 3;
  }
  if (o.roots.length < 1) throw new Error('give at least one --root (a directory with dist/apps/api/src/main.js)');
  if (o.labels.length > o.roots.length) throw new Error('more --label than --root');
  if (!(o.duration > 0 && o.duration <= 120) || !(o.repeats >= 1 && o.repeats <= 20)) throw new Error('--duration 0..120, --repeats 1..20');
  if (!(o.warmup >= 0 && o.warmup <= 60)) throw new Error('--warmup 0..60');
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1 || o.concurrency > 1024) throw new Error('--concurrency 1..1024');
  if (!SIZES[o.size]) throw new Error(`unknown size ${o.size}; known: ${Object.keys(SIZES).join(', ')}`);
  if (!SHAPES.includes(o.shape)) throw new Error(`--shape must be one of ${SHAPES.join(', ')}`);
  return o;
}

const f = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '-');

/**
 * The verdict on the create path (issue 13): each build's API CPU per create against the base build's, within
 * CREATE_CPU_BUDGET. Undefined when create was not compared between two builds.
 */
export function createVerdicts(scenarioResults) {
  const create = scenarioResults.find((s) => s.scenario === 'create');
  if (!create || create.results.length < 2) return undefined;
  const [base, ...rest] = create.results;
  return rest.map((b) => {
    const ratio = b.cpuUsPerReq.server / base.cpuUsPerReq.server;
    return { build: b.label, base: base.label, cpuRatio: ratio, met: ratio <= CREATE_CPU_BUDGET };
  });
}

/** Issue 14: PostgreSQL mode's create throughput against SQLite mode's, same run. */
const STORE_THROUGHPUT_GOAL = 0.75;

/** Per build: PostgreSQL's create req/s ÷ SQLite's, and the CPU ratio. */
function storesVerdict(scenarioResults) {
  const create = scenarioResults.find((r) => r.scenario === 'create');
  if (!create) return undefined;
  const verdicts = [];
  for (const pg of create.results.filter((r) => r.label.endsWith('postgres'))) {
    const lite = create.results.find((r) => r.label === pg.label.replace(/postgres$/, 'sqlite'));
    if (!lite) continue;
    const ratio = pg.rps / lite.rps;
    verdicts.push({ build: pg.label.replace(/ ?postgres$/, '') || 'this build', ratio, cpuRatio: pg.cpuUsPerReq.server / lite.cpuUsPerReq.server, met: ratio >= STORE_THROUGHPUT_GOAL });
  }
  return verdicts;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'unicrm-compare-'));
  try {
    console.log(`compare: ${o.roots.length} builds, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    const upstream = await startChild('upstream', 'upstream.mjs', [0]);
    const variants = [];
    for (const [i, root] of o.roots.entries()) {
      for (const store of o.stores ?? [undefined]) {
        let extraEnv = {};
        if (store === 'postgres') {
          cluster ??= await startPostgres();
          // Each build starts on an empty database of its own.
          extraEnv = { UNICRM_DATABASE_URL: await cluster.database(`bench_${i}`), UNICRM_ENCRYPTION_KEY: randomBytes(32).toString('base64') };
        } else if (store !== undefined && store !== 'sqlite') {
          throw new Error(`--stores: unknown store ${store} (sqlite, postgres)`);
        }
        const n = variants.length;
        const api = await startApi({ root, dataDir: join(dir, `data-${n}`), logPath: join(dir, `api-${n}.log`), extraEnv });
        const env = { upstream, api, accountId: await connectAccount(api, upstream), basicAuth: `Basic ${Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64')}` };
        const label = [o.labels[i] ?? (o.roots.length > 1 || !store ? basename(root) : undefined), store].filter(Boolean).join(' ');
        variants.push({ label, root, env });
        console.log(`  ${label}: ${root}${store ? `, store ${store}` : ''} (API pid ${api.pid})`);
      }
    }
    const scenarioResults = [];
    for (const scenario of o.scenarios) {
      const work = workOf(scenario, o.size, o.shape);
      const served = [];
      const notServed = [];
      for (const v of variants) {
        try {
          await sanityCheck(v.env, work, ['unicrm']);
          served.push({ ...v, runs: [] });
        } catch (error) {
          notServed.push({ label: v.label, reason: error.message });
        }
      }
      console.log(`\n${scenario}: c=${o.concurrency}, ${work.label}${scenario === 'create' ? ` (${o.shape})` : ''}, ${o.repeats} alternating repeats of ${o.duration} s`);
      for (const n of notServed) console.log(`  ${n.label}: not measured: ${n.reason.slice(0, 300)}`);
      for (const v of served) await measure(v.env, 'unicrm', work, o.concurrency, o.warmup || 0.1);
      for (let r = 0; r < o.repeats; r++) {
        const order = r % 2 === 0 ? served : [...served].reverse();
        for (const v of order) v.runs.push(await measure(v.env, 'unicrm', work, o.concurrency, o.duration));
      }
      const results = served.map((v) => ({ label: v.label, root: v.root, ...medians(v.runs), perRun: v.runs.map((r) => Math.round(r.rps)), perRunCpu: v.runs.map((r) => Math.round(r.cpuUsPerReq.server)) }));
      if (results.length > 0) {
        console.log(['build'.padEnd(16), 'req/s', 'p50 ms', 'p99 ms', 'RSS MiB', 'API µs/req', 'upstream µs/req', 'failed'].join('  '));
        for (const m of results) {
          console.log([m.label.padEnd(16), f(m.rps, 0).padStart(5), f(m.p50).padStart(6), f(m.p99).padStart(6), f(m.rssPeakMiB, 1).padStart(7), f(m.cpuUsPerReq.server, 0).padStart(10), f(m.cpuUsPerReq.upstream, 0).padStart(15), String(m.failed).padStart(6)].join('  ') + `   runs: ${m.perRun.join(' ')} req/s; ${m.perRunCpu.join(' ')} µs`);
        }
      }
      const [a, ...rest] = results;
      for (const b of rest) console.log(`${b.label} vs ${a.label}: throughput ×${f(b.rps / a.rps)}, API CPU per request ×${f(b.cpuUsPerReq.server / a.cpuUsPerReq.server)}`);
      scenarioResults.push({ scenario, label: work.label, concurrency: o.concurrency, size: work.size, results, notServed });
    }
    // The stores' comparison has its own goal (issue 14): PostgreSQL's create throughput at least 0.75 × SQLite's.
    const verdicts = o.stores ? undefined : createVerdicts(scenarioResults);
    const storeVerdict = o.stores?.includes('postgres') && o.stores.includes('sqlite') ? storesVerdict(scenarioResults) : undefined;
    if (storeVerdict) {
      console.log(`\ngoal (issue 14): create throughput on PostgreSQL at least ${STORE_THROUGHPUT_GOAL} × SQLite's, same run`);
      for (const v of storeVerdict) console.log(`  ${v.met ? 'met   ' : 'MISSED'}  ${v.build}: ×${f(v.ratio)} (API CPU per create ×${f(v.cpuRatio)})`);
    }
    if (verdicts) {
      console.log(`\ngoal (issue 13): the create path no slower than the base build, API CPU per create within +${Math.round((CREATE_CPU_BUDGET - 1) * 100)} %`);
      for (const v of verdicts) console.log(`  ${v.met ? 'met   ' : 'MISSED'}  ${v.build} vs ${v.base}: ×${f(v.cpuRatio)}`);
    }
    for (const v of variants) await stop(v.env.api);
    await stop(upstream);
    if (o.json) {
      writeFileSync(o.json, JSON.stringify({ options: o, loadavg: loadavg(), scenarios: scenarioResults, createVerdicts: verdicts, storeVerdicts: storeVerdict }, null, 2));
      console.log(`figures written to ${o.json}`);
    }
  } finally {
    killAll();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(error?.stack ?? error);
    killAll();
    process.exit(1);
  });
}
