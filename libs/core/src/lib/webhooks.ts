import 'reflect-metadata';
import {
  checkOutboundUrl,
  type ClaimedDelivery,
  type Clock,
  type DeliveryRecord,
  type HttpTransport,
  InvalidCursorError,
  isJsonObject,
  type Logger,
  type StoredWebhook,
  TOKENS,
  type UnicrmConfig,
  UnicrmError,
  type Webhook,
  WebhookCreateBodySchema,
  type WebhookEventBody,
  WebhookPatchBodySchema,
  type WebhookStore,
  zodFailures,
} from '@unicrm/model';
import { parseQueryString } from '@unicrm/query';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { inject, injectable } from 'tsyringe';
import { z } from 'zod';
import type { CoreEnvironment } from './config';

/** The header Truto signs webhooks with (truto-contract.md §7). */
export const SIGNATURE_HEADER = 'X-Truto-Signature';

/**
 * The value of {@link SIGNATURE_HEADER} for a body: `format=sha256,v=<hex HMAC-SHA256 of the body's bytes with the
 * webhook's secret>`, as Truto signs, so that a receiver written for Truto verifies unicrm's webhooks unchanged.
 */
export function signWebhookBody(body: string, secret: string): string {
  return `format=sha256,v=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

/** The exact body of a delivery: the same bytes on every attempt (fixed key order), so its signature is stable. */
export function webhookBody(delivery: Pick<ClaimedDelivery, 'event' | 'webhookId'>): string {
  const body: WebhookEventBody = {
    id: delivery.event.id,
    event: delivery.event.event,
    payload: delivery.event.payload,
    environment_id: delivery.event.environmentId,
    webhook_id: delivery.webhookId,
    created_at: delivery.event.createdAt,
  };
  return JSON.stringify(body);
}

const ListQuerySchema = z.strictObject({
  limit: z.coerce.number({ error: 'must be a whole number from 1 to 500' }).int().min(1).max(500).default(100),
  next_cursor: z.string().min(1).optional(),
});

/** One delivery as `GET /webhook/:id/deliveries` lists it. */
export interface WebhookDeliveryView {
  id: string;
  event: string;
  webhook_id: string;
  status: DeliveryRecord['state'];
  created_at: string;
  next_attempt_at: string | null;
  delivered_at: string | null;
  attempts: Array<{ attempt: number; started_at: string; status_code: number | null; error: string | null; duration_ms: number }>;
}

/**
 * The admin side of webhooks (issue 17; truto-contract.md §7), in the shapes of Truto's SDK (`webhook.create`, `list`,
 * `get`, `update`, `delete`, `test`): a webhook belongs to the environment of the API token that made it. The target
 * URL must pass the outbound policy (`checkOutboundUrl`: https, or http on loopback; never link-local or metadata
 * addresses; the transport checks resolved addresses too). The signing secret is made here, shown once and sealed at
 * rest.
 */
@injectable()
export class WebhookService {
  constructor(
    @inject(TOKENS.WebhookStore) private readonly store: WebhookStore,
    @inject(TOKENS.Clock) private readonly clock: Clock,
  ) {}

  /**
   * `POST /webhook`: `{ target_url, event_types?, is_active?, environment_id? }`.
   * @returns the webhook with its `secret` (the only time it is shown)
   * @throws UnicrmError 400 (bad body, a target URL the outbound policy refuses, an environment_id not the token's)
   */
  async create(environmentId: string, body: unknown): Promise<Webhook> {
    const parsed = WebhookCreateBodySchema.safeParse(object(body));
    if (!parsed.success) throw UnicrmError.validation(zodFailures(parsed.error));
    if (parsed.data.environment_id !== undefined && parsed.data.environment_id !== environmentId) {
      throw UnicrmError.validation([{ path: 'environment_id', message: `must be the API token's own environment (${environmentId}), or left out` }]);
    }
    const now = this.clock.now().toISOString();
    const webhook: StoredWebhook = {
      id: randomUUID(),
      environmentId,
      targetUrl: targetUrl(parsed.data.target_url),
      eventTypes: parsed.data.event_types ?? [],
      isActive: parsed.data.is_active,
      secret: randomBytes(32).toString('hex'),
      createdAt: now,
      updatedAt: now,
    };
    await this.store.create(webhook);
    return { ...present(webhook), secret: webhook.secret };
  }

  /** `GET /webhook`: `{ result, next_cursor, limit }`, oldest first. @throws UnicrmError 400 for a bad limit or cursor */
  async list(environmentId: string, query: string | Record<string, unknown>): Promise<{ result: Webhook[]; next_cursor: string | null; limit: number }> {
    const parsed = ListQuerySchema.safeParse(typeof query === 'string' ? parseQueryString(query) : query);
    if (!parsed.success) throw UnicrmError.validation(zodFailures(parsed.error));
    const page = await cursorErrors(() => this.store.list(environmentId, { limit: parsed.data.limit, cursor: parsed.data.next_cursor }));
    return { result: page.webhooks.map(present), next_cursor: page.nextCursor, limit: parsed.data.limit };
  }

  /** `GET /webhook/:id` (no secret). @throws UnicrmError 404 */
  async get(environmentId: string, id: string): Promise<Webhook> {
    return present(await this.read(environmentId, id));
  }

  /** `PATCH /webhook/:id`: `target_url`, `event_types`, `is_active`. @throws UnicrmError 400, 404 */
  async update(environmentId: string, id: string, body: unknown): Promise<Webhook> {
    const parsed = WebhookPatchBodySchema.safeParse(object(body));
    if (!parsed.success) throw UnicrmError.validation(zodFailures(parsed.error));
    const webhook = await this.read(environmentId, id);
    const next: StoredWebhook = {
      ...webhook,
      ...(parsed.data.target_url !== undefined && { targetUrl: targetUrl(parsed.data.target_url) }),
      ...(parsed.data.event_types !== undefined && { eventTypes: parsed.data.event_types }),
      ...(parsed.data.is_active !== undefined && { isActive: parsed.data.is_active }),
      updatedAt: this.clock.now().toISOString(),
    };
    if (!(await this.store.update(next))) throw notFound(id);
    return present(next);
  }

  /** `DELETE /webhook/:id` → `{ id }`; its pending deliveries are dropped. @throws UnicrmError 404 */
  async delete(environmentId: string, id: string): Promise<{ id: string }> {
    if (!(await this.store.delete(environmentId, id.toLowerCase()))) throw notFound(id);
    return { id };
  }

  /**
   * `POST /webhook/test` `{ id }`: queues a `test` event for that webhook only (active or not), delivered like any
   * other. @returns `{ id, event: 'test' }` (the event's id) @throws UnicrmError 400, 404
   */
  async test(environmentId: string, body: unknown): Promise<{ id: string; event: 'test'; webhook_id: string }> {
    const parsed = z.strictObject({ id: z.string().min(1) }).safeParse(object(body));
    if (!parsed.success) throw UnicrmError.validation(zodFailures(parsed.error));
    const webhook = await this.read(environmentId, parsed.data.id);
    const event = {
      id: randomUUID(),
      environmentId,
      event: 'test' as const,
      payload: { message: 'A test event from unicrm.', webhook_id: webhook.id },
      createdAt: this.clock.now().toISOString(),
    };
    await this.store.record([event], webhook.id);
    return { id: event.id, event: 'test', webhook_id: webhook.id };
  }

  /** `GET /webhook/:id/deliveries`: newest first, each with its attempts. @throws UnicrmError 400, 404 */
  async deliveries(
    environmentId: string,
    id: string,
    query: string | Record<string, unknown>,
  ): Promise<{ result: WebhookDeliveryView[]; next_cursor: string | null; limit: number }> {
    const parsed = ListQuerySchema.safeParse(typeof query === 'string' ? parseQueryString(query) : query);
    if (!parsed.success) throw UnicrmError.validation(zodFailures(parsed.error));
    const webhook = await this.read(environmentId, id);
    const page = await cursorErrors(() => this.store.deliveries(environmentId, webhook.id, { limit: parsed.data.limit, cursor: parsed.data.next_cursor }));
    return {
      result: page.deliveries.map((d) => ({
        id: d.eventId,
        event: d.event,
        webhook_id: d.webhookId,
        status: d.state,
        created_at: d.createdAt,
        next_attempt_at: d.nextAttemptAt,
        delivered_at: d.deliveredAt,
        attempts: d.attempts.map((a) => ({ attempt: a.attempt, started_at: a.startedAt, status_code: a.statusCode, error: a.error, duration_ms: a.durationMs })),
      })),
      next_cursor: page.nextCursor,
      limit: parsed.data.limit,
    };
  }

  private async read(environmentId: string, id: string): Promise<StoredWebhook> {
    const webhook = /^[0-9a-f-]{36}$/i.test(id) ? await this.store.get(environmentId, id.toLowerCase()) : undefined;
    if (!webhook) throw notFound(id);
    return webhook;
  }
}

