import {
  type BatchMethod,
  type BatchWriteOutcome,
  type CallOptions,
  type ConnectorResource,
  type DateFilter,
  type ItemResult,
  type ListPageResult,
  type Logger,
  type RemoteResult,
  type Stage,
  type StageCreateBody,
  type StageListFilters,
  StageListFiltersSchema,
  type StageUpdateBody,
  UnicrmError,
} from '@unicrm/model';
import { changesFields, desunifyStageCreate, desunifyStageUpdate, HubSpotStageCreateBodySchema, HubSpotStageUpdateBodySchema } from './bodies';
import type { HubSpotAnswer, HubSpotClient, HubSpotQuery } from './client';
import { findCreatedStage } from './find-created';
import { byDisplayOrder, hubspotDateToIso, pipelineRef, type StagePipeline, stagesOf, unifyStage } from './mappers';

/**
 * Page sizes of unicrm's lists on HubSpot. HubSpot's pipelines endpoints are not paged (one answer holds every pipeline
 * of an object type with every stage), so unicrm pages the answer itself.
 */
export const HUBSPOT_PAGE_SIZE = { default: 100, max: 500 } as const;

/** The object type of a call when `remote_query[object_type]` names none. */
export const HUBSPOT_DEFAULT_OBJECT_TYPE = 'deals';

/** An object type as HubSpot names them in paths: `deals`, `tickets`, `orders`, ..., custom ones (`2-123456`, `p123_cars`). */
const OBJECT_TYPE = /^[A-Za-z0-9_-]{1,100}$/;

/**
 * Where a call goes: the object type (`remote_query[object_type]`, default `deals`), the pipeline when the caller
 * names it (`remote_query[pipeline_id]`: a stage is then read at its own URL rather than looked up), and the rest of
 * `remote_query`, sent to HubSpot as query parameters.
 */
export interface HubSpotTarget {
  objectType: string;
  pipelineId?: string;
  query: HubSpotQuery;
}

/**
 * Reads the connector's own `remote_query` keys: `object_type` and `pipeline_id` (neither is sent to HubSpot).
 * @throws UnicrmError 400 for an object type or pipeline id that is not a plain name
 */
export function hubspotTarget(remoteQuery: CallOptions['remoteQuery']): HubSpotTarget {
  const { object_type: objectType = HUBSPOT_DEFAULT_OBJECT_TYPE, pipeline_id: pipelineId, ...query } = remoteQuery as Record<string, unknown>;
  if (typeof objectType !== 'string' || !OBJECT_TYPE.test(objectType)) {
    throw UnicrmError.validation([
      { path: 'remote_query.object_type', message: "must be a HubSpot object type that has pipelines, e.g. deals (the default), tickets, orders, or a custom object's id" },
    ]);
  }
  if (pipelineId !== undefined && (typeof pipelineId !== 'string' || pipelineId.trim() === '' || pipelineId.length > 200)) {
    throw UnicrmError.validation([{ path: 'remote_query.pipeline_id', message: 'must be the id of a pipeline (a non-empty string)' }]);
  }
  return { objectType, ...(pipelineId !== undefined && { pipelineId: pipelineId.trim() }), query };
}

/** The raw half of a result: HubSpot's answer. */
export const remoteOf = (answer: HubSpotAnswer): RemoteResult => ({ status: answer.response.status, bodyText: answer.response.bodyText, body: answer.body });

/** The raw half of a result that is one stage out of a larger answer (a pipeline's): the stage as HubSpot sent it. */
const stageRemote = (status: number, stage: Record<string, unknown>): RemoteResult => ({ status, bodyText: JSON.stringify(stage), body: stage });

/** A stage of HubSpot's as found, with the pipeline it is in. */
export interface LocatedStage {
  stage: Record<string, unknown>;
  pipeline: StagePipeline;
  /** The stage as the raw format answers it. */
  remote: RemoteResult;
}

