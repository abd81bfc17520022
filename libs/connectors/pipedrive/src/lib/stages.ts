import {
  type CallOptions,
  type ConnectorResource,
  type ItemResult,
  type ListPageResult,
  type Logger,
  mergeRemoteData,
  type Stage,
  type StageCreateBody,
  type StageListFilters,
  StageListFiltersSchema,
  type StageUpdateBody,
  UnicrmError,
} from '@unicrm/model';
import { desunifyStageCreate, desunifyStageUpdate, PipedriveStageCreateBodySchema, PipedriveStageUpdateBodySchema } from './bodies';
import type { PipedriveClient, PipedriveItemAnswer, PipedriveListAnswer, PipedriveQuery } from './client';
import { findCreatedStage } from './find-created';
import { stagePipelineId, unifyStage } from './mappers';

/** Pipedrive's page sizes (pipedrive-api.md §2.2: `limit` defaults to 100, at most 500). */
export const PIPEDRIVE_PAGE_SIZE = { default: 100, max: 500 } as const;

/**
 * The stage filters Pipedrive applies: `pipeline[id]` (`pipeline_id`). Its API v2 filters stages by nothing else, so
 * `name`, `status`, `created_at` and `updated_at` are a 400 naming this one (filtering a page after the fact would
 * break paging).
 */
export const PipedriveStageListFiltersSchema = StageListFiltersSchema.pick({ pipeline: true }).meta({ id: 'PipedriveStageListFilters' });

/** The raw half of a result: Pipedrive's answer. */
export const remoteOf = (answer: PipedriveItemAnswer | PipedriveListAnswer) => ({
  status: answer.response.status,
  bodyText: answer.response.bodyText,
  body: answer.body as unknown,
});

/**
 * Unifies stage items, reading each distinct pipeline's name once (from the connector's cache when known). A name that
 * cannot be read is left out (logged): the stages are there, only a name beside them is missing.
 */
export async function unifyStages(client: PipedriveClient, items: Record<string, unknown>[], options: CallOptions, logger: Logger): Promise<Stage[]> {
  const names = new Map<string, Promise<string | undefined>>();
  for (const item of items) {
    const id = stagePipelineId(item);
    if (id === undefined || names.has(id)) continue;
    names.set(
      id,
      client.pipelineName(id, options.signal).catch((error: UnicrmError) => {
        logger.warn({ req_id: options.requestId, pipeline_id: id, status: error.statusCode }, 'a pipeline name could not be read');
        return undefined;
      }),
    );
  }
  const resolved = new Map<string, string | undefined>();
  for (const [id, name] of names) resolved.set(id, await name);
  return items.map((item) => {
    const id = stagePipelineId(item);
    return unifyStage(item, id === undefined ? undefined : resolved.get(id));
  });
}

/** The Pipedrive query of a stage list: `sort_by=id` (pages neither repeat nor skip), `limit`, `cursor`, `pipeline_id`. */
export function stageListQuery(filters: StageListFilters, page: { limit: number; cursor?: string }): PipedriveQuery {
  const query: PipedriveQuery = { sort_by: 'id', sort_direction: 'asc', limit: page.limit };
  if (page.cursor !== undefined) query.cursor = page.cursor;
  if (filters.pipeline) query.pipeline_id = filters.pipeline.id;
  return query;
}

/**
 * The `crm/stages` resource on Pipedrive's API v2 stages (pipedrive-api.md §2.2): list, get, create, update, delete.
 * @param clientOf the client of an account (the connector's, sharing its pipeline-name cache)
 */
export function pipedriveStages(clientOf: (context: Record<string, unknown>) => PipedriveClient, logger: Logger): ConnectorResource {
  return {
    list: {
      retrySafe: true,
      description: 'GET /api/v2/stages (sort_by=id, cursor paging; pipeline[id] as pipeline_id), the pipeline names read once a minute per pipeline',
      filterSchema: PipedriveStageListFiltersSchema,
      pageSize: PIPEDRIVE_PAGE_SIZE,
      async list(account, filters, page, options): Promise<ListPageResult> {
        if (page.direction === 'prev') throw UnicrmError.badRequest('Pipedrive pages forward only: it has no previous-page cursor.');
        const client = clientOf(account.context);
        const answer = await client.list('stages', mergeRemoteData(stageListQuery(filters as StageListFilters, page), options.remoteQuery), options.signal);
        const items = await unifyStages(client, answer.data, options, logger);
        return { items, remote: remoteOf(answer), nextCursor: answer.nextCursor, prevCursor: null };
      },
    },
    get: {
      retrySafe: true,
      description: 'GET /api/v2/stages/{id} (a deleted stage answers with status inactive)',
      async get(account, id, options) {
        const client = clientOf(account.context);
        const answer = await client.get('stages', id, { ...options.remoteQuery }, options.signal);
        const [stage] = await unifyStages(client, [answer.item], options, logger);
        return { unified: stage as Stage, remote: remoteOf(answer) };
      },
    },
    create: {
      retrySafe: false,
      description: 'POST /api/v2/stages (name and pipeline_id required; order_nr cannot be set on v2: position is a 400)',
      bodySchema: PipedriveStageCreateBodySchema,
      async create(account, body, options): Promise<ItemResult> {
        const client = clientOf(account.context);
        const answer = await client.create('stages', desunifyStageCreate(body as StageCreateBody), { ...options.remoteQuery }, options.signal);
        const [stage] = await unifyStages(client, [answer.item], options, logger);
        return { unified: stage as Stage, remote: remoteOf(answer) };
      },
      findCreated: (account, body, since, options) => findCreatedStage(clientOf(account.context), body as StageCreateBody, since, options, logger),
    },
    update: {
      retrySafe: true,
      description: "PATCH /api/v2/stages/{id} (name, pipeline_id and Pipedrive's own fields; position is a 400: order_nr is read-only on v2)",
      bodySchema: PipedriveStageUpdateBodySchema,
      async update(account, id, body, options) {
        const client = clientOf(account.context);
        const patch = desunifyStageUpdate(body as StageUpdateBody);
        // Nothing to write (`{}`, `{"status": "active"}`): the stage is read instead, so an unknown id is a 404 either way.
        const answer =
          Object.keys(patch).length === 0
            ? await client.get('stages', id, { ...options.remoteQuery }, options.signal)
            : await client.update('stages', id, patch, { ...options.remoteQuery }, options.signal);
        const [stage] = await unifyStages(client, [answer.item], options, logger);
        return { unified: stage as Stage, remote: remoteOf(answer) };
      },
    },
    delete: {
      retrySafe: true,
      description: 'DELETE /api/v2/stages/{id} (Pipedrive marks it deleted), then the stage read back (status inactive)',
      async delete(account, id, options) {
        const client = clientOf(account.context);
        const deleted = await client.remove('stages', id, { ...options.remoteQuery }, options.signal);
        let unified: Stage;
        try {
          const answer = await client.get('stages', id, {}, options.signal);
          [unified] = (await unifyStages(client, [answer.item], options, logger)) as [Stage];
          // Pipedrive marked it deleted; a read-back that does not say so yet still answers what the delete did.
          unified.status = 'inactive';
        } catch (error) {
          logger.warn({ req_id: options.requestId, stage_id: id, status: (error as UnicrmError).statusCode }, 'stage deleted, but it could not be read back');
          unified = { id, status: 'inactive' };
        }
        return { unified, remote: remoteOf(deleted) };
      },
    },
  };
}
