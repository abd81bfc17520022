import { isJsonObject, RemoteDataSchema, type StageCreateBody, StageCreateBodySchema, type StageUpdateBody, StageUpdateBodySchema } from '@unicrm/model';
import { z } from 'zod';

/**
 * The deal probability a new deal stage gets when the body names none: `"0.5"` (HubSpot requires
 * `metadata.probability` on every deal stage, from 0.0 to 1.0 in steps of 0.1, and the unified body has no such field).
 * Set another with `remote_data: {"metadata": {"probability": "0.8"}}`; stages of other object types get no default.
 */
export const HUBSPOT_DEFAULT_DEAL_PROBABILITY = '0.5';

const NAME_REQUIRED = 'is required for HubSpot (a non-empty string: the stage label)';
const PIPELINE_REQUIRED = 'is required for HubSpot: the pipeline the stage joins, {"id": "<pipeline id>"} (deals\' first pipeline is "default")';
const ACTIVE_ONLY_CREATE = "HubSpot creates stages active: only 'active' is accepted on create";
const PROBABILITY = 'must be a deal probability from 0.0 to 1.0 in steps of 0.1, as text ("0.6") or a number (0.6)';

/** A stage label HubSpot accepts: trimmed and non-empty (unique within its pipeline: HubSpot checks that). */
export const HubSpotNameSchema = z
  .string({ error: NAME_REQUIRED })
  .trim()
  .min(1, { error: NAME_REQUIRED })
  .describe("The stage's name (HubSpot: label, unique within its pipeline)");

/** A deal probability: 0.0 to 1.0 in steps of 0.1 (HubSpot's rule for `metadata.probability`), text or number. */
export function isProbability(value: unknown): boolean {
  const number = typeof value === 'number' ? value : typeof value === 'string' && /^\s*(0(\.\d+)?|1(\.0+)?|\.\d+)\s*$/.test(value) ? Number(value) : NaN;
  return Number.isFinite(number) && number >= 0 && number <= 1 && Math.abs(number * 10 - Math.round(number * 10)) < 1e-9;
}

/** Keys of `remote_data` a create body may hold: HubSpot's PipelineStageInput (label and displayOrder must then equal the unified fields). */
export const CREATE_REMOTE_KEYS = ['label', 'displayOrder', 'metadata', 'stageId'] as const;
/** Keys of `remote_data` an update body may hold: HubSpot's PipelineStagePatchInput but `archived` (that is `status`). */
export const UPDATE_REMOTE_KEYS = ['label', 'displayOrder', 'metadata'] as const;

const REMOTE_DATA_DESCRIPTION =
  'HubSpot stage fields, merged over the mapped body: metadata (an object of strings; deals: probability, default ' +
  `"${HUBSPOT_DEFAULT_DEAL_PROBABILITY}"; tickets: ticketState OPEN or CLOSED), stageId on create (an id of your choice), ` +
  'and label / displayOrder, which must then equal name / position. Any other key is a 400.';

/**
 * The checks of `remote_data` for a stage body: only keys of HubSpot's stage input (`archived` says to use `status`),
 * `metadata` an object of strings (a numeric `probability` is accepted and sent as text) with a valid `probability`,
 * `stageId` a non-empty string, `label`/`displayOrder` of the right type and equal to `name`/`position` when both are
 * sent.
 */
