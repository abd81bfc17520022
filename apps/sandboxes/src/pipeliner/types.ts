/**
 * Shapes of the emulated Pipeliner entities (pipeliner-api.md §2.2, §3; spec schemas `Step` and `Pipeline`
 * of shared/specs/pipeliner-steps-pipelines.subset.openapi.json) and of the sandbox's own configuration.
 */

/** A Step as Pipeliner outputs it (un-expanded): every property of the spec's `Step` schema, in its order. */
export interface Step {
  is_delete_protected: boolean;
  id: string;
  is_deleted: boolean;
  /** `YYYY-MM-DD HH:MM:SS.ffffff+00:00` (pipeliner-api.md §5). */
  modified: string;
  created: string;
  /** Absolute URI of the related LeadProcess, or null. */
  lead_process: string | null;
  /** Absolute URI `{service_url}/api/v100/rest/spaces/{space}/entities/Pipelines/{id}`, or null. */
  pipeline: string | null;
  quote_process: string | null;
  description: string | null;
  has_readonly_form: boolean;
  has_version_increment: boolean;
  lead_process_id: string | null;
  name: string;
  percent: number | null;
  pipeline_id: string | null;
  quote_process_id: string | null;
  /** 0-based position inside the step's pipeline (sandbox choice, see docs/pipeliner-sandbox.md). */
  sort_order: number;
  timeframe: number | null;
  revision: number;
  /** URIs of CloudObjectStepRelations. */
  documents: string[];
  /** URIs of StepChecklists. */
  step_checklists: string[];
}

/** A Pipeline as Pipeliner outputs it (un-expanded): every property of the spec's `Pipeline` schema, in its order. */
export interface Pipeline {
  is_delete_protected: boolean;
  id: string;
  is_deleted: boolean;
  modified: string;
  created: string;
  /** 24-bit RGB integer, e.g. 16233984. */
  color: number;
  name: string;
  revision: number;
  /** URIs of the pipeline's (non-deleted) steps in `sort_order`; full Step objects with `expand=steps`. */
  steps: string[];
  opportunity_types: string[];
}

/** What every internal entity record has. Dates are microseconds since the Unix epoch (UTC). */
export interface EntityRecord {
  id: string;
  created: number;
  modified: number;
  is_deleted: boolean;
  is_delete_protected: boolean;
  name: string;
  revision: number;
}

/** Internal record of a Step. */
export interface StepRecord extends EntityRecord {
  description: string | null;
  percent: number | null;
  sort_order: number;
  timeframe: number | null;
  has_readonly_form: boolean;
  has_version_increment: boolean;
  pipeline_id: string | null;
  lead_process_id: string | null;
  quote_process_id: string | null;
  documents: string[];
  step_checklists: string[];
  /** Set when the step was soft-deleted together with its pipeline (restoring the pipeline restores it). */
  deleted_with_pipeline: string | null;
}

/** Internal record of a Pipeline. Its steps are the StepRecords whose `pipeline_id` is its id. */
export interface PipelineRecord extends EntityRecord {
  color: number;
}

/** A step of a seed file. Dates accept Pipeliner's format or ISO 8601; missing ones default to the seed's `created`. */
export interface SeedStep {
  id?: string;
  name: string;
  description?: string | null;
  percent?: number | null;
  timeframe?: number | null;
  has_readonly_form?: boolean;
  has_version_increment?: boolean;
  lead_process_id?: string | null;
  quote_process_id?: string | null;
  /** Only for top-level `steps` of a seed (steps of pipelines are nested in `Pipeline.steps`). */
  pipeline_id?: string | null;
  is_deleted?: boolean;
  is_delete_protected?: boolean;
  created?: string;
  modified?: string;
  revision?: number;
}

/** A pipeline of a seed file; its `steps` are listed in order (sort_order 0, 1, 2, ...). */
export interface SeedPipeline {
  id?: string;
  name: string;
  color?: number;
  is_deleted?: boolean;
  is_delete_protected?: boolean;
  created?: string;
  modified?: string;
  revision?: number;
  steps?: SeedStep[];
}

/** Initial state of the sandbox: the JSON shape of a seed file (`PIPELINER_SANDBOX_SEED`). */
export interface SandboxSeed {
  /** Start value of the space-wide revision counter (default: the highest revision in the seed). */
  revision?: number;
  /** Default date for records without `created`/`modified`. */
  created?: string;
  pipelines: SeedPipeline[];
  /** Steps outside any pipeline (e.g. lead-process steps), or steps naming their pipeline by `pipeline_id`. */
  steps?: SeedStep[];
}

/** Fault rules and the request log are the kit's, the same for every provider. */
export type { FaultRule, RecordedRequest } from '../kit/types';
