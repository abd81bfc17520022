import type { Pipeline, Stage } from '@unicrm/model';
import { pipedriveDateToIso } from './dates';
import type { components, operations } from './generated/pipedrive-api';

/** Pipedrive's StageItem (API v2), as its OpenAPI document describes a `GET /stages/{id}` answer's `data` (generated). */
export type PipedriveStage = NonNullable<operations['getStage']['responses'][200]['content']['application/json']['data']>;
/** Pipedrive's `addStageRequest` body (generated). */
export type PipedriveAddStageRequest = NonNullable<operations['addStage']['requestBody']>['content']['application/json'];
/** Pipedrive's `updateStage` body (generated). */
export type PipedriveUpdateStageRequest = NonNullable<operations['updateStage']['requestBody']>['content']['application/json'];
/** The generated components (the subset's schemas are inline, so this only carries the security schemes). */
export type PipedriveComponents = components;

/** A Pipedrive integer id as unicrm's string id; undefined for anything that is not a positive whole number. */
export function idText(value: unknown): string | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? String(value) : undefined;
}

/**
 * unify: a Pipedrive StageItem to the unified Stage (docs/integrations.md, Pipedrive's mapping): `id` (text), `name`,
 * `position` <- `order_nr`, `status` <- `is_deleted` (`inactive` when deleted), `pipeline` <- `pipeline_id` (text) and
 * the pipeline's name when known, `created_at`/`updated_at` <- `add_time`/`update_time` (RFC 3339 UTC), `remote_data`
 * the item exactly as Pipedrive sent it. Fields Pipedrive has no value for are left out.
 */
export function unifyStage(item: Record<string, unknown>, pipelineName?: string): Stage {
  const stage: Stage = { id: String(item.id) };
  if (typeof item.name === 'string') stage.name = item.name;
  if (typeof item.order_nr === 'number') stage.position = item.order_nr;
  stage.status = item.is_deleted === true ? 'inactive' : 'active';
  const pipelineId = idText(item.pipeline_id);
  if (pipelineId) stage.pipeline = pipelineName === undefined ? { id: pipelineId } : { id: pipelineId, name: pipelineName };
  const created = pipedriveDateToIso(item.add_time);
  if (created) stage.created_at = created;
  const updated = pipedriveDateToIso(item.update_time);
  if (updated) stage.updated_at = updated;
  stage.remote_data = item;
  return stage;
}

/**
 * unify: a Pipedrive pipeline to the unified Pipeline: `id`, `name`, `entity` `opportunity` (Pipedrive's pipelines move
 * deals), `stages` (when read: its stages that are not deleted, in `order_nr` order), dates, `remote_data` the pipeline
 * as Pipedrive sent it (its stages are not part of it: Pipedrive serves them from `/stages`).
 */
export function unifyPipeline(pipeline: Record<string, unknown>, stages?: Record<string, unknown>[]): Pipeline {
  const unified: Pipeline = { id: String(pipeline.id) };
  if (typeof pipeline.name === 'string') unified.name = pipeline.name;
  unified.entity = 'opportunity';
  if (stages) {
    const own = stages.filter((stage) => idText(stage.pipeline_id) === unified.id && stage.is_deleted !== true);
    own.sort((a, b) => (typeof a.order_nr === 'number' ? a.order_nr : 0) - (typeof b.order_nr === 'number' ? b.order_nr : 0));
    unified.stages = own.map((stage) => {
      const entry: NonNullable<Pipeline['stages']>[number] = { id: String(stage.id) };
      if (typeof stage.name === 'string') entry.name = stage.name;
      entry.status = 'active';
      entry.pipeline = { id: unified.id };
      return entry;
    });
  }
  const created = pipedriveDateToIso(pipeline.add_time);
  if (created) unified.created_at = created;
  const updated = pipedriveDateToIso(pipeline.update_time);
  if (updated) unified.updated_at = updated;
  unified.remote_data = pipeline;
  return unified;
}

/** The pipeline id of a stage item, as text. */
export function stagePipelineId(item: Record<string, unknown>): string | undefined {
  return idText(item.pipeline_id);
}