/**
 * Finds a stage by id. A HubSpot stage is addressed by object type, pipeline and id, and a unified id is HubSpot's
 * stage id alone (what deals carry in `dealstage`), so:
 * - with `remote_query[pipeline_id]`: `GET /crm/v3/pipelines/{objectType}/{pipelineId}` (its label, and the stage in
 *   it), or, when the stage is not listed there (an archived stage HubSpot leaves out), `GET .../stages/{id}`;
 * - without: `GET /crm/v3/pipelines/{objectType}` (every pipeline with its stages, one call) and the stage with that id.
 * @param query the query parameters of these reads: the caller's `remote_query` for a get; none before a write (the
 *   caller's parameters go with the write itself)
 * @throws UnicrmError 404 when no pipeline has it, 409 when several pipelines of the object type have a stage with that
 *   id (then `remote_query[pipeline_id]` says which), remote errors
 */
export async function locateStage(client: HubSpotClient, target: HubSpotTarget, id: string, signal?: AbortSignal, query: HubSpotQuery = target.query): Promise<LocatedStage> {
  if (target.pipelineId !== undefined) {
    const answer = await client.pipeline(target.objectType, target.pipelineId, query, signal);
    const pipeline = pipelineRef(answer.body);
    const listed = stagesOf(answer.body).find((stage) => String(stage.id) === id);
    if (listed) return { stage: listed, pipeline, remote: stageRemote(answer.response.status, listed) };
    const own = await client.stage(target.objectType, target.pipelineId, id, query, signal);
    return { stage: own.body, pipeline, remote: remoteOf(own) };
  }
  const answer = await client.pipelines(target.objectType, query, signal);
  const found = answer.results.flatMap((pipeline) => stagesOf(pipeline).filter((stage) => String(stage.id) === id).map((stage) => ({ stage, pipeline })));
  if (found.length === 0) {
    throw UnicrmError.notFound(
      `HubSpot has no ${target.objectType} stage ${id} in any pipeline (an archived stage HubSpot no longer lists is read with remote_query[pipeline_id]=<its pipeline>).`,
    );
  }
  if (found.length > 1) {
    throw new UnicrmError(
      409,
      `Several ${target.objectType} pipelines of this HubSpot account have a stage ${id} (${found.map((f) => String(f.pipeline.id)).join(', ')}): ` +
        'name the one you mean with remote_query[pipeline_id]=<pipeline id>.',
    );
  }
  const [{ stage, pipeline }] = found as [{ stage: Record<string, unknown>; pipeline: Record<string, unknown> }];
  return { stage, pipeline: pipelineRef(pipeline), remote: stageRemote(answer.response.status, stage) };
}

/** True when an RFC 3339 time (or undefined) passes a date filter; an unknown time passes none. */
export function matchesDate(value: string | undefined, filter: DateFilter | undefined): boolean {
  if (filter === undefined) return true;
  if (value === undefined) return false;
  const time = Date.parse(value);
  if (typeof filter === 'string') return time === Date.parse(filter);
  if (filter.gt !== undefined && !(time > Date.parse(filter.gt))) return false;
  if (filter.gte !== undefined && !(time >= Date.parse(filter.gte))) return false;
  if (filter.lt !== undefined && !(time < Date.parse(filter.lt))) return false;
  if (filter.lte !== undefined && !(time <= Date.parse(filter.lte))) return false;
  return true;
}

/**
 * The stages of some pipelines, unified, in HubSpot's order (pipelines by displayOrder, then each one's stages by
 * displayOrder and label), filtered: `status` (default and `active`: not archived; `inactive`: archived only), `name`
 * (exactly), `created_at` / `updated_at` (a stage whose time HubSpot does not know matches no date filter).
 */
