import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { SandboxSeed } from './types';

/**
 * The built-in seed: the default "Sales Pipeline" every Pipeliner space has (pipeliner-api.md §3, S8) with
 * five steps, and a second "Renewals" pipeline. Ids are fixed so docs and tests can name them.
 */
export const SANDBOX_SEED_IDS = {
  salesPipelineId: '00000000-5a1e-4000-8000-000000000001',
  /** The Sales Pipeline's steps in order (sort_order 0..4): Qualification, Needs Analysis, Proposal, Negotiation, Closing. */
  salesStepIds: [
    '00000000-57e9-4000-8000-000000000001',
    '00000000-57e9-4000-8000-000000000002',
    '00000000-57e9-4000-8000-000000000003',
    '00000000-57e9-4000-8000-000000000004',
    '00000000-57e9-4000-8000-000000000005',
  ],
  renewalsPipelineId: '00000000-5a1e-4000-8000-000000000002',
  /** The Renewals pipeline's steps in order: Renewal Due, Renewal Quoted, Renewed. */
  renewalsStepIds: [
    '00000000-57e9-4000-8000-000000000101',
    '00000000-57e9-4000-8000-000000000102',
    '00000000-57e9-4000-8000-000000000103',
  ],
} as const;

/** The built-in seed (a fresh copy each call). */
export function builtInSeed(): SandboxSeed {
  const ids = SANDBOX_SEED_IDS;
  return {
    revision: 1000,
    created: '2024-01-15 09:00:00.000000+00:00',
    pipelines: [
      {
        id: ids.salesPipelineId,
        name: 'Sales Pipeline',
        color: 16233984,
        steps: [
          { id: ids.salesStepIds[0], name: 'Qualification', percent: 10, timeframe: 7 },
          { id: ids.salesStepIds[1], name: 'Needs Analysis', percent: 25, timeframe: 14 },
          { id: ids.salesStepIds[2], name: 'Proposal', percent: 50, timeframe: 14 },
          { id: ids.salesStepIds[3], name: 'Negotiation', percent: 75, timeframe: 10 },
          { id: ids.salesStepIds[4], name: 'Closing', percent: 90, timeframe: 5 },
        ],
      },
      {
        id: ids.renewalsPipelineId,
        name: 'Renewals',
        color: 3381759,
        steps: [
          { id: ids.renewalsStepIds[0], name: 'Renewal Due', percent: 30, timeframe: 30 },
          { id: ids.renewalsStepIds[1], name: 'Renewal Quoted', percent: 60, timeframe: 14 },
          { id: ids.renewalsStepIds[2], name: 'Renewed', percent: 100, timeframe: 1 },
        ],
      },
    ],
  };
}

const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'expected a UUID');
const int = z.number().int();

const seedStepSchema = z.object({
  id: uuid.optional(),
  name: z.string().min(1),
  description: z.string().nullable().optional(),
  percent: int.nullable().optional(),
  timeframe: int.nullable().optional(),
  has_readonly_form: z.boolean().optional(),
  has_version_increment: z.boolean().optional(),
  lead_process_id: uuid.nullable().optional(),
  quote_process_id: uuid.nullable().optional(),
  pipeline_id: uuid.nullable().optional(),
  is_deleted: z.boolean().optional(),
  is_delete_protected: z.boolean().optional(),
  created: z.string().optional(),
  modified: z.string().optional(),
  revision: int.optional(),
});

const seedSchema = z.object({
  revision: int.nonnegative().optional(),
  created: z.string().optional(),
  pipelines: z.array(
    z.object({
      id: uuid.optional(),
      name: z.string().min(1),
      color: int.optional(),
      is_deleted: z.boolean().optional(),
      is_delete_protected: z.boolean().optional(),
      created: z.string().optional(),
      modified: z.string().optional(),
      revision: int.optional(),
      steps: z.array(seedStepSchema).optional(),
    }),
  ),
  steps: z.array(seedStepSchema).optional(),
});

/**
 * Validates a seed object (the JSON shape of {@link SandboxSeed}); throws an Error listing every problem.
 * @param source names the seed in messages (a file path, or "seed option").
 */
export function parseSeed(value: unknown, source = 'seed option'): SandboxSeed {
  const result = seedSchema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new Error(`Invalid Pipeliner sandbox seed (${source}): ${problems.join('; ')}`);
  }
  return result.data;
}

/** Reads and validates a JSON seed file (`PIPELINER_SANDBOX_SEED`). */
export function loadSeedFile(path: string): SandboxSeed {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`Cannot read Pipeliner sandbox seed file ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`Pipeliner sandbox seed file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parseSeed(json, path);
}
