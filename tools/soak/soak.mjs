// unicrm soak: steady create load through the API with faults injected in the Pipeliner sandbox, then a
// reconciliation of what the client was told against the Steps the sandbox holds. Usage and how to read the
// output: tools/soak/README.md (or --help).
//
// Runs against the BUILT code in dist/ (`npm run soak` builds api and sandboxes first). Both servers are
// child processes listening on 127.0.0.1; the load is bounded by --minutes and --max-requests and every create by
// its --budget-ms, and the whole run by a hard deadline, so it always stops by itself.
import { execFileSync, spawn } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import {
  burstRule, cpuMsOf, FaultScheduler, faultMix, HELP, kindOfRule, MiB, parseArgs, parseRetryAfter, percentile, reconcile,
  retryDelay, RETRYABLE_STATUSES, rssOf, SANDBOX, seededRandom,
} from './lib.mjs';

const ROOT = resolve(new URL('../../', import.meta.url).pathname);
const API_MAIN = 'dist/apps/api/src/main.js';
const SANDBOX_MAIN = 'dist/apps/sandboxes/src/main.js';
/** Only the Pipeliner sandbox: without a name, main.js would also start every other registered provider's. */
const SANDBOX_ARGS = ['pipeliner'];
const API_TOKEN = `soak-token-${randomBytes(16).toString('hex')}`;
/** The throwaway PostgreSQL cluster of --store postgres, stopped on every exit path. */
let cluster;
/** Time a child gets to stop after SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------------------------------------------------------
// child processes

/** Children still running, so every exit path (error, Ctrl-C, exit) can stop them. */
const children = new Set();
/** Aborted on Ctrl-C / SIGTERM: the load, waits and in-flight requests stop; clean-up runs in main's finally. */
const interrupt = new AbortController();
// Every in-flight request and wait listens to it (concurrency + timers), more than the default 10.
setMaxListeners(0, interrupt.signal);
/** Intervals and timeouts of the run, cleared on every exit path. */
const timers = new Set();
/** Set when a server dies during the run: the run is aborted and exits 2 with this message. */
let fatal;
const clearTimers = () => {
  for (const t of timers) clearTimeout(t);
  timers.clear();
};

/** The environment of a child: ours without unicrm/sandbox settings (so a developer's shell cannot leak in), plus `extra`. */
function childEnv(extra) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('UNICRM_') && !k.startsWith('PIPELINER_SANDBOX_') && k !== 'PORT' && k !== 'HOST'),
  );
  return { ...env, NODE_ENV: 'production', ...extra };
}

/**
 * Starts `node <script>` with its stdout and stderr copied to `logPath`, and waits until stdout matches `ready`.
 * @returns {Promise<{ name: string, child: import('node:child_process').ChildProcess, pid: number, match: RegExpExecArray, exited: Promise<{ code: number | null, signal: string | null }> }>}
 */
async function startChild(name, script, env, logPath, ready, timeoutMs = 20_000, args = []) {
  const log = createWriteStream(logPath, { flags: 'a' });
  const child = spawn(process.execPath, [join(ROOT, script), ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = { name, child, pid: child.pid, logPath };
  proc.exited = new Promise((done) => child.once('exit', (code, signal) => done({ code, signal })));
  children.add(proc);
  proc.exited.then(({ code, signal }) => {
    children.delete(proc);
    log.end();
    if (!proc.stopping && !interrupt.signal.aborted) {
      fatal = `${name} (pid ${proc.pid}) exited by itself (${signal ?? `code ${code}`}) during the run; last lines of ${logPath}:\n${tail(logPath)}`;
      interrupt.abort();
    }
  });
  child.stderr.pipe(log, { end: false });
  let text = '';
  proc.match = await new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`${name} did not start within ${timeoutMs / 1000} s; see ${logPath}`)), timeoutMs);
    const onData = (chunk) => {
      log.write(chunk);
      if (text === undefined) return;
      text += chunk;
      const match = ready.exec(text);
      if (match) {
        clearTimeout(timer);
        text = undefined;
        done(match);
      }
    };
    child.stdout.on('data', onData);
    proc.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      fail(new Error(`${name} exited (${signal ?? code}) before it was ready; see ${logPath}:\n${tail(logPath)}`));
    });
    interrupt.signal.addEventListener('abort', () => fail(new Error('interrupted')), { once: true });
  });
  return proc;
}

