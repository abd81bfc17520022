import { isJsonObject, mergeRemoteData, RemoteDataSchema, type StageCreateBody, StageCreateBodySchema, type StageUpdateBody, StageUpdateBodySchema } from '@unicrm/model';
import { z } from 'zod';

const NAME_REQUIRED = 'is required for Pipedrive (a non-empty string)';
const PIPELINE_ID = 'must be a Pipedrive pipeline id: a positive whole number as text, e.g. "1"';
const PIPELINE_REQUIRED = 'is required for Pipedrive: the pipeline the stage joins, {"id": "<pipeline id>"}';
/** Why `position` is refused: Pipedrive's API v2 has no writable `order_nr` (pipedrive-api.md §2.3–2.4). */
export const POSITION_NOT_WRITABLE =
  "cannot be set on Pipedrive: its API v2 has no writable order_nr (a stage's order is changed in Pipedrive's UI); " +
  'leave position out (a new stage is placed last; the answer holds the position it got)';
const ACTIVE_ONLY_CREATE = "Pipedrive creates stages active: only 'active' is accepted on create";
const ACTIVE_ONLY_UPDATE =
  "Pipedrive has no inactive stages but deleted ones, and its API v2 restores none: use DELETE /unified/crm/stages/:id ('active' is accepted: a stage that is not deleted is active)";

/** A stage name Pipedrive accepts: trimmed and non-empty (Pipedrive refuses empty names since 2025-02-20). */
export const PipedriveNameSchema = z
  .string({ error: NAME_REQUIRED })
  .trim()
  .min(1, { error: NAME_REQUIRED })
  .describe("The stage's name (Pipedrive: name)");

/** A Pipedrive id in a unified body: its integer as text. */
export const PipedriveIdSchema = z
  .string({ error: PIPELINE_ID })
  .trim()
  .regex(/^[1-9][0-9]{0,15}$/, { error: PIPELINE_ID, abort: true })
  .refine((text) => Number.isSafeInteger(Number(text)), { error: PIPELINE_ID })
  .describe("The pipeline's id (Pipedrive ids are integers; sent as text)");

/** The Pipedrive-only stage fields `remote_data` may set (Pipedrive's addStageRequest / updateStage body). */
const PIPEDRIVE_ONLY = {
  deal_probability: z
    .number({ error: 'must be a whole number from 0 to 100' })
    .int({ error: 'must be a whole number from 0 to 100' })
    .min(0, { error: 'must be a whole number from 0 to 100' })
    .max(100, { error: 'must be a whole number from 0 to 100' })
    .optional(),
  is_deal_rot_enabled: z.boolean({ error: 'must be true or false' }).optional(),
  days_to_rotten: z.number({ error: 'must be a whole number' }).int({ error: 'must be a whole number' }).min(0, { error: 'must be >= 0' }).nullable().optional(),
} as const;

/** Keys of `remote_data` a stage body may hold: Pipedrive's own fields, and the two the unified fields map to. */
export const STAGE_REMOTE_KEYS = ['name', 'pipeline_id', ...Object.keys(PIPEDRIVE_ONLY)];

const RemoteStageFieldsSchema = z.strictObject(
  {
    name: PipedriveNameSchema.optional(),
    pipeline_id: z.number({ error: 'must be a Pipedrive pipeline id (a positive whole number)' }).int().positive().optional(),
    ...PIPEDRIVE_ONLY,
  },
  { error: 'must be a JSON object' },
);

const REMOTE_DATA_DESCRIPTION =
  "Pipedrive stage fields, merged over the mapped body: deal_probability (0-100), is_deal_rot_enabled, days_to_rotten " +
  '(and name, pipeline_id, which must then equal the unified fields). Any other key is a 400: Pipedrive would ignore ' +
  'it, and nothing is dropped silently; order_nr cannot be written on API v2.';

/**
 * The checks of `remote_data` for a stage body: only keys Pipedrive's stage bodies have (anything else would be ignored
 * by Pipedrive, so it is a 400 naming the ones it takes; `order_nr` says why), with their types; `name`/`pipeline_id`
 * equal to the unified fields when both are sent.
 */
