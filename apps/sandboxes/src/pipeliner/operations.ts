import { nowMicros } from './dates';
import {
  deleteProtectedError,
  deletedRelationIssue,
  entityNotFoundError,
  invalidJsonError,
  type JsonObject,
  PipelinerError,
  validationError,
} from './errors';
import type { EntityName } from './fields';
import { newId } from './ids';
import { containerOf, type SandboxStore } from './store';
import type { PipelineRecord, StepRecord } from './types';
import {
  parsePipelineInput,
  parseStepInput,
  type StepValues,
  VALIDATION_ALLOW_DELETED_RELATION,
} from './validation';

/**
 * Writes on Steps and Pipelines (pipeliner-api.md §2, §3, §4, §5). Every operation validates completely
 * before it changes anything, so a failed item never leaves partial state. Each written record gets the next
 * value of the space-wide revision counter and `modified` = now.
 */

/** Write parameters from the query string (§6). */
export interface WriteOptions {
  validationLevel: number;
  /** Index of the item in a batch body, reported as `entity_index` of a 422 (null for single writes). */
  entityIndex?: number | null;
}

function applyStepValues(step: StepRecord, values: StepValues): void {
  Object.assign(step, values);
}

function newStepRecord(values: StepValues, pipelineId: string | null, now: number, revision: number): StepRecord {
  return {
    id: newId(),
    created: now,
    modified: now,
    is_deleted: false,
    is_delete_protected: false,
    name: values.name ?? '',
    description: values.description ?? null,
    percent: values.percent ?? null,
    sort_order: 0,
    timeframe: values.timeframe ?? null,
    has_readonly_form: values.has_readonly_form ?? false,
    has_version_increment: values.has_version_increment ?? false,
    pipeline_id: pipelineId,
    lead_process_id: values.lead_process_id ?? null,
    quote_process_id: values.quote_process_id ?? null,
    revision,
    documents: values.documents ?? [],
    step_checklists: values.step_checklists ?? [],
    deleted_with_pipeline: null,
  };
}

/** Finds a live (or, with `includeDeleted`, any) step; 404 otherwise. */
export function requireStep(store: SandboxStore, id: string, includeDeleted = false): StepRecord {
  const step = store.step(id);
  if (!step || (step.is_deleted && !includeDeleted)) throw entityNotFoundError('Step', id);
  return step;
}

/** Finds a live (or, with `includeDeleted`, any) pipeline; 404 otherwise. */
export function requirePipeline(store: SandboxStore, id: string, includeDeleted = false): PipelineRecord {
  const pipeline = store.pipeline(id);
  if (!pipeline || (pipeline.is_deleted && !includeDeleted)) throw entityNotFoundError('Pipeline', id);
  return pipeline;
}

/**
 * `POST /entities/Steps`. Without `sort_order` the step goes to the end of its pipeline (0-based).
 * @throws PipelinerError 422 for a missing name, read-only fields without bit 8, an unknown pipeline.
 */
export function createStep(store: SandboxStore, body: JsonObject, options: WriteOptions): StepRecord {
  const parsed = parseStepInput(body, { mode: 'create', validationLevel: options.validationLevel, store, allowPlacement: true });
  if (parsed.issues.length) throw validationError('Step', newId(), parsed.issues, options.entityIndex ?? null);
  const step = newStepRecord(parsed.values, parsed.pipelineId ?? null, nowMicros(), store.nextRevision());
  store.addStep(step, parsed.sortOrder);
  return step;
}

/** `PATCH /entities/Steps/{id}`: partial update; `pipeline_id`/`sort_order` move the step (bit 8 only). */
export function updateStep(store: SandboxStore, id: string, body: JsonObject, options: WriteOptions): StepRecord {
  const step = requireStep(store, id);
  const parsed = parseStepInput(body, { mode: 'update', validationLevel: options.validationLevel, store, allowPlacement: true });
  if (parsed.issues.length) throw validationError('Step', step.id, parsed.issues, options.entityIndex ?? null);
  const previousContainer = containerOf(step);
  applyStepValues(step, parsed.values);
  if (parsed.pipelineId !== undefined) step.pipeline_id = parsed.pipelineId;
  store.touch(step);
  if (parsed.sortOrder !== undefined || containerOf(step) !== previousContainer) {
    store.reposition(step, previousContainer, parsed.sortOrder);
  }
  return step;
}