export function stagesOfPipelines(pipelines: Record<string, unknown>[], filters: StageListFilters): Stage[] {
  const wanted = filters.status ?? 'active';
  return [...pipelines].sort(byDisplayOrder).flatMap((pipeline) => {
    const ref = pipelineRef(pipeline);
    return stagesOf(pipeline)
      .sort(byDisplayOrder)
      .filter((stage) => (stage.archived === true ? 'inactive' : 'active') === wanted)
      .filter((stage) => filters.name === undefined || stage.label === filters.name)
      .filter((stage) => matchesDate(hubspotDateToIso(stage.createdAt), filters.created_at))
      .filter((stage) => matchesDate(hubspotDateToIso(stage.updatedAt), filters.updated_at))
      .map((stage) => unifyStage(stage, ref));
  });
}

/**
 * One page of records HubSpot answered all at once: `cursor` is the offset of the page (unicrm's cursors wrap it, bound
 * to the account and query), in either direction. A stage created or archived between two reads shifts the later pages
 * by one, as any offset does.
 */
export function pageOf<T>(items: T[], page: { limit: number; cursor?: string }): { items: T[]; nextCursor: string | null; prevCursor: string | null } {
  const offset = page.cursor !== undefined && /^\d{1,9}$/.test(page.cursor) ? Number(page.cursor) : 0;
  return {
    items: items.slice(offset, offset + page.limit),
    nextCursor: offset + page.limit < items.length ? String(offset + page.limit) : null,
    prevCursor: offset > 0 ? String(Math.max(0, offset - page.limit)) : null,
  };
}

/** The stage filters HubSpot's connector applies (to the stages HubSpot answers): all of the unified ones. */
export const HubSpotStageListFiltersSchema = StageListFiltersSchema.meta({ id: 'HubSpotStageListFilters' });

/** The displayOrder after a pipeline's highest (0 for an empty pipeline): where a stage without `position` goes. */
export function nextDisplayOrder(pipeline: Record<string, unknown>): number {
  const orders = stagesOf(pipeline).map((stage) => (typeof stage.displayOrder === 'number' ? stage.displayOrder : -1));
  return orders.length === 0 ? 0 : Math.max(...orders) + 1;
}

/** The most stage creates one call of the HubSpot batch takes (the size of a unified batch). */
export const HUBSPOT_BATCH_MAX_ITEMS = 100;

/**
 * Stage creates in bulk (issue 18; docs/integrations.md, HubSpot). HubSpot's Pipelines API has no bulk stage endpoint,
 * so each stage is still one `POST .../stages`, but the pipeline a single create reads first (its name, the next
 * `displayOrder`) is read once per pipeline of the chunk: creates after it get consecutive display orders. The POSTs go
 * out together; core's pacing spaces them at HubSpot's rate limit. A stage HubSpot refuses is that write's error.
 */
export function hubspotStageBatch(clientOf: (context: Record<string, unknown>) => HubSpotClient): BatchMethod {
  return {
    retrySafe: false,
    description: `GET /crm/v3/pipelines/{objectType}/{pipelineId} once per pipeline of up to ${HUBSPOT_BATCH_MAX_ITEMS} creates (name, next displayOrders), then POST .../stages for each`,
    maxItems: HUBSPOT_BATCH_MAX_ITEMS,
    methods: ['create'],
    async write(account, writes, options): Promise<BatchWriteOutcome[]> {
      const target = hubspotTarget(options.remoteQuery);
      const client = clientOf(account.context);
      const bodies = writes.map((write) => write.body as StageCreateBody);
      const pipelineIds = [...new Set(bodies.map((body) => (body.pipeline as { id: string }).id))];
      const pipelines = new Map<string, { body: Record<string, unknown> } | UnicrmError>();
      await Promise.all(
        pipelineIds.map(async (id) => {
          try {
            pipelines.set(id, await client.pipeline(target.objectType, id, {}, options.signal));
          } catch (error) {
            // A 401 is the account's, not an item's: thrown, nothing written yet, so core refreshes OAuth tokens and
            // sends the chunk again, or marks the account needs_reauth, as for a single create.
            if (!(error instanceof UnicrmError) || (error.isRemote && error.statusCode === 401)) throw error;
            pipelines.set(id, error);
          }
        }),
      );
      const next = new Map<string, number>();
      return Promise.all(
        bodies.map(async (body): Promise<BatchWriteOutcome> => {
          const pipelineId = (body.pipeline as { id: string }).id;
          const pipeline = pipelines.get(pipelineId) as { body: Record<string, unknown> } | UnicrmError;
          if (pipeline instanceof UnicrmError) return { ok: false, error: pipeline };
          let order = next.get(pipelineId) ?? nextDisplayOrder(pipeline.body);
          const input = desunifyStageCreate(body, target.objectType, order);
          if (body.position === undefined) next.set(pipelineId, ++order);
          try {
            const answer = await client.createStage(target.objectType, pipelineId, input, target.query, options.signal);
            return { ok: true, result: { unified: unifyStage(answer.body, pipelineRef(pipeline.body)), remote: remoteOf(answer) } };
          } catch (error) {
            if (error instanceof UnicrmError) return { ok: false, error };
            throw error;
          }
        }),
      );
    },
  };
}

