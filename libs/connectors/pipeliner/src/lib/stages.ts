import {
  type CallOptions,
  type ConnectorResource,
  type DateFilter,
  type ItemResult,
  isJsonObject,
  type ListPageResult,
  type Logger,
  mergeRemoteData,
  type Stage,
  type StageCreateBody,
  type StageListFilters,
  StageListFiltersSchema,
  type StageUpdateBody,
  StageUpdateBodySchema,
  UnicrmError,
} from '@unicrm/model';
import { z } from 'zod';
import type { PipelinerClient, PipelinerQuery } from './client';
import {
  checkCreatedInPipeline,
  checkMappedRemoteData,
  createCheckedStage,
  PipelinerFieldsSchema,
  PipelinerNameSchema,
  PipelinerStageCreateBodySchema,
  VALIDATION_LEVEL_OVERRIDE_READONLY,
} from './create-stage';
import { findCreatedStage } from './find-created';
import { pipelinerStageBatch } from './batch-stages';
import { desunifyStageUpdate, expandedPipelineName, stepPipelineId, unifyStep } from './mappers';

/** Pipeliner's page sizes (pipeliner-api.md §4: `first` defaults to 30, at most 100). */
export const PIPELINER_PAGE_SIZE = { default: 30, max: 100 } as const;

const INACTIVE_IS_DELETE =
  "Pipeliner has no inactive steps: a step becomes inactive when it is deleted. Use DELETE /unified/crm/stages/:id ('active' is accepted: a step that is not deleted is active)";

/**
 * The update body Pipeliner accepts: the unified one with the create's field rules (a storable `name` when given,
 * `pipeline.id` a UUID, `remote_data` agreeing with the unified fields it maps to), and `status` only `active`.
 * Pipeliner's only inactive steps are deleted ones (`is_deleted`), which its documented API neither updates (404)
 * nor restores (batch-restore is not in the 2024 document unicrm follows): so `inactive` is a 400 pointing at DELETE,
 * and `active` states what a step that can be updated already is.
 */
export const PipelinerStageUpdateBodySchema = PipelinerFieldsSchema.extend({
  name: PipelinerNameSchema.optional().describe("The stage's new name (a Pipeliner Step's name): at most 255 characters, no control characters"),
  pipeline: PipelinerFieldsSchema.shape.pipeline
    .unwrap()
    .extend({ name: z.string({ error: 'must be a string' }).optional().describe('Ignored: the pipeline is chosen by id') })
    .optional()
    .describe('The pipeline to move the stage to (Pipeliner: pipeline_id, written with validation-level=8)'),
  position: StageUpdateBodySchema.shape.position.describe(
    "The stage's new place in its pipeline (Pipeliner: sort_order, written with validation-level=8; past the end: last)",
  ),
  status: z
    .literal('active', { error: INACTIVE_IS_DELETE })
    .optional()
    .describe("Only 'active' (what an existing step is); a step is made inactive with DELETE"),
})
  .superRefine(checkMappedRemoteData)
  .meta({ id: 'PipelinerStageUpdateBody' });

/** The stage filters Pipeliner applies: all of the unified ones (pipeliner-api.md §6 `filter`, `filter-op`, `include-deleted`). */
export const PipelinerStageListFiltersSchema = StageListFiltersSchema.meta({ id: 'PipelinerStageListFilters' });

/**
 * A unified date filter as Pipeliner's `filter[field]` + `filter-op[field]` (one operator per field, §6): a date is
 * `eq`; one bound is that bound's operator; `gte` and `lte` together are `between`.
 * @throws UnicrmError 400 for bounds Pipeliner cannot combine
 */
function dateFilter(name: string, field: string, value: DateFilter, filter: Record<string, string>, ops: Record<string, string>): void {
  if (typeof value === 'string') {
    filter[field] = value;
    ops[field] = 'eq';
    return;
  }
  const bounds = Object.entries(value).filter(([, v]) => v !== undefined) as Array<[string, string]>;
  if (bounds.length === 1) {
    const [[op, at]] = bounds as [[string, string]];
    filter[field] = at;
    ops[field] = op;
  } else if (bounds.length === 2 && value.gte !== undefined && value.lte !== undefined) {
    filter[field] = `${value.gte},${value.lte}`;
    ops[field] = 'between';
  } else {
    throw UnicrmError.validation([
      { path: name, message: 'Pipeliner filters a date with one bound ([gt], [gte], [lt] or [lte]), or [gte] and [lte] together' },
    ]);
  }
}

