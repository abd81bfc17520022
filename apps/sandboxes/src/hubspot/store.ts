/** A stage as the sandbox keeps it: HubSpot's PipelineStage fields. */
export interface SandboxStage {
  id: string;
  label: string;
  displayOrder: number;
  metadata: Record<string, string>;
  archived: boolean;
  archivedAt?: string;
  createdAt: string;
  updatedAt: string;
  writePermissions: 'CRM_PERMISSIONS_ENFORCEMENT';
}

/** A pipeline as the sandbox keeps it (its stages in a list, in creation order). */
export interface SandboxPipeline {
  id: string;
  label: string;
  displayOrder: number;
  archived: boolean;
  createdAt: string;
  updatedAt: string;
  stages: SandboxStage[];
}

/** The object types the sandbox serves pipelines of. */
export const HUBSPOT_OBJECT_TYPES = ['deals', 'tickets'] as const;
export type SandboxObjectType = (typeof HUBSPOT_OBJECT_TYPES)[number];

/** HubSpot's epoch `createdAt` of default pipelines and their stages ("createdAt = 0"). */
export const EPOCH = '1970-01-01T00:00:00Z';
const SEED_UPDATED = '2024-01-01T00:00:00.000Z';

/**
 * The built-in seed: the default deal pipeline HubSpot gives every portal ("Sales Pipeline", id `default`, its seven
 * stages with slug ids and probabilities) and the default ticket pipeline ("Support Pipeline", id `0`, four stages).
 */
export const HUBSPOT_SEED = {
  dealPipelineId: 'default',
  dealPipelineLabel: 'Sales Pipeline',
  dealStages: [
    ['appointmentscheduled', 'Appointment Scheduled', '0.2'],
    ['qualifiedtobuy', 'Qualified To Buy', '0.4'],
    ['presentationscheduled', 'Presentation Scheduled', '0.6'],
    ['decisionmakerboughtin', 'Decision Maker Bought-In', '0.8'],
    ['contractsent', 'Contract Sent', '0.9'],
    ['closedwon', 'Closed Won', '1.0'],
    ['closedlost', 'Closed Lost', '0.0'],
  ],
  ticketPipelineId: '0',
  ticketPipelineLabel: 'Support Pipeline',
  ticketStages: [
    ['1', 'New', 'OPEN'],
    ['2', 'Waiting on contact', 'OPEN'],
    ['3', 'Waiting on us', 'OPEN'],
    ['4', 'Closed', 'CLOSED'],
  ],
} as const;

const seedStage = (id: string, label: string, displayOrder: number, metadata: Record<string, string>): SandboxStage => ({
  id, label, displayOrder, metadata, archived: false, createdAt: EPOCH, updatedAt: SEED_UPDATED, writePermissions: 'CRM_PERMISSIONS_ENFORCEMENT',
});

/** HubSpot's wire form of a time: ISO 8601 UTC with milliseconds. */
export const hubspotTime = (date: Date) => date.toISOString();

/** The sandbox's pipelines per object type, in memory. New stage ids are numeric strings, as HubSpot's. */
export class HubSpotStore {
  readonly pipelines = new Map<SandboxObjectType, SandboxPipeline[]>();
  private nextId = 1_000_001;

  constructor() {
    this.reset();
  }

  /** Back to the seed. */
  reset(): void {
    this.pipelines.set('deals', [
      {
        id: HUBSPOT_SEED.dealPipelineId, label: HUBSPOT_SEED.dealPipelineLabel, displayOrder: 0, archived: false, createdAt: EPOCH, updatedAt: SEED_UPDATED,
        stages: HUBSPOT_SEED.dealStages.map(([id, label, probability], index) => seedStage(id, label, index, { probability })),
      },
    ]);
    this.pipelines.set('tickets', [
      {
        id: HUBSPOT_SEED.ticketPipelineId, label: HUBSPOT_SEED.ticketPipelineLabel, displayOrder: 0, archived: false, createdAt: EPOCH, updatedAt: SEED_UPDATED,
        stages: HUBSPOT_SEED.ticketStages.map(([id, label, ticketState], index) => seedStage(id, label, index, { ticketState })),
      },
    ]);
    this.nextId = 1_000_001;
  }

  /** A new id, unique in the portal. */
  newId(): string {
    return String(this.nextId++);
  }

  /** True when a stage of any pipeline of the object type has this id. */
  hasStageId(objectType: SandboxObjectType, id: string): boolean {
    return (this.pipelines.get(objectType) ?? []).some((pipeline) => pipeline.stages.some((stage) => stage.id === id));
  }
}
