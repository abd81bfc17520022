// Pure helpers of the soak (tools/soak/soak.mjs): options, the fault scheduler, the client's retry policy,
// reconciliation against the sandbox's Steps, and /proc readings. No I/O except rssOf; tested by lib.test.mjs.
import { cpuMsOf, percentile, rssOf } from '../lib/measure.mjs';

export { cpuMsOf, percentile, rssOf };

/** Pipeliner sandbox defaults (docs/pipeliner-sandbox.md). */
export const SANDBOX = {
  spaceId: 'sandbox_space',
  username: 'sandbox-api-token',
  password: 'sandbox-api-password',
  salesPipelineId: '00000000-5a1e-4000-8000-000000000001',
};

export const MiB = 1024 * 1024;

/** Statuses from unicrm after which a well-behaved client retries the same Idempotency-Key. */
export const RETRYABLE_STATUSES = new Set([409, 429, 502, 503, 504]);

export const HELP = `usage: npm run soak -- [options]          (builds api and sandboxes, then runs tools/soak/soak.mjs)
       node tools/soak/soak.mjs [options]  (against what is already in dist/)

load
  --minutes <n>          how long new creates are started (default 1; at most 60)
  --max-requests <n>     cap on HTTP requests to unicrm, retries included (default 100000)
  --concurrency <n>      creates in flight at once (default 8)
  --rate <n>             at most n new creates started per second; 0 = as fast as the concurrency allows (default 0)
  --budget-ms <ms>       time budget of one logical create, retries and waits included (default 30000)
  --attempt-timeout-ms <ms>  the client's timeout of one HTTP request to unicrm (default 10000)
  --remote-timeout-ms <ms>   UNICRM_REMOTE_TIMEOUT_MS given to the API (default 1500)

nodes
  --nodes <n>            API processes (default 1; at most 8); every attempt goes to the next node in turn, so
                         the retries of one create (same Idempotency-Key) reach other nodes
  --store <s>            sqlite (default; one node only) or postgres: a throwaway PostgreSQL cluster (Debian's
                         postgresql package) shared by the nodes

faults, in percent of the create calls unicrm makes to the sandbox (POST /entities/Steps)
  --p503 <pct>           503 answers (default 5)
  --ptimeout <pct>       timeouts (default 2): half slow answers (--latency-ms, the write still happens),
                         half hung requests (never answered, nothing written)
  --preset <pct>         connection resets before any answer (default 1)
  --ptruncated <pct>     the write happens, then its answer breaks off half-way (default 0)
  --latency-ms <ms>      delay of a slow answer (default 2500; must exceed --remote-timeout-ms)
  --burst-every <s>      a 429 burst every ~s seconds (default 30; 0 = none)
  --burst-size <n>       requests of any kind a burst answers 429 (default 20)
  --burst-retry-after <s>  Retry-After of the burst's 429s (default 1)
  --no-faults            no faults at all (a baseline)
  --seed <n>             seed of the fault plan and the jitter (default: random; printed)

output
  --progress <s>         a progress line every s seconds (default 30)
  --json <file>          also write every figure as JSON
  --keep                 keep the temporary directory (API data, api.log, sandbox.log)
  --help`;

/**
 * Parses the command line of the soak.
 * @param {string[]} argv arguments after the script name
 * @returns {object} the options, defaults filled in
 * @throws Error naming the option when a value is missing or out of range
 */
