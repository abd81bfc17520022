import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Harness, startHarness, TEST_TOKEN } from '../testing/harness';

/**
 * Issue 13's acceptance: a program written for Truto's API (tools/examples/truto-program.mjs: Bearer token, qs
 * indices, result/next_cursor paging) runs against unicrm unchanged but for its base URL.
 */
let h: Harness;
let server: Server;
beforeAll(async () => {
  h = await startHarness();
  server = createServer(h.app).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await h.close();
});
afterEach(() => expect(h.sandbox.takeContractViolations()).toEqual([]));

it('lists pipelines, creates, lists (paged), reads, renames, reorders and deletes a stage', async () => {
  const script = join(__dirname, '../../../../tools/examples/truto-program.mjs');
  const { port } = server.address() as AddressInfo;
  const { stdout } = await promisify(execFile)(process.execPath, [script], {
    env: { ...process.env, TRUTO_BASE_URL: `http://127.0.0.1:${port}`, TRUTO_TOKEN: TEST_TOKEN, ACCOUNT: h.accountId },
  });
  const lines = stdout.trim().split('\n');
  expect(lines[0]).toBe('pipelines: Sales Pipeline (5 stages), Renewals (3 stages)');
  expect(lines[1]).toMatch(/^created: [0-9a-f-]{36} "Truto program stage" at position 5 in "Sales Pipeline"$/);
  expect(lines[2]).toBe('listed: 6 stages of "Sales Pipeline" in 3 pages; the new one among them');
  expect(lines.slice(3)).toEqual([
    'read: "Truto program stage", active',
    'renamed: "Truto program stage (renamed)"',
    'reordered: position 0',
    expect.stringMatching(/^deleted: [0-9a-f-]{36}, inactive$/),
  ]);
  expect(h.sandbox.steps().filter((s) => !s.is_deleted)).toHaveLength(8);
});
