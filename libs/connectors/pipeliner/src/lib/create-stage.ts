import {
  type CallOptions,
  type CreateResult,
  type Logger,
  type Stage,
  type StageCreateBody,
  StageCreateBodySchema,
  UnicrmError,
  zodFailures,
} from '@unicrm/model';
import { z } from 'zod';
import type { PipelinerClient, PipelinerQuery } from './client';
import { expandedPipelineName, stepCreateRequest, stepPipelineId, unifyStep } from './mappers';

/** Bit of Pipeliner's `validation-level` that allows writing read-only fields (pipeliner-api.md §6). */
export const VALIDATION_LEVEL_OVERRIDE_READONLY = 8;

const NAME_REQUIRED = 'is required for Pipeliner (a non-empty string)';
const ACTIVE_ONLY = "Pipeliner creates steps active: only 'active' is accepted on create";

/**
 * The create body Pipeliner accepts: the unified body with `name` required and non-empty
 * (create-stages.txt: "Required in Pipeliner") and `status` only `active` (DESIGN.md §2: a new Step is active).
 */
export const PipelinerStageCreateBodySchema = StageCreateBodySchema.extend({
  name: z.string({ error: NAME_REQUIRED }).trim().min(1, { error: NAME_REQUIRED }).describe("The stage's name (a Pipeliner Step's name)"),
  status: z.literal('active', { error: ACTIVE_ONLY }).optional().describe('Pipeliner creates steps active'),
}).meta({ id: 'PipelinerStageCreateBody' });

const isJsonObjectValue = (value: unknown) => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * What {@link checkStageCreateBody} runs: {@link PipelinerStageCreateBodySchema} with `remote_data` checked to be an
 * object without walking it. The schema's `z.record` would visit (and copy) every key of `remote_data` only to
 * accept any value, which for a body near the 1 MiB limit is thousands of keys on every create. Built once.
 */
const CHECK_SCHEMA = PipelinerStageCreateBodySchema.extend({
  remote_data: z.custom<Record<string, unknown>>(isJsonObjectValue, { error: 'must be a JSON object' }).optional(),
});

/**
 * Applies {@link PipelinerStageCreateBodySchema} to a unified create body (the same failures; `remote_data`'s
 * keys are not walked, since any value is accepted there).
 * @throws UnicrmError 400 with `details.failures` naming each field, before anything is sent; a missing
 *   name adds `truto_error_insight.missing_required_body_fields`
 */
export function checkStageCreateBody(body: StageCreateBody): void {
  const result = CHECK_SCHEMA.safeParse(body);
  if (result.success) return;
  const failures = zodFailures(result.error);
  const error = UnicrmError.invalid('Invalid body for Pipeliner', failures);
  if (failures.some((f) => f.path === 'name')) {
    error.body.truto_error_insight = {
      missing_required_body_fields: { description: 'Pipeliner requires these fields', value: ['name'] },
    };
  }
  throw error;
}

/**
 * Creates a stage as a Pipeliner Step (DESIGN.md §2 "Pipeliner call"):
 * 1. `POST /entities/Steps` with the desunified body; `validation-level=8` when the body writes the
 *    read-only `pipeline_id` or `sort_order`; `remote_query` keys win over the connector's.
 * 2. Checks the step sits in the requested pipeline (else 502, naming the created step).
 * 3. Learns the pipeline's name from an expanded `pipeline`, else `GET /entities/Pipelines/{id}?load-only=id,name`
 *    ({@link PipelinerClient.pipelineName}: concurrent creates share a read in flight). That read failing does not
 *    fail the create: the stage is returned with `pipeline.id` only.
 * @returns the unified stage and Pipeliner's answer (for the raw format)
 * @throws UnicrmError 400 (Pipeliner's body rules), remote errors mirrored from Pipeliner, 502, 504
 */
export async function createStage(
  client: PipelinerClient,
  body: StageCreateBody,
  options: CallOptions,
  logger: Logger,
): Promise<CreateResult<Stage>> {
  checkStageCreateBody(body);
  const stepBody = stepCreateRequest(body);
  const query: PipelinerQuery = {};
  if (stepBody.pipeline_id !== undefined || stepBody.sort_order !== undefined) {
    query['validation-level'] = VALIDATION_LEVEL_OVERRIDE_READONLY;
  }
  Object.assign(query, options.remoteQuery);

  const created = await client.create('Steps', stepBody.json, query, options.signal);
  const step = created.entity;
  const pipelineId = stepPipelineId(step);
  const requested = typeof stepBody.pipeline_id === 'string' ? stepBody.pipeline_id : undefined;
  if (requested !== undefined && pipelineId?.toLowerCase() !== requested.toLowerCase()) {
    throw new UnicrmError(
      502,
      `Pipeliner created step ${String(step.id)} but not in pipeline ${requested} ` +
        `(it reports pipeline ${pipelineId ?? 'none'}); the step was left as it is: delete or move it in Pipeliner.`,
      {
        truto_is_remote_error: true,
        raw_response: created.body,
        truto_error_insight: { remote_error: { description: 'Pipeliner ignored the requested pipeline.' } },
      },
    );
  }

  let pipelineName = expandedPipelineName(step);
  if (pipelineId !== undefined && pipelineName === undefined) {
    try {
      pipelineName = await client.pipelineName(pipelineId, options.signal);
    } catch (error) {
      logger.warn(
        { req_id: options.requestId, step_id: step.id, pipeline_id: pipelineId, status: (error as UnicrmError).statusCode },
        'step created, but its pipeline name could not be read',
      );
    }
  }

  return {
    unified: unifyStep(step, pipelineName),
    remote: { status: created.response.status, bodyText: created.response.bodyText, body: created.body },
  };
}
