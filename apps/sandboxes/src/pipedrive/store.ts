/** A stage as the sandbox keeps it: Pipedrive's StageItem fields (API v2). */
export interface SandboxStage {
  id: number;
  order_nr: number;
  name: string;
  is_deleted: boolean;
  deal_probability: number;
  pipeline_id: number;
  is_deal_rot_enabled: boolean;
  days_to_rotten: number | null;
  add_time: string;
  update_time: string;
}

/** A pipeline as the sandbox keeps it (API v2 fields). */
export interface SandboxPipeline {
  id: number;
  name: string;
  order_nr: number;
  is_deleted: boolean;
  is_deal_probability_enabled: boolean;
  add_time: string;
  update_time: string;
}

/** Ids and names of the built-in seed: Pipedrive's default pipeline and its stages. */
export const PIPEDRIVE_SEED = {
  pipelineId: 1,
  pipelineName: 'Sales Pipeline',
  stages: ['Lead In', 'Contact Made', 'Demo Scheduled', 'Proposal Made', 'Negotiations Started'],
} as const;

const SEED_TIME = '2024-01-01T00:00:00Z';

/** Pipedrive's wire form of a time: ISO 8601 UTC to the second (`2024-01-01T00:00:00Z`). */
export function pipedriveTime(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** The sandbox's records, in memory. Ids are integers counted per company, like Pipedrive's. */
export class PipedriveStore {
  stages = new Map<number, SandboxStage>();
  pipelines = new Map<number, SandboxPipeline>();
  private nextId = 1;

  constructor() {
    this.reset();
  }

  /** Back to the seed: one pipeline ("Sales Pipeline", id 1) with five stages (ids 1-5). */
  reset(): void {
    this.stages.clear();
    this.pipelines.clear();
    this.pipelines.set(PIPEDRIVE_SEED.pipelineId, {
      id: PIPEDRIVE_SEED.pipelineId, name: PIPEDRIVE_SEED.pipelineName, order_nr: 1, is_deleted: false,
      is_deal_probability_enabled: false, add_time: SEED_TIME, update_time: SEED_TIME,
    });
    PIPEDRIVE_SEED.stages.forEach((name, index) => {
      const id = index + 1;
      this.stages.set(id, {
        id, order_nr: index + 1, name, is_deleted: false, deal_probability: 100, pipeline_id: PIPEDRIVE_SEED.pipelineId,
        is_deal_rot_enabled: false, days_to_rotten: null, add_time: SEED_TIME, update_time: SEED_TIME,
      });
    });
    this.nextId = PIPEDRIVE_SEED.stages.length + 1;
  }

  /** A new stage id (stage and pipeline ids share one counter here; in Pipedrive they are separate sequences). */
  newId(): number {
    return this.nextId++;
  }

  /** The order number after the last stage of a pipeline (a new or moved stage goes last). */
  nextOrder(pipelineId: number): number {
    let max = 0;
    for (const stage of this.stages.values()) if (stage.pipeline_id === pipelineId && !stage.is_deleted) max = Math.max(max, stage.order_nr);
    return max + 1;
  }
}
