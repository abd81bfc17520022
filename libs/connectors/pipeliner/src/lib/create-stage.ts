import {
  type CallOptions,
  type CreateResult,
  type Logger,
  RemoteDataSchema,
  type Stage,
  type StageCreateBody,
  StageCreateBodySchema,
  UnicrmError,
  zodFailures,
} from '@unicrm/model';
import { z } from 'zod';
import type { EntityAnswer, PipelinerClient, PipelinerQuery } from './client';
import {
  expandedPipelineName,
  remoteDataConflicts,
  reportedPipelineId,
  STEP_FIELD_MAPPING,
  type StepFieldMapping,
  stepCreateRequest,
  stepPipelineId,
  unifyStep,
} from './mappers';

/** Bit of Pipeliner's `validation-level` that allows writing read-only fields (pipeliner-api.md §6). */
export const VALIDATION_LEVEL_OVERRIDE_READONLY = 8;

const NAME_REQUIRED = 'is required for Pipeliner (a non-empty string)';
const ACTIVE_ONLY = "Pipeliner creates steps active: only 'active' is accepted on create";

/**
 * The longest stage name sent to Pipeliner, in characters (Unicode code points, as JSON Schema's `maxLength`
 * counts them). Pipeliner documents no limit; its API is SQLAlchemy models (its OpenAPI descriptions say so),
 * where a name column is conventionally `varchar(255)`, which counts code points. A stage name is a column
 * header of a pipeline view: 255 is far past any label a person types, and a longer value is almost surely a
 * mistake (a pasted document). If Pipeliner's own limit is lower, its 422 is mirrored as for any remote error.
 */
export const PIPELINER_NAME_MAX_LENGTH = 255;

const NAME_TOO_LONG = `must be at most ${PIPELINER_NAME_MAX_LENGTH} characters long for Pipeliner`;
const NAME_CONTROL = 'must not contain control characters (U+0000-U+001F, U+007F-U+009F: NUL, tab, line breaks, ...)';
const NAME_NOT_WELL_FORMED = 'must be well-formed Unicode: it holds an unpaired surrogate (such as \\ud800)';
const PIPELINE_ID = 'must be a Pipeliner pipeline id (a UUID such as 00000000-5a1e-4000-8000-000000000001)';

const isJsonObjectValue = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Unicode general category Cc: C0 controls (NUL...US), DEL and C1 controls. */
const CONTROL_CHARACTER = /\p{Cc}/u;
/** A surrogate code point in `u` mode only matches an unpaired one (a pair is read as one astral code point). */
const UNPAIRED_SURROGATE = /\p{Cs}/u;
/** Pipeliner's ids: 8-4-4-4-12 hex digits, any case, any version or variant (real ids are not all RFC 9562 ones). */
const PIPELINER_ID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** True when `text` has at most `max` code points (counted only when its UTF-16 length leaves a doubt). */
function atMostCodePoints(text: string, max: number): boolean {
  if (text.length <= max) return true;
  if (text.length > 2 * max) return false;
  let count = 0;
  for (const _ of text) if (++count > max) return false;
  return true;
}

/**
 * A stage name Pipeliner can hold: trimmed, non-empty, at most {@link PIPELINER_NAME_MAX_LENGTH} code points,
 * no control characters, well-formed Unicode (a lone surrogate cannot be stored as UTF-8: PostgreSQL, for one,
 * refuses it, and JSON encoders replace or reject it).
 */
export const PipelinerNameSchema = z
  .string({ error: NAME_REQUIRED })
  .trim()
  .min(1, { error: NAME_REQUIRED })
  .refine((name) => atMostCodePoints(name, PIPELINER_NAME_MAX_LENGTH), { error: NAME_TOO_LONG })
  .refine((name) => !CONTROL_CHARACTER.test(name), { error: NAME_CONTROL })
  .refine((name) => !UNPAIRED_SURROGATE.test(name), { error: NAME_NOT_WELL_FORMED })
  .meta({
    description:
      `The stage's name (a Pipeliner Step's name): at most ${PIPELINER_NAME_MAX_LENGTH} characters, ` +
      'no control characters, well-formed Unicode',
    maxLength: PIPELINER_NAME_MAX_LENGTH,
  });

/** A Pipeliner pipeline id (UUID text). */
export const PipelinerIdSchema = z
  .string({ error: PIPELINE_ID })
  .trim()
  .regex(PIPELINER_ID, { error: PIPELINE_ID })
  .meta({ description: "The pipeline's id (Pipeliner ids are UUIDs)", format: 'uuid' });

/**
 * How `remote_data` may set a Step key that a unified field maps to, when that unified field is absent (the
 * value is then what Pipeliner gets): by the unified field's own rule. With the unified field present, the two
 * must agree ({@link remoteDataConflicts}).
 */
const REMOTE_VALUE_RULES: Record<StepFieldMapping['remote'], z.ZodType> = {
  name: PipelinerNameSchema,
  pipeline_id: PipelinerIdSchema.nullable(),
  sort_order: StageCreateBodySchema.shape.position.unwrap(),
};

