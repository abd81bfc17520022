import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtInSeed, SANDBOX_SEED_IDS, startSandbox } from '../index';
import { client } from './testing/client';

describe('Pipeliner sandbox: seeds', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pipeliner-sandbox-seed-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the built-in seed has the Sales Pipeline with five ordered steps under fixed ids', async () => {
    const sandbox = await startSandbox({ port: 0 });
    try {
      const sales = sandbox.pipelines().find((p) => p.id === SANDBOX_SEED_IDS.salesPipelineId);
      expect(sales).toMatchObject({ name: 'Sales Pipeline', color: 16233984, is_deleted: false });
      const steps = sandbox.steps().filter((s) => s.pipeline_id === SANDBOX_SEED_IDS.salesPipelineId);
      expect(steps.map((s) => [s.id, s.sort_order])).toEqual(SANDBOX_SEED_IDS.salesStepIds.map((id, index) => [id, index]));
      expect(sales?.steps).toEqual(
        SANDBOX_SEED_IDS.salesStepIds.map((id) => `${sandbox.serviceUrl}/api/v100/rest/spaces/sandbox_space/entities/Steps/${id}`),
      );
      const revisions = [...sandbox.pipelines(), ...sandbox.steps()].map((r) => r.revision).sort((a, b) => a - b);
      expect(revisions[0]).toBe(1001);
      expect(revisions).toHaveLength(10);
      expect(new Set(revisions).size).toBe(10);
    } finally {
      await sandbox.close();
    }
  });

  it('loads a JSON seed file, continues its revision counter, and reset() goes back to it', async () => {
    const path = join(dir, 'seed.json');
    writeFileSync(
      path,
      JSON.stringify({
        revision: 66000,
        pipelines: [
          {
            id: '98baf008-2c96-0831-cb6d-0fa7a5660225',
            name: 'Test Pipeline',
            color: 16233984,
            created: '2020-09-25 10:48:29.825069+00:00',
            revision: 66001,
            steps: [{ name: 'First', percent: 10 }, { name: 'Gone', is_deleted: true }, { name: 'Second' }],
          },
        ],
      }),
    );
    const sandbox = await startSandbox({ port: 0, seed: path, spaceId: 'fr_Myself', username: 'u', password: 'p', contract: true });
    const call = client(sandbox);
    try {
      const pipeline = await call('GET', 'Pipelines/98baf008-2c96-0831-cb6d-0fa7a5660225', { query: 'expand=steps' });
      expect(pipeline.status).toBe(200);
      expect(pipeline.json.data).toMatchObject({ name: 'Test Pipeline', revision: 66001, created: '2020-09-25 10:48:29.825069+00:00' });
      expect(pipeline.json.data.steps.map((s: { name: string; sort_order: number }) => [s.name, s.sort_order])).toEqual([
        ['First', 0],
        ['Second', 1],
      ]);
      const created = await call('POST', 'Steps', { body: { name: 'New' } });
      expect(created.json.data.revision).toBeGreaterThan(66001);
      expect(created.json.data.pipeline).toBeNull();
      sandbox.reset();
      expect(sandbox.steps().map((s) => s.name)).toEqual(['First', 'Gone', 'Second']);
      expect(sandbox.steps().find((s) => s.name === 'Gone')?.is_deleted).toBe(true);
      expect(sandbox.takeContractViolations()).toEqual([]);
    } finally {
      await sandbox.close();
    }
  });

  it('accepts a seed object and steps outside pipelines', async () => {
    const seed = builtInSeed();
    seed.steps = [{ name: 'Lead In', lead_process_id: '12345678-1234-4234-8234-123456789012' }];
    const sandbox = await startSandbox({ port: 0, seed });
    try {
      expect(sandbox.steps()).toHaveLength(9);
      expect(sandbox.steps().find((s) => s.name === 'Lead In')).toMatchObject({
        pipeline_id: null,
        sort_order: 0,
        lead_process: `${sandbox.serviceUrl}/api/v100/rest/spaces/sandbox_space/entities/LeadProcesses/12345678-1234-4234-8234-123456789012`,
      });
    } finally {
      await sandbox.close();
    }
  });

  it('serves a step seeded as created in year 0001 as 0001-01-01 (not 1901), in filters and cursors too', async () => {
    const path = join(dir, 'ancient.json');
    const ancientId = '00000000-57e9-4000-8000-00000000a001';
    writeFileSync(
      path,
      JSON.stringify({
        pipelines: [
          {
            id: '98baf008-2c96-0831-cb6d-0fa7a5660225',
            name: 'Old Pipeline',
            color: 16233984,
            created: '0100-01-01T00:00:00Z',
            steps: [
              { id: ancientId, name: 'Ancient', created: '0001-01-01 00:00:00.000000+00:00', modified: '0099-12-31T23:59:59Z' },
              { name: 'Recent', created: '2024-01-15 09:00:00.000000+00:00' },
            ],
          },
        ],
      }),
    );
    const sandbox = await startSandbox({ port: 0, seed: path, contract: true });
    const call = client(sandbox);
    try {
      const step = await call('GET', `Steps/${ancientId}`);
      expect(step.status).toBe(200);
      expect(step.json.data).toMatchObject({
        created: '0001-01-01 00:00:00.000000+00:00',
        modified: '0099-12-31 23:59:59.000000+00:00',
      });
      const pipeline = await call('GET', 'Pipelines/98baf008-2c96-0831-cb6d-0fa7a5660225');
      expect(pipeline.json.data.created).toBe('0100-01-01 00:00:00.000000+00:00');

      const filtered = await call('GET', 'Steps', { query: 'filter[created]=0001-01-01T00:00:00Z&filter-op[created]=lte' });
      expect(filtered.json.data.map((s: { id: string }) => s.id)).toEqual([ancientId]);

      const first = await call('GET', 'Steps', { query: 'order-by=created&first=1&filter[pipeline_id]=98baf008-2c96-0831-cb6d-0fa7a5660225' });
      expect(first.json.data.map((s: { name: string }) => s.name)).toEqual(['Ancient']);
      const cursor = first.json.page_info.end_cursor as string;
      expect(Buffer.from(cursor, 'base64').toString()).toContain('0001-01-01 00:00:00.000000+00:00');
      const next = await call('GET', 'Steps', {
        query: `order-by=created&first=1&filter[pipeline_id]=98baf008-2c96-0831-cb6d-0fa7a5660225&after=${encodeURIComponent(cursor)}`,
      });
      expect(next.json.data.map((s: { name: string }) => s.name)).toEqual(['Recent']);
      expect(sandbox.takeContractViolations()).toEqual([]);
    } finally {
      await sandbox.close();
    }
  });

  it('refuses invalid seeds with a readable error', async () => {
    const notJson = join(dir, 'broken.json');
    writeFileSync(notJson, '{ nope');
    await expect(startSandbox({ port: 0, seed: notJson })).rejects.toThrow(/not valid JSON/);
    await expect(startSandbox({ port: 0, seed: join(dir, 'missing.json') })).rejects.toThrow(/Cannot read/);
    await expect(startSandbox({ port: 0, seed: { pipelines: [{ name: '', color: 'red' }] } as never })).rejects.toThrow(
      /pipelines\.0\.name.*pipelines\.0\.color/,
    );
    await expect(
      startSandbox({ port: 0, seed: { pipelines: [], steps: [{ name: 'x', pipeline_id: '12345678-1234-4234-8234-123456789012' }] } }),
    ).rejects.toThrow(/unknown pipeline/);
  });
});
