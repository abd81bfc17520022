import { isJsonObject, mergeRemoteData, type Stage, type StageCreateBody } from '@unicrm/model';
import { pipelinerDateToIso } from './dates';
import type { components } from './generated/pipeliner-api';

/** Pipeliner's Step, as its OpenAPI document describes the output (generated). */
export type PipelinerStep = components['schemas']['Step'];
type Writable<T> = { -readonly [K in keyof T]: T[K] };
/**
 * Pipeliner's create input for a Step (generated), with its read-only fields made writable (they
 * are written with `validation-level=8`), plus `sort_order`, read-only and absent from the 2024 input.
 */
export type PipelinerCreateStepInput = Writable<components['schemas']['createStepInput']> & { sort_order?: number };

/** One unified create field and the Step key desunify writes it to. */
export interface StepFieldMapping {
  /** Dot path of the unified field in the create body (`pipeline.id`). */
  readonly unified: string;
  /** The Step key it is written to, which is also the key a caller may set in `remote_data`. */
  readonly remote: 'name' | 'pipeline_id' | 'sort_order';
  /** The field's value in a body; undefined when absent. */
  read(body: StageCreateBody): unknown;
  /** True when a `remote_data` value writes the same thing as the mapped value (ids: case-insensitive). */
  same(mapped: unknown, remote: unknown): boolean;
}

const own = (record: object, key: string) => Object.prototype.hasOwnProperty.call(record, key);
const sameValue = (a: unknown, b: unknown) => a === b;
const sameId = (a: unknown, b: unknown) => typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase();

/**
 * The desunify mapping, field by field (DESIGN.md §2): `name` -> `name`, `pipeline.id` -> `pipeline_id`,
 * `position` -> `sort_order`. {@link desunifyStageCreate} writes these; {@link remoteDataConflicts} uses the same
 * table to find a `remote_data` key that would overwrite a unified field with another value.
 */
export const STEP_FIELD_MAPPING: readonly StepFieldMapping[] = Object.freeze([
  { unified: 'name', remote: 'name', read: (body: StageCreateBody) => body.name, same: sameValue },
  { unified: 'pipeline.id', remote: 'pipeline_id', read: (body: StageCreateBody) => body.pipeline?.id, same: sameId },
  { unified: 'position', remote: 'sort_order', read: (body: StageCreateBody) => body.position, same: sameValue },
]);

/** A `remote_data` key that the mapping writes from a unified field, set to another value than that field's. */
export interface RemoteDataConflict {
  /** The mapping entry: `unified` and `remote` name the two paths. */
  field: StepFieldMapping;
  mapped: unknown;
  remote: unknown;
}

/**
 * The conflicts between the unified fields of a create body and `remote_data`: for each entry of
 * {@link STEP_FIELD_MAPPING} whose unified field is set and whose Step key `remote_data` also sets (an own key)
 * to a value that is not {@link StepFieldMapping.same}. Since `remote_data` wins the merge, each would silently
 * replace what the unified field asked for. An equal value is no conflict. Costs three key look-ups.
 */
export function remoteDataConflicts(body: StageCreateBody): RemoteDataConflict[] {
  const remote = body.remote_data;
  const conflicts: RemoteDataConflict[] = [];
  if (typeof remote !== 'object' || remote === null || Array.isArray(remote)) return conflicts;
  for (const field of STEP_FIELD_MAPPING) {
    if (!own(remote, field.remote)) continue;
    const mapped = field.read(body);
    if (mapped !== undefined && !field.same(mapped, remote[field.remote])) conflicts.push({ field, mapped, remote: remote[field.remote] });
  }
  return conflicts;
}

/**
 * desunify: the unified create body to Pipeliner's Step create body (DESIGN.md §2 "Pipeliner call"):
 * `name` -> `name`, `pipeline.id` -> `pipeline_id`, `position` -> `sort_order`, then `remote_data`
 * deep-merged over it (remote_data wins). `status` has no Pipeliner field on create (steps are created
 * active) and `pipeline.name` is not written: a pipeline is chosen by id.
 */
export function desunifyStageCreate(body: StageCreateBody): Record<string, unknown> {
  return mergeRemoteData(mapStageCreate(body), body.remote_data);
}

/** The mapped fields of {@link STEP_FIELD_MAPPING}, in its order; `name` always (empty when absent). */
function mapStageCreate(body: StageCreateBody): PipelinerCreateStepInput {
  const mapped: PipelinerCreateStepInput = { name: '' };
  for (const field of STEP_FIELD_MAPPING) {
    const value = field.read(body);
    if (value !== undefined) (mapped as Record<string, unknown>)[field.remote] = value;
  }
  return mapped;
}

/** The Step create body, serialised, and the two fields of it that decide `validation-level` and the pipeline check. */
export interface StepCreateRequest {
  /** JSON of {@link desunifyStageCreate}'s body. */
  json: string;
  pipeline_id: unknown;
  sort_order: unknown;
}