/**
 * The checks that join fields: a `remote_data` key the mapping writes from a unified field must not set another
 * value (both paths named, so the caller sees which two disagree), and, with the unified field absent, must
 * pass that field's rule (`remote_data.sort_order` outside 0...2³¹−1, a non-UUID `remote_data.pipeline_id`).
 */
export function checkMappedRemoteData(body: StageCreateBody, ctx: z.RefinementCtx): void {
  const remote = body.remote_data;
  if (!isJsonObjectValue(remote)) return;
  for (const { field } of remoteDataConflicts(body)) {
    const why = `(both set Pipeliner's ${field.remote}, to different values): send one of them, or the same value in both`;
    ctx.addIssue({ code: 'custom', path: field.unified.split('.'), message: `conflicts with remote_data.${field.remote} ${why}` });
    ctx.addIssue({ code: 'custom', path: ['remote_data', field.remote], message: `conflicts with ${field.unified} ${why}` });
  }
  for (const field of STEP_FIELD_MAPPING) {
    if (field.read(body) !== undefined || !Object.prototype.hasOwnProperty.call(remote, field.remote)) continue;
    const result = REMOTE_VALUE_RULES[field.remote].safeParse(remote[field.remote]);
    if (result.success) continue;
    for (const issue of result.error.issues) {
      ctx.addIssue({ code: 'custom', path: ['remote_data', field.remote, ...issue.path], message: issue.message });
    }
  }
}

/** The unified create body's fields with Pipeliner's rules (before the checks that join fields). */
export const PipelinerFieldsSchema = StageCreateBodySchema.extend({
  name: PipelinerNameSchema,
  pipeline: StageCreateBodySchema.shape.pipeline
    .unwrap()
    .extend({ id: PipelinerIdSchema })
    .optional()
    .describe('The pipeline the new stage joins'),
  status: z.literal('active', { error: ACTIVE_ONLY }).optional().describe('Pipeliner creates steps active'),
  remote_data: RemoteDataSchema.optional().describe(
    "Pipeliner Step fields, deep-merged over the mapped request body. The keys the unified fields map to (name, " +
      'pipeline_id, sort_order) must equal those fields when both are sent (a difference is a 400 naming both); ' +
      'sent alone, they follow the same rules as name, pipeline.id and position',
  ),
});

/**
 * The create body Pipeliner accepts (what `GET /unified/crm/stages/meta/create` serves for a Pipeliner account):
 * the unified body with `name` required, non-empty and storable (create-stages.txt: "Required in Pipeliner";
 * {@link PIPELINER_NAME_MAX_LENGTH}), `pipeline.id` a UUID, `status` only `active` (DESIGN.md §2: a new Step is
 * active), and no `remote_data` key that contradicts a unified field ({@link checkMappedRemoteData}).
 */
export const PipelinerStageCreateBodySchema = PipelinerFieldsSchema.superRefine(checkMappedRemoteData).meta({ id: 'PipelinerStageCreateBody' });

/**
 * What {@link checkStageCreateBody} runs: {@link PipelinerStageCreateBodySchema} with `remote_data` checked to be an
 * object without walking it. The schema's `z.record` would visit (and copy) every key of `remote_data` only to
 * accept any value, which for a body near the 1 MiB limit is thousands of keys on every create. Built once.
 */
const CHECK_SCHEMA = PipelinerFieldsSchema.extend({
  remote_data: z.custom<Record<string, unknown>>(isJsonObjectValue, { error: 'must be a JSON object' }).optional(),
}).superRefine(checkMappedRemoteData);

/**
 * Applies {@link PipelinerStageCreateBodySchema} to a unified create body (the same failures; `remote_data`'s
 * keys are not walked, since any value is accepted there, but the three keys the mapping writes are checked).
 * @throws UnicrmError 400 with `details.failures` naming each field, before anything is sent; a missing
 *   name adds `truto_error_insight.missing_required_body_fields`
 */
export function checkStageCreateBody(body: StageCreateBody): void {
  const result = CHECK_SCHEMA.safeParse(body);
  if (result.success) return;
  const failures = zodFailures(result.error);
  const error = UnicrmError.invalid('Invalid body for Pipeliner', failures);
  if (failures.some((f) => f.path === 'name' && f.message === NAME_REQUIRED)) {
    error.body.truto_error_insight = {
      missing_required_body_fields: { description: 'Pipeliner requires these fields', value: ['name'] },
    };
  }
  throw error;
}

/** The read-back of a created step's pipeline: only the two fields the check needs (pipeliner-api.md §6 `load-only`). */
export const STEP_PIPELINE_QUERY: PipelinerQuery = Object.freeze({ 'load-only': 'id,pipeline_id' });

