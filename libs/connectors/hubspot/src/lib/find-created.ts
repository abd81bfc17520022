import type { CallOptions, ItemResult, Logger, StageCreateBody } from '@unicrm/model';
import type { HubSpotClient } from './client';
import { pipelineRef, stagesOf, unifyStage } from './mappers';
import type { HubSpotTarget } from './stages';

/** How far before the first attempt a found stage may have been created (clock skew between unicrm and HubSpot). */
export const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * Looks for the stage an earlier attempt of this create may have made (it timed out, or its answer broke off after the
 * request was sent): `GET /crm/v3/pipelines/{objectType}/{pipelineId}` and the stage labelled with the body's `name`
 * (HubSpot keeps labels unique within a pipeline), not archived, created at or after `since` minus
 * {@link CLOCK_SKEW_MS}. Used only for retries with the same Idempotency-Key.
 * @returns the stage as the create would have answered it (raw: the stage), or undefined
 * @throws UnicrmError when the read fails (the retry then fails too, and can be retried again)
 */
export async function findCreatedStage(
  client: HubSpotClient,
  target: HubSpotTarget,
  body: StageCreateBody,
  since: Date,
  options: CallOptions,
  logger: Logger,
): Promise<ItemResult | undefined> {
  const pipelineId = body.pipeline?.id;
  if (pipelineId === undefined) return undefined;
  const from = since.getTime() - CLOCK_SKEW_MS;
  const answer = await client.pipeline(target.objectType, pipelineId, {}, options.signal);
  const stage = stagesOf(answer.body).find(
    (item) => item.label === body.name && item.archived !== true && typeof item.createdAt === 'string' && Date.parse(item.createdAt) >= from,
  );
  if (!stage) return undefined;
  logger.info({ req_id: options.requestId, stage_id: stage.id }, 'idempotent retry: the earlier attempt had created the stage');
  return { unified: unifyStage(stage, pipelineRef(answer.body)), remote: { status: 201, bodyText: JSON.stringify(stage), body: stage } };
}