/** The checked-out commit, for telling runs apart (read-only git). */
function commit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function tail(path, lines = 5) {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => (l.length > 300 ? `${l.slice(0, 300)}...` : l)).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Stops a child with SIGTERM and waits for it (SIGKILL after {@link STOP_TIMEOUT_MS}).
 * @returns {Promise<{ code: number | null, signal: string | null, ms: number, killed: boolean }>}
 */
async function stopChild(proc) {
  const started = performance.now();
  proc.stopping = true;
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return { ...(await proc.exited), ms: 0, killed: false };
  proc.child.kill('SIGTERM');
  const result = await Promise.race([proc.exited, sleep(STOP_TIMEOUT_MS).then(() => undefined)]);
  if (result) return { ...result, ms: performance.now() - started, killed: false };
  proc.child.kill('SIGKILL');
  return { ...(await proc.exited), ms: performance.now() - started, killed: true };
}

/** Last resort on any exit path: no child outlives the soak. */
function killAllSync() {
  for (const proc of children) if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
}

// ---------------------------------------------------------------------------------------------------------------
// small HTTP helpers (sandbox admin and listing; not part of the measured load)

const basicAuth = `Basic ${Buffer.from(`${SANDBOX.username}:${SANDBOX.password}`).toString('base64')}`;

