// Summarises a V8 .cpuprofile (node --cpu-prof): the top functions by self time, self time by package/area, and
// the top unicrm functions by total (inclusive) time.
// `node tools/bench/prof-top.mjs <file.cpuprofile> [--top 25]`
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;

/** Where a function lives: a package of node_modules, a unicrm project of dist/, node's internals, or V8. */
export function areaOf(url, functionName) {
  if (!url) {
    if (functionName === '(garbage collector)') return '(gc)';
    if (functionName === '(idle)' || functionName === '(program)' || functionName === '(root)') return functionName;
    return '(native/V8)';
  }
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1];
  const dist = /dist\/(apps|libs)\/(.+?)\/src\//.exec(url);
  if (dist) return `unicrm:${dist[2]}`;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  return relative(ROOT, url.replace(/^file:\/\//, ''));
}

const keyOf = (frame) =>
  `${frame.functionName || '(anonymous)'} ${frame.url ? `${frame.url.replace(/^file:\/\//, '').replace(ROOT, '')}:${frame.lineNumber + 1}` : ''}`;

/**
 * @returns `{ totalMs, self: [{ key, area, ms, pct }], areas: [{ area, ms, pct }], inclusive: [{ key, ms, pct }] }`
 */
export function summarise(profile, top = 25) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMs = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  let totalMs = 0;
  let idleMs = 0;
  const self = new Map();
  const areas = new Map();
  for (const [id, ms] of selfMs) {
    const node = byId.get(id);
    const frame = node.callFrame;
    totalMs += ms;
    if (frame.functionName === '(idle)') idleMs += ms;
    const key = keyOf(frame);
    const area = areaOf(frame.url, frame.functionName);
    const entry = self.get(key) ?? { key, area, ms: 0 };
    entry.ms += ms;
    self.set(key, entry);
    areas.set(area, (areas.get(area) ?? 0) + ms);
  }
  // Inclusive (total) time of unicrm's own functions: each sample counted once per distinct function on its stack.
  // (Not for the packages: a middleware's total time would include the rest of the chain it calls through next().)
  const inclusive = new Map();
  for (const [id, ms] of selfMs) {
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at).callFrame;
      const key = keyOf(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      if (/\/dist\/(apps|libs)\//.test(frame.url)) inclusive.set(key, (inclusive.get(key) ?? 0) + ms);
    }
  }
  const busyMs = totalMs - idleMs;
  const pct = (ms) => (100 * ms) / busyMs;
  return {
    totalMs,
    idleMs,
    busyMs,
    self: [...self.values()].filter((e) => e.key !== '(idle) ').sort((a, b) => b.ms - a.ms).slice(0, top).map((e) => ({ ...e, pct: pct(e.ms) })),
    areas: [...areas].filter(([a]) => a !== '(idle)').map(([area, ms]) => ({ area, ms, pct: pct(ms) })).sort((a, b) => b.ms - a.ms).slice(0, top),
    inclusive: [...inclusive].map(([key, ms]) => ({ key, ms, pct: pct(ms) })).sort((a, b) => b.ms - a.ms).slice(0, top),
  };
}

export function printSummary(summary, log = console.log) {
  log(`profile: ${(summary.totalMs / 1000).toFixed(1)} s sampled, ${(summary.busyMs / 1000).toFixed(1)} s busy (percentages are of busy time)`);
  log('\nself time by area:');
  for (const a of summary.areas) log(`  ${a.pct.toFixed(1).padStart(5)}%  ${a.area}`);
  log('\ntop functions by self time:');
  for (const e of summary.self) log(`  ${e.pct.toFixed(1).padStart(5)}%  ${e.key}  [${e.area}]`);
  log('\nunicrm functions by total (inclusive) time:');
  for (const e of summary.inclusive) log(`  ${e.pct.toFixed(1).padStart(5)}%  ${e.key}`);

}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node tools/bench/prof-top.mjs <file.cpuprofile> [--top N]');
    process.exit(2);
  }
  const topAt = process.argv.indexOf('--top');
  const top = topAt > 0 ? Number(process.argv[topAt + 1]) : 25;
  printSummary(summarise(JSON.parse(readFileSync(file, 'utf8')), top));
}