/**
 * Checks that a created step sits in the requested pipeline, judging only by an answer that carries the step's
 * pipeline ({@link reportedPipelineId}). The create answer is shaped by the caller's `remote_query` (`load-only`
 * may leave `pipeline_id` out, `expand` or keys unknown to unicrm may change it), so when it does not carry the
 * pipeline the step is read back with `GET /entities/Steps/{id}?load-only=id,pipeline_id`. If that read fails,
 * or does not carry the pipeline either, the check is skipped with a warning: the step exists, and failing a
 * create that happened would invite a retry and a duplicate.
 * @throws UnicrmError 502 naming the created step when the step reports another pipeline or none
 */
export async function checkCreatedInPipeline(
  client: PipelinerClient,
  created: EntityAnswer,
  requested: string,
  options: CallOptions,
  logger: Logger,
  what: 'created' | 'moved' = 'created',
): Promise<void> {
  const step = created.entity;
  let reported = reportedPipelineId(step);
  if (reported === undefined) {
    try {
      reported = reportedPipelineId((await client.get('Steps', String(step.id), STEP_PIPELINE_QUERY, options.signal)).entity);
    } catch (error) {
      logger.warn(
        { req_id: options.requestId, step_id: step.id, pipeline_id: requested, status: (error as UnicrmError).statusCode },
        `step ${what}, but its pipeline could not be read back to check it`,
      );
      return;
    }
    if (reported === undefined) {
      logger.warn({ req_id: options.requestId, step_id: step.id, pipeline_id: requested }, `step ${what}; the read-back did not report its pipeline`);
      return;
    }
  }
  if (reported !== null && reported.toLowerCase() === requested.toLowerCase()) return;
  throw new UnicrmError(
    502,
    what === 'created'
      ? `Pipeliner created step ${String(step.id)} but not in pipeline ${requested} ` +
          `(it reports pipeline ${reported ?? 'none'}); the step was left as it is: delete or move it in Pipeliner.`
      : `Pipeliner updated step ${String(step.id)} but did not move it to pipeline ${requested} (it reports pipeline ${reported ?? 'none'}).`,
    {
      truto_is_remote_error: true,
      raw_response: created.body,
      truto_error_insight: { remote_error: { description: 'Pipeliner ignored the requested pipeline.' } },
    },
  );
}

/**
 * Creates a stage as a Pipeliner Step (DESIGN.md §2 "Pipeliner call"):
 * 1. Checks the body ({@link checkStageCreateBody}): nothing is sent for a 400.
 * 2. `POST /entities/Steps` with the desunified body; `validation-level=8` when the body writes the
 *    read-only `pipeline_id` or `sort_order`; `remote_query` keys win over the connector's.
 * 3. Checks the step sits in the requested pipeline ({@link checkCreatedInPipeline}: else 502, naming the
 *    created step; read back when the answer leaves the pipeline out).
 * 4. Learns the pipeline's name from an expanded `pipeline`, else `GET /entities/Pipelines/{id}?load-only=id,name`
 *    ({@link PipelinerClient.pipelineName}: concurrent creates share a read in flight). That read failing does not
 *    fail the create: the stage is returned with `pipeline.id` only.
 * The unified stage is made from the create answer alone: fields a `load-only` left out are absent from it.
 * @returns the unified stage and Pipeliner's answer (for the raw format)
 * @throws UnicrmError 400 (Pipeliner's body rules), remote errors mirrored from Pipeliner, 502, 504
 */
export async function createStage(
  client: PipelinerClient,
  body: StageCreateBody,
  options: CallOptions,
  logger: Logger,
): Promise<CreateResult<Stage>> {
  checkStageCreateBody(body);
  return createCheckedStage(client, body, options, logger);
}

/**
 * {@link createStage} for a body that already passed {@link PipelinerStageCreateBodySchema} (core validates every
 * body with the connector's declared schema before it calls the connector, so the checks are not run twice).
 */
export async function createCheckedStage(
  client: PipelinerClient,
  body: StageCreateBody,
  options: CallOptions,
  logger: Logger,
): Promise<CreateResult<Stage>> {
  const stepBody = stepCreateRequest(body);
  const query: PipelinerQuery = {};
  if (stepBody.pipeline_id !== undefined || stepBody.sort_order !== undefined) {
    query['validation-level'] = VALIDATION_LEVEL_OVERRIDE_READONLY;
  }
  Object.assign(query, options.remoteQuery);

  const created = await client.create('Steps', stepBody.json, query, options.signal);
  const step = created.entity;
  const requested = typeof stepBody.pipeline_id === 'string' ? stepBody.pipeline_id : undefined;
  if (requested !== undefined) await checkCreatedInPipeline(client, created, requested, options, logger);

  const pipelineId = stepPipelineId(step);
  let pipelineName = expandedPipelineName(step);
  if (pipelineId !== undefined && pipelineName === undefined) {
    try {
      pipelineName = await client.pipelineName(pipelineId, options.signal);
    } catch (error) {
      logger.warn(
        { req_id: options.requestId, step_id: step.id, pipeline_id: pipelineId, status: (error as UnicrmError).statusCode },
        'step created, but its pipeline name could not be read',
      );
    }
  }

  return {
    unified: unifyStep(step, pipelineName),
    remote: { status: created.response.status, bodyText: created.response.bodyText, body: created.body },
  };
}