/**
 * The Pipeliner query of a stage list (§4, §6): default order (by id, so pages never repeat or skip a step that stays
 * while others move or go), `first`/`after` for a next page, `last`/`before` for a previous one, and the filters:
 * `pipeline.id` -> `filter[pipeline_id]`, `name` -> `filter[name]` (eq), `status=inactive` -> deleted steps
 * (`include-deleted=true`, `filter[is_deleted]=true`), `created_at`/`updated_at` -> `created`/`modified`.
 */
export function stageListQuery(filters: StageListFilters, page: { limit: number; cursor?: string; direction: 'next' | 'prev' }): PipelinerQuery {
  const query: PipelinerQuery = {};
  if (page.direction === 'prev' && page.cursor !== undefined) {
    query.last = page.limit;
    query.before = page.cursor;
  } else {
    query.first = page.limit;
    if (page.cursor !== undefined) query.after = page.cursor;
  }
  const filter: Record<string, string> = {};
  const ops: Record<string, string> = {};
  if (filters.pipeline) filter.pipeline_id = filters.pipeline.id;
  if (filters.name !== undefined) filter.name = filters.name;
  if (filters.status === 'inactive') {
    query['include-deleted'] = 'true';
    filter.is_deleted = 'true';
  }
  if (filters.created_at !== undefined) dateFilter('created_at', 'created', filters.created_at, filter, ops);
  if (filters.updated_at !== undefined) dateFilter('updated_at', 'modified', filters.updated_at, filter, ops);
  if (Object.keys(filter).length > 0) query.filter = filter;
  if (Object.keys(ops).length > 0) query['filter-op'] = ops;
  return query;
}

/** Unifies Steps, reading each distinct pipeline's name once (from the connector's cache when known). */
export async function unifySteps(client: PipelinerClient, steps: Record<string, unknown>[], options: CallOptions, logger: Logger): Promise<Stage[]> {
  const names = new Map<string, Promise<string | undefined>>();
  for (const step of steps) {
    const id = stepPipelineId(step);
    const expanded = expandedPipelineName(step);
    if (id !== undefined && expanded !== undefined) client.rememberPipelineName(id, expanded);
    if (id !== undefined && !names.has(id)) {
      names.set(
        id,
        expanded !== undefined
          ? Promise.resolve(expanded)
          : client.pipelineName(id, options.signal).catch((error: UnicrmError) => {
              // The stages are there; only a name beside them is missing: answer without it.
              logger.warn({ req_id: options.requestId, pipeline_id: id, status: error.statusCode }, 'a pipeline name could not be read');
              return undefined;
            }),
      );
    }
  }
  const resolved = new Map<string, string | undefined>();
  for (const [id, name] of names) resolved.set(id, await name);
  return steps.map((step) => {
    const id = stepPipelineId(step);
    return unifyStep(step, id === undefined ? undefined : (expandedPipelineName(step) ?? resolved.get(id)));
  });
}

const remoteOf = (answer: { response: { status: number; bodyText: string }; body: unknown }) => ({
  status: answer.response.status,
  bodyText: answer.response.bodyText,
  body: answer.body,
});

/**
 * `PATCH /unified/crm/stages/:id` as Pipeliner writes it (docs/contract.md "Update"):
 * 1. `PATCH /entities/Steps/{id}` with the desunified fields, `validation-level=8` when it writes the read-only
 *    `pipeline_id` or `sort_order` (a move to another pipeline, a new position), `remote_query` keys winning;
 *    a body with no field to write (`{}`, `{ "status": "active" }`) reads the step instead (`GET`), so a deleted
 *    step answers 404 either way;
 * 2. a move is checked as on create: the step must now report the requested pipeline (read back when the answer
 *    does not say), else 502.
 * @throws UnicrmError remote errors mirrored (404 for an unknown or deleted step), 502, 504
 */
