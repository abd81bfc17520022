// Several API nodes on one PostgreSQL against one node (issue 14: "two nodes against one", a report with no target).
// One throwaway PostgreSQL cluster, the canned upstream, N API processes of this build on one database with one key;
// the load is split evenly over the nodes of a configuration (c/N connections each, all at once), configurations
// alternate between repeats, medians reported. On a machine with few cores the nodes, PostgreSQL, the upstream and
// the load generator share them: the figure says what one more process buys on *this* machine, not how unicrm scales.
//
//   node tools/bench/nodes.mjs [--nodes 1,2] [--repeats 3] [--duration 5] [--warmup 1] [--concurrency 64] [--size 1k]
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connectAccount, killAll, measure, sanityCheck, startApi, startChild, stop } from './bench.mjs';
import { median, workOf } from './lib.mjs';
import { PASSWORD, USERNAME } from './upstream.mjs';

const HELP = `usage: node tools/bench/nodes.mjs [options]

  --nodes <list>        configurations to compare, as node counts (default 1,2)
  --repeats <n>         alternating repeats, medians reported (default 3)
  --duration <s>        seconds per measurement (default 5)
  --warmup <s>          seconds of warm-up per configuration (default 1)
  --concurrency <n>     concurrent callers in all, split evenly over the nodes (default 64)
  --size <size>         create's remote_data: 1k, 64k, 1m (default 1k)`;

/** @returns {{ nodes: number[], repeats: number, duration: number, warmup: number, concurrency: number, size: string }} */
export function parseArgs(argv) {
  const o = { nodes: [1, 2], repeats: 3, duration: 5, warmup: 1, concurrency: 64, size: '1k' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    const positive = (name, v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not "${v}"`);
      return n;
    };
    if (arg === '--help' || arg === '-h') {
      console.log(HELP);
      process.exit(0);
    } else if (arg === '--nodes') o.nodes = value().split(',').map((v) => Math.trunc(positive('--nodes', v)));
    else if (arg === '--repeats') o.repeats = Math.trunc(positive('--repeats', value()));
    else if (arg === '--duration') o.duration = positive('--duration', value());
    else if (arg === '--warmup') o.warmup = positive('--warmup', value());
    else if (arg === '--concurrency') o.concurrency = Math.trunc(positive('--concurrency', value()));
    else if (arg === '--size') o.size = value();
    else throw new Error(`unknown option ${arg}\n${HELP}`);
  }
  return o;
}

/** One measurement of a configuration: every node driven at once, the answers and CPU summed. */
async function measureNodes(envs, work, concurrency, seconds) {
  const per = Math.max(1, Math.floor(concurrency / envs.length));
  const runs = await Promise.all(envs.map((env) => measure(env, 'unicrm', work, per, seconds)));
  const ok = runs.reduce((sum, run) => sum + run.ok, 0);
  const cpuUs = runs.reduce((sum, run) => sum + run.cpuUsPerReq.server * run.ok, 0);
  return { rps: runs.reduce((sum, run) => sum + run.rps, 0), cpuUsPerReq: ok > 0 ? cpuUs / ok : NaN, failed: runs.reduce((sum, run) => sum + run.non2xx + run.errors, 0), p99: Math.max(...runs.map((run) => run.p99)) };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'unicrm-nodes-'));
  const require = createRequire(import.meta.url);
  const helper = require(resolve(new URL('../../', import.meta.url).pathname, 'dist/libs/store/src/testing/postgres-cluster.js'));
  if (!helper.postgresAvailable()) throw new Error("nodes.mjs needs PostgreSQL's programs (Debian's postgresql package)");
  let cluster;
  try {
    console.log(`nodes: ${o.nodes.join(', ')} API processes on one PostgreSQL; ${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    cluster = await helper.startTestCluster();
    const upstream = await startChild('upstream', 'upstream.mjs', [0]);
    const key = randomBytes(32).toString('base64');
    const extraEnv = { UNICRM_DATABASE_URL: cluster.url, UNICRM_ENCRYPTION_KEY: key };
    const apis = [];
    for (let i = 0; i < Math.max(...o.nodes); i++) apis.push(await startApi({ dataDir: join(dir, `data-${i}`), logPath: join(dir, `api-${i}.log`), extraEnv }));
    const accountId = await connectAccount(apis[0], upstream);
    const basicAuth = `Basic ${Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64')}`;
    const envs = apis.map((api) => ({ upstream, api, accountId, basicAuth }));
    const work = workOf('create', o.size, 'fields');
    for (const env of envs) await sanityCheck(env, work, ['unicrm']);
    const configurations = o.nodes.map((n) => ({ n, envs: envs.slice(0, n), runs: [] }));
    console.log(`create: c=${o.concurrency} in all, ${work.label}, ${o.repeats} alternating repeats of ${o.duration} s`);
    for (const c of configurations) await measureNodes(c.envs, work, o.concurrency, o.warmup);
    for (let r = 0; r < o.repeats; r++) {
      const order = r % 2 === 0 ? configurations : [...configurations].reverse();
      for (const c of order) c.runs.push(await measureNodes(c.envs, work, o.concurrency, o.duration));
    }
    console.log(['nodes', 'req/s', 'p99 ms (worst node)', 'API µs/create (all nodes)', 'failed', 'runs (req/s)'].join('  '));
    const base = median(configurations[0].runs.map((run) => run.rps));
    for (const c of configurations) {
      const rps = median(c.runs.map((run) => run.rps));
      console.log(
        [String(c.n).padStart(5), rps.toFixed(0).padStart(5), median(c.runs.map((run) => run.p99)).toFixed(1).padStart(19), median(c.runs.map((run) => run.cpuUsPerReq)).toFixed(0).padStart(25), String(c.runs.reduce((s, run) => s + run.failed, 0)).padStart(6), c.runs.map((run) => run.rps.toFixed(0)).join(' ')].join('  ') +
          (c === configurations[0] ? '' : `   ×${(rps / base).toFixed(2)} of ${configurations[0].n} node${configurations[0].n === 1 ? '' : 's'}`),
      );
    }
    for (const api of apis) await stop(api);
    await stop(upstream);
  } finally {
    killAll();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(error.message);
    killAll();
    process.exit(1);
  });
}