export function parseArgs(argv) {
  const o = {
    minutes: 1, maxRequests: 100_000, concurrency: 8, rate: 0, budgetMs: 30_000, attemptTimeoutMs: 10_000,
    remoteTimeoutMs: 1500, p503: 5, ptimeout: 2, preset: 1, ptruncated: 0, latencyMs: 2500,
    burstEvery: 30, burstSize: 20, burstRetryAfter: 1, faults: true, seed: undefined,
    progress: 30, json: undefined, keep: false, help: false, nodes: 1, store: 'sqlite',
  };
  const numeric = {
    '--minutes': 'minutes', '--max-requests': 'maxRequests', '--concurrency': 'concurrency', '--rate': 'rate',
    '--budget-ms': 'budgetMs', '--attempt-timeout-ms': 'attemptTimeoutMs', '--remote-timeout-ms': 'remoteTimeoutMs',
    '--p503': 'p503', '--ptimeout': 'ptimeout', '--preset': 'preset', '--ptruncated': 'ptruncated',
    '--latency-ms': 'latencyMs', '--burst-every': 'burstEvery', '--burst-size': 'burstSize',
    '--burst-retry-after': 'burstRetryAfter', '--seed': 'seed', '--progress': 'progress', '--nodes': 'nodes',
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let inline;
    if (arg.startsWith('--') && arg.includes('=')) [arg, inline] = [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new Error(`${arg} needs a value`);
      return v;
    };
    if (numeric[arg]) {
      const text = value();
      const n = Number(text);
      if (!Number.isFinite(n)) throw new Error(`${arg} must be a number, not "${text}"`);
      o[numeric[arg]] = n;
    } else if (arg === '--json') o.json = value();
    else if (arg === '--keep') o.keep = true;
    else if (arg === '--store') o.store = value();
    else if (arg === '--no-faults') o.faults = false;
    else if (arg === '--help' || arg === '-h') o.help = true;
    else throw new Error(`unknown option ${arg} (see --help)`);
  }
  const check = (ok, message) => {
    if (!ok) throw new Error(message);
  };
  const int = (n) => Number.isInteger(n);
  check(o.minutes > 0 && o.minutes <= 60, '--minutes must be in (0, 60]');
  check(int(o.maxRequests) && o.maxRequests >= 1 && o.maxRequests <= 10_000_000, '--max-requests must be 1..10000000');
  check(int(o.concurrency) && o.concurrency >= 1 && o.concurrency <= 256, '--concurrency must be 1..256');
  check(o.rate >= 0 && o.rate <= 100_000, '--rate must be 0..100000');
  check(int(o.budgetMs) && o.budgetMs >= 100 && o.budgetMs <= 600_000, '--budget-ms must be 100..600000');
  check(int(o.attemptTimeoutMs) && o.attemptTimeoutMs >= 100 && o.attemptTimeoutMs <= 120_000, '--attempt-timeout-ms must be 100..120000');
  check(int(o.remoteTimeoutMs) && o.remoteTimeoutMs >= 50 && o.remoteTimeoutMs <= 60_000, '--remote-timeout-ms must be 50..60000');
  check(int(o.latencyMs) && o.latencyMs >= 0 && o.latencyMs <= 600_000, '--latency-ms must be 0..600000');
  for (const key of ['p503', 'ptimeout', 'preset', 'ptruncated']) check(o[key] >= 0 && o[key] <= 100, `--${key} must be 0..100`);
  check(o.p503 + o.ptimeout + o.preset + o.ptruncated <= 100, 'the fault percentages add up to more than 100');
  check(o.burstEvery >= 0 && o.burstEvery <= 3600, '--burst-every must be 0..3600');
  check(int(o.burstSize) && o.burstSize >= 1 && o.burstSize <= 10_000, '--burst-size must be 1..10000');
  check(int(o.burstRetryAfter) && o.burstRetryAfter >= 0 && o.burstRetryAfter <= 60, '--burst-retry-after must be 0..60');
  check(o.progress >= 1 && o.progress <= 3600, '--progress must be 1..3600');
  check(int(o.nodes) && o.nodes >= 1 && o.nodes <= 8, '--nodes must be 1..8');
  check(o.store === 'sqlite' || o.store === 'postgres', '--store must be sqlite or postgres');
  check(o.nodes === 1 || o.store === 'postgres', '--nodes above 1 needs --store postgres (SQLite serves one host, one API)');
  check(o.seed === undefined || (int(o.seed) && o.seed >= 0 && o.seed < 2 ** 32), '--seed must be a whole number 0..4294967295');
  if (o.faults && o.ptimeout > 0) {
    check(o.latencyMs > o.remoteTimeoutMs, '--latency-ms must exceed --remote-timeout-ms, or a "timeout" fault is only a slow answer');
  }
  if (!o.faults) Object.assign(o, { p503: 0, ptimeout: 0, preset: 0, ptruncated: 0, burstEvery: 0 });
  return o;
}

/**
 * A small seeded pseudo-random generator (mulberry32): the same seed gives the same fault plan and jitter.
 * @param {number} seed 32-bit unsigned seed
 * @returns {() => number} a function returning floats in [0, 1)
 */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The path every create rule matches: unicrm's create call `POST .../entities/Steps` (a substring match). */
export const CREATE_PATH = '/entities/Steps';

/**
 * The kinds of per-create faults, each with the sandbox FaultRule it arms (docs/pipeliner-sandbox.md,
 * "Fault injection"). Each rule has `times: 1` and matches only `POST .../entities/Steps`.
 * @param {object} o parsed options (`p503`, `ptimeout`, `preset`, `ptruncated`, `latencyMs`)
 * @returns {{ kind: string, pct: number, rule: object, written: boolean, label: string }[]} kinds with a non-zero share
 */
