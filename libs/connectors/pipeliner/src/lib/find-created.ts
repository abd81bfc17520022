import { type CallOptions, type CreateResult, isJsonObject, type Logger, type Stage, type StageCreateBody, type UnicrmError } from '@unicrm/model';
import type { PipelinerClient } from './client';
import { desunifyStageCreate, expandedPipelineName, stepPipelineId, unifyStep } from './mappers';

/** How far before the first attempt a found step may have been created (clock skew between unicrm and Pipeliner). */
export const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * Looks for the Step an earlier attempt of this create may have made, when that attempt timed out or its
 * answer broke off after the request was sent: `GET /entities/Steps` filtered on the Step's `name`, its
 * `pipeline_id` (or none), and `created` at or after `since` minus {@link CLOCK_SKEW_MS}, newest first
 * (pipeliner-api.md §6: `filter`, `filter-op`, `order-by`). Used only for retries that carry the same
 * Idempotency-Key, so the match is the request's own step unless someone made a same-named step in the
 * same pipeline within those minutes. The caller's `remote_query` is not applied (`options.remoteQuery` is
 * ignored): the match is decided by Pipeliner's filters, and the step is read whole, so no `load-only` or
 * `expand` can hide or reshape the fields the answer is made from (issue 12, item 12).
 * @returns the stage as the create would have answered it (raw: `{ success: true, data: <step> }`), or undefined
 * @throws UnicrmError when the list itself fails (the retry then fails too, and can be retried again)
 */
export async function findCreatedStage(
  client: PipelinerClient,
  body: StageCreateBody,
  since: Date,
  options: CallOptions,
  logger: Logger,
): Promise<CreateResult<Stage> | undefined> {
  const stepBody = desunifyStageCreate(body);
  const pipelineId = typeof stepBody.pipeline_id === 'string' ? stepBody.pipeline_id : undefined;
  const filter: Record<string, string> = {
    name: String(stepBody.name),
    created: new Date(since.getTime() - CLOCK_SKEW_MS).toISOString(),
  };
  const filterOp: Record<string, string> = { name: 'eq', created: 'gte' };
  if (pipelineId) filter.pipeline_id = pipelineId;
  else filterOp.pipeline_id = 'null';
  const found = await client.list('Steps', { filter, 'filter-op': filterOp, 'order-by': '-created', first: 1 }, options.signal);
  const step = found.data.find(isJsonObject);
  if (!step || typeof step.id !== 'string') return undefined;

  const foundPipeline = stepPipelineId(step);
  let pipelineName = expandedPipelineName(step);
  if (foundPipeline !== undefined && pipelineName === undefined) {
    pipelineName = await client.pipelineName(foundPipeline, options.signal).catch((error: UnicrmError) => {
      logger.warn({ req_id: options.requestId, step_id: step.id, status: error.statusCode }, 'found the step, but not its pipeline name');
      return undefined;
    });
  }
  logger.info({ req_id: options.requestId, step_id: step.id }, 'idempotent retry: the earlier attempt had created the step');
  const envelope = { success: true, data: step };
  return { unified: unifyStep(step, pipelineName), remote: { status: 201, bodyText: JSON.stringify(envelope), body: envelope } };
}
