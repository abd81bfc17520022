import { z } from 'zod';

/** Statuses of an integrated account (truto-contract.md §4.2; the subset unicrm uses). */
export const IntegratedAccountStatusSchema = z.enum(['active', 'needs_reauth', 'validation_error']);
export type IntegratedAccountStatus = z.infer<typeof IntegratedAccountStatusSchema>;

/**
 * An integrated account as the admin API answers it (truto-contract.md §4.2–4.3): credentials
 * stripped from `context`. Timestamps are RFC 3339 UTC.
 */
export const IntegratedAccountSchema = z
  .object({
    id: z.uuid(),
    tenant_id: z.string(),
    environment_id: z.string(),
    integration: z.object({ name: z.string(), category: z.string() }),
    status: IntegratedAccountStatusSchema,
    is_usable: z
      .boolean()
      .describe(
        'false when unicrm cannot use the account as stored (its credentials do not decrypt, its stored context is ' +
          'unreadable, or its integration is not registered): calls that use it answer 500, and last_error says why ' +
          'and what the operator can do. status keeps the stored value. It can still be read, updated and deleted.',
      ),
    context: z.record(z.string(), z.unknown()).describe('Non-secret context; secrets are never returned'),
    last_error: z.string().nullable().describe('Why the account needs attention (a provider refusal, or why it is not usable); null when nothing is wrong'),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .meta({ id: 'IntegratedAccount' });
export type IntegratedAccount = z.infer<typeof IntegratedAccountSchema>;

/** Body of `POST /integrated-account`. `context` is validated by the integration's connector. */
export const IntegratedAccountCreateBodySchema = z
  .strictObject({
    integration: z.string().trim().min(1).describe('Integration name, e.g. `pipeliner`'),
    tenant_id: z.string().trim().min(1).max(256).describe("Your identifier of the end customer"),
    context: z.record(z.string(), z.unknown()).describe('Integration-specific settings and credentials'),
    validate: z.boolean().default(true).describe('Check the credentials with one cheap provider call first (default true)'),
  })
  .meta({ id: 'IntegratedAccountCreateBody' });

/** Body of `PATCH /integrated-account/:id`: a new `tenant_id` and/or a shallow `context` merge. */
export const IntegratedAccountPatchBodySchema = z
  .strictObject({
    tenant_id: z.string().trim().min(1).max(256).optional(),
    context: z.record(z.string(), z.unknown()).optional().describe('Merged shallowly over the stored context'),
    validate: z.boolean().default(true).describe('Check changed credentials with one cheap provider call first (default true)'),
  })
  .meta({ id: 'IntegratedAccountPatchBody' });
export type IntegratedAccountPatchBody = z.input<typeof IntegratedAccountPatchBodySchema>;

/** Query of `GET /integrated-account` (truto-contract.md §4.3): filters and cursor. */
export const IntegratedAccountListQuerySchema = z.strictObject({
  tenant_id: z.string().min(1).optional(),
  status: IntegratedAccountStatusSchema.optional(),
  integration: z.string().min(1).optional(),
  limit: z.coerce.number({ error: 'must be a whole number from 1 to 500' }).int().min(1).max(500).default(100),
  next_cursor: z.string().min(1).optional(),
});

/** One page of `GET /integrated-account`: Truto's admin list envelope. */
export interface IntegratedAccountList {
  result: IntegratedAccount[];
  next_cursor: string | null;
  limit: number;
}
export type IntegratedAccountCreateBody = z.input<typeof IntegratedAccountCreateBodySchema>;

/** Pipeliner's account context (pipeliner-api.md §1: service URL, space id, API token and password). */
export const PipelinerContextSchema = z
  .strictObject({
    service_url: z
      .url({ protocol: /^https?$/, error: 'is required: the Pipeliner service URL, e.g. https://eu-central.api.pipelinersales.com' })
      .describe('Pipeliner service URL, e.g. https://eu-central.api.pipelinersales.com')
      .meta({
        title: 'Service URL',
        description:
          'The address of your Pipeliner region, e.g. https://eu-central.api.pipelinersales.com. In Pipeliner: Administration → Applications → Show API Access → "Service URL".',
      }),
    space_id: z
      .string({ error: 'is required: the Pipeliner space id (a string), e.g. fr_Myself' })
      .trim()
      .min(1, { error: 'is required: the Pipeliner space id (a string), e.g. fr_Myself' })
      .refine((id) => id !== '.' && id !== '..', { error: 'is not a space id' })
      .describe('Pipeliner space id, e.g. fr_Myself')
      .meta({ title: 'Space ID', description: 'Your Pipeliner space, e.g. fr_Myself. Shown on the same "Show API Access" page as "Space ID".' }),
    username: z
      .string({ error: 'is required: the Pipeliner API token (a string)' })
      .min(1, { error: 'is required: the Pipeliner API token (a string)' })
      .describe('Pipeliner "API token" (HTTP Basic username); secret')
      .meta({ title: 'API token', description: 'The application\'s "API token" (Administration → Applications → Show API Access).' }),
    password: z
      .string({ error: 'is required: the Pipeliner API password (a string)' })
      .min(1, { error: 'is required: the Pipeliner API password (a string)' })
      .describe('Pipeliner "API password" (HTTP Basic password); secret')
      .meta({ title: 'API password', description: 'The application\'s "API password", shown next to the API token.' }),
  })
  .meta({ id: 'PipelinerContext' });
export type PipelinerContext = z.infer<typeof PipelinerContextSchema>;