export async function updateStage(client: PipelinerClient, id: string, body: StageUpdateBody, options: CallOptions, logger: Logger): Promise<ItemResult<Stage>> {
  const patch = desunifyStageUpdate(body);
  let answer;
  if (Object.keys(patch).length === 0) {
    answer = await client.get('Steps', id, { ...options.remoteQuery }, options.signal);
  } else {
    const query: PipelinerQuery = {};
    if ('pipeline_id' in patch || 'sort_order' in patch) query['validation-level'] = VALIDATION_LEVEL_OVERRIDE_READONLY;
    Object.assign(query, options.remoteQuery);
    answer = await client.update('Steps', id, patch, query, options.signal);
  }
  const requested = typeof patch.pipeline_id === 'string' ? patch.pipeline_id : undefined;
  if (requested !== undefined) await checkCreatedInPipeline(client, answer, requested, options, logger, 'moved');
  const [stage] = await unifySteps(client, [answer.entity], options, logger);
  return { unified: stage as Stage, remote: remoteOf(answer) };
}

/**
 * The `crm/stages` resource on Pipeliner Steps (pipeliner-api.md §2): list, get, create, update, delete.
 * @param clientOf the client of an account (the connector's, sharing its pipeline-name cache)
 */
export function pipelinerStages(clientOf: (context: Record<string, unknown>) => PipelinerClient, logger: Logger): ConnectorResource {
  return {
    list: {
      retrySafe: true,
      description: 'GET /entities/Steps (order by id; filters as filter[...]), the pipeline names read once a minute per pipeline',
      filterSchema: PipelinerStageListFiltersSchema,
      pageSize: PIPELINER_PAGE_SIZE,
      async list(account, filters, page, options): Promise<ListPageResult> {
        const client = clientOf(account.context);
        // remote_query merges into the connector's query (nested `filter[...]` keys too), its values winning.
        const query = mergeRemoteData(stageListQuery(filters as StageListFilters, page), options.remoteQuery);
        const answer = await client.list('Steps', query, options.signal);
        const items = await unifySteps(client, answer.data.filter(isJsonObject), options, logger);
        const info = answer.pageInfo;
        return {
          items,
          remote: remoteOf(answer),
          nextCursor: info?.has_next_page && info.end_cursor ? info.end_cursor : null,
          prevCursor: info?.has_previous_page && info.start_cursor ? info.start_cursor : null,
        };
      },
    },
    get: {
      retrySafe: true,
      description: 'GET /entities/Steps/{id} (a deleted step with remote_query[include-deleted]=true)',
      async get(account, id, options) {
        const client = clientOf(account.context);
        const answer = await client.get('Steps', id, { ...options.remoteQuery }, options.signal);
        const [stage] = await unifySteps(client, [answer.entity], options, logger);
        return { unified: stage as Stage, remote: remoteOf(answer) };
      },
    },
    create: {
      retrySafe: false,
      description: 'POST /entities/Steps (validation-level=8 to write pipeline_id and sort_order)',
      bodySchema: PipelinerStageCreateBodySchema,
      // Core validated the body with `bodySchema`: the connector does not check it again.
      create: (account, body, options) => createCheckedStage(clientOf(account.context), body as StageCreateBody, options, logger),
      findCreated: (account, body, since, options) => findCreatedStage(clientOf(account.context), body, since, options, logger),
    },
    batch: pipelinerStageBatch(clientOf, logger),
    update: {
      retrySafe: true,
      description: "PATCH /entities/Steps/{id} (validation-level=8 to move it or change its sort_order); status 'inactive' is a DELETE",
      bodySchema: PipelinerStageUpdateBodySchema,
      update: (account, id, body, options) => updateStage(clientOf(account.context), id, body as StageUpdateBody, options, logger),
    },
    delete: {
      retrySafe: true,
      description: 'DELETE /entities/Steps/{id} (a soft delete), then the deleted step read back (include-deleted=true)',
      async delete(account, id, options) {
        const client = clientOf(account.context);
        const deleted = await client.remove('Steps', id, { ...options.remoteQuery }, options.signal);
        let unified: Stage;
        try {
          const answer = await client.get('Steps', id, { 'include-deleted': 'true' }, options.signal);
          [unified] = (await unifySteps(client, [answer.entity], options, logger)) as [Stage];
        } catch (error) {
          // The step is deleted; only its read-back failed: answer what is known rather than fail a done delete.
          logger.warn({ req_id: options.requestId, step_id: id, status: (error as UnicrmError).statusCode }, 'step deleted, but it could not be read back');
          unified = { id, status: 'inactive' };
        }
        return { unified, remote: remoteOf(deleted) };
      },
    },
  };
}