export function faultMix(o) {
  const base = { method: 'POST', path: CREATE_PATH, times: 1 };
  return [
    { kind: '503', pct: o.p503, rule: { ...base, status: 503 }, written: false, label: '503 Service Unavailable' },
    { kind: 'slow', pct: o.ptimeout / 2, rule: { ...base, latencyMs: o.latencyMs }, written: true, label: `answer after ${o.latencyMs} ms (timeout; the write still happens)` },
    { kind: 'hang', pct: o.ptimeout / 2, rule: { ...base, hang: true }, written: false, label: 'never answered (timeout; nothing written)' },
    { kind: 'reset', pct: o.preset, rule: { ...base, reset: true }, written: false, label: 'connection reset before any answer' },
    { kind: 'truncated', pct: o.ptruncated, rule: { ...base, body: 'truncated' }, written: true, label: 'written, then the answer breaks off' },
  ].filter((k) => k.pct > 0);
}

/**
 * The FaultRule of a 429 burst: the next `size` requests to any Pipeliner entity route (creates, the pipeline-name
 * read, unicrm's own look-ups) answer 429 with `Retry-After`.
 */
export function burstRule(size, retryAfter) {
  return { path: '/entities/', times: size, status: 429, retryAfter };
}

/**
 * Which kind a FaultRule (as `GET /__sandbox/faults` lists it) was armed as, so rules left over at the end can be
 * told apart from the ones that were used.
 * @returns {string} '503', 'slow', 'hang', 'reset', 'truncated', 'burst429' or 'other'
 */
export function kindOfRule(rule) {
  if (rule.status === 429) return 'burst429';
  if (rule.status === 503) return '503';
  if (rule.hang) return 'hang';
  if (rule.reset) return 'reset';
  if (rule.body === 'truncated') return 'truncated';
  if (rule.latencyMs) return 'slow';
  return 'other';
}

/**
 * The fault scheduler. Create calls are counted in blocks of `blockSize` (default 100). At the start of each
 * block a plan is drawn: every kind gets `pct * blockSize / 100` slots (a fractional part becomes one more slot
 * with that probability, so the long-run share is exact), placed at random distinct positions of the block.
 * `next()` is called once per HTTP create sent to unicrm; when its position holds a fault, the caller arms that
 * kind's `times: 1` rule in the sandbox just before sending, and the rule takes the next create call that reaches
 * the sandbox (this one, or one of the few in flight next to it). So faults are spread, not bunched, and a retry
 * is no likelier to be hit than a first attempt.
 */
export class FaultScheduler {
  /**
   * @param {{ kind: string, pct: number, rule: object }[]} mix from {@link faultMix}
   * @param {() => number} random a [0, 1) generator
   * @param {number} blockSize requests per plan
   */
  constructor(mix, random, blockSize = 100) {
    this.mix = mix;
    this.random = random;
    this.blockSize = blockSize;
    this.position = 0;
    this.plan = [];
    this.planned = Object.fromEntries(mix.map((k) => [k.kind, 0]));
  }

  /** Draws the plan of the next block: an array of `blockSize` slots, each a kind entry or undefined. */
  drawPlan() {
    const slots = new Array(this.blockSize).fill(undefined);
    const order = Array.from({ length: this.blockSize }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    let next = 0;
    for (const entry of this.mix) {
      const exact = (entry.pct * this.blockSize) / 100;
      let count = Math.floor(exact) + (this.random() < exact - Math.floor(exact) ? 1 : 0);
      count = Math.min(count, this.blockSize - next);
      for (let c = 0; c < count; c++) slots[order[next++]] = entry;
      this.planned[entry.kind] += count;
    }
    return slots;
  }

  /**
   * Advances by one create call.
   * @returns {{ kind: string, rule: object } | undefined} the fault to arm before sending it, if any
   */
  next() {
    if (this.mix.length === 0) return undefined;
    if (this.position === 0) this.plan = this.drawPlan();
    const entry = this.plan[this.position];
    this.position = (this.position + 1) % this.blockSize;
    return entry && { kind: entry.kind, rule: entry.rule };
  }
}

/**
 * The client's wait before retry number `attempt` (1 = the first retry): capped exponential backoff with "equal
 * jitter" (half fixed, half random), so waits never collapse to zero and retries of many clients spread out.
 * A `Retry-After` (429, 409) is honoured: the wait is at least that long, plus up to 250 ms of jitter.
 * @param {number} attempt 1, 2, ...
 * @param {{ baseMs?: number, capMs?: number, retryAfterMs?: number, random: () => number }} options
 * @returns {number} milliseconds
 */
export function retryDelay(attempt, { baseMs = 200, capMs = 5000, retryAfterMs, random }) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  const backoff = ceiling / 2 + random() * (ceiling / 2);
  if (retryAfterMs !== undefined) return Math.max(backoff, retryAfterMs + random() * 250);
  return backoff;
}

