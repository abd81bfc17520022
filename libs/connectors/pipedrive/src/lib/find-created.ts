import type { CallOptions, CreateResult, Logger, Stage, StageCreateBody, UnicrmError } from '@unicrm/model';
import { desunifyStageCreate } from './bodies';
import type { PipedriveClient } from './client';
import { unifyStage } from './mappers';

/** How far before the first attempt a found stage may have been created (clock skew between unicrm and Pipedrive). */
export const CLOCK_SKEW_MS = 5 * 60_000;
/** How many of the pipeline's newest stages are looked through. */
export const FIND_CREATED_WINDOW = 50;

/**
 * Looks for the stage an earlier attempt of this create may have made (it timed out, or its answer broke off after the
 * request was sent): `GET /api/v2/stages?pipeline_id=<id>&sort_by=add_time&sort_direction=desc&limit=50`, the newest
 * stage of that pipeline with the same name, not deleted, added at or after `since` minus {@link CLOCK_SKEW_MS}. Used
 * only for retries with the same Idempotency-Key. The caller's `remote_query` is not applied (the match is decided on
 * whole items).
 * @returns the stage as the create would have answered it (raw: `{ success: true, data: <stage> }`), or undefined
 * @throws UnicrmError when the list fails (the retry then fails too, and can be retried again)
 */
export async function findCreatedStage(
  client: PipedriveClient,
  body: StageCreateBody,
  since: Date,
  options: CallOptions,
  logger: Logger,
): Promise<CreateResult<Stage> | undefined> {
  const wanted = desunifyStageCreate(body);
  const from = since.getTime() - CLOCK_SKEW_MS;
  const found = await client.list(
    'stages',
    { pipeline_id: wanted.pipeline_id, sort_by: 'add_time', sort_direction: 'desc', limit: FIND_CREATED_WINDOW },
    options.signal,
  );
  const item = found.data.find(
    (stage) =>
      stage.name === wanted.name &&
      stage.is_deleted !== true &&
      typeof stage.add_time === 'string' &&
      Date.parse(stage.add_time) >= from,
  );
  if (!item) return undefined;
  const pipelineName = await client.pipelineName(String(wanted.pipeline_id), options.signal).catch((error: UnicrmError) => {
    logger.warn({ req_id: options.requestId, stage_id: item.id, status: error.statusCode }, 'found the stage, but not its pipeline name');
    return undefined;
  });
  logger.info({ req_id: options.requestId, stage_id: item.id }, 'idempotent retry: the earlier attempt had created the stage');
  const envelope = { success: true, data: item };
  return { unified: unifyStage(item, pipelineName), remote: { status: 200, bodyText: JSON.stringify(envelope), body: envelope } };
}
