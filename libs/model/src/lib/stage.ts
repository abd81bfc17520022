import { z } from 'zod';

/**
 * The unified CRM Stage, as Truto documents it (create-stages.txt "Response Body";
 * truto-contract.md §0, [ST-OBJ]). Fields a provider has no value for are omitted in the
 * `unified` format and `null` in the `normalized` format (DESIGN.md §2).
 */
export const StageSchema = z
  .object({
    id: z.string().describe("The stage's unique identifier"),
    name: z.string().optional().describe("The stage's name"),
    position: z.number().optional().describe('The order of stage in the pipeline'),
    status: z.enum(['active', 'inactive']).optional().describe('The status of the stage'),
    pipeline: z
      .object({
        id: z.string().describe("The pipeline's unique identifier"),
        name: z.string().optional().describe('The name of the pipeline'),
      })
      .optional()
      .describe('The pipeline this stage is part of'),
    created_at: z.iso.datetime().optional().describe("The date and time of the stage's creation (RFC 3339, UTC)"),
    updated_at: z.iso.datetime().optional().describe("The date and time of the stage's last update (RFC 3339, UTC)"),
    remote_data: z.record(z.string(), z.unknown()).optional().describe('Raw data returned from the remote API call.'),
  })
  .meta({ id: 'Stage' });

/** A unified Stage. */
export type Stage = z.infer<typeof StageSchema>;

/**
 * The fields of a unified model in schema order, nested objects as nested shapes: what the
 * `normalized` format fills in, with `null` for missing values (DESIGN.md §2 "Formats").
 */
export type FieldShape = { readonly [field: string]: true | FieldShape };

/** The Stage's normalized shape: every field of {@link StageSchema} but `remote_data`, in schema order. */
export const STAGE_SHAPE: FieldShape = {
  id: true,
  name: true,
  position: true,
  status: true,
  pipeline: { id: true, name: true },
  created_at: true,
  updated_at: true,
};

const NOT_A_JSON_OBJECT = 'must be a JSON object';

/**
 * The record schema `remote_data` had: its parse copies every key of the object (skipping an own `__proto__`
 * key and non-enumerable keys, refusing symbol keys) only to accept any value. {@link RemoteDataSchema} runs it
 * for the objects it does not take as they are.
 */
const RemoteDataRecordSchema = z.record(z.string(), z.unknown(), { error: NOT_A_JSON_OBJECT });

/** What `z.toJSONSchema` makes of {@link RemoteDataRecordSchema} (draft 2020-12, either direction): an object of any values. */
const REMOTE_DATA_JSON_SCHEMA = { type: 'object', propertyNames: { type: 'string' }, additionalProperties: {} } as const;

/**
 * True for an object the record parse would copy key for key, without an issue: an object whose prototype is
 * `Object.prototype` (JSON.parse makes only these), no own `__proto__` key (which the record drops) and no symbol
 * keys (which it refuses). Checks the object, not its keys' values; cost independent of the number of keys but
 * for the symbol list (tens of µs for thousands of keys).
 */
function takenAsIs(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.getPrototypeOf(value) === Object.prototype &&
    !Object.prototype.hasOwnProperty.call(value, '__proto__') &&
    Object.getOwnPropertySymbols(value).length === 0
  );
}

/**
 * `remote_data`: any JSON object (not an array, not null), its values not looked at. The same verdicts, failures
 * (`must be a JSON object` at `remote_data`, as `invalid_type`/`record` issues) and JSON Schema as
 * `z.record(z.string(), z.unknown())`, without visiting every key of a large object on each create: an object
 * {@link takenAsIs} is the result itself (not a copy); anything else goes through {@link RemoteDataRecordSchema}.
 * What differs from the record only shows in JavaScript, not in JSON: the result is the caller's object, so
 * non-enumerable own keys stay on it and getters are not read at validation time.
 */
export const RemoteDataSchema = z
  .custom<Record<string, unknown>>()
  .transform((value, ctx) => {
    if (takenAsIs(value)) return value;
    const result = RemoteDataRecordSchema.safeParse(value);
    if (result.success) return result.data;
    for (const issue of result.error.issues) ctx.issues.push(issue as (typeof ctx.issues)[number]);
    return z.NEVER;
  })
  .meta(REMOTE_DATA_JSON_SCHEMA);

/**
 * The largest `position` a create body may ask for: 2³¹−1, the largest 32-bit signed integer. Pipeliner's
 * `sort_order` is an int32 (its OpenAPI document), and CRMs keep positions in such integers; a larger number is
 * no position any pipeline has, so it is a 400 rather than a value a provider would overflow or clamp silently.
 */
export const STAGE_POSITION_MAX = 2_147_483_647;

const POSITION_RANGE = `must be a whole number from 0 to ${STAGE_POSITION_MAX}`;

/**
 * Body of `POST /unified/crm/stages` (create-stages.txt "Request Body"; DESIGN.md §2 "Body").
 * Integration-specific rules (which fields are required or honoured) are the connector's to apply;
 * this schema only fixes the types. Unknown top-level fields are rejected, so that nothing a caller
 * sends is silently dropped: provider fields go in `remote_data`.
 */