function remoteDataChecks(keys: readonly string[]) {
  return (body: { name?: string; position?: number; remote_data?: Record<string, unknown> }, ctx: z.RefinementCtx): void => {
    const remote = body.remote_data;
    if (!isJsonObject(remote)) return;
    const issue = (path: string[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    for (const key of Object.keys(remote)) {
      if (keys.includes(key)) continue;
      issue(
        ['remote_data', key],
        key === 'archived'
          ? "is not written through remote_data: send status 'inactive' to archive a stage, 'active' to restore it"
          : `is not a field of HubSpot's stage ${keys.includes('stageId') ? 'input' : 'update'} (it takes ${keys.join(', ')}); HubSpot would ignore it`,
      );
    }
    if ('label' in remote) {
      if (typeof remote.label !== 'string' || remote.label.trim() === '') issue(['remote_data', 'label'], 'must be a non-empty string');
      else if (body.name !== undefined && remote.label !== body.name) {
        issue(['name'], "conflicts with remote_data.label (both set HubSpot's label, to different values): send one of them, or the same value in both");
        issue(['remote_data', 'label'], "conflicts with name (both set HubSpot's label, to different values): send one of them, or the same value in both");
      }
    }
    if ('displayOrder' in remote) {
      if (typeof remote.displayOrder !== 'number' || !Number.isInteger(remote.displayOrder)) issue(['remote_data', 'displayOrder'], 'must be a whole number');
      else if (body.position !== undefined && remote.displayOrder !== body.position) {
        issue(['position'], "conflicts with remote_data.displayOrder (both set HubSpot's displayOrder, to different values): send one of them, or the same value in both");
        issue(['remote_data', 'displayOrder'], "conflicts with position (both set HubSpot's displayOrder, to different values): send one of them, or the same value in both");
      }
    }
    if ('stageId' in remote && (typeof remote.stageId !== 'string' || remote.stageId.trim() === '')) issue(['remote_data', 'stageId'], 'must be a non-empty string');
    if ('metadata' in remote) {
      if (!isJsonObject(remote.metadata)) {
        issue(['remote_data', 'metadata'], 'must be an object of strings, e.g. {"probability": "0.6"}');
        return;
      }
      for (const [key, value] of Object.entries(remote.metadata)) {
        if (key === 'probability') {
          if (!isProbability(value)) issue(['remote_data', 'metadata', 'probability'], PROBABILITY);
        } else if (typeof value !== 'string') {
          issue(['remote_data', 'metadata', key], "must be a string (HubSpot's stage metadata values are strings)");
        }
      }
    }
  };
}

/**
 * The create body HubSpot accepts (served by the meta endpoint): `name` and `pipeline.id` required, `position` (its
 * `displayOrder`; default: after the pipeline's last stage), `status` only `active`, `remote_data` limited to HubSpot's
 * stage input.
 */
export const HubSpotStageCreateBodySchema = StageCreateBodySchema.extend({
  name: HubSpotNameSchema,
  pipeline: z
    .object(
      {
        id: z.string({ error: 'must be a non-empty string' }).trim().min(1, { error: 'must be a non-empty string' }).describe("The pipeline's id"),
        name: z.string({ error: 'must be a string' }).optional().describe('Ignored on create: the pipeline is chosen by id'),
      },
      { error: PIPELINE_REQUIRED },
    )
    .describe('The pipeline the new stage joins; required'),
  position: StageCreateBodySchema.shape.position.describe(
    "HubSpot's displayOrder: a sort key (stages with the same one are ordered by label); default: one more than the pipeline's highest",
  ),
  status: z.literal('active', { error: ACTIVE_ONLY_CREATE }).optional().describe('HubSpot creates stages active'),
  remote_data: RemoteDataSchema.optional().describe(REMOTE_DATA_DESCRIPTION),
})
  .superRefine(remoteDataChecks(CREATE_REMOTE_KEYS))
  .meta({ id: 'HubSpotStageCreateBody' });

/**
 * The update body HubSpot accepts: `name`, `position` (displayOrder: a move within the pipeline), `status` (`inactive`
 * archives the stage, `active` restores an archived one), `pipeline` only as the stage's own (HubSpot cannot move a
 * stage to another pipeline: checked once the stage is found), `remote_data` as on create but `stageId`.
 */
export const HubSpotStageUpdateBodySchema = StageUpdateBodySchema.extend({
  name: HubSpotNameSchema.optional(),
  position: StageUpdateBodySchema.shape.position.describe("HubSpot's displayOrder (a sort key): moves the stage within its pipeline"),
  status: StageUpdateBodySchema.shape.status.describe("'inactive' archives the stage (as DELETE does); 'active' restores an archived one"),
  pipeline: StageUpdateBodySchema.shape.pipeline.describe("Only the stage's own pipeline: HubSpot cannot move a stage to another one"),
  remote_data: RemoteDataSchema.optional().describe(REMOTE_DATA_DESCRIPTION.replace('stageId on create (an id of your choice), ', '')),
})
  .superRefine(remoteDataChecks(UPDATE_REMOTE_KEYS))
  .meta({ id: 'HubSpotStageUpdateBody' });

/** `metadata` with a numeric probability turned into text (HubSpot's metadata values are strings). */
function metadataAsText(metadata: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([key, value]) => [key, String(value)]));
}

/**
 * desunify: a create body to HubSpot's PipelineStageInput: `label` <- `name`, `displayOrder` <- `position` (or
 * `defaultOrder`), `metadata` <- `remote_data.metadata` with, for deals, `probability` defaulting to
 * {@link HUBSPOT_DEFAULT_DEAL_PROBABILITY}, `stageId` from `remote_data` when given.
 * @param defaultOrder the displayOrder of a body without `position` (one more than the pipeline's highest)
 */
export function desunifyStageCreate(body: StageCreateBody, objectType: string, defaultOrder: number): Record<string, unknown> {
  const remote = body.remote_data ?? {};
  const metadata = metadataAsText(isJsonObject(remote.metadata) ? remote.metadata : {});
  if (objectType === 'deals' && metadata.probability === undefined) metadata.probability = HUBSPOT_DEFAULT_DEAL_PROBABILITY;
  const input: Record<string, unknown> = { label: body.name, displayOrder: body.position ?? defaultOrder, metadata };
  if (typeof remote.stageId === 'string') input.stageId = remote.stageId;
  return input;
}

/**
 * desunify: an update body to HubSpot's PipelineStagePatchInput: only what changes (`label`, `displayOrder`,
 * `metadata`), the stage's current `metadata` always sent (HubSpot's document requires it on every PATCH), with
 * `remote_data.metadata`'s keys over it; `archived: false` when `restore`.
 */
export function desunifyStageUpdate(body: StageUpdateBody, current: Record<string, unknown>, restore: boolean): Record<string, unknown> {
  const remote = body.remote_data ?? {};
  const patch: Record<string, unknown> = {};
  if (body.name !== undefined) patch.label = body.name;
  else if (typeof remote.label === 'string') patch.label = remote.label;
  if (body.position !== undefined) patch.displayOrder = body.position;
  else if (typeof remote.displayOrder === 'number') patch.displayOrder = remote.displayOrder;
  const currentMetadata = isJsonObject(current.metadata) ? metadataAsText(current.metadata) : {};
  patch.metadata = { ...currentMetadata, ...(isJsonObject(remote.metadata) ? metadataAsText(remote.metadata) : {}) };
  if (restore) patch.archived = false;
  return patch;
}

/** True when an update body changes a field of the stage (not only its status). */
export function changesFields(body: StageUpdateBody): boolean {
  return body.name !== undefined || body.position !== undefined || (body.remote_data !== undefined && Object.keys(body.remote_data).length > 0);
}
