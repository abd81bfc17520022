import { type ConnectorResource, type PipelineListFilters, PipelineListFiltersSchema } from '@unicrm/model';
import type { HubSpotClient } from './client';
import { byDisplayOrder, unifyPipeline } from './mappers';
import { HUBSPOT_PAGE_SIZE, hubspotTarget, pageOf, remoteOf } from './stages';

/** The pipeline filters HubSpot's connector applies (to the pipelines HubSpot answers): `name`, exactly. */
export const HubSpotPipelineListFiltersSchema = PipelineListFiltersSchema.meta({ id: 'HubSpotPipelineListFilters' });

/**
 * The `crm/pipelines` resource on HubSpot's CRM Pipelines v3: list and get, for the object type of
 * `remote_query[object_type]` (default deals). Each pipeline comes with its stages that are not archived (HubSpot
 * embeds them: one call).
 */
export function hubspotPipelines(clientOf: (context: Record<string, unknown>) => HubSpotClient): ConnectorResource {
  return {
    list: {
      retrySafe: true,
      description: 'GET /crm/v3/pipelines/{objectType} (stages embedded), in displayOrder, paged and filtered by unicrm (HubSpot does not page them)',
      filterSchema: HubSpotPipelineListFiltersSchema,
      pageSize: HUBSPOT_PAGE_SIZE,
      async list(account, filters, page, options) {
        const target = hubspotTarget(options.remoteQuery);
        const answer = await clientOf(account.context).pipelines(target.objectType, target.query, options.signal);
        const name = (filters as PipelineListFilters).name;
        const pipelines = [...answer.results].sort(byDisplayOrder).filter((pipeline) => name === undefined || pipeline.label === name);
        const paged = pageOf(pipelines.map((pipeline) => unifyPipeline(pipeline, target.objectType)), page);
        return { items: paged.items, remote: remoteOf(answer), nextCursor: paged.nextCursor, prevCursor: paged.prevCursor };
      },
    },
    get: {
      retrySafe: true,
      description: 'GET /crm/v3/pipelines/{objectType}/{pipelineId} (stages embedded)',
      async get(account, id, options) {
        const target = hubspotTarget(options.remoteQuery);
        const answer = await clientOf(account.context).pipeline(target.objectType, id, target.query, options.signal);
        return { unified: unifyPipeline(answer.body, target.objectType), remote: remoteOf(answer) };
      },
    },
  };
}
