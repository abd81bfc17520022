import { formatPipelinerDate } from './dates';
import type { JsonObject } from './errors';
import type { SandboxStore } from './store';
import type { PipelineRecord, StepRecord } from './types';

/**
 * Output of entities as Pipeliner writes them (pipeliner-api.md §2.2, §3, §6): every schema field present,
 * relations as absolute URIs (`null` when empty) or full objects with `expand`, `load-only` trimming, dates
 * in Pipeliner's format (optionally in the `Timezone` header's zone, §5).
 */

/** A set of dotted paths as a tree: `id,pipeline.name` -> `{ id: {}, pipeline: { name: {} } }`. */
export interface PathTree {
  [key: string]: PathTree;
}

/** What rendering needs to know about the request. */
export interface RenderContext {
  /** `{scheme}://{host}` the request reached, e.g. `http://127.0.0.1:8100`. */
  baseUrl: string;
  spaceId: string;
  /** IANA zone of the `Timezone` header; UTC when absent. */
  timeZone?: string;
  store: SandboxStore;
}

/** Parses a comma list of dotted paths (`expand`, `load-only`, §6) into a {@link PathTree}. */
export function parsePathList(text: string): PathTree {
  const tree: PathTree = {};
  for (const raw of text.split(',')) {
    const path = raw.trim();
    if (!path) continue;
    let node = tree;
    for (const part of path.split('.')) {
      if (!part) continue;
      node[part] ??= {};
      node = node[part];
    }
  }
  return tree;
}

/** Union of two path trees. */
export function mergePathTrees(a: PathTree, b: PathTree): PathTree {
  const out: PathTree = { ...a };
  for (const [key, sub] of Object.entries(b)) out[key] = key in out ? mergePathTrees(out[key], sub) : sub;
  return out;
}

/** Keeps the nested (dotted) branches of a `load-only` tree: those imply expanding the relation (sandbox inference, §3). */
export function nestedBranches(tree: PathTree): PathTree {
  const out: PathTree = {};
  for (const [key, sub] of Object.entries(tree)) if (Object.keys(sub).length > 0) out[key] = sub;
  return out;
}

/** `{baseUrl}/api/v100/rest/spaces/{space}/entities/{collection}/{id}` (§2.2, observed relation format). */
export function entityUri(ctx: Pick<RenderContext, 'baseUrl' | 'spaceId'>, collection: string, id: string): string {
  return `${ctx.baseUrl}/api/v100/rest/spaces/${encodeURIComponent(ctx.spaceId)}/entities/${collection}/${id}`;
}

const relationUri = (ctx: RenderContext, collection: string, id: string | null): string | null =>
  id ? entityUri(ctx, collection, id) : null;

/** A Step with every field of the spec's `Step` schema, in schema order; `expand.pipeline` embeds the Pipeline. */
export function renderStep(step: StepRecord, ctx: RenderContext, expand: PathTree = {}): JsonObject {
  let pipeline: unknown = relationUri(ctx, 'Pipelines', step.pipeline_id);
  if (expand['pipeline'] && step.pipeline_id) {
    const record = ctx.store.pipeline(step.pipeline_id);
    pipeline = record ? renderPipeline(record, ctx, expand['pipeline']) : null;
  }
  return {
    is_delete_protected: step.is_delete_protected,
    id: step.id,
    is_deleted: step.is_deleted,
    modified: formatPipelinerDate(step.modified, ctx.timeZone),
    created: formatPipelinerDate(step.created, ctx.timeZone),
    lead_process: relationUri(ctx, 'LeadProcesses', step.lead_process_id),
    pipeline,
    quote_process: relationUri(ctx, 'QuoteProcesses', step.quote_process_id),
    description: step.description,
    has_readonly_form: step.has_readonly_form,
    has_version_increment: step.has_version_increment,
    lead_process_id: step.lead_process_id,
    name: step.name,
    percent: step.percent,
    pipeline_id: step.pipeline_id,
    quote_process_id: step.quote_process_id,
    sort_order: step.sort_order,
    timeframe: step.timeframe,
    revision: step.revision,
    documents: step.documents.map((id) => entityUri(ctx, 'CloudObjectStepRelations', id)),
    step_checklists: step.step_checklists.map((id) => entityUri(ctx, 'StepChecklists', id)),
  };
}

/** A Pipeline with every field of the spec's `Pipeline` schema; `steps` are URIs, or Step objects with `expand.steps`. */
export function renderPipeline(pipeline: PipelineRecord, ctx: RenderContext, expand: PathTree = {}): JsonObject {
  const steps = ctx.store.pipelineSteps(pipeline.id);
  return {
    is_delete_protected: pipeline.is_delete_protected,
    id: pipeline.id,
    is_deleted: pipeline.is_deleted,
    modified: formatPipelinerDate(pipeline.modified, ctx.timeZone),
    created: formatPipelinerDate(pipeline.created, ctx.timeZone),
    color: pipeline.color,
    name: pipeline.name,
    revision: pipeline.revision,
    steps: expand['steps']
      ? steps.map((step) => renderStep(step, ctx, expand['steps']))
      : steps.map((step) => entityUri(ctx, 'Steps', step.id)),
    opportunity_types: [],
  };
}

/** Keeps only the fields named by a `load-only` tree (§6), in the entity's own key order; dots reach nested objects. */
export function applyLoadOnly(value: JsonObject, tree: PathTree): JsonObject {
  const out: JsonObject = {};
  for (const [key, fieldValue] of Object.entries(value)) {
    const sub = tree[key];
    if (!sub) continue;
    if (Object.keys(sub).length === 0) out[key] = fieldValue;
    else if (Array.isArray(fieldValue)) out[key] = fieldValue.map((item) => (isObject(item) ? applyLoadOnly(item, sub) : item));
    else out[key] = isObject(fieldValue) ? applyLoadOnly(fieldValue, sub) : fieldValue;
  }
  return out;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
