import { nowMicros, parseDateInput } from './dates';
import { newId } from './ids';
import type { PipelineRecord, SandboxSeed, SeedPipeline, SeedStep, StepRecord } from './types';

/** A deep copy of the whole state, for batch rollback (`rollback-method=0`, pipeliner-api.md §4). */
export interface StoreSnapshot {
  steps: StepRecord[];
  pipelines: PipelineRecord[];
  revision: number;
}

const DEFAULT_SEED_DATE = '2024-01-15 09:00:00.000000+00:00';

/**
 * In-memory state of one Pipeliner space: Steps, Pipelines and the space-wide revision counter (§5).
 * It keeps steps ordered: inside one container (a pipeline, a lead process, a quote process, or none) the
 * non-deleted steps have `sort_order` 0, 1, 2, ... without gaps (sandbox choice, §8 question 2).
 * It does no validation; `operations.ts` validates before calling it.
 */
export class SandboxStore {
  private readonly steps = new Map<string, StepRecord>();
  private readonly pipelines = new Map<string, PipelineRecord>();
  private revision = 0;

  constructor(private readonly seed: SandboxSeed) {
    this.reset();
  }

  /** Back to the seed. */
  reset(): void {
    this.steps.clear();
    this.pipelines.clear();
    this.loadSeed(this.seed);
  }

  snapshot(): StoreSnapshot {
    return {
      steps: [...this.steps.values()].map((step) => ({ ...step, documents: [...step.documents], step_checklists: [...step.step_checklists] })),
      pipelines: [...this.pipelines.values()].map((pipeline) => ({ ...pipeline })),
      revision: this.revision,
    };
  }

  restore(snapshot: StoreSnapshot): void {
    this.steps.clear();
    this.pipelines.clear();
    for (const step of snapshot.steps) this.steps.set(step.id, step);
    for (const pipeline of snapshot.pipelines) this.pipelines.set(pipeline.id, pipeline);
    this.revision = snapshot.revision;
  }

  /** Increments and returns the space-wide revision counter. */
  nextRevision(): number {
    this.revision += 1;
    return this.revision;
  }

  /** Marks a record as written now: new revision, `modified` = now. */
  touch(record: { revision: number; modified: number }, now = nowMicros()): void {
    record.revision = this.nextRevision();
    record.modified = now;
  }

  step(id: string): StepRecord | undefined {
    return this.steps.get(id.toLowerCase());
  }

  pipeline(id: string): PipelineRecord | undefined {
    return this.pipelines.get(id.toLowerCase());
  }

  /** Every step, deleted ones included. */
  allSteps(): StepRecord[] {
    return [...this.steps.values()];
  }

  /** Every pipeline, deleted ones included. */
  allPipelines(): PipelineRecord[] {
    return [...this.pipelines.values()];
  }

  /** The non-deleted steps of a pipeline in `sort_order`. */
  pipelineSteps(pipelineId: string): StepRecord[] {
    return this.siblings(`p:${pipelineId}`);
  }

  addPipeline(pipeline: PipelineRecord): void {
    this.pipelines.set(pipeline.id, pipeline);
  }

  /** Stores a step as given, without placing it (the caller sets a consistent `sort_order`). */
  putStep(step: StepRecord): void {
    this.steps.set(step.id, step);
  }

  /** Adds a new step (its container fields set) at `position` of its container (default: the end). */
  addStep(step: StepRecord, position?: number): void {
    this.steps.set(step.id, step);
    if (!step.is_deleted) this.place(step, position);
  }

  /**
   * Puts `step` (already holding its new container fields) at `position` of its container and closes the
   * gap it left in `previousContainer`. Renumbered siblings get a new revision.
   */
  reposition(step: StepRecord, previousContainer: string, position?: number): void {
    if (previousContainer !== containerOf(step)) this.compact(previousContainer, step.id);
    this.place(step, position);
  }

  /** Closes the gap a deleted step left in its container. */
  compact(container: string, excludeId?: string): void {
    this.siblings(container, excludeId).forEach((sibling, index) => {
      if (sibling.sort_order !== index) {
        sibling.sort_order = index;
        this.touch(sibling);
      }
    });
  }

  private place(step: StepRecord, position?: number): void {
    const container = containerOf(step);
    // Appending needs no sort: the other steps already hold 0..n-1.
    if (position === undefined || position >= this.countIn(container, step.id)) {
      step.sort_order = this.countIn(container, step.id);
      return;
    }
    const ordered = this.siblings(container, step.id);
    const at = Math.max(0, Math.min(position, ordered.length));
    ordered.splice(at, 0, step);
    ordered.forEach((sibling, index) => {
      if (sibling === step) {
        step.sort_order = index;
      } else if (sibling.sort_order !== index) {
        sibling.sort_order = index;
        this.touch(sibling);
      }
    });
  }

