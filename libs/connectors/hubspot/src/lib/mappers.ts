import type { Pipeline, Stage } from '@unicrm/model';
import type { components } from './generated/hubspot-api';

/** HubSpot's PipelineStage (generated from its OpenAPI document). */
export type HubSpotStage = components['schemas']['PipelineStage'];
/** HubSpot's Pipeline, with its stages (generated). */
export type HubSpotPipeline = components['schemas']['Pipeline'];
/** HubSpot's PipelineStageInput: the create body (generated). */
export type HubSpotStageInput = components['schemas']['PipelineStageInput'];
/** HubSpot's PipelineStagePatchInput: the update body (generated). */
export type HubSpotStagePatchInput = components['schemas']['PipelineStagePatchInput'];
/** HubSpot's error body (generated). */
export type HubSpotErrorBody = components['schemas']['Error'];

/**
 * A HubSpot date-time as RFC 3339 UTC with milliseconds. HubSpot answers `createdAt` = 0 (the epoch) for the stages of
 * default pipelines, meaning "unknown": that, and anything that is not a date-time, is undefined (no date invented).
 */
export function hubspotDateToIso(value: unknown): string | undefined {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(value)) return undefined;
  const time = Date.parse(value);
  return Number.isNaN(time) || time === 0 ? undefined : new Date(time).toISOString();
}

/** The pipeline a stage belongs to, as far as it is known: its id (from the path) and label. */
export interface StagePipeline {
  id: string;
  label?: string;
}

/**
 * unify: a HubSpot PipelineStage to the unified Stage (docs/integrations.md, HubSpot's mapping): `id`, `name` <-
 * `label`, `position` <- `displayOrder`, `status` <- `archived` (`inactive` when archived), `pipeline` <- the pipeline
 * it was read from (a HubSpot stage carries no pipeline id), `created_at`/`updated_at` <- `createdAt`/`updatedAt`
 * (RFC 3339 UTC; the epoch left out), `remote_data` the stage exactly as HubSpot sent it.
 */
export function unifyStage(stage: Record<string, unknown>, pipeline: StagePipeline | undefined): Stage {
  const unified: Stage = { id: String(stage.id) };
  if (typeof stage.label === 'string') unified.name = stage.label;
  if (typeof stage.displayOrder === 'number') unified.position = stage.displayOrder;
  unified.status = stage.archived === true ? 'inactive' : 'active';
  if (pipeline) unified.pipeline = pipeline.label === undefined ? { id: pipeline.id } : { id: pipeline.id, name: pipeline.label };
  const created = hubspotDateToIso(stage.createdAt);
  if (created) unified.created_at = created;
  const updated = hubspotDateToIso(stage.updatedAt);
  if (updated) unified.updated_at = updated;
  unified.remote_data = stage;
  return unified;
}

/** The stages of a pipeline object (its `stages`, objects only). */
export function stagesOf(pipeline: Record<string, unknown>): Record<string, unknown>[] {
  return Array.isArray(pipeline.stages) ? pipeline.stages.filter((s): s is Record<string, unknown> => typeof s === 'object' && s !== null && !Array.isArray(s)) : [];
}

/** HubSpot's order of stages (and of pipelines): `displayOrder`, then label (HubSpot sorts ties alphabetically), then id. */
export function byDisplayOrder(a: Record<string, unknown>, b: Record<string, unknown>): number {
  const order = (x: Record<string, unknown>) => (typeof x.displayOrder === 'number' ? x.displayOrder : 0);
  const text = (x: unknown) => (typeof x === 'string' ? x : '');
  return order(a) - order(b) || text(a.label).localeCompare(text(b.label)) || text(a.id).localeCompare(text(b.id));
}

/** The pipeline reference of a pipeline object. */
export function pipelineRef(pipeline: Record<string, unknown>): StagePipeline {
  return typeof pipeline.label === 'string' ? { id: String(pipeline.id), label: pipeline.label } : { id: String(pipeline.id) };
}

/**
 * unify: a HubSpot Pipeline to the unified Pipeline: `id`, `name` <- `label`, `entity` `opportunity` for deal pipelines
 * (left out for other object types, which the unified entities do not name), `stages` its stages that are not
 * archived, in HubSpot's order, dates, `remote_data` the pipeline as HubSpot sent it (its stages included).
 */
export function unifyPipeline(pipeline: Record<string, unknown>, objectType: string): Pipeline {
  const unified: Pipeline = { id: String(pipeline.id) };
  if (typeof pipeline.label === 'string') unified.name = pipeline.label;
  if (objectType === 'deals') unified.entity = 'opportunity';
  unified.stages = stagesOf(pipeline)
    .filter((stage) => stage.archived !== true)
    .sort(byDisplayOrder)
    .map((stage) => {
      const entry: NonNullable<Pipeline['stages']>[number] = { id: String(stage.id) };
      if (typeof stage.label === 'string') entry.name = stage.label;
      entry.status = 'active';
      entry.pipeline = { id: unified.id };
      return entry;
    });
  const created = hubspotDateToIso(pipeline.createdAt);
  if (created) unified.created_at = created;
  const updated = hubspotDateToIso(pipeline.updatedAt);
  if (updated) unified.updated_at = updated;
  unified.remote_data = pipeline;
  return unified;
}
