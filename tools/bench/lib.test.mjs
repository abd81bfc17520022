// Tests of the benchmark's helpers: `node --test tools/bench/`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { API_BODY_LIMIT, bodiesFor, LatencyRecorder, LIMIT_HEADROOM, median, percentile, SHAPES, SIZES } from './lib.mjs';
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
