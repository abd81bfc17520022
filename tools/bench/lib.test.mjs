// Tests of the benchmark's helpers: `node --test tools/bench/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { API_BODY_LIMIT, bodiesFor, LatencyRecorder, LIMIT_HEADROOM, LIST_LIMIT, median, parseScenarios, percentile, SHAPES, SIZES, workOf } from './lib.mjs';
import { areaOf, summarise } from './prof-top.mjs';

test('bodies have the documented sizes, the largest 1 KiB under the API body limit', () => {
  for (const shape of SHAPES) {
    assert.equal(bodiesFor('1k', shape).remoteDataBytes, 1024);
    assert.equal(bodiesFor('64k', shape).remoteDataBytes, 64 * 1024);
    const big = bodiesFor('1m', shape);
    assert.equal(Buffer.byteLength(big.unifiedText), API_BODY_LIMIT - LIMIT_HEADROOM);
    assert.ok(Buffer.byteLength(big.stepText) < API_BODY_LIMIT);
  }
  assert.deepEqual(Object.keys(SIZES), ['1k', '64k', '1m']);
});

test('bodies: `fields` keeps a CRM-like number of keys, `wide` has thousands at ~1 MiB', () => {
  assert.equal(bodiesFor('1m', 'fields').remoteDataKeys, 18);
  assert.ok(bodiesFor('1m', 'wide').remoteDataKeys > 8000);
});

test('the step body is what unicrm sends for the unified body', () => {
  const { unified, step } = bodiesFor('1k');
  assert.deepEqual(step, { name: unified.name, pipeline_id: unified.pipeline.id, sort_order: unified.position, ...unified.remote_data });
});

test('percentile (nearest rank), median and the latency recorder', () => {
  const sorted = Float64Array.from({ length: 1000 }, (_, i) => i + 1);
  assert.equal(percentile(sorted, 50), 500);
  assert.equal(percentile(sorted, 99), 990);
  assert.equal(percentile(sorted, 99.9), 999);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  const recorder = new LatencyRecorder(100_000);
  for (let i = 100_000; i >= 1; i--) recorder.add(i / 1000);
  assert.equal(recorder.count, 100_000);
  assert.equal(recorder.stats().p50, 50);
});

test('prof-top: areas and self time of a small profile', () => {
  const profile = {
    nodes: [
      { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [2, 4] },
      { id: 2, callFrame: { functionName: 'handle', url: 'file:///x/node_modules/express/lib/router.js', lineNumber: 9 }, children: [3] },
      { id: 3, callFrame: { functionName: 'createStage', url: 'file:///x/dist/libs/core/src/lib/create-stage.js', lineNumber: 1 }, children: [] },
      { id: 4, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 }, children: [] },
    ],
    samples: [2, 3, 3, 4],
    timeDeltas: [1000, 1000, 1000, 1000],
  };
  const summary = summarise(profile);
  assert.equal(summary.busyMs, 3);
  assert.deepEqual(summary.areas.map((a) => a.area), ['unicrm:core', 'express']);
  assert.equal(summary.self[0].key.startsWith('createStage'), true);
  assert.equal(summary.inclusive[0].ms, 2);
  assert.equal(areaOf('node:internal/streams/x.js', 'f'), 'node:internal');
  assert.equal(areaOf('', '(garbage collector)'), '(gc)');
});

test('scenarios: --scenario parsing, the work of each, and what a run plans', async () => {
  const { parseArgs, planOf } = await import('./bench.mjs');
  assert.deepEqual(parseScenarios('list,create'), ['list', 'create']);
  assert.throws(() => parseScenarios('create,lists'), /unknown scenario lists/);
  assert.throws(() => parseScenarios('get,get'), /twice/);
  assert.throws(() => parseScenarios(','), /one or more/);
  assert.equal(workOf('create', '64k').bodies.remoteDataBytes, 64 * 1024);
  assert.deepEqual(workOf('list'), { scenario: 'list', size: null, label: `page of ${LIST_LIMIT}` });
  assert.equal(LIST_LIMIT, 100);

  const plan = (args) => planOf(parseArgs(args)).map((c) => `${c.scenario}@${c.concurrency}${c.size ? `/${c.size}` : ''}`);
  assert.deepEqual(plan([]), ['create@1/1k', 'create@16/1k', 'create@64/1k', 'create@256/1k', 'create@64/64k', 'create@64/1m', 'list@64', 'get@64']);
  assert.deepEqual(plan(['--quick']), ['create@64/1k', 'list@64', 'get@64']);
  assert.deepEqual(plan(['--quick', '--scenario', 'list', '--concurrency', '1,64']), ['list@1', 'list@64']);
  assert.deepEqual(plan(['--scenario', 'get,create', '--sizes', '1m']), ['get@64', 'create@64/1m']);
  assert.deepEqual(plan(['--soak-only']), []);
  assert.equal(parseArgs(['--quick']).duration, 1);
});