/**
 * The `crm/stages` resource on HubSpot's CRM Pipelines v3 (docs/integrations.md, HubSpot): list, get, create, update,
 * delete (archive), for the object type of `remote_query[object_type]` (default deals).
 * @param clientOf the client of an account
 */
export function hubspotStages(clientOf: (context: Record<string, unknown>) => HubSpotClient, logger: Logger): ConnectorResource {
  return {
    list: {
      retrySafe: true,
      description:
        'GET /crm/v3/pipelines/{objectType} (or /{pipelineId} with pipeline[id]): the stages of every pipeline, paged and filtered by unicrm (HubSpot does not page them)',
      filterSchema: HubSpotStageListFiltersSchema,
      pageSize: HUBSPOT_PAGE_SIZE,
      async list(account, filters, page, options): Promise<ListPageResult> {
        const target = hubspotTarget(options.remoteQuery);
        const client = clientOf(account.context);
        const typed = filters as StageListFilters;
        const pipelineId = typed.pipeline?.id ?? target.pipelineId;
        let answer: HubSpotAnswer;
        let pipelines: Record<string, unknown>[];
        if (pipelineId !== undefined) {
          answer = await client.pipeline(target.objectType, pipelineId, target.query, options.signal);
          pipelines = [answer.body];
        } else {
          const all = await client.pipelines(target.objectType, target.query, options.signal);
          answer = all;
          pipelines = all.results;
        }
        const paged = pageOf(stagesOfPipelines(pipelines, typed), page);
        return { items: paged.items, remote: remoteOf(answer), nextCursor: paged.nextCursor, prevCursor: paged.prevCursor };
      },
    },
    get: {
      retrySafe: true,
      description:
        'GET /crm/v3/pipelines/{objectType}: the stage found among every pipeline (one call); with remote_query[pipeline_id], that pipeline (or the stage itself)',
      async get(account, id, options): Promise<ItemResult> {
        const located = await locateStage(clientOf(account.context), hubspotTarget(options.remoteQuery), id, options.signal);
        return { unified: unifyStage(located.stage, located.pipeline), remote: located.remote };
      },
    },
    create: {
      retrySafe: false,
      description:
        'GET /crm/v3/pipelines/{objectType}/{pipelineId} (its name, the next displayOrder), then POST .../stages (label, displayOrder, metadata; deals: probability default 0.5)',
      bodySchema: HubSpotStageCreateBodySchema,
      async create(account, body, options): Promise<ItemResult> {
        const target = hubspotTarget(options.remoteQuery);
        const client = clientOf(account.context);
        const typed = body as StageCreateBody;
        const pipelineId = (typed.pipeline as { id: string }).id;
        const pipeline = await client.pipeline(target.objectType, pipelineId, {}, options.signal);
        const input = desunifyStageCreate(typed, target.objectType, nextDisplayOrder(pipeline.body));
        const answer = await client.createStage(target.objectType, pipelineId, input, target.query, options.signal);
        return { unified: unifyStage(answer.body, pipelineRef(pipeline.body)), remote: remoteOf(answer) };
      },
      findCreated: (account, body, since, options) =>
        findCreatedStage(clientOf(account.context), hubspotTarget(options.remoteQuery), body as StageCreateBody, since, options, logger),
    },
    batch: hubspotStageBatch(clientOf),
    update: {
      retrySafe: true,
      description:
        "the stage located as get does, then PATCH .../stages/{stageId} (label, displayOrder, metadata; archived: false to restore); status 'inactive' archives it (DELETE)",
      bodySchema: HubSpotStageUpdateBodySchema,
      async update(account, id, body, options): Promise<ItemResult> {
        const target = hubspotTarget(options.remoteQuery);
        const client = clientOf(account.context);
        const typed = body as StageUpdateBody;
        const located = await locateStage(client, target, id, options.signal, {});
        if (typed.pipeline !== undefined && typed.pipeline.id !== located.pipeline.id) {
          throw UnicrmError.validation([
            {
              path: 'pipeline.id',
              message: `cannot change on HubSpot: stage ${id} is in pipeline ${located.pipeline.id}, and HubSpot cannot move a stage to another pipeline (create one there instead)`,
            },
          ]);
        }
        const archived = located.stage.archived === true;
        const restore = typed.status === 'active' && archived;
        let stage = located.stage;
        let remote = located.remote;
        let archivedNow = false;
        if (changesFields(typed) || restore) {
          const answer = await client.updateStage(target.objectType, located.pipeline.id, id, desunifyStageUpdate(typed, stage, restore), target.query, options.signal);
          stage = answer.body;
          remote = remoteOf(answer);
        }
        if (typed.status === 'inactive' && !archived) {
          const response = await client.archiveStage(target.objectType, located.pipeline.id, id, target.query, options.signal);
          remote = { status: response.status, bodyText: response.bodyText, body: response.bodyText };
          stage = await readBack(client, target, located.pipeline.id, id, stage, options, logger);
          archivedNow = true;
        }
        const unified = unifyStage(stage, located.pipeline);
        if (archivedNow) unified.status = 'inactive';
        return { unified, remote };
      },
    },
    delete: {
      retrySafe: true,
      description: 'the stage located as get does, then DELETE .../stages/{stageId} (HubSpot archives it: 204), read back (status inactive)',
      async delete(account, id, options): Promise<ItemResult> {
        const target = hubspotTarget(options.remoteQuery);
        const client = clientOf(account.context);
        const located = await locateStage(client, target, id, options.signal, {});
        if (located.stage.archived === true) {
          throw UnicrmError.notFound(`HubSpot ${target.objectType} stage ${id} is already archived (restore it with PATCH {"status": "active"}).`);
        }
        const response = await client.archiveStage(target.objectType, located.pipeline.id, id, target.query, options.signal);
        const stage = await readBack(client, target, located.pipeline.id, id, located.stage, options, logger);
        const unified = unifyStage(stage, located.pipeline);
        unified.status = 'inactive';
        return { unified, remote: { status: response.status, bodyText: response.bodyText, body: response.bodyText } };
      },
    },
  };
}

/**
 * The stage after an archive, read back (`GET .../stages/{id}`), as HubSpot answers it; when HubSpot does not answer
 * it (it may forget archived stages), the stage as it was before with `archived: true`, logged. The caller answers
 * `status: inactive` either way (the archive was done).
 */
async function readBack(
  client: HubSpotClient,
  target: HubSpotTarget,
  pipelineId: string,
  id: string,
  before: Record<string, unknown>,
  options: CallOptions,
  logger: Logger,
): Promise<Record<string, unknown>> {
  try {
    const answer = await client.stage(target.objectType, pipelineId, id, {}, options.signal);
    return answer.body;
  } catch (error) {
    logger.warn({ req_id: options.requestId, stage_id: id, status: (error as UnicrmError).statusCode }, 'stage archived, but it could not be read back');
    return { ...before, archived: true };
  }
}
