import { z } from 'zod';
import { ErrorBodySchema } from './errors';

/**
 * Batch writes of a unified resource (issue 18; docs/contract.md "Batch writes"):
 * `POST /unified/<model>/<resource>/batch?integrated_account_id=…` with `{ "items": [...] }`.
 */

/** The most items one batch request takes. */
export const BATCH_MAX_ITEMS = 100;

/** The methods a batch item may use. */
export const BATCH_METHODS = ['create', 'update'] as const;
export type BatchItemMethod = (typeof BATCH_METHODS)[number];

/** One item of a batch: a create (no `id`) or an update (its `id`), its unified body, and its own Idempotency-Key. */
export const BatchItemSchema = z
  .strictObject({
    method: z.enum(BATCH_METHODS).describe('`create` or `update`'),
    id: z.string().min(1).max(512).optional().describe("The record's id: required for `update`, refused for `create`"),
    body: z.record(z.string(), z.unknown()).describe("The unified body, as for the resource's single create or update"),
    idempotency_key: z
      .string()
      .min(1)
      .max(255)
      .regex(/^[\x20-\x7e]+$/, 'printable ASCII')
      .optional()
      .describe(
        "This item's Idempotency-Key: the same as the single create's or update's (one key written by either is replayed by the other). Without one, an item of a batch sent with an Idempotency-Key gets a key derived from the batch's key and its position.",
      ),
  })
  .superRefine((item, ctx) => {
    if (item.method === 'update' && item.id === undefined) ctx.addIssue({ code: 'custom', path: ['id'], message: 'is required for an update' });
    if (item.method === 'create' && item.id !== undefined) ctx.addIssue({ code: 'custom', path: ['id'], message: 'is not allowed for a create (the provider makes the id)' });
  });
export type BatchItem = z.infer<typeof BatchItemSchema>;

/** The body of a batch request. */
export const BatchBodySchema = z
  .strictObject({
    items: z.array(BatchItemSchema).min(1).max(BATCH_MAX_ITEMS).describe(`1 to ${BATCH_MAX_ITEMS} writes, answered in this order`),
  })
  .meta({ id: 'BatchBody' });
export type BatchBody = z.infer<typeof BatchBodySchema>;

/** The answer to one item: its status, and the record (in the requested format) or the error. */
export const BatchItemResultSchema = z.object({
  index: z.number().int().describe('Position of the item in the request, from 0'),
  method: z.enum(BATCH_METHODS),
  status: z.number().int().describe('The status the single request would have answered: 201 created, 200 updated, else the error\'s'),
  result: z.record(z.string(), z.unknown()).optional().describe('The record, as the single request would have answered it (only `id` with `Prefer: return=minimal`)'),
  error: ErrorBodySchema.optional().describe('The error body, as the single request would have answered it'),
  replayed: z.boolean().optional().describe("True when the item's Idempotency-Key had been used: its first answer, nothing written again"),
  retry_after: z
    .number()
    .int()
    .optional()
    .describe("Seconds to wait before sending the item again, when its error carries a Retry-After (a 429; a 409 of a key still settling)"),
});
export type BatchItemResult = z.infer<typeof BatchItemResultSchema>;

/** The answer to a batch request (200 whenever the request itself was valid; each item has its own status). */
export const BatchAnswerSchema = z
  .object({
    result: z.array(BatchItemResultSchema).describe('One answer per item, in request order'),
    succeeded: z.number().int().describe('Items answered 2xx'),
    failed: z.number().int().describe('Items answered with an error'),
  })
  .meta({ id: 'BatchAnswer' });
export type BatchAnswer = z.infer<typeof BatchAnswerSchema>;

/**
 * How much of each written record a batch answers (RFC 7240 `Prefer: return=…`): `representation` (default) the
 * record as the single request would answer it; `minimal` only its `id`, which spares the reads some providers need to
 * show a record after a bulk write (Pipeliner's `batch-modify` answers ids only).
 */
export type BatchRepresentation = 'representation' | 'minimal';