async function http(url, { method = 'GET', headers = {}, body, timeoutMs = 10_000 } = {}) {
  const res = await request(url, {
    method, headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: interrupt.signal,
  });
  const text = await res.body.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

async function expectStatus(promise, status, what) {
  const res = await promise;
  if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${res.text.slice(0, 500)}`);
  return res;
}

// ---------------------------------------------------------------------------------------------------------------
// the run

const fmt = (v, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : '-');
const mib = (bytes) => fmt(bytes / MiB);
const clock = (ms) => `${Math.floor(ms / 60_000)}:${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}`;

async function run(o, dir) {
  const seed = o.seed ?? randomBytes(4).readUInt32LE(0);
  const random = seededRandom(seed);
  const runId = randomBytes(3).toString('hex');
  const prefix = `soak-${runId}-`;
  const mix = o.faults ? faultMix(o) : [];
  const info = { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, totalMemMiB: Math.round(totalmem() / MiB), loadavg: loadavg().map((x) => Number(x.toFixed(2))) };

  console.log(`unicrm soak ${runId}: ${o.minutes} min, concurrency ${o.concurrency}${o.rate ? `, at most ${o.rate} creates/s` : ''}, at most ${o.maxRequests} requests, ` +
    `per-create budget ${o.budgetMs / 1000} s, seed ${seed}`);
  console.log(`machine: node ${info.node}, ${info.cpus} × ${info.cpuModel}, ${info.totalMemMiB} MiB RAM, load average ${info.loadavg.join(' ')}`);
  console.log(`code: dist/ as built from the working tree at commit ${commit()} (uncommitted changes included)`);
  if (mix.length || o.burstEvery) {
    console.log('faults, per 100 create calls to the sandbox (POST /entities/Steps), placed at random in each block of 100:');
    for (const k of mix) console.log(`  ${fmt(k.pct, 1).padStart(5)} × ${k.label}`);
    if (o.burstEvery) console.log(`  and every ~${o.burstEvery} s a burst: the next ${o.burstSize} requests to any entity route answer 429, Retry-After ${o.burstRetryAfter} s`);
  } else {
    console.log('faults: none (--no-faults)');
  }

  // 1. the two servers
  const sandbox = await startChild(
    'sandbox', SANDBOX_MAIN, childEnv({ PIPELINER_SANDBOX_PORT: '0', PIPELINER_SANDBOX_FAULTS: '1' }), join(dir, 'sandbox.log'),
    /service URL\s*:\s*(http:\/\/\S+)/, undefined, SANDBOX_ARGS,
  );
  const sandboxUrl = sandbox.match[1];
  // With --store postgres: a throwaway cluster (the test helper of @unicrm/store, as built in dist/), one key for all nodes.
  let store = { UNICRM_DATA_DIR: join(dir, 'data') };
  if (o.store === 'postgres') {
    const helper = join(ROOT, 'dist/libs/store/src/testing/postgres-cluster.js');
    if (!existsSync(helper)) throw new Error(`${helper} is missing: build the store first (npm run soak builds it)`);
    const { postgresAvailable, startTestCluster } = createRequire(import.meta.url)(helper);
    if (!postgresAvailable()) throw new Error("--store postgres needs PostgreSQL's programs (Debian's postgresql package)");
    cluster = await startTestCluster();
    store = { UNICRM_DATABASE_URL: cluster.url, UNICRM_ENCRYPTION_KEY: randomBytes(32).toString('base64') };
    console.log(`store: PostgreSQL ${cluster.url} (a throwaway cluster), ${o.nodes} node${o.nodes > 1 ? 's' : ''}`);
  }
  const apis = [];
  for (let n = 0; n < o.nodes; n++) {
    apis.push(
      await startChild(
        o.nodes > 1 ? `API ${n + 1}` : 'API', API_MAIN,
        childEnv({
          PORT: '0', HOST: '127.0.0.1', UNICRM_API_TOKEN: API_TOKEN, UNICRM_LOG_LEVEL: 'warn', UNICRM_METRICS_PORT: 'off', ...store,
          UNICRM_REMOTE_TIMEOUT_MS: String(o.remoteTimeoutMs), UNICRM_CONNECT_TIMEOUT_MS: String(o.remoteTimeoutMs),
          UNICRM_RATE_LIMIT_PER_TOKEN: '0', UNICRM_RATE_LIMIT_PER_ACCOUNT: '0',
        }),
        join(dir, o.nodes > 1 ? `api-${n + 1}.log` : 'api.log'),
        /unicrm API listening on (http:\/\/\S+)/,
      ),
    );
  }
  const api = apis[0];
  const apiUrl = api.match[1];
  const apiUrls = apis.map((a) => a.match[1]);
  console.log(`processes: soak pid ${process.pid}; sandbox pid ${sandbox.pid} ${sandboxUrl}; ${apis.map((a) => `${a.name} pid ${a.pid} ${a.match[1]}`).join('; ')} ` +
    `(UNICRM_REMOTE_TIMEOUT_MS=${o.remoteTimeoutMs}, rate limits off, logs at warn)`);

  const auth = { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' };
  const account = await expectStatus(
    http(`${apiUrl}/integrated-account`, {
      method: 'POST', headers: auth,
      body: JSON.stringify({
        integration: 'pipeliner', tenant_id: `soak-${runId}`,
        context: { service_url: sandboxUrl, space_id: SANDBOX.spaceId, username: SANDBOX.username, password: SANDBOX.password },
      }),
    }),
    201, 'POST /integrated-account',
  );
  const accountId = account.json.id;
  const faultsUrl = `${sandboxUrl}/__sandbox/faults`;
  await expectStatus(http(faultsUrl, { method: 'DELETE' }), 200, 'DELETE /__sandbox/faults');

  // 2. the load
  // Every attempt goes to the next node in turn: a create's retries reach other nodes than its first attempt.
  let nextNode = 0;
  const createUrl = () => `${apiUrls[nextNode++ % apiUrls.length]}/unified/crm/stages?integrated_account_id=${accountId}`;
  const agent = new Agent({ connections: o.concurrency + 2, keepAliveTimeout: 4000, headersTimeout: o.attemptTimeoutMs, bodyTimeout: o.attemptTimeoutMs });
  const s = {
    seq: 0, requests: 0, inFlight: 0, creates: new Map(),
    created: 0, createdAfterRetries: 0, replayed: 0, failed: 0, failedByReason: {},
    statuses: {}, own5xx: 0, own5xxByStatus: {}, own5xxSamples: [], otherSamples: [],
    durations: [], maxAttempts: 0, noPipelineName: 0,
    armed: {}, armErrors: 0, bursts: 0, unused: {},
  };
  const count = (map, key, n = 1) => (map[key] = (map[key] ?? 0) + n);
  const scheduler = new FaultScheduler(mix, random);
  let faultsOn = mix.length > 0;

  const arm = async (kind, rule) => {
    try {
      await expectStatus(http(faultsUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rule) }), 201, 'arm a fault');
      count(s.armed, kind, rule.times ?? 1); // in requests: a burst rule counts its size
    } catch (error) {
      if (!interrupt.signal.aborted) s.armErrors++;
      if (s.armErrors === 1) console.log(`  could not arm a fault: ${error.message}`);
    }
  };

  /** One HTTP attempt of a create. */
  const send = async (body, key) => {
    try {
      const res = await request(createUrl(), {
        dispatcher: agent, method: 'POST', headers: { ...auth, 'idempotency-key': key }, body, signal: interrupt.signal,
      });
      const text = await res.body.text();
      let json;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.statusCode, headers: res.headers, text, json };
    } catch (error) {
      const code = error?.code ?? error?.cause?.code ?? error?.name ?? 'error';
      return { status: 0, network: code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' ? `client timeout (${code})` : code, text: String(error?.message ?? error) };
    }
  };

  const label = (res) => (res.network ? `network ${res.network}` : `HTTP ${res.status}`);

  /** One logical create: a unique name and one Idempotency-Key, retried as a well-behaved client does. */
  const logicalCreate = async (seq, { faults = true } = {}) => {
    const name = `${prefix}${String(seq).padStart(6, '0')}`;
    const key = `${prefix}${seq}-${randomBytes(6).toString('hex')}`;
    const body = JSON.stringify({ name, pipeline: { id: SANDBOX.salesPipelineId } });
    const rec = { outcome: 'pending', attempts: 0, history: [] };
    s.creates.set(name, rec);
    const fail = (reason) => {
      rec.outcome = 'failed';
      rec.reason = reason;
      s.failed++;
      count(s.failedByReason, reason);
      return rec;
    };
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      if (interrupt.signal.aborted) return fail('interrupted');
      if (s.requests >= o.maxRequests) return fail(`${rec.last ?? 'not sent'}; request cap reached`);
      s.requests++;
      if (faults && faultsOn) {
        const fault = scheduler.next();
        if (fault) await arm(fault.kind, fault.rule);
      }
      const res = await send(body, key);
      rec.attempts = attempt;
      rec.last = label(res);
      rec.history.push(res.network ? 'net' : res.status);
      s.maxAttempts = Math.max(s.maxAttempts, attempt);
      count(s.statuses, res.network ? `network: ${res.network}` : String(res.status));
      if (res.status === 201) {
        rec.outcome = 'created';
        rec.id = res.json?.id;
        s.created++;
        if (attempt > 1) s.createdAfterRetries++;
        if (res.headers['idempotent-replayed'] === 'true') {
          s.replayed++;
          rec.replayed = true;
        }
        s.durations.push(performance.now() - started);
        if (res.json?.pipeline?.name === undefined) s.noPipelineName++;
        if (typeof rec.id !== 'string' || res.json?.name !== name) s.otherSamples.length < 5 && s.otherSamples.push({ name, why: '201 without this id/name', body: res.text.slice(0, 300) });
        return rec;
      }
      if (res.status >= 500 && res.json?.truto_is_remote_error !== true) {
        s.own5xx++;
        count(s.own5xxByStatus, String(res.status));
        if (s.own5xxSamples.length < 5) s.own5xxSamples.push({ name, status: res.status, requestId: res.headers['x-request-id'], body: res.text.slice(0, 400) });
      }
      const retryable = res.network !== undefined || RETRYABLE_STATUSES.has(res.status);
      if (!retryable) {
        if (s.otherSamples.length < 5) s.otherSamples.push({ name, status: res.status, body: res.text.slice(0, 400) });
        return fail(`${label(res)}, not retryable`);
      }
      const retryAfterMs = res.status === 429 || res.status === 409 ? parseRetryAfter(res.headers?.['retry-after']) : undefined;
      const wait = retryDelay(attempt, { retryAfterMs, random });
      if (performance.now() - started + wait > o.budgetMs) return fail(`${label(res)}; budget exhausted after ${attempt} attempts`);
      await sleep(wait, undefined, { signal: interrupt.signal }).catch(() => {});
    }
  };

  // RSS: start (idle, account connected), warm, middle, end; sampled every second for the maximum.
  const rss = { start: rssOf(api.pid), warm: NaN, middle: NaN, end: NaN, max: rssOf(api.pid) };
  const sandboxRss = { start: rssOf(sandbox.pid), end: NaN, max: rssOf(sandbox.pid) };

  // Preflight: one create without faults must work, or the run stops here with the answer.
  const first = await logicalCreate(s.seq++, { faults: false });
  if (first.outcome !== 'created') {
    throw new Error(`the first create (no faults) failed: ${first.reason} ${JSON.stringify(s.otherSamples[0] ?? {})}; see ${api.logPath}`);
  }

  const loadMs = o.minutes * 60_000;
  const t0 = performance.now();
  const elapsed = () => performance.now() - t0;
  const loadOver = () => interrupt.signal.aborted || elapsed() >= loadMs || s.requests >= o.maxRequests;
  const warmAt = Math.min(loadMs / 2, Math.max(10_000, loadMs * 0.1));
  timers.add(setInterval(() => {
    const now = rssOf(api.pid);
    rss.max = Math.max(rss.max, now);
    sandboxRss.max = Math.max(sandboxRss.max, rssOf(sandbox.pid));
    if (Number.isNaN(rss.warm) && elapsed() >= warmAt) rss.warm = now;
    if (Number.isNaN(rss.middle) && elapsed() >= loadMs / 2) rss.middle = now;
  }, 1000));
  // The API's CPU: every node's together.
  const cpuNow = () => ({ api: apis.reduce((sum, a) => sum + cpuMsOf(a.pid), 0), sandbox: cpuMsOf(sandbox.pid), soak: process.cpuUsage() });
  let lastTick = { at: 0, created: s.created, requests: s.requests, cpu: cpuNow() };
  timers.add(setInterval(() => {
    const at = elapsed();
    const secs = (at - lastTick.at) / 1000;
    const st = s.statuses;
    const cpu = cpuNow();
    const soakCpuMs = (cpu.soak.user + cpu.soak.system - lastTick.cpu.soak.user - lastTick.cpu.soak.system) / 1000;
    const pct = (ms) => fmt((100 * ms) / (at - lastTick.at), 0);
    const other = Object.entries(st).filter(([k]) => !['201', '409', '429', '502', '503', '504'].includes(k)).reduce((n, [, v]) => n + v, 0);
    console.log(
      `[${clock(at)}] creates ${s.seq} (201 ${s.created}, failed ${s.failed}, in flight ${s.inFlight}), ${fmt((s.created - lastTick.created) / secs, 0)} created/s; ` +
        `requests ${s.requests} (${fmt((s.requests - lastTick.requests) / secs, 0)}/s): 503 ${st['503'] ?? 0}, 504 ${st['504'] ?? 0}, 502 ${st['502'] ?? 0}, 429 ${st['429'] ?? 0}, 409 ${st['409'] ?? 0}, other ${other}; ` +
        `unicrm 5xx ${s.own5xx}; API RSS ${mib(rssOf(api.pid))} MiB; CPU % API ${pct(cpu.api - lastTick.cpu.api)}, sandbox ${pct(cpu.sandbox - lastTick.cpu.sandbox)}, soak ${pct(soakCpuMs)}`,
    );
    lastTick = { at, created: s.created, requests: s.requests, cpu };
  }, o.progress * 1000));
  let nextBurst;
  const scheduleBurst = () => {
    if (!o.burstEvery || !faultsOn) return;
    timers.delete(nextBurst);
    nextBurst = setTimeout(async () => {
      if (!faultsOn) return;
      s.bursts++;
      await arm('burst429', burstRule(o.burstSize, o.burstRetryAfter));
      scheduleBurst();
    }, o.burstEvery * 1000 * (0.7 + 0.6 * random()));
    timers.add(nextBurst);
  };
  scheduleBurst();

  let nextStart = 0;
  const rateGate = async () => {
    if (!o.rate) return;
    const now = performance.now();
    const at = Math.max(now, nextStart);
    nextStart = at + 1000 / o.rate;
    if (at > now) await sleep(at - now, undefined, { signal: interrupt.signal }).catch(() => {});
  };
  const worker = async () => {
    while (!loadOver()) {
      await rateGate();
      if (loadOver()) break;
      s.inFlight++;
      try {
        await logicalCreate(s.seq++);
      } finally {
        s.inFlight--;
      }
    }
  };
  const workers = Promise.all(Array.from({ length: o.concurrency }, worker));
  while (!loadOver()) await sleep(100, undefined, { signal: interrupt.signal }).catch(() => {});
  const loadEndedAt = elapsed();
  const stoppedBy = interrupt.signal.aborted ? 'interrupted' : s.requests >= o.maxRequests ? `the request cap (${o.maxRequests})` : 'time';

  // 3. end of the load: no new faults; rules left unused are counted and cleared, then in-flight creates finish.
  faultsOn = false;
  clearTimeout(nextBurst);
  const collectUnused = async () => {
    const listed = await expectStatus(http(faultsUrl), 200, 'GET /__sandbox/faults').catch(() => undefined);
    for (const rule of listed?.json?.data ?? []) count(s.unused, kindOfRule(rule), rule.times ?? 1);
    await http(faultsUrl, { method: 'DELETE' }).catch(() => undefined);
  };
  if (interrupt.signal.aborted) throw new Error('interrupted');
  await collectUnused();
  console.log(`load stopped at ${clock(loadEndedAt)} by ${stoppedBy}; faults cleared; waiting for ${s.inFlight} creates in flight (at most ${(o.budgetMs + o.attemptTimeoutMs) / 1000} s)`);
  const drainStart = performance.now();
  const drained = await Promise.race([workers.then(() => true), sleep(o.budgetMs + o.attemptTimeoutMs + 5000, false, { signal: interrupt.signal }).catch(() => false)]);
  if (!drained) {
    interrupt.abort();
    throw new Error('creates in flight did not finish within their budget');
  }
  const drainMs = performance.now() - drainStart;
  clearTimers();
  rss.end = rssOf(api.pid);
  rss.max = Math.max(rss.max, rss.end);
  if (Number.isNaN(rss.warm)) rss.warm = rss.end;
  if (Number.isNaN(rss.middle)) rss.middle = rss.end;
  await collectUnused(); // a rule armed by a request that raced the first clear

  // 4. reconciliation: a write delayed by a "slow" fault lands up to latencyMs after its request arrived.
  const settleMs = mix.some((k) => k.kind === 'slow') ? o.latencyMs + 1000 : 500;
  await sleep(settleMs, undefined, { signal: interrupt.signal });
  const listStart = performance.now();
  const steps = [];
  let pages = 0;
  let cursor;
  const listDeadline = performance.now() + 300_000;
  for (;;) {
    const url = `${sandboxUrl}/api/v100/rest/spaces/${SANDBOX.spaceId}/entities/Steps?first=100${cursor ? `&after=${encodeURIComponent(cursor)}` : ''}`;
    const page = await expectStatus(http(url, { headers: { authorization: basicAuth } }), 200, `GET Steps page ${pages + 1}`);
    pages++;
    for (const step of page.json.data) steps.push({ id: step.id, name: step.name, pipeline_id: step.pipeline_id, created: step.created });
    const info = page.json.page_info;
    if (!info?.has_next_page || !info.end_cursor) break;
    cursor = info.end_cursor;
    if (performance.now() > listDeadline) throw new Error(`listing the sandbox's Steps took over 300 s (${pages} pages)`);
  }
  const listMs = performance.now() - listStart;
  sandboxRss.end = rssOf(sandbox.pid);
  sandboxRss.max = Math.max(sandboxRss.max, sandboxRss.end);
  const pending = [...s.creates.values()].filter((c) => c.outcome === 'pending').length;
  const recon = reconcile(s.creates, steps, prefix, SANDBOX.salesPipelineId);

  // 5. shutdown
  await agent.close();
  const apiStops = await Promise.all(apis.map((a) => stopChild(a)));
  const apiStop = apiStops.find((stop) => stop.killed || stop.code !== 0) ?? apiStops[0];
  const sandboxStop = await stopChild(sandbox);

  // 6. report
  const totalApplied = {};
  for (const kind of Object.keys(s.armed)) totalApplied[kind] = s.armed[kind] - (s.unused[kind] ?? 0);
  const createCalls = s.requests; // every HTTP create sent to unicrm
  const durations = Float64Array.from(s.durations).sort();
  const w = 44;
  const line = (labelText, value, note = '') => console.log(`${labelText.padEnd(w)}${String(value).padStart(8)}${note ? `  ${note}` : ''}`);
  console.log(`\n== soak ${runId}: results ==`);
  console.log(`load ${clock(loadEndedAt)} (stopped by ${stoppedBy}), drain ${fmt(drainMs / 1000)} s, ${fmt(s.created / (loadEndedAt / 1000), 0)} created/s`);
  line('logical creates attempted', s.seq);
  line('  answered 201', s.created);
  line('    of which after retries', s.createdAfterRetries);
  line('    of which replayed (Idempotent-Replayed)', s.replayed);
  line('    without pipeline.name (its read failed)', s.noPipelineName);
  line('  failed for good', s.failed);
  for (const [reason, n] of Object.entries(s.failedByReason).sort((a, b) => b[1] - a[1])) line(`    ${reason}`, n);
  if (pending) line('  never finished (bug in the soak)', pending);
  console.log(`  time to 201: p50 ${fmt(percentile(durations, 50), 0)} ms, p99 ${fmt(percentile(durations, 99), 0)} ms, max ${fmt(durations.at(-1), 0)} ms; most attempts for one create: ${s.maxAttempts}`);
  line('HTTP requests to unicrm', createCalls);
  for (const [status, n] of Object.entries(s.statuses).sort((a, b) => b[1] - a[1])) line(`  ${status}`, n);
  if (mix.length || o.burstEvery) {
    console.log('faults armed / used (used = armed - left unused at the end)');
    for (const k of [...mix.map((m) => m.kind), 'burst429']) {
      if (!(k in s.armed)) continue;
      const share = k === 'burst429' ? `${s.bursts} burst(s) of ${o.burstSize} requests` : `${fmt((100 * totalApplied[k]) / createCalls, 2)} % of requests`;
      line(`  ${k}`, `${s.armed[k]} / ${totalApplied[k]}`, share);
    }
    if (s.armErrors) line('  arm errors', s.armErrors);
  }
  console.log(`reconciliation: ${recon.stepsListed} Steps listed in ${pages} pages (${fmt(listMs / 1000)} s), ${recon.stepsOfRun} of this run`);
  line('  duplicates (names present more than once)', recon.duplicateNames, recon.duplicateNames ? `${recon.duplicateExtraSteps} extra steps; told 201: ${recon.duplicatesAfter201}, told failed: ${recon.duplicatesAfterFailure}` : '');
  for (const [history, n] of Object.entries(recon.duplicatesByHistory).sort((x, y) => y[1] - x[1])) line(`    answers ${history}`, n);
  line('  lost creates (201, but not in the sandbox)', recon.lost, recon.lost ? `name absent ${recon.lostNameAbsent}, answered id absent ${recon.lostIdMismatch}` : '');
  line('  unreported (told failed, but created)', recon.unreported);
  for (const [reason, n] of Object.entries(recon.unreportedByReason)) line(`    ${reason}`, n);
  line('  failed and absent (correctly reported)', recon.failedAndAbsent);
  line('  in another pipeline / no pipeline', recon.wrongPipeline);
  if (recon.strangers) line('  steps of this run no create asked for', recon.strangers);
  line("unicrm's own 5xx (no truto_is_remote_error)", s.own5xx, Object.keys(s.own5xxByStatus).length ? JSON.stringify(s.own5xxByStatus) : '');
  console.log(`API RSS (MiB): start ${mib(rss.start)} (idle), warm ${mib(rss.warm)} (at ${clock(warmAt)}), middle ${mib(rss.middle)}, end ${mib(rss.end)}, max ${mib(rss.max)}; ` +
    `growth warm -> end ${fmt((rss.end - rss.warm) / MiB)} MiB`);
  console.log(`sandbox RSS (MiB): start ${mib(sandboxRss.start)}, end ${mib(sandboxRss.end)}, max ${mib(sandboxRss.max)} (it keeps every step in memory)`);
  console.log(`shutdown: API ${apiStop.killed ? 'KILLED after' : 'exited'} ${apiStop.signal ?? `code ${apiStop.code}`} ${fmt(apiStop.ms, 0)} ms after SIGTERM; ` +
    `sandbox ${sandboxStop.killed ? 'KILLED, ' : ''}${sandboxStop.signal ?? `code ${sandboxStop.code}`}`);
  const samples = { duplicates: recon.samples.duplicates, lost: recon.samples.lost, unreported: recon.samples.unreported, wrongPipeline: recon.samples.wrongPipeline, strangers: recon.samples.strangers, unicrm5xx: s.own5xxSamples, otherAnswers: s.otherSamples };
  for (const [what, list] of Object.entries(samples)) {
    if (list.length) console.log(`samples of ${what}:\n${list.map((x) => `  ${JSON.stringify(x)}`).join('\n')}`);
  }
  const failures = [];
  if (recon.duplicateNames) failures.push(`${recon.duplicateNames} duplicates`);
  if (recon.lost) failures.push(`${recon.lost} lost creates`);
  if (s.own5xx) failures.push(`${s.own5xx} unicrm 5xx`);
  if (pending) failures.push(`${pending} creates never finished`);
  console.log(failures.length ? `\nFAIL: ${failures.join(', ')}` : '\nPASS: no duplicates, no lost creates, no 500 from unicrm itself');
  if (recon.unreported || apiStop.code !== 0) {
    console.log(`notes: ${[recon.unreported && `${recon.unreported} unreported creates`, apiStop.code !== 0 && `API exit ${apiStop.signal ?? apiStop.code}`].filter(Boolean).join('; ')}`);
  }

  if (o.json) {
    writeFileSync(resolve(o.json), JSON.stringify({
      runId, seed, commit: commit(), options: o, machine: info, loadMs: loadEndedAt, stoppedBy, drainMs,
      creates: { attempted: s.seq, created: s.created, createdAfterRetries: s.createdAfterRetries, replayed: s.replayed, failed: s.failed, failedByReason: s.failedByReason, pending, p50: percentile(durations, 50), p99: percentile(durations, 99), max: durations.at(-1) },
      requests: createCalls, statuses: s.statuses, faults: { armed: s.armed, unused: s.unused, used: totalApplied, bursts: s.bursts, armErrors: s.armErrors },
      reconciliation: recon, unicrm5xx: { count: s.own5xx, byStatus: s.own5xxByStatus, samples: s.own5xxSamples },
      rssMiB: Object.fromEntries(Object.entries(rss).map(([k, v]) => [k, v / MiB])), sandboxRssMiB: Object.fromEntries(Object.entries(sandboxRss).map(([k, v]) => [k, v / MiB])),
      shutdown: { api: apiStop, sandbox: sandboxStop }, pass: failures.length === 0,
    }, null, 2));
    console.log(`figures written to ${resolve(o.json)}`);
  }
  return failures.length ? 1 : 0;
}