export const StageCreateBodySchema = z
  .strictObject({
    name: z.string({ error: 'must be a string' }).trim().optional().describe("The stage's name. Required for Pipeliner."),
    pipeline: z
      .object(
        {
          id: z
            .string({ error: 'must be a non-empty string' })
            .trim()
            .min(1, { error: 'must be a non-empty string' })
            .describe("The pipeline's unique identifier"),
          name: z.string({ error: 'must be a string' }).optional().describe('Ignored on create: the pipeline is chosen by id'),
        },
        { error: 'must be an object with a string id, e.g. {"id": "..."}' },
      )
      .optional()
      .describe('The pipeline the new stage joins'),
    position: z
      .number({ error: POSITION_RANGE })
      .int({ error: POSITION_RANGE, abort: true })
      .min(0, { error: POSITION_RANGE })
      .max(STAGE_POSITION_MAX, { error: POSITION_RANGE })
      .optional()
      .describe(
        `The order of the stage in the pipeline, 0 first (an integer from 0 to ${STAGE_POSITION_MAX}). ` +
          'A position past the end of the pipeline puts the stage last: the answer holds the position it got.',
      ),
    status: z
      .enum(['active', 'inactive'], { error: "must be 'active' or 'inactive'" })
      .optional()
      .describe('Only `active` is accepted on create for Pipeliner'),
    remote_data: RemoteDataSchema.optional()
      .describe('Provider fields, deep-merged over the mapped request body (remote_data wins)'),
  }, { error: 'must be a JSON object' })
  .meta({ id: 'StageCreateBody' });

/** A validated create body. */
export type StageCreateBody = z.infer<typeof StageCreateBodySchema>;

/**
 * Body of `PATCH /unified/crm/stages/:id` (Truto's Update Stage: `name`, `pipeline`, `position`, `status`,
 * `remote_data`). Every field is optional; integration rules (what a provider can change) are the connector's.
 * Unknown top-level fields are rejected, as on create.
 */
export const StageUpdateBodySchema = StageCreateBodySchema.extend({
  name: z.string({ error: 'must be a string' }).trim().optional().describe("The stage's new name"),
  pipeline: StageCreateBodySchema.shape.pipeline
    .unwrap()
    .extend({ name: z.string({ error: 'must be a string' }).optional().describe('Ignored: the pipeline is chosen by id') })
    .optional()
    .describe('The pipeline to move the stage to (chosen by id)'),
  position: StageCreateBodySchema.shape.position.describe('The new order of the stage in its pipeline (integer >= 0)'),
  status: StageCreateBodySchema.shape.status.describe('`active` or `inactive`; what each means is the integration\'s (see the meta endpoint)'),
  remote_data: RemoteDataSchema.optional().describe('Provider fields, deep-merged over the mapped request body (remote_data wins)'),
}).meta({ id: 'StageUpdateBody' });

/** A validated update body. */
export type StageUpdateBody = z.infer<typeof StageUpdateBodySchema>;

/** An ISO 8601 / RFC 3339 date-time, or bounds of one, as a list filter takes it: `created_at[gte]=2024-01-01T00:00:00Z`. */
export const DateFilterSchema = z.union(
  [
    z.iso.datetime({ offset: true, error: 'must be an RFC 3339 date-time, e.g. 2024-01-01T00:00:00Z' }),
    z.strictObject(
      {
        gt: z.iso.datetime({ offset: true }).optional(),
        gte: z.iso.datetime({ offset: true }).optional(),
        lt: z.iso.datetime({ offset: true }).optional(),
        lte: z.iso.datetime({ offset: true }).optional(),
      },
      { error: 'must be a date-time or bounds: [gt], [gte], [lt], [lte]' },
    ),
  ],
  { error: 'must be an RFC 3339 date-time, or bounds such as created_at[gte]=2024-01-01T00:00:00Z' },
);
export type DateFilter = z.infer<typeof DateFilterSchema>;

/**
 * Filters of `GET /unified/crm/stages` (Truto's List Stages: `pipeline.id`, `name`, `status`, `created_at`,
 * `updated_at`), as query parameters: `pipeline[id]=...`, `name=...`, `status=inactive`, `created_at[gte]=...`.
 * An integration supports a subset (its meta `query_schema` says which); any other parameter is a 400.
 */
export const StageListFiltersSchema = z
  .strictObject({
    pipeline: z
      .strictObject({ id: z.string({ error: 'must be a string' }).trim().min(1, { error: 'must be a non-empty string' }) }, {
        error: 'must be an object with an id: pipeline[id]=...',
      })
      .optional()
      .describe('Only the stages of this pipeline: pipeline[id]=<id>'),
    name: z.string({ error: 'must be a string' }).min(1, { error: 'must be a non-empty string' }).optional().describe('Only stages with exactly this name'),
    status: z.enum(['active', 'inactive'], { error: "must be 'active' or 'inactive'" }).optional().describe('Only active (default: all active) or inactive stages'),
    created_at: DateFilterSchema.optional().describe('Created at, or within bounds: created_at[gte]=...&created_at[lte]=...'),
    updated_at: DateFilterSchema.optional().describe('Updated at, or within bounds: updated_at[gte]=...'),
  })
  .meta({ id: 'StageListFilters' });
export type StageListFilters = z.infer<typeof StageListFiltersSchema>;
