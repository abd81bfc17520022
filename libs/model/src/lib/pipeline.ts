import { z } from 'zod';
import type { FieldShape } from './stage';

/**
 * The unified CRM Pipeline, as Truto documents it (Pipelines object: `id`, `name`, `entity`, `stages[]` of
 * `{ id, name, status, pipeline { id } }`, `created_at`, `updated_at`, `remote_data`). Fields a provider has no
 * value for are omitted (`unified`) or `null` (`normalized`).
 */
export const PipelineSchema = z
  .object({
    id: z.string().describe("The pipeline's unique identifier"),
    name: z.string().optional().describe("The pipeline's name"),
    entity: z.enum(['contact', 'account', 'opportunity']).optional().describe('What the pipeline moves through its stages'),
    stages: z
      .array(
        z.object({
          id: z.string().describe("The stage's unique identifier"),
          name: z.string().optional().describe("The stage's name"),
          status: z.enum(['active', 'inactive']).optional().describe('The status of the stage'),
          pipeline: z.object({ id: z.string() }).optional().describe('This pipeline'),
        }),
      )
      .optional()
      .describe("The pipeline's stages, in their order"),
    created_at: z.iso.datetime().optional().describe("The date and time of the pipeline's creation (RFC 3339, UTC)"),
    updated_at: z.iso.datetime().optional().describe("The date and time of the pipeline's last update (RFC 3339, UTC)"),
    remote_data: z.record(z.string(), z.unknown()).optional().describe('Raw data returned from the remote API call.'),
  })
  .meta({ id: 'Pipeline' });

/** A unified Pipeline. */
export type Pipeline = z.infer<typeof PipelineSchema>;

/** The Pipeline's normalized shape: every field but `remote_data`, in schema order (`stages` kept as they are). */
export const PIPELINE_SHAPE: FieldShape = {
  id: true,
  name: true,
  entity: true,
  stages: true,
  created_at: true,
  updated_at: true,
};

/**
 * Filters of `GET /unified/crm/pipelines`: `name`. An integration supports a subset; any other parameter is a 400.
 */
export const PipelineListFiltersSchema = z
  .strictObject({
    name: z.string({ error: 'must be a string' }).min(1, { error: 'must be a non-empty string' }).optional().describe('Only pipelines with exactly this name'),
  })
  .meta({ id: 'PipelineListFilters' });
export type PipelineListFilters = z.infer<typeof PipelineListFiltersSchema>;
