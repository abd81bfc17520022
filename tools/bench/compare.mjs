// A/B comparison of unicrm builds: one API process per build (each a checkout/copy with its own dist/), the same
// canned upstream, measurements alternated between the builds, medians reported. For before/after figures of a
// change and for "what would X gain" experiments on a patched copy of dist/.
//
//   node tools/bench/compare.mjs --root /path/to/before --root /work/main [--label before --label after]
//        [--duration 5] [--warmup 1] [--repeats 5] [--concurrency 64] [--size 1k] [--shape fields]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { connectAccount, killAll, measure, medians, sanityCheck, startApi, startChild, stop } from './bench.mjs';
import { bodiesFor } from './lib.mjs';
import { PASSWORD, USERNAME } from './upstream.mjs';

function parseArgs(argv) {
  const o = { roots: [], labels: [], duration: 5, warmup: 1, repeats: 5, concurrency: 64, size: '1k', shape: 'fields' };
  for (let i = 0; i < argv.length; i++) {
    const value = () => argv[++i];
    switch (argv[i]) {
      case '--root': o.roots.push(resolve(value())); break;
      case '--label': o.labels.push(value()); break;
      case '--duration': o.duration = Number(value()); break;
      case '--warmup': o.warmup = Number(value()); break;
      case '--repeats': o.repeats = Number(value()); break;
      case '--concurrency': o.concurrency = Number(value()); break;
      case '--size': o.size = value(); break;
      case '--shape': o.shape = value(); break;
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  if (o.roots.length < 1) throw new Error('give at least one --root (a directory with dist/apps/api/src/main.js)');
  if (!(o.duration > 0 && o.duration <= 120) || !(o.repeats >= 1 && o.repeats <= 20)) throw new Error('--duration 0..120, --repeats 1..20');
  return o;
}

const f = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '-');

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'unicrm-compare-'));
  try {
    const upstream = await startChild('upstream', 'upstream.mjs', [0]);
    const variants = [];
    for (const [i, root] of o.roots.entries()) {
      const api = await startApi({ root, dataDir: join(dir, `data-${i}`), logPath: join(dir, `api-${i}.log`) });
      const env = { upstream, api, accountId: await connectAccount(api, upstream), basicAuth: `Basic ${Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64')}` };
      await sanityCheck(env, ['unicrm']);
      variants.push({ label: o.labels[i] ?? basename(root), env, runs: [] });
    }
    const bodies = bodiesFor(o.size, o.shape);
    console.log(`c=${o.concurrency}, remote_data ${bodies.label} (${o.shape}), ${o.repeats} alternating repeats of ${o.duration} s`);
    for (const v of variants) await measure(v.env, 'unicrm', bodies, o.concurrency, o.warmup);
    for (let r = 0; r < o.repeats; r++) {
      const order = r % 2 === 0 ? variants : [...variants].reverse();
      for (const v of order) v.runs.push(await measure(v.env, 'unicrm', bodies, o.concurrency, o.duration));
    }
    console.log(['build'.padEnd(16), 'req/s', 'p50 ms', 'p99 ms', 'RSS MiB', 'API µs/req', 'upstream µs/req', 'failed'].join('  '));
    const results = variants.map((v) => ({ label: v.label, ...medians(v.runs), perRun: v.runs.map((r) => Math.round(r.rps)) }));
    for (const m of results) {
      console.log([m.label.padEnd(16), f(m.rps, 0).padStart(5), f(m.p50).padStart(6), f(m.p99).padStart(6), f(m.rssPeakMiB, 1).padStart(7), f(m.cpuUsPerReq.server, 0).padStart(10), f(m.cpuUsPerReq.upstream, 0).padStart(15), String(m.failed).padStart(6)].join('  ') + `   runs: ${m.perRun.join(' ')}`);
    }
    if (results.length > 1) {
      const [a, ...rest] = results;
      for (const b of rest) console.log(`${b.label} vs ${a.label}: throughput ×${f(b.rps / a.rps)}, API CPU per request ×${f(b.cpuUsPerReq.server / a.cpuUsPerReq.server)}`);
    }
    for (const v of variants) await stop(v.env.api);
    await stop(upstream);
  } finally {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error?.stack ?? error);
  killAll();
  process.exit(1);
});
