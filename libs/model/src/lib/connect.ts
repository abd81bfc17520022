import { z } from 'zod';

/**
 * Link tokens, webhooks and the account-event outbox (issue 17; truto-contract.md §4.3 "Connection flow" and §7
 * "Webhooks"): the shapes of the admin API and the ports of their persistence.
 */

/** The account events unicrm emits, as Truto names them (truto-contract.md §7), plus `test` (`POST /webhook/test`). */
export const ACCOUNT_EVENT_TYPES = [
  'integrated_account:created',
  'integrated_account:updated',
  'integrated_account:deleted',
  'integrated_account:authentication_error',
  'integrated_account:reactivated',
] as const;
/** Every event type a webhook may subscribe to. */
export const WEBHOOK_EVENT_TYPES = [...ACCOUNT_EVENT_TYPES, 'test'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
export const WebhookEventTypeSchema = z.enum(WEBHOOK_EVENT_TYPES);

/** Body of `POST /link-token`: `tenant_id` for a new connection, or `integrated_account_id` to reconnect one. */
export const LinkTokenCreateBodySchema = z
  .strictObject({
    tenant_id: z.string().trim().min(1).max(256).optional().describe("Your identifier of the end customer (a new connection)"),
    integrated_account_id: z.uuid().optional().describe('The account to reconnect (e.g. one in needs_reauth)'),
    integration: z.string().trim().min(1).optional().describe('Only this integration is offered (default: every one with a connect form)'),
    redirect_uri: z.string().optional().describe("Where the page sends the customer's browser after connecting; must be on the environment's allow-list"),
  })
  .refine((body) => (body.tenant_id === undefined) !== (body.integrated_account_id === undefined), {
    error: 'send exactly one of tenant_id (a new connection) or integrated_account_id (a reconnect)',
  })
  .meta({ id: 'LinkTokenCreateBody' });
export type LinkTokenCreateBody = z.input<typeof LinkTokenCreateBodySchema>;

/** Answer of `POST /link-token`. */
export const LinkTokenSchema = z
  .object({
    link_token: z.string().describe('Opaque, single use; only its SHA-256 is stored'),
    expires_at: z.iso.datetime(),
    url: z.string().describe('The connect page for this token (open it in a browser)'),
  })
  .meta({ id: 'LinkToken' });
export type LinkToken = z.infer<typeof LinkTokenSchema>;

/** Body of `POST /webhook` (truto-contract.md §7). */
export const WebhookCreateBodySchema = z
  .strictObject({
    target_url: z.string().min(1).describe('Where the events are POSTed (https, or http on a loopback host)'),
    event_types: z.array(WebhookEventTypeSchema).optional().describe('The events to send; absent or empty: every event'),
    is_active: z.boolean().default(true),
    environment_id: z.string().optional().describe("If sent, must be the API token's own environment"),
  })
  .meta({ id: 'WebhookCreateBody' });
export type WebhookCreateBody = z.input<typeof WebhookCreateBodySchema>;

/** Body of `PATCH /webhook/:id`. */
export const WebhookPatchBodySchema = z
  .strictObject({
    target_url: z.string().min(1).optional(),
    event_types: z.array(WebhookEventTypeSchema).optional(),
    is_active: z.boolean().optional(),
  })
  .meta({ id: 'WebhookPatchBody' });

/** A webhook as the admin API answers it; `secret` only in the answer of its creation. */
export const WebhookSchema = z
  .object({
    id: z.uuid(),
    environment_id: z.string(),
    target_url: z.string(),
    event_types: z.array(WebhookEventTypeSchema).describe('Empty: every event'),
    is_active: z.boolean(),
    secret: z.string().optional().describe('The signing secret: shown once, in the answer of POST /webhook'),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .meta({ id: 'Webhook' });
export type Webhook = z.infer<typeof WebhookSchema>;

/** The body of every webhook POST (truto-contract.md §7), signed with `X-Truto-Signature`. */
export interface WebhookEventBody {
  id: string;
  event: WebhookEventType;
  payload: Record<string, unknown>;
  environment_id: string;
  webhook_id: string;
  created_at: string;
}

/** One account event, written to the outbox in the same transaction as the change it reports. Times RFC 3339 UTC. */
export interface OutboxEvent {
  id: string;
  environmentId: string;
  event: WebhookEventType;
  /** The account as the admin API shows it (secrets stripped), or `{ id }` of a deleted one. */
  payload: Record<string, unknown>;
  createdAt: string;
}

/** A link token's record; the token itself is never stored, only its SHA-256. */
export interface LinkTokenRecord {
  environmentId: string;
  /** The tenant of a new connection, or of the account to reconnect. */
  tenantId: string;
  /** Set for a reconnect. */
  integratedAccountId: string | null;
  /** Only this integration is offered, when set. */
  integration: string | null;
  redirectUri: string | null;
  createdAt: string;
  expiresAt: string;
  /** When it was used to connect; null until then. */
  usedAt: string | null;
}

/** Persistence of link tokens (single use, by hash). */
export interface LinkTokenStore {
  add(record: LinkTokenRecord, tokenHash: Buffer): Promise<void>;
  /** The record of this hash (used and expired ones included), or undefined. */
  find(tokenHash: Buffer): Promise<LinkTokenRecord | undefined>;
  /**
   * Takes the token for one submission until `holdUntil`: only when unused, unexpired at `now` and not held by another
   * submission (one conditional statement, so two submissions cannot both hold it).
   * @returns true when this caller holds it
   */
  hold(tokenHash: Buffer, now: string, holdUntil: string): Promise<boolean>;
  /** Lets go of a hold (the submission failed: the token may be used again). */
  release(tokenHash: Buffer): Promise<void>;
  /** Marks the token used at `at`; false when it was used already. */
  markUsed(tokenHash: Buffer, at: string): Promise<boolean>;
  /** Deletes tokens that expired before `before`; returns how many. */
  prune(before: string): Promise<number>;
  /**
   * Records that the token's customer went to `integration`'s consent page with the state whose SHA-256 is
   * `stateHash` (replacing an earlier one); false when the token is used or unknown.
   */
  startOAuth(tokenHash: Buffer, stateHash: Buffer, integration: string): Promise<boolean>;
  /** The token a consent flow's state belongs to (by the state's SHA-256), or undefined. */
  findByOAuthState(stateHash: Buffer): Promise<{ record: LinkTokenRecord; tokenHash: Buffer; integration: string } | undefined>;
}

/** A webhook as stored; `secret` is sealed at rest by the implementation. */
export interface StoredWebhook {
  id: string;
  environmentId: string;
  targetUrl: string;
  /** Empty: every event. */
  eventTypes: WebhookEventType[];
  isActive: boolean;
  secret: string;
  createdAt: string;
  updatedAt: string;
}

/** State of one event's delivery to one webhook. */
export type DeliveryState = 'pending' | 'delivered' | 'failed';

/** One attempt of a delivery. */
export interface DeliveryAttempt {
  attempt: number;
  startedAt: string;
  /** The receiver's HTTP status, or null when it gave none (refused, timed out). */
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

/** One event's delivery to one webhook, with its attempts, as listed. */
export interface DeliveryRecord {
  eventId: string;
  webhookId: string;
  environmentId: string;
  event: WebhookEventType;
  state: DeliveryState;
  attempts: DeliveryAttempt[];
  createdAt: string;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
}

/** A delivery taken by one worker: what it needs to send it. */
export interface ClaimedDelivery {
  event: OutboxEvent;
  webhookId: string;
  targetUrl: string;
  /** The webhook's signing secret (opened). Undefined when it does not open (the key changed). */
  secret: string | undefined;
  /** Attempts made before this one. */
  attempts: number;
  /** The hold this worker has on it: every write of the outcome is conditional on it. */
  leaseToken: string;
}

/**
 * Persistence of webhooks and of the account-event outbox. Events are fanned out when written: one delivery per active
 * webhook of the event's environment that subscribes to it, in the same transaction as the event (and, through
 * {@link AccountStore}, as the account change). Deliveries are claimed by one worker at a time across every node (a
 * conditional claim with a lease: on PostgreSQL `FOR UPDATE SKIP LOCKED`).
 */
export interface WebhookStore {
  create(webhook: StoredWebhook): Promise<void>;
  get(environmentId: string, id: string): Promise<StoredWebhook | undefined>;
  /** A page of the environment's webhooks, oldest first. @throws InvalidCursorError */
  list(environmentId: string, query: { limit: number; cursor?: string }): Promise<{ webhooks: StoredWebhook[]; nextCursor: string | null }>;
  /** Replaces target URL, event types, activity and `updatedAt`; false when there is none. */
  update(webhook: StoredWebhook): Promise<boolean>;
  /** Removes it and its deliveries; false when there was none. */
  delete(environmentId: string, id: string): Promise<boolean>;
  /** Writes events (fanned out to subscribed webhooks; with `onlyWebhookId`, to that one only, active or not). */
  record(events: readonly OutboxEvent[], onlyWebhookId?: string): Promise<void>;
  /**
   * Claims up to `limit` deliveries that are due at `now` and not held (or whose hold ended), holding them until
   * `leaseUntil` under `leaseToken`.
   */
  claimDue(now: string, leaseUntil: string, leaseToken: string, limit: number): Promise<ClaimedDelivery[]>;
  /**
   * Records an attempt and the delivery's new state (`pending` with `nextAttemptAt` for a retry), only while
   * `leaseToken` still holds it. @returns false when it does not (nothing written)
   */
  finish(
    eventId: string,
    webhookId: string,
    leaseToken: string,
    attempt: DeliveryAttempt,
    outcome: { state: DeliveryState; nextAttemptAt: string | null; at: string },
  ): Promise<boolean>;
  /** The deliveries of a webhook, newest first, with their attempts. @throws InvalidCursorError */
  deliveries(environmentId: string, webhookId: string, query: { limit: number; cursor?: string }): Promise<{ deliveries: DeliveryRecord[]; nextCursor: string | null }>;
  /**
   * Deletes up to `limit` events created before `before` (ISO 8601) none of whose deliveries is still `pending`, with
   * their deliveries and attempts: the delivery log's retention. An event still being retried is never deleted.
   * @returns how many events were deleted
   */
  prune(before: string, limit: number): Promise<number>;
}
