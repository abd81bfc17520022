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
      .number({ error: 'must be a whole number >= 0' })
      .int({ error: 'must be a whole number >= 0' })
      .min(0, { error: 'must be a whole number >= 0' })
      .optional()
      .describe('The order of the stage in the pipeline (integer >= 0)'),
    status: z
      .enum(['active', 'inactive'], { error: "must be 'active' or 'inactive'" })
      .optional()
      .describe('Only `active` is accepted on create for Pipeliner'),
    remote_data: z
      .record(z.string(), z.unknown(), { error: 'must be a JSON object' })
      .optional()
      .describe('Provider fields, deep-merged over the mapped request body (remote_data wins)'),
  }, { error: 'must be a JSON object' })
  .meta({ id: 'StageCreateBody' });

/** A validated create body. */
export type StageCreateBody = z.infer<typeof StageCreateBodySchema>;
