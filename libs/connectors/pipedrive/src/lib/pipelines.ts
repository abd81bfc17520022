import { type CallOptions, type ConnectorResource, mergeRemoteData, PipelineListFiltersSchema, UnicrmError } from '@unicrm/model';
import type { PipedriveClient, PipedriveQuery } from './client';
import { unifyPipeline } from './mappers';
import { PIPEDRIVE_PAGE_SIZE, remoteOf } from './stages';

/** Pipedrive filters pipelines by nothing (its v2 list takes only sort and paging parameters): any filter is a 400. */
export const PipedrivePipelineListFiltersSchema = PipelineListFiltersSchema.omit({ name: true }).meta({ id: 'PipedrivePipelineListFilters' });

/** At most this many pages of 500 stages are read to attach pipelines' stages (2 500 stages); past it `stages` is left out. */
export const PIPELINE_STAGE_PAGES = 5;

/**
 * The stages of some pipelines (or of every pipeline): `GET /api/v2/stages?sort_by=order_nr&limit=500[&pipeline_id=]`,
 * following `next_cursor` up to {@link PIPELINE_STAGE_PAGES} pages. Undefined when there are more.
 */
async function readStages(client: PipedriveClient, pipelineId: string | undefined, options: CallOptions): Promise<Record<string, unknown>[] | undefined> {
  const stages: Record<string, unknown>[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < PIPELINE_STAGE_PAGES; page++) {
    const query: PipedriveQuery = { sort_by: 'order_nr', limit: PIPEDRIVE_PAGE_SIZE.max };
    if (pipelineId !== undefined) query.pipeline_id = pipelineId;
    if (cursor !== undefined) query.cursor = cursor;
    const answer = await client.list('stages', query, options.signal);
    stages.push(...answer.data);
    if (answer.nextCursor === null) return stages;
    cursor = answer.nextCursor;
  }
  return undefined;
}

/**
 * The `crm/pipelines` resource on Pipedrive's API v2 pipelines (pipedrive-api.md §2.2): list and get. Each pipeline
 * comes with its stages (as Pipeliner's do), read from `/stages` (one more call, 5 tokens for a list); the names seen
 * are kept for the stages' `pipeline.name`.
 */
export function pipedrivePipelines(clientOf: (context: Record<string, unknown>) => PipedriveClient): ConnectorResource {
  return {
    list: {
      retrySafe: true,
      description: 'GET /api/v2/pipelines (sort_by=id, cursor paging), their stages from GET /api/v2/stages (sort_by=order_nr)',
      filterSchema: PipedrivePipelineListFiltersSchema,
      pageSize: PIPEDRIVE_PAGE_SIZE,
      async list(account, _filters, page, options) {
        if (page.direction === 'prev') throw UnicrmError.badRequest('Pipedrive pages forward only: it has no previous-page cursor.');
        const client = clientOf(account.context);
        const query: PipedriveQuery = { sort_by: 'id', sort_direction: 'asc', limit: page.limit };
        if (page.cursor !== undefined) query.cursor = page.cursor;
        const answer = await client.list('pipelines', mergeRemoteData(query, options.remoteQuery), options.signal);
        for (const pipeline of answer.data) if (typeof pipeline.name === 'string') client.rememberPipelineName(String(pipeline.id), pipeline.name);
        const stages = answer.data.length > 0 ? await readStages(client, undefined, options) : [];
        return {
          items: answer.data.map((pipeline) => unifyPipeline(pipeline, stages)),
          remote: remoteOf(answer),
          nextCursor: answer.nextCursor,
          prevCursor: null,
        };
      },
    },
    get: {
      retrySafe: true,
      description: 'GET /api/v2/pipelines/{id}, its stages from GET /api/v2/stages?pipeline_id={id}',
      async get(account, id, options) {
        const client = clientOf(account.context);
        const answer = await client.get('pipelines', id, { ...options.remoteQuery }, options.signal);
        if (typeof answer.item.name === 'string') client.rememberPipelineName(String(answer.item.id), answer.item.name);
        const stages = await readStages(client, String(answer.item.id), options);
        return { unified: unifyPipeline(answer.item, stages), remote: remoteOf(answer) };
      },
    },
  };
}