/** `DELETE /entities/Steps/{id}`: soft delete; the remaining steps of its pipeline close the gap. */
export function deleteStep(store: SandboxStore, id: string, options: WriteOptions): StepRecord {
  const step = requireStep(store, id);
  if (step.is_delete_protected) throw deleteProtectedError('Step', step.id, options.entityIndex ?? null);
  step.is_deleted = true;
  store.touch(step);
  store.compact(containerOf(step));
  return step;
}

/** `POST /entities/Steps/batch-restore` item (2026 spec): undeletes a step at the end of its pipeline. */
export function restoreStep(store: SandboxStore, id: string, options: WriteOptions): StepRecord {
  const step = requireStep(store, id, true);
  if (!step.is_deleted) return step;
  const pipeline = step.pipeline_id ? store.pipeline(step.pipeline_id) : undefined;
  if (pipeline?.is_deleted && (options.validationLevel & VALIDATION_ALLOW_DELETED_RELATION) === 0) {
    throw validationError('Step', step.id, [deletedRelationIssue('Step', 'pipeline_id', pipeline.id, 'Pipeline')], options.entityIndex ?? null);
  }
  step.is_deleted = false;
  step.deleted_with_pipeline = null;
  store.touch(step);
  store.reposition(step, containerOf(step));
  return step;
}

/** `POST /entities/Pipelines`: requires name, color and steps; the steps are created in array order. */
export function createPipeline(store: SandboxStore, body: JsonObject, options: WriteOptions): PipelineRecord {
  const parsed = parsePipelineInput(body, { mode: 'create', validationLevel: options.validationLevel, store });
  if (parsed.issues.length) throw validationError('Pipeline', newId(), parsed.issues, options.entityIndex ?? null);
  const now = nowMicros();
  const pipeline: PipelineRecord = {
    id: newId(),
    created: now,
    modified: now,
    is_deleted: false,
    is_delete_protected: false,
    name: parsed.values.name ?? '',
    color: parsed.values.color ?? 0,
    revision: store.nextRevision(),
  };
  store.addPipeline(pipeline);
  for (const item of parsed.steps ?? []) {
    store.addStep(newStepRecord(item.input.values, pipeline.id, now, store.nextRevision()));
  }
  return pipeline;
}

/**
 * `PATCH /entities/Pipelines/{id}`. `steps` is merged (sandbox choice, §8 question 1): items with `id` update
 * that step, items without create one. When the array lists every current step, its order becomes the new
 * order; otherwise existing steps keep their order and new ones are appended in array order.
 */
export function updatePipeline(store: SandboxStore, id: string, body: JsonObject, options: WriteOptions): PipelineRecord {
  const pipeline = requirePipeline(store, id);
  const parsed = parsePipelineInput(body, { mode: 'update', validationLevel: options.validationLevel, store, pipelineId: pipeline.id });
  if (parsed.issues.length) throw validationError('Pipeline', pipeline.id, parsed.issues, options.entityIndex ?? null);
  const now = nowMicros();
  Object.assign(pipeline, parsed.values);
  store.touch(pipeline, now);
  if (!parsed.steps?.length) return pipeline;

  const existing = store.pipelineSteps(pipeline.id);
  const written = new Set<StepRecord>();
  const listed: StepRecord[] = [];
  for (const item of parsed.steps) {
    if (item.id) {
      const step = requireStep(store, item.id);
      applyStepValues(step, item.input.values);
      written.add(step);
      if (!listed.includes(step)) listed.push(step);
    } else {
      const step = newStepRecord(item.input.values, pipeline.id, now, 0);
      store.putStep(step);
      written.add(step);
      listed.push(step);
    }
  }
  const listsAll = existing.every((step) => listed.includes(step));
  const order = listsAll ? listed : [...existing, ...listed.filter((step) => !existing.includes(step))];
  order.forEach((step, index) => {
    if (written.has(step) || step.sort_order !== index) {
      step.sort_order = index;
      store.touch(step, now);
    }
  });
  return pipeline;
}

