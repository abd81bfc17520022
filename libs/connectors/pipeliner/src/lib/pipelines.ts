import {
  type ConnectorResource,
  isJsonObject,
  mergeRemoteData,
  type PipelineListFilters,
  PipelineListFiltersSchema,
} from '@unicrm/model';
import type { PipelinerClient, PipelinerQuery } from './client';
import { unifyPipeline } from './mappers';
import { PIPELINER_PAGE_SIZE } from './stages';

/** The pipeline filters Pipeliner applies: `name` (`filter[name]`, eq). */
export const PipelinerPipelineListFiltersSchema = PipelineListFiltersSchema.meta({ id: 'PipelinerPipelineListFilters' });

/**
 * The `crm/pipelines` resource on Pipeliner Pipelines (pipeliner-api.md §3): list and get, each with
 * `expand=steps` so that a pipeline comes with its stages (the official tutorial reads them so). The names seen
 * are kept for the stages' `pipeline.name`.
 */
export function pipelinerPipelines(clientOf: (context: Record<string, unknown>) => PipelinerClient): ConnectorResource {
  const remember = (client: PipelinerClient, pipeline: Record<string, unknown>) => {
    // Only a name the answer holds: a `load-only` answer without it says nothing about the name.
    if (typeof pipeline.id === 'string' && typeof pipeline.name === 'string') client.rememberPipelineName(pipeline.id, pipeline.name);
  };
  return {
    list: {
      retrySafe: true,
      description: 'GET /entities/Pipelines?expand=steps (order by id)',
      filterSchema: PipelinerPipelineListFiltersSchema,
      pageSize: PIPELINER_PAGE_SIZE,
      async list(account, filters, page, options) {
        const client = clientOf(account.context);
        const query: PipelinerQuery = { expand: 'steps' };
        if (page.direction === 'prev' && page.cursor !== undefined) Object.assign(query, { last: page.limit, before: page.cursor });
        else Object.assign(query, { first: page.limit }, page.cursor !== undefined && { after: page.cursor });
        const { name } = filters as PipelineListFilters;
        if (name !== undefined) query.filter = { name };
        const answer = await client.list('Pipelines', mergeRemoteData(query, options.remoteQuery), options.signal);
        const pipelines = answer.data.filter(isJsonObject);
        for (const pipeline of pipelines) remember(client, pipeline);
        const info = answer.pageInfo;
        return {
          items: pipelines.map(unifyPipeline),
          remote: { status: answer.response.status, bodyText: answer.response.bodyText, body: answer.body },
          nextCursor: info?.has_next_page && info.end_cursor ? info.end_cursor : null,
          prevCursor: info?.has_previous_page && info.start_cursor ? info.start_cursor : null,
        };
      },
    },
    get: {
      retrySafe: true,
      description: 'GET /entities/Pipelines/{id}?expand=steps',
      async get(account, id, options) {
        const client = clientOf(account.context);
        const answer = await client.get('Pipelines', id, mergeRemoteData({ expand: 'steps' }, options.remoteQuery), options.signal);
        remember(client, answer.entity);
        return {
          unified: unifyPipeline(answer.entity),
          remote: { status: answer.response.status, bodyText: answer.response.bodyText, body: answer.body },
        };
      },
    },
  };
}