function object(body: unknown): Record<string, unknown> {
  if (!isJsonObject(body)) throw UnicrmError.badRequest('The body must be a JSON object.');
  return body;
}

async function cursorErrors<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof InvalidCursorError) throw UnicrmError.validation([{ path: 'next_cursor', message: error.message }]);
    throw error;
  }
}

/** The outbound policy on a webhook URL (a query is allowed: receivers often route on one). @throws UnicrmError 400 */
function targetUrl(text: string): string {
  try {
    return checkOutboundUrl(text, { allowQuery: true, example: 'https://example.com/webhooks/unicrm' });
  } catch (error) {
    throw UnicrmError.validation([{ path: 'target_url', message: (error as Error).message }]);
  }
}

function notFound(id: string): UnicrmError {
  return UnicrmError.notFound(`Webhook ${id} not found.`);
}

function present(webhook: StoredWebhook): Webhook {
  return {
    id: webhook.id,
    environment_id: webhook.environmentId,
    target_url: webhook.targetUrl,
    event_types: webhook.eventTypes,
    is_active: webhook.isActive,
    created_at: webhook.createdAt,
    updated_at: webhook.updatedAt,
  };
}

/** How many deliveries one worker sends per round. */
const BATCH = 20;

/** How often a worker prunes the delivery log, in ms. */
const PRUNE_EVERY_MS = 3_600_000;
/** Events deleted per statement when pruning. */
const PRUNE_BATCH = 1_000;