/** `DELETE /entities/Pipelines/{id}`: soft delete, cascading to its steps (sandbox choice, §8 question 6). */
export function deletePipeline(store: SandboxStore, id: string, options: WriteOptions): PipelineRecord {
  const pipeline = requirePipeline(store, id);
  if (pipeline.is_delete_protected) throw deleteProtectedError('Pipeline', pipeline.id, options.entityIndex ?? null);
  const steps = store.pipelineSteps(pipeline.id);
  pipeline.is_deleted = true;
  store.touch(pipeline);
  for (const step of steps) {
    step.is_deleted = true;
    step.deleted_with_pipeline = pipeline.id;
    store.touch(step);
  }
  return pipeline;
}

/** `POST /entities/Pipelines/batch-restore` item: undeletes the pipeline and the steps deleted with it. */
export function restorePipeline(store: SandboxStore, id: string, _options: WriteOptions): PipelineRecord {
  const pipeline = requirePipeline(store, id, true);
  if (!pipeline.is_deleted) return pipeline;
  pipeline.is_deleted = false;
  store.touch(pipeline);
  for (const step of store.allSteps()) {
    if (step.deleted_with_pipeline === pipeline.id) {
      step.is_deleted = false;
      step.deleted_with_pipeline = null;
      store.touch(step);
    }
  }
  store.compact(`p:${pipeline.id}`);
  return pipeline;
}

/** The single-entity operations of one collection. */
export interface EntityOperations {
  entityName: EntityName;
  create(store: SandboxStore, body: JsonObject, options: WriteOptions): { id: string };
  update(store: SandboxStore, id: string, body: JsonObject, options: WriteOptions): { id: string };
  remove(store: SandboxStore, id: string, options: WriteOptions): { id: string };
  restore(store: SandboxStore, id: string, options: WriteOptions): { id: string };
}

export const STEP_OPERATIONS: EntityOperations = {
  entityName: 'Step',
  create: createStep,
  update: updateStep,
  remove: deleteStep,
  restore: restoreStep,
};

export const PIPELINE_OPERATIONS: EntityOperations = {
  entityName: 'Pipeline',
  create: createPipeline,
  update: updatePipeline,
  remove: deletePipeline,
  restore: restorePipeline,
};

/** Rollback behaviour of batch endpoints (§6 `rollback-method`). */
export type RollbackMethod = 0 | 1;

/**
 * Runs a batch (`batch-modify`, `batch-delete`, `batch-restore`; §2.1, §4). Each item yields the written id, or
 * with `rollback-method=1` the `Error` body of its failure. With `rollback-method=0` (default) the first failure
 * undoes every item and is thrown as the whole answer (as Pipeliner's bulk page shows).
 * @returns the `data` array of `{success:true, data}`.
 */
export function runBatch<T>(
  store: SandboxStore,
  items: T[],
  rollback: RollbackMethod,
  apply: (item: T, index: number) => { id: string },
): unknown[] {
  const snapshot = store.snapshot();
  const results: unknown[] = [];
  items.forEach((item, index) => {
    try {
      results.push(apply(item, index).id);
    } catch (error) {
      if (!(error instanceof PipelinerError)) throw error;
      if (rollback === 0) {
        store.restore(snapshot);
        throw error;
      }
      results.push(error.body);
    }
  });
  return results;
}

/** Items of `batch-modify`: objects; a non-object item fails like an invalid body. */
export function asBatchObject(item: unknown): JsonObject {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) throw invalidJsonError();
  return item as JsonObject;
}