/** Keys after which `remote_data` is merged the long way: the ones mergeRemoteData skips, and a custom serialiser. */
const MERGE_THE_LONG_WAY = ['__proto__', 'constructor', 'prototype', 'toJSON'];

/**
 * {@link desunifyStageCreate}, serialised: the JSON sent to Pipeliner. When `remote_data` shares no key with the
 * mapped fields (the usual case: provider-only fields), the merged object is never built: the text is the mapped
 * fields' JSON followed by `remote_data`'s, which is the merged body's JSON with the same keys and values in the
 * same order (only integer-like keys, which a JSON object does not order, may sit elsewhere). Building a merged copy
 * of a large `remote_data` costs as much as serialising it (milliseconds near the 1 MiB body limit). Otherwise
 * (shared keys, prototype keys, a `toJSON`) the body is merged as {@link desunifyStageCreate} does and serialised.
 */
export function stepCreateRequest(body: StageCreateBody): StepCreateRequest {
  const mapped = mapStageCreate(body);
  const remote = body.remote_data;
  const simple =
    remote !== undefined &&
    isJsonObject(remote) &&
    !MERGE_THE_LONG_WAY.some((key) => own(remote, key)) &&
    !Object.keys(mapped).some((key) => own(remote, key));
  if (!simple) {
    const merged = mergeRemoteData(mapped, remote);
    return { json: JSON.stringify(merged), pipeline_id: merged.pipeline_id, sort_order: merged.sort_order };
  }
  const mappedJson = JSON.stringify(mapped);
  const remoteJson = JSON.stringify(remote);
  return {
    json: remoteJson === '{}' ? mappedJson : `${mappedJson.slice(0, -1)},${remoteJson.slice(1)}`,
    pipeline_id: own(mapped, 'pipeline_id') ? mapped.pipeline_id : remote.pipeline_id,
    sort_order: own(mapped, 'sort_order') ? mapped.sort_order : remote.sort_order,
  };
}

/**
 * unify: a Pipeliner Step to the unified Stage (the mapping table of DESIGN.md §2). Fields Pipeliner
 * has no value for are omitted; `remote_data` is the Step exactly as Pipeliner returned it.
 * @param step the `data` of Pipeliner's answer
 * @param pipelineName the name of the step's pipeline, when known
 */
export function unifyStep(step: Record<string, unknown>, pipelineName?: string): Stage {
  const stage: Stage = { id: String(step.id) };
  if (typeof step.name === 'string') stage.name = step.name;
  if (typeof step.sort_order === 'number') stage.position = step.sort_order;
  if (typeof step.is_deleted === 'boolean') stage.status = step.is_deleted ? 'inactive' : 'active';
  else stage.status = 'active';
  const pipelineId = stepPipelineId(step);
  if (pipelineId) stage.pipeline = pipelineName === undefined ? { id: pipelineId } : { id: pipelineId, name: pipelineName };
  const created = pipelinerDateToIso(step.created);
  if (created) stage.created_at = created;
  const updated = pipelinerDateToIso(step.modified);
  if (updated) stage.updated_at = updated;
  stage.remote_data = step;
  return stage;
}

/** The pipeline id of a Step: `pipeline_id`, or the id of an expanded `pipeline` object. */
export function stepPipelineId(step: Record<string, unknown>): string | undefined {
  if (typeof step.pipeline_id === 'string' && step.pipeline_id) return step.pipeline_id;
  if (isJsonObject(step.pipeline) && typeof step.pipeline.id === 'string') return step.pipeline.id;
  return undefined;
}

/**
 * The pipeline a Step answer reports, only when the answer carries it: its `pipeline_id` (a string, or `null` /
 * `''` for none: then `null`), else the `id` of an expanded `pipeline` object. `undefined` when the answer holds
 * neither, as when the caller's `remote_query[load-only]` left them out: nothing may then be concluded about
 * the step's pipeline from this answer (issue 12, item 12).
 */
export function reportedPipelineId(step: Record<string, unknown>): string | null | undefined {
  if (Object.prototype.hasOwnProperty.call(step, 'pipeline_id')) {
    const value = step.pipeline_id;
    if (value === null || value === '') return null;
    if (typeof value === 'string') return value;
  }
  if (isJsonObject(step.pipeline) && typeof step.pipeline.id === 'string' && step.pipeline.id) return step.pipeline.id;
  return undefined;
}

/** The pipeline name carried by a Step whose `pipeline` was expanded (`expand=pipeline`), if any. */
export function expandedPipelineName(step: Record<string, unknown>): string | undefined {
  return isJsonObject(step.pipeline) && typeof step.pipeline.name === 'string' ? step.pipeline.name : undefined;
}