function checkRemoteData(body: { name?: string; pipeline?: { id: string }; remote_data?: Record<string, unknown> }, ctx: z.RefinementCtx): void {
  const remote = body.remote_data;
  if (!isJsonObject(remote)) return;
  for (const key of Object.keys(remote)) {
    if (STAGE_REMOTE_KEYS.includes(key)) continue;
    ctx.addIssue({
      code: 'custom',
      path: ['remote_data', key],
      message:
        key === 'order_nr'
          ? "cannot be written on Pipedrive's API v2 (order_nr is read-only there)"
          : `is not a field of Pipedrive's stage body (it takes ${STAGE_REMOTE_KEYS.join(', ')}); Pipedrive would ignore it`,
    });
  }
  const known = Object.fromEntries(Object.entries(remote).filter(([key]) => STAGE_REMOTE_KEYS.includes(key)));
  const parsed = RemoteStageFieldsSchema.safeParse(known);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', path: ['remote_data', ...issue.path.map(String)], message: issue.message });
  }
  const conflict = (unified: string, key: string) => {
    const why = `(both set Pipedrive's ${key}, to different values): send one of them, or the same value in both`;
    ctx.addIssue({ code: 'custom', path: unified.split('.'), message: `conflicts with remote_data.${key} ${why}` });
    ctx.addIssue({ code: 'custom', path: ['remote_data', key], message: `conflicts with ${unified} ${why}` });
  };
  if (body.name !== undefined && 'name' in remote && remote.name !== body.name) conflict('name', 'name');
  if (body.pipeline !== undefined && 'pipeline_id' in remote && remote.pipeline_id !== Number(body.pipeline.id)) conflict('pipeline.id', 'pipeline_id');
}

/** `position` on Pipedrive: never accepted (see {@link POSITION_NOT_WRITABLE}). */
const NoPositionSchema = z.never({ error: POSITION_NOT_WRITABLE }).optional().describe(`Not accepted: ${POSITION_NOT_WRITABLE}`);

/**
 * The create body Pipedrive accepts (served by the meta endpoint): `name` and `pipeline.id` required (Pipedrive's
 * addStageRequest requires name and pipeline_id), no `position` (400), `status` only `active`, `remote_data` limited to
 * Pipedrive's stage fields.
 */
export const PipedriveStageCreateBodySchema = StageCreateBodySchema.extend({
  name: PipedriveNameSchema,
  pipeline: z
    .object(
      { id: PipedriveIdSchema, name: z.string({ error: 'must be a string' }).optional().describe('Ignored on create: the pipeline is chosen by id') },
      { error: PIPELINE_REQUIRED },
    )
    .describe('The pipeline the new stage joins (Pipedrive: pipeline_id); required'),
  position: NoPositionSchema,
  status: z.literal('active', { error: ACTIVE_ONLY_CREATE }).optional().describe('Pipedrive creates stages active'),
  remote_data: RemoteDataSchema.optional().describe(REMOTE_DATA_DESCRIPTION),
})
  .superRefine(checkRemoteData)
  .meta({ id: 'PipedriveStageCreateBody' });

/**
 * The update body Pipedrive accepts: `name`, `pipeline` (a move: Pipedrive's updateStage takes pipeline_id), no
 * `position` (400), `status` only `active`, `remote_data` as on create.
 */
export const PipedriveStageUpdateBodySchema = StageUpdateBodySchema.extend({
  name: PipedriveNameSchema.optional(),
  pipeline: z
    .object(
      { id: PipedriveIdSchema, name: z.string({ error: 'must be a string' }).optional().describe('Ignored: the pipeline is chosen by id') },
      { error: 'must be an object with a Pipedrive pipeline id, e.g. {"id": "1"}' },
    )
    .optional()
    .describe('The pipeline to move the stage to (Pipedrive: pipeline_id)'),
  position: NoPositionSchema,
  status: z.literal('active', { error: ACTIVE_ONLY_UPDATE }).optional().describe("Only 'active' (what a stage that is not deleted is); delete with DELETE"),
  remote_data: RemoteDataSchema.optional().describe(REMOTE_DATA_DESCRIPTION),
})
  .superRefine(checkRemoteData)
  .meta({ id: 'PipedriveStageUpdateBody' });

/** desunify: a create body to Pipedrive's addStageRequest: `name`, `pipeline_id` (integer), then `remote_data` over it. */
export function desunifyStageCreate(body: StageCreateBody): Record<string, unknown> {
  const mapped: Record<string, unknown> = { name: body.name, pipeline_id: Number(body.pipeline?.id) };
  return mergeRemoteData(mapped, body.remote_data);
}

/** desunify: an update body to Pipedrive's updateStage body (only the fields sent), `remote_data` over it. */
export function desunifyStageUpdate(body: StageUpdateBody): Record<string, unknown> {
  const mapped: Record<string, unknown> = {};
  if (body.name !== undefined) mapped.name = body.name;
  if (body.pipeline?.id !== undefined) mapped.pipeline_id = Number(body.pipeline.id);
  return mergeRemoteData(mapped, body.remote_data);
}