  private countIn(container: string, excludeId?: string): number {
    const inContainer = containerMatcher(container);
    let count = 0;
    for (const step of this.steps.values()) if (!step.is_deleted && step.id !== excludeId && inContainer(step)) count += 1;
    return count;
  }

  private siblings(container: string, excludeId?: string): StepRecord[] {
    const inContainer = containerMatcher(container);
    const found: StepRecord[] = [];
    for (const step of this.steps.values()) if (!step.is_deleted && step.id !== excludeId && inContainer(step)) found.push(step);
    return found.sort((a, b) => a.sort_order - b.sort_order || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  private loadSeed(seed: SandboxSeed): void {
    this.revision = seed.revision ?? 0;
    const defaultDate = parseSeedDate(seed.created ?? DEFAULT_SEED_DATE);
    const revisionOf = (given: number | undefined): number => {
      if (given === undefined) return this.nextRevision();
      this.revision = Math.max(this.revision, given);
      return given;
    };
    // The fields every entity of a seed has: id, dates (defaulting to the seed's), deletion flags, name, revision.
    const entityFrom = (input: SeedStep | SeedPipeline) => {
      const created = input.created ? parseSeedDate(input.created) : defaultDate;
      return {
        id: (input.id ?? newId()).toLowerCase(),
        created,
        modified: input.modified ? parseSeedDate(input.modified) : created,
        is_deleted: input.is_deleted ?? false,
        is_delete_protected: input.is_delete_protected ?? false,
        name: input.name,
        revision: revisionOf(input.revision),
      };
    };
    const stepFrom = (input: SeedStep, pipelineId: string | null, sortOrder: number): StepRecord => {
      return {
        ...entityFrom(input),
        description: input.description ?? null,
        percent: input.percent ?? null,
        sort_order: sortOrder,
        timeframe: input.timeframe ?? null,
        has_readonly_form: input.has_readonly_form ?? false,
        has_version_increment: input.has_version_increment ?? false,
        pipeline_id: pipelineId,
        lead_process_id: input.lead_process_id?.toLowerCase() ?? null,
        quote_process_id: input.quote_process_id?.toLowerCase() ?? null,
        documents: [],
        step_checklists: [],
        deleted_with_pipeline: null,
      };
    };
    for (const input of seed.pipelines) {
      const pipeline: PipelineRecord = { ...entityFrom(input), color: input.color ?? 0 };
      this.pipelines.set(pipeline.id, pipeline);
      (input.steps ?? []).forEach((stepInput, index) => {
        const step = stepFrom(stepInput, pipeline.id, index);
        this.steps.set(step.id, step);
      });
      this.compact(`p:${pipeline.id}`);
    }
    for (const input of seed.steps ?? []) {
      const pipelineId = input.pipeline_id?.toLowerCase() ?? null;
      if (pipelineId && !this.pipelines.has(pipelineId)) {
        throw new Error(`Invalid Pipeliner sandbox seed: step '${input.name}' names unknown pipeline ${pipelineId}`);
      }
      const step = stepFrom(input, pipelineId, Number.MAX_SAFE_INTEGER);
      this.steps.set(step.id, step);
      if (!step.is_deleted) this.place(step);
    }
  }
}

/** The ordering container of a step: `p:<pipeline>`, `l:<lead process>`, `q:<quote process>` or `none`. */
export function containerOf(step: Pick<StepRecord, 'pipeline_id' | 'lead_process_id' | 'quote_process_id'>): string {
  if (step.pipeline_id) return `p:${step.pipeline_id}`;
  if (step.lead_process_id) return `l:${step.lead_process_id}`;
  if (step.quote_process_id) return `q:${step.quote_process_id}`;
  return 'none';
}

/** A fast test for "step is in this container" (no string building per step). */
function containerMatcher(container: string): (step: StepRecord) => boolean {
  if (container === 'none') return (step) => !step.pipeline_id && !step.lead_process_id && !step.quote_process_id;
  const id = container.slice(2);
  if (container.startsWith('p:')) return (step) => step.pipeline_id === id;
  if (container.startsWith('l:')) return (step) => !step.pipeline_id && step.lead_process_id === id;
  return (step) => !step.pipeline_id && !step.lead_process_id && step.quote_process_id === id;
}

function parseSeedDate(text: string): number {
  const micros = parseDateInput(text);
  if (micros === null) throw new Error(`Invalid Pipeliner sandbox seed: bad date '${text}'`);
  return micros;
}
