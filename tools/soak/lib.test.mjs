// Tests of the soak's pure helpers: node --test tools/soak/
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { burstRule, FaultScheduler, faultMix, kindOfRule, parseArgs, parseRetryAfter, reconcile, retryDelay, seededRandom } from './lib.mjs';

test('parseArgs: defaults, both option spellings, and range checks', () => {
  const o = parseArgs([]);
  assert.equal(o.minutes, 1);
  assert.equal(o.concurrency, 8);
  assert.deepEqual([o.p503, o.ptimeout, o.preset, o.ptruncated], [5, 2, 1, 0]);
  assert.equal(parseArgs(['--minutes', '3']).minutes, 3);
  assert.equal(parseArgs(['--minutes=0.5']).minutes, 0.5);
  assert.throws(() => parseArgs(['--minutes', '0']), /--minutes/);
  assert.throws(() => parseArgs(['--minutes', '61']), /--minutes/);
  assert.throws(() => parseArgs(['--minutes']), /needs a value/);
  assert.throws(() => parseArgs(['--bogus']), /unknown option/);
  assert.throws(() => parseArgs(['--latency-ms', '1000']), /must exceed --remote-timeout-ms/);
  assert.throws(() => parseArgs(['--p503', '60', '--preset', '50']), /more than 100/);
  const none = parseArgs(['--no-faults']);
  assert.deepEqual([none.p503, none.ptimeout, none.preset, none.burstEvery], [0, 0, 0, 0]);
});

test('faultMix: each kind arms a times-1 rule on POST .../entities/Steps; timeouts split into slow and hung', () => {
  const mix = faultMix(parseArgs(['--ptruncated', '0.5']));
  assert.deepEqual(mix.map((k) => [k.kind, k.pct]), [['503', 5], ['slow', 1], ['hang', 1], ['reset', 1], ['truncated', 0.5]]);
  for (const k of mix) {
    assert.equal(k.rule.method, 'POST');
    assert.equal(k.rule.path, '/entities/Steps');
    assert.equal(k.rule.times, 1);
    assert.equal(kindOfRule(k.rule), k.kind);
  }
  assert.equal(mix.find((k) => k.kind === 'slow').rule.latencyMs, 2500);
  assert.equal(kindOfRule(burstRule(20, 1)), 'burst429');
  assert.deepEqual(faultMix(parseArgs(['--no-faults'])), []);
});

test('FaultScheduler: exact counts per block of 100, at distinct random positions, different in each block', () => {
  const mix = faultMix(parseArgs([]));
  const scheduler = new FaultScheduler(mix, seededRandom(42));
  const blocks = [];
  for (let b = 0; b < 50; b++) {
    const block = [];
    for (let i = 0; i < 100; i++) block.push(scheduler.next()?.kind);
    blocks.push(block);
    const counts = {};
    for (const kind of block) if (kind) counts[kind] = (counts[kind] ?? 0) + 1;
    assert.deepEqual(counts, { 503: 5, slow: 1, hang: 1, reset: 1 });
  }
  assert.notDeepEqual(blocks[0], blocks[1]);
  // Spread, not bunched: faults are not all in one run of consecutive slots.
  const first = blocks[0].map((k, i) => (k ? i : -1)).filter((i) => i >= 0);
  assert.ok(first.at(-1) - first[0] > 8);
});

test('FaultScheduler: a fractional share is met on average', () => {
  const scheduler = new FaultScheduler([{ kind: 'truncated', pct: 0.5, rule: {} }], seededRandom(7));
  let hits = 0;
  for (let i = 0; i < 100_000; i++) if (scheduler.next()) hits++;
  assert.ok(Math.abs(hits - 500) < 75, `${hits} hits, expected about 500`);
  assert.equal(scheduler.planned.truncated, hits);
});

test('retryDelay: capped exponential with equal jitter; Retry-After is a floor', () => {
  const lo = () => 0;
  const hi = () => 0.999999;
  assert.equal(retryDelay(1, { random: lo }), 100);
  assert.ok(retryDelay(1, { random: hi }) < 200);
  assert.equal(retryDelay(3, { random: lo }), 400);
  assert.equal(retryDelay(20, { random: lo }), 2500);
  assert.ok(retryDelay(20, { random: hi }) <= 5000);
  assert.equal(retryDelay(1, { random: lo, retryAfterMs: 1000 }), 1000);
  assert.ok(retryDelay(1, { random: hi, retryAfterMs: 1000 }) < 1250);
});

test('parseRetryAfter: seconds, HTTP dates, garbage', () => {
  assert.equal(parseRetryAfter('2'), 2000);
  assert.equal(parseRetryAfter(['1']), 1000);
  assert.equal(parseRetryAfter('999'), 60_000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 7_000), 3000);
  assert.equal(parseRetryAfter(undefined), undefined);
  assert.equal(parseRetryAfter('soon'), undefined);
});

test('reconcile: duplicates, lost, unreported, wrong pipeline and strangers', () => {
  const P = 'pipe';
  const creates = new Map([
    ['run-1', { outcome: 'created', id: 'a', history: [201] }],
    ['run-2', { outcome: 'created', id: 'b', history: [504, 201] }],
    ['run-3', { outcome: 'created', id: 'c', history: [201] }],
    ['run-4', { outcome: 'created', id: 'd', history: [201] }],
    ['run-5', { outcome: 'failed', reason: 'HTTP 504; budget exhausted', history: [504, 504] }],
    ['run-6', { outcome: 'failed', reason: 'HTTP 503; budget exhausted', history: [503] }],
  ]);
  const steps = [
    { id: 'seed', name: 'Qualification', pipeline_id: P },
    { id: 'a', name: 'run-1', pipeline_id: P },
    { id: 'b', name: 'run-2', pipeline_id: P },
    { id: 'b2', name: 'run-2', pipeline_id: P },
    { id: 'x', name: 'run-4', pipeline_id: P },
    { id: 'e', name: 'run-5', pipeline_id: null },
    { id: 'z', name: 'run-9', pipeline_id: P },
  ];
  const r = reconcile(creates, steps, 'run-', P);
  assert.equal(r.stepsListed, 7);
  assert.equal(r.stepsOfRun, 6);
  assert.equal(r.duplicateNames, 1);
  assert.equal(r.duplicateExtraSteps, 1);
  assert.deepEqual(r.duplicatesByHistory, { '504 201': 1 });
  assert.equal(r.lost, 2);
  assert.equal(r.lostNameAbsent, 1);
  assert.equal(r.lostIdMismatch, 1);
  assert.equal(r.unreported, 1);
  assert.deepEqual(r.unreportedByReason, { 'HTTP 504; budget exhausted': 1 });
  assert.equal(r.failedAndAbsent, 1);
  assert.equal(r.createdAndPresent, 2);
  assert.equal(r.wrongPipeline, 1);
  assert.equal(r.strangers, 1);
});
