import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { parseArgs } from './nodes.mjs';

test('nodes.mjs parseArgs: defaults, lists, and refusals', () => {
  assert.deepEqual(parseArgs([]), { nodes: [1, 2], repeats: 3, duration: 5, warmup: 1, concurrency: 64, size: '1k' });
  assert.deepEqual(parseArgs(['--nodes', '1,2,3', '--repeats', '5', '--duration', '2.5', '--concurrency', '32']), {
    nodes: [1, 2, 3], repeats: 5, duration: 2.5, warmup: 1, concurrency: 32, size: '1k',
  });
  assert.throws(() => parseArgs(['--nodes', '1,0']), /--nodes must be a positive number, not "0"/);
  assert.throws(() => parseArgs(['--repeats']), /--repeats needs a value/);
  assert.throws(() => parseArgs(['--fast']), /unknown option --fast/);
});