/**
 * Reads a `Retry-After` header value: delay-seconds or an HTTP date.
 * @param {string | string[] | undefined} value
 * @param {number} now epoch ms
 * @returns {number | undefined} milliseconds to wait (capped at 60 s), or undefined when absent or unreadable
 */
export function parseRetryAfter(value, now = Date.now()) {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(text)) return Math.min(60_000, Number(text) * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.min(60_000, Math.max(0, date - now));
}

/** The statuses a create's attempts got, in order (`504 201`; `net` for a network error). */
function historyOf(create) {
  return (create.history ?? []).join(' ') || '?';
}

/**
 * Compares what the client was told with what the sandbox holds.
 * @param {Map<string, { outcome: 'created' | 'failed', id?: string, reason?: string, history?: (number | string)[] }>} creates
 *   by unique name; `history` = the status of each attempt
 * @param {{ id: string, name: string, pipeline_id: string | null, created?: string }[]} steps every Step listed
 * @param {string} prefix the run's name prefix (to spot steps of this run that no create asked for)
 * @param {string} pipelineId the pipeline every create named
 * @returns {object} counts and samples: duplicates (by the answers their create got), lost, unreported, wrongPipeline,
 *   strangers (steps of the run no create asked for), ...
 */
export function reconcile(creates, steps, prefix, pipelineId) {
  const byName = new Map();
  for (const step of steps) {
    if (typeof step.name !== 'string' || !step.name.startsWith(prefix)) continue;
    const list = byName.get(step.name) ?? [];
    list.push(step);
    byName.set(step.name, list);
  }
  const r = {
    stepsListed: steps.length, stepsOfRun: 0,
    duplicateNames: 0, duplicateExtraSteps: 0, duplicatesAfter201: 0, duplicatesAfterFailure: 0, duplicatesByHistory: {},
    lost: 0, lostNameAbsent: 0, lostIdMismatch: 0,
    unreported: 0, unreportedByReason: {}, failedAndAbsent: 0, createdAndPresent: 0,
    wrongPipeline: 0, strangers: 0,
    samples: { duplicates: [], lost: [], unreported: [], wrongPipeline: [], strangers: [] },
  };
  const sample = (list, value) => list.length < 5 && list.push(value);
  for (const [name, found] of byName) {
    r.stepsOfRun += found.length;
    const create = creates.get(name);
    if (!create) {
      r.strangers += found.length;
      sample(r.samples.strangers, name);
      continue;
    }
    if (found.length > 1) {
      r.duplicateNames++;
      r.duplicateExtraSteps += found.length - 1;
      if (create.outcome === 'created') r.duplicatesAfter201++;
      else r.duplicatesAfterFailure++;
      const history = historyOf(create);
      r.duplicatesByHistory[history] = (r.duplicatesByHistory[history] ?? 0) + 1;
      sample(r.samples.duplicates, {
        name, answers: history, told: create.outcome === 'created' ? `201 ${create.id}` : `failed: ${create.reason}`,
        steps: found.map((s) => `${s.id} created ${s.created ?? '?'}`),
      });
    }
    for (const step of found) {
      if (step.pipeline_id !== pipelineId) {
        r.wrongPipeline++;
        sample(r.samples.wrongPipeline, { name, id: step.id, pipeline_id: step.pipeline_id });
      }
    }
  }
  for (const [name, create] of creates) {
    const found = byName.get(name) ?? [];
    if (create.outcome === 'created') {
      if (found.length === 0) {
        r.lost++;
        r.lostNameAbsent++;
        sample(r.samples.lost, { name, id: create.id, why: 'no step has this name' });
      } else if (!found.some((s) => s.id === create.id)) {
        r.lost++;
        r.lostIdMismatch++;
        sample(r.samples.lost, { name, id: create.id, why: `answered id not found; the name's steps: ${found.map((s) => s.id).join(', ')}` });
      } else {
        r.createdAndPresent++;
      }
    } else if (found.length > 0) {
      r.unreported++;
      r.unreportedByReason[create.reason] = (r.unreportedByReason[create.reason] ?? 0) + 1;
      sample(r.samples.unreported, { name, reason: create.reason, answers: historyOf(create), ids: found.map((s) => s.id) });
    } else {
      r.failedAndAbsent++;
    }
  }
  return r;
}