async function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(error.message);
    return 2;
  }
  if (o.help) {
    console.log(HELP);
    return 0;
  }
  for (const file of [API_MAIN, SANDBOX_MAIN]) {
    if (!existsSync(join(ROOT, file))) {
      console.error(`${file} is missing: run \`npm run soak\` (it builds first).`);
      return 2;
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'unicrm-soak-'));
  const onSignal = (signal) => {
    if (interrupt.signal.aborted) {
      killAllSync();
      process.exit(130);
    }
    console.error(`\n${signal}: stopping the load and both servers (again to kill them at once)`);
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAllSync);
  // The hard deadline: the load, the drain and the listing are each bounded; this catches anything else.
  const hardMs = o.minutes * 60_000 + o.budgetMs + o.attemptTimeoutMs + 10 * 60_000;
  setTimeout(() => {
    fatal = `the hard deadline (${Math.round(hardMs / 1000)} s) was reached`;
    interrupt.abort();
    setTimeout(() => {
      killAllSync();
      process.exit(2);
    }, STOP_TIMEOUT_MS + 5000).unref();
  }, hardMs).unref();
  let code = 2;
  try {
    code = await run(o, dir);
  } catch (error) {
    if (fatal) console.error(`soak failed: ${fatal}`);
    else if (interrupt.signal.aborted) {
      console.error('soak interrupted');
      code = 130;
    } else console.error(`soak failed: ${error?.stack ?? error}`);
  } finally {
    clearTimers();
    await Promise.all([...children].map((proc) => stopChild(proc)));
    await cluster?.stop();
    // The logs and data are kept when asked, and when the soak itself could not finish (to see why).
    if (o.keep || code === 2) console.log(`kept ${dir} (api.log, sandbox.log, data/)`);
    else rmSync(dir, { recursive: true, force: true });
  }
  return code;
}

const exitCode = await main();
process.exitCode = exitCode;
// Let stdout flush, then leave even if a stray handle stays open.
setTimeout(() => process.exit(exitCode), 200).unref();
