// Shared helpers of the benchmark: request bodies of a given size, latency statistics, /proc readings.
import { PIPELINE_ID } from './upstream.mjs';
import { cpuMsOf, percentile, rssOf } from '../lib/measure.mjs';

export { cpuMsOf, percentile, rssOf };

/** The API's body limit (apps/api BODY_LIMIT '1mb' = 1 048 576 bytes, else 413). */
export const API_BODY_LIMIT = 1024 * 1024;
/** Headroom kept under the limit by the largest body. */
export const LIMIT_HEADROOM = 1024;

/**
 * Sizes of `remote_data`: `1k` and `64k` are the size of the serialised `remote_data` object itself; `1m` is
 * the largest `remote_data` whose whole unified request body (name, pipeline, position and remote_data) is
 * API_BODY_LIMIT - LIMIT_HEADROOM bytes, i.e. 1 KiB under the API's 1 MiB limit.
 */
export const SIZES = {
  '1k': { label: '1 KiB', remoteDataBytes: 1024 },
  '64k': { label: '64 KiB', remoteDataBytes: 64 * 1024 },
  '1m': { label: '~1 MiB', bodyBytes: API_BODY_LIMIT - LIMIT_HEADROOM },
};

const bytes = (value) => Buffer.byteLength(JSON.stringify(value));

/**
 * How `remote_data` is made up. `fields` (default): a description, a percent and 16 custom fields whose values grow
 * with the size (a CRM record has tens of fields, some of them long text). `wide`: custom fields of 100 characters,
 * as many as the size takes (8 728 keys at ~1 MiB): the worst case for every JSON step, since V8 keeps objects with
 * that many keys in dictionary mode.
 */
export const SHAPES = ['fields', 'wide'];
const FIELDS = 16;

/**
 * A `remote_data` of Pipeliner fields (`description`, `percent`, custom fields `cf_bench_00001`, ...), padded in
 * the description to the exact size.
 * @param missing (remoteData) => how many bytes are still missing (0 when the target is met exactly)
 */
function remoteDataOf(missing, shape) {
  const remote = { description: 'Benchmark stage. ', percent: 40 };
  const key = (i) => `cf_bench_${String(i).padStart(5, '0')}`;
  if (shape === 'wide') {
    const field = 'x'.repeat(100);
    // Each field costs the same number of bytes ("cf_bench_00001":"xxx...",): add as many as fit in one go,
    // leaving ~250 bytes for the description's padding.
    const perField = Buffer.byteLength(`"${key(1)}":"${field}",`);
    const n = Math.max(0, Math.floor((missing(remote) - 250) / perField));
    for (let i = 1; i <= n; i++) remote[key(i)] = field;
  } else {
    const overhead = Buffer.byteLength(`"${key(1)}":"",`);
    const length = Math.max(1, Math.floor((missing(remote) - 64) / FIELDS) - overhead);
    for (let i = 1; i <= FIELDS; i++) remote[key(i)] = 'x'.repeat(length);
  }
  const left = missing(remote);
  if (left < 0) throw new Error('remote_data overshoots its target size');
  remote.description += 'd'.repeat(left);
  if (missing(remote) !== 0) throw new Error('remote_data could not be sized exactly');
  return remote;
}

/**
 * The bodies of one size: `unified` for POST /unified/crm/stages, `step` for Pipeliner's POST /entities/Steps
 * (what unicrm sends upstream: name, pipeline_id, sort_order, remote_data merged in).
 */
export function bodiesFor(size, shape = 'fields') {
  const spec = SIZES[size];
  if (!spec) throw new Error(`unknown size ${size}; known: ${Object.keys(SIZES).join(', ')}`);
  if (!SHAPES.includes(shape)) throw new Error(`unknown remote_data shape ${shape}; known: ${SHAPES.join(', ')}`);
  const head = { name: 'Contract Sent', pipeline: { id: PIPELINE_ID }, position: 3 };
  const remoteData =
    spec.remoteDataBytes !== undefined
      ? remoteDataOf((r) => spec.remoteDataBytes - bytes(r), shape)
      : remoteDataOf((r) => spec.bodyBytes - bytes({ ...head, remote_data: r }), shape);
  const unified = { ...head, remote_data: remoteData };
  const step = { name: head.name, pipeline_id: PIPELINE_ID, sort_order: head.position, ...remoteData };
  return {
    size,
    shape,
    label: spec.label,
    unified,
    step,
    unifiedText: JSON.stringify(unified),
    stepText: JSON.stringify(step),
    remoteDataBytes: bytes(remoteData),
    remoteDataKeys: Object.keys(remoteData).length,
  };
}

/** p50/p99/p99.9 of latencies in ms. */
export function latencyStats(latencies) {
  const sorted = Float64Array.from(latencies).sort();
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), p999: percentile(sorted, 99.9), max: sorted.at(-1) ?? NaN };
}

export function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A growable list of latencies (ms), bounded in count. */
export class LatencyRecorder {
  constructor(limit = 20_000_000) {
    this.values = new Float64Array(65_536);
    this.count = 0;
    this.limit = limit;
  }
  add(ms) {
    if (this.count === this.values.length) {
      if (this.count >= this.limit) return;
      const next = new Float64Array(this.values.length * 2);
      next.set(this.values);
      this.values = next;
    }
    this.values[this.count++] = ms;
  }
  stats() {
    return latencyStats(this.values.subarray(0, this.count));
  }
}

export const MiB = 1024 * 1024;

/**
 * What the benchmark measures (docs/benchmarks.md "Scenarios"): `create` (POST /unified/crm/stages with a body of
 * each size), `list` (GET /unified/crm/stages?limit=100: a page of 100 stages) and `get` (GET /unified/crm/stages/:id).
 */
export const SCENARIOS = ['create', 'list', 'get'];
/** The page size of the `list` scenario: Pipeliner's largest page (`first=100`), asked as unicrm's `limit=100`. */
export const LIST_LIMIT = 100;

/**
 * One scenario's work: its name, what its figures are labelled with, and for `create` the bodies of `size`.
 * @throws Error for an unknown scenario, size or shape
 */
export function workOf(scenario, size = '1k', shape = 'fields') {
  if (scenario === 'create') {
    const bodies = bodiesFor(size, shape);
    return { scenario, size, label: bodies.label, bodies };
  }
  if (scenario === 'list') return { scenario, size: null, label: `page of ${LIST_LIMIT}` };
  if (scenario === 'get') return { scenario, size: null, label: 'one stage' };
  throw new Error(`unknown scenario ${scenario}; known: ${SCENARIOS.join(', ')}`);
}

/**
 * Parses `--scenario create,list,get`: known names, no repeats, at least one.
 * @throws Error naming what is wrong
 */
export function parseScenarios(text) {
  const names = String(text).split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new Error(`--scenario needs one or more of ${SCENARIOS.join(', ')}`);
  for (const name of names) if (!SCENARIOS.includes(name)) throw new Error(`unknown scenario ${name}; known: ${SCENARIOS.join(', ')}`);
  if (new Set(names).size !== names.length) throw new Error('--scenario names a scenario twice');
  return names;
}