test('answers: what each target must answer in each scenario', async () => {
  const { answerProblem } = await import('./bench.mjs');
  const { GET_STEP_ID, PIPELINE_NAME, stepIdOf } = await import('./upstream.mjs');
  const stage = (i) => ({ id: stepIdOf(i), pipeline: { id: 'p', name: PIPELINE_NAME } });
  const page = Array.from({ length: LIST_LIMIT }, (_, i) => stage(i));
  const list = (result, extra = { next_cursor: 'c' }) => JSON.stringify({ result, ...extra });
  assert.equal(answerProblem('unicrm', 'list', 200, list(page)), undefined);
  assert.match(answerProblem('unicrm', 'list', 200, list(page.slice(1))), /not a page of 100/);
  assert.match(answerProblem('unicrm', 'list', 200, list([...page.slice(0, 99), { id: stepIdOf(99), pipeline: { id: 'p' } }])), /pipeline's name/);
  assert.match(answerProblem('unicrm', 'list', 200, list(page, { next_cursor: null })), /no next_cursor/);
  assert.match(answerProblem('unicrm', 'list', 404, '{"statusCode":404}'), /HTTP 404 \(want 200\)/);
  assert.match(answerProblem('unicrm', 'list', 200, '<html>'), /not JSON/);
  assert.equal(answerProblem('floor', 'list', 200, JSON.stringify({ data: page, page_info: { has_next_page: true } })), undefined);
  assert.ok(answerProblem('direct', 'list', 200, JSON.stringify({ data: page.slice(1), page_info: { has_next_page: true } })));
  assert.equal(answerProblem('unicrm', 'get', 200, JSON.stringify({ id: GET_STEP_ID, pipeline: { name: PIPELINE_NAME } })), undefined);
  assert.ok(answerProblem('unicrm', 'get', 200, JSON.stringify({ id: stepIdOf(1), pipeline: { name: PIPELINE_NAME } })));
  assert.equal(answerProblem('floor-http', 'get', 200, JSON.stringify({ data: { id: GET_STEP_ID } })), undefined);
  assert.equal(answerProblem('unicrm', 'create', 201, JSON.stringify({ pipeline: { name: PIPELINE_NAME }, remote_data: { cf_bench_00001: 'x' }, created_at: 't' })), undefined);
  assert.match(answerProblem('unicrm', 'create', 200, '{}'), /want 201/);
});

test('ratios are against the undici floor; goals of issue 13 for create and list at c=64', async () => {
  const { evaluateTargets, ratiosOf } = await import('./bench.mjs');
  const target = (rps, p50, p99) => ({ rps, p50, p99, p999: p99, rssPeakMiB: 100 });
  const m = (unicrm) => ({ direct: target(10_000, 1, 2), floor: target(5000, 2, 4), 'floor-http': target(4000, 3, 5), unicrm: target(unicrm, 4, 8) });
  const r = ratiosOf(m(3000));
  assert.equal(r.unicrmOverFloorRps, 0.6);
  assert.equal(r.unicrmOverFloorHttpRps, 0.75);
  assert.equal(r.floorHttpOverFloorRps, 0.8);
  assert.deepEqual(r.unicrmMinusDirect, { p50: 3, p99: 6, p999: 6 });
  const configs = [
    { scenario: 'create', concurrency: 64, size: '1k', medians: m(3000), ratios: ratiosOf(m(3000)) },
    { scenario: 'list', concurrency: 64, size: null, medians: m(2900), ratios: ratiosOf(m(2900)) },
    { scenario: 'get', concurrency: 64, size: null, medians: m(100), ratios: ratiosOf(m(100)) },
  ];
  const goals = evaluateTargets(configs).filter((t) => t.issue === 13);
  assert.deepEqual(goals.map((g) => [g.target.split(':')[0], g.got, g.met]), [['create (1 KiB)', '0.60', true], ['list (page of 100)', '0.58', false]]);
  assert.equal(evaluateTargets(configs.slice(2)).length, 0);
});

test('compare: options, and the create verdict against the first build (CPU per create within +10 %)', async () => {
  const { createVerdicts, parseArgs } = await import('./compare.mjs');
  const o = parseArgs(['--root', '/tmp/a', '--root', 'b', '--quick']);
  assert.deepEqual([o.roots[0], o.scenarios, o.duration, o.repeats], ['/tmp/a', ['create', 'list'], 1, 3]);
  assert.throws(() => parseArgs([]), /at least one --root/);
  assert.throws(() => parseArgs(['--root', 'a', '--size', '2k']), /unknown size/);
  const build = (label, cpu) => ({ label, cpuUsPerReq: { server: cpu } });
  const verdicts = createVerdicts([
    { scenario: 'list', results: [build('main', 100), build('branch', 500)] },
    { scenario: 'create', results: [build('main', 200), build('branch', 219), build('slower', 221)] },
  ]);
  assert.deepEqual(verdicts.map((v) => [v.build, v.base, v.met]), [['branch', 'main', true], ['slower', 'main', false]]);
  assert.equal(createVerdicts([{ scenario: 'create', results: [build('only', 1)] }]), undefined);
});