/**
 * The webhook worker (issue 17; docs/connect.md "Webhooks"): every `pollMs` it claims the deliveries that are due
 * (one worker at a time per delivery, across every node: the store's conditional claim under a lease longer than a
 * delivery's deadline), POSTs each signed body through the HTTP transport (the outbound policy again, on the resolved
 * addresses too), and records the attempt: a 2xx is `delivered`; anything else is retried after `retryBaseMs`,
 * doubling up to `retryMaxMs`, until the event is `maxAgeMs` old (then `failed`). A delivery whose worker died is
 * taken again once its lease ends: at least once, and never by two workers at once.
 */
@injectable()
export class WebhookDispatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;

  constructor(
    @inject(TOKENS.WebhookStore) private readonly store: WebhookStore,
    @inject(TOKENS.HttpTransport) private readonly transport: HttpTransport,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Config) private readonly config: UnicrmConfig & CoreEnvironment,
  ) {}

  /** Starts polling (idempotent). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops polling and waits for the round under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce()
        .then(
          (sent) => sent,
          (error: unknown) => {
            this.logger.warn({ err: (error as Error).message }, 'webhook worker: a round failed; trying again');
            return 0;
          },
        )
        .then((sent) => this.schedule(sent >= BATCH ? 0 : this.config.webhooks.pollMs));
    }, ms);
    this.timer.unref();
  }

  /**
   * One round: claims the due deliveries and sends them (concurrently).
   * @returns how many were attempted
   */
  async runOnce(): Promise<number> {
    const now = this.clock.now();
    await this.pruneIfDue(now);
    const lease = new Date(now.getTime() + this.config.webhooks.timeoutMs * 3 + 5_000).toISOString();
    const claimed = await this.store.claimDue(now.toISOString(), lease, randomUUID(), BATCH);
    await Promise.all(claimed.map((delivery) => this.deliver(delivery)));
    return claimed.length;
  }

  /** When the delivery log was last pruned (ms since the epoch; 0: not yet by this worker). */
  private lastPrune = 0;

  /**
   * Deletes the events past `webhooks.retentionMs` that are no longer being delivered, about once an hour (each node's
   * worker does it; deleting twice is harmless), in batches of {@link PRUNE_BATCH}.
   */
  private async pruneIfDue(now: Date): Promise<void> {
    if (now.getTime() - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now.getTime();
    const before = new Date(now.getTime() - this.config.webhooks.retentionMs).toISOString();
    let deleted = 0;
    for (let batch = PRUNE_BATCH; batch === PRUNE_BATCH; ) {
      batch = await this.store.prune(before, PRUNE_BATCH);
      deleted += batch;
    }
    if (deleted > 0) this.logger.info({ deleted, before }, 'webhook worker: pruned the delivery log');
  }

  private async deliver(delivery: ClaimedDelivery): Promise<void> {
    const started = this.clock.now();
    const t0 = performance.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    if (delivery.secret === undefined) {
      error = "the webhook's secret cannot be opened with this process's encryption key";
    } else {
      const body = webhookBody(delivery);
      try {
        const url = checkOutboundUrl(delivery.targetUrl, { allowQuery: true });
        const response = await this.transport.request({
          method: 'POST',
          url,
          headers: {
            'content-type': 'application/json',
            'user-agent': 'unicrm-webhooks',
            [SIGNATURE_HEADER.toLowerCase()]: signWebhookBody(body, delivery.secret),
          },
          body,
          signal: AbortSignal.timeout(this.config.webhooks.timeoutMs),
        });
        statusCode = response.status;
        if (response.status < 200 || response.status >= 300) error = `the receiver answered ${response.status}`;
      } catch (failure) {
        error = (failure as Error).message.slice(0, 500);
      }
    }
    const at = this.clock.now();
    const attempt = delivery.attempts + 1;
    const delivered = error === null;
    const delay = Math.min(this.config.webhooks.retryBaseMs * 2 ** (attempt - 1), this.config.webhooks.retryMaxMs);
    const next = new Date(at.getTime() + delay);
    const tooOld = next.getTime() - Date.parse(delivery.event.createdAt) > this.config.webhooks.maxAgeMs;
    const state = delivered ? 'delivered' : tooOld ? 'failed' : 'pending';
    const kept = await this.store.finish(
      delivery.event.id,
      delivery.webhookId,
      delivery.leaseToken,
      { attempt, startedAt: started.toISOString(), statusCode, error, durationMs: performance.now() - t0 },
      { state, nextAttemptAt: state === 'pending' ? next.toISOString() : null, at: at.toISOString() },
    );
    const line = { webhook_id: delivery.webhookId, event_id: delivery.event.id, event: delivery.event.event, attempt, status_code: statusCode, state };
    if (!kept) this.logger.warn(line, 'webhook delivery: the lease ended before the outcome was recorded; another worker retries it');
    else if (delivered) this.logger.info(line, 'webhook delivered');
    else this.logger.warn({ ...line, err: error }, state === 'failed' ? 'webhook delivery given up (max age)' : 'webhook delivery failed; will retry');
  }
}
