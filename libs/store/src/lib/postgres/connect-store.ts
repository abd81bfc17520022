import {
  type ClaimedDelivery,
  type DeliveryAttempt,
  type DeliveryRecord,
  type DeliveryState,
  type LinkTokenRecord,
  type LinkTokenStore,
  type OutboxEvent,
  type StoredWebhook,
  UnicrmError,
  type WebhookEventType,
  type WebhookStore,
} from '@unicrm/model';
import type { PoolClient, QueryResult, QueryResultRow } from 'pg';
import { decodeCursor, encodeCursor } from '../account-rows';
import { encodeEventTypes } from '../connect-schema';
import {
  type AttemptRow,
  deliveryCursor,
  deliveryOfRow,
  type DeliveryRow,
  type LinkTokenRow,
  linkTokenOfRow,
  type WebhookRow,
  webhookOfRow,
  webhookSecretAad,
} from '../connect-store';
import type { SecretBox } from '../secret-box';
import { isUnavailable, type PostgresDatabase } from './database';

/** What runs SQL inside a transaction. */
export type PostgresRunner = { query<R extends QueryResultRow = QueryResultRow>(text: string, params?: unknown[]): Promise<QueryResult<R>> };

/**
 * Runs `work` in one transaction on one pooled connection (`BEGIN` … `COMMIT`, `ROLLBACK` on any failure).
 * @throws UnicrmError 503 when the database cannot be reached (as every other query), else what `work` throws
 */
export async function inTransaction<T>(db: PostgresDatabase, work: (client: PoolClient) => Promise<T>): Promise<T> {
  await db.started;
  let client: PoolClient;
  try {
    client = await db.pool.connect();
  } catch (error) {
    throw unavailable(error);
  }
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw looksUnavailable(error) ? unavailable(error) : error;
  } finally {
    client.release();
  }
}

/** A driver failure that says the database cannot serve now (not an error of `work` itself). */
function looksUnavailable(error: unknown): boolean {
  if (error instanceof UnicrmError) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return isUnavailable(error);
  return /Connection terminated|timeout|ECONNREFUSED|ECONNRESET/i.test((error as Error).message ?? '');
}

function unavailable(error: unknown): UnicrmError {
  return new UnicrmError(503, `The database cannot be reached or did not answer in time (${(error as Error).message}); retry in a few seconds.`, {}, { 'retry-after': '5' });
}

/**
 * Writes outbox events on a PostgreSQL connection inside the caller's transaction: each event, and one pending delivery
 * per subscribed active webhook of its environment (or to `onlyWebhookId`).
 */
export async function writeOutboxEvents(client: PostgresRunner, events: readonly OutboxEvent[], onlyWebhookId?: string): Promise<void> {
  for (const event of events) {
    await client.query('INSERT INTO webhook_events (id, environment_id, event, payload, created_at) VALUES ($1, $2, $3, $4, $5)', [
      event.id,
      event.environmentId,
      event.event,
      JSON.stringify(event.payload),
      event.createdAt,
    ]);
    if (onlyWebhookId === undefined) {
      await client.query(
        `INSERT INTO webhook_deliveries (event_id, webhook_id, environment_id, state, attempts, next_attempt_at, created_at)
         SELECT $1, w.id, w.environment_id, 'pending', 0, $2, $2 FROM webhooks w
         WHERE w.environment_id = $3 AND w.is_active AND (w.event_types = '' OR position((',' || $4 || ',') in w.event_types) > 0)`,
        [event.id, event.createdAt, event.environmentId, event.event],
      );
    } else {
      await client.query(
        `INSERT INTO webhook_deliveries (event_id, webhook_id, environment_id, state, attempts, next_attempt_at, created_at)
         SELECT $1, w.id, w.environment_id, 'pending', 0, $2, $2 FROM webhooks w WHERE w.id = $3 AND w.environment_id = $4`,
        [event.id, event.createdAt, onlyWebhookId, event.environmentId],
      );
    }
  }
}

/** Link tokens in PostgreSQL, by SHA-256 (issue 17); the same conditional statements as the SQLite store. */
export class PostgresLinkTokenStore implements LinkTokenStore {
  constructor(private readonly db: PostgresDatabase) {}

  async add(record: LinkTokenRecord, tokenHash: Buffer): Promise<void> {
    await this.db.query(
      `INSERT INTO link_tokens (token_hash, environment_id, tenant_id, integrated_account_id, integration, redirect_uri, created_at, expires_at, used_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [tokenHash, record.environmentId, record.tenantId, record.integratedAccountId, record.integration, record.redirectUri, record.createdAt, record.expiresAt, record.usedAt],
    );
  }

  async find(tokenHash: Buffer): Promise<LinkTokenRecord | undefined> {
    const { rows } = await this.db.query<LinkTokenRow>('SELECT * FROM link_tokens WHERE token_hash = $1', [tokenHash]);
    return rows[0] && linkTokenOfRow(rows[0]);
  }

  async hold(tokenHash: Buffer, now: string, holdUntil: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      'UPDATE link_tokens SET held_until = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $3 AND (held_until IS NULL OR held_until <= $3)',
      [holdUntil, tokenHash, now],
    );
    return (rowCount ?? 0) > 0;
  }

  async release(tokenHash: Buffer): Promise<void> {
    await this.db.query('UPDATE link_tokens SET held_until = NULL WHERE token_hash = $1', [tokenHash]);
  }

  async markUsed(tokenHash: Buffer, at: string): Promise<boolean> {
    const { rowCount } = await this.db.query('UPDATE link_tokens SET used_at = $1, held_until = NULL WHERE token_hash = $2 AND used_at IS NULL', [at, tokenHash]);
    return (rowCount ?? 0) > 0;
  }

  async prune(before: string): Promise<number> {
    return (await this.db.query('DELETE FROM link_tokens WHERE expires_at < $1', [before])).rowCount ?? 0;
  }

  async startOAuth(tokenHash: Buffer, stateHash: Buffer, integration: string): Promise<boolean> {
    const { rowCount } = await this.db.query('UPDATE link_tokens SET oauth_state_hash = $1, oauth_integration = $2 WHERE token_hash = $3 AND used_at IS NULL', [
      stateHash,
      integration,
      tokenHash,
    ]);
    return (rowCount ?? 0) > 0;
  }

  async findByOAuthState(stateHash: Buffer): Promise<{ record: LinkTokenRecord; tokenHash: Buffer; integration: string } | undefined> {
    const { rows } = await this.db.query<LinkTokenRow>('SELECT * FROM link_tokens WHERE oauth_state_hash = $1', [stateHash]);
    const row = rows[0];
    return row && { record: linkTokenOfRow(row), tokenHash: row.token_hash as Buffer, integration: row.oauth_integration as string };
  }
}

/**
 * Webhooks and the outbox's deliveries in PostgreSQL (issue 17). Deliveries are claimed with `FOR UPDATE SKIP LOCKED`
 * under a lease: several nodes' workers never take the same delivery at once.
 */
export class PostgresWebhookStore implements WebhookStore {
  constructor(
    private readonly db: PostgresDatabase,
    private readonly box: SecretBox,
  ) {}

  async create(webhook: StoredWebhook): Promise<void> {
    await this.db.query(
      'INSERT INTO webhooks (id, environment_id, target_url, event_types, is_active, sealed_secret, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
      [
        webhook.id,
        webhook.environmentId,
        webhook.targetUrl,
        encodeEventTypes(webhook.eventTypes),
        webhook.isActive,
        this.box.seal(webhook.secret, webhookSecretAad(webhook.id)),
        webhook.createdAt,
        webhook.updatedAt,
      ],
    );
  }

  async get(environmentId: string, id: string): Promise<StoredWebhook | undefined> {
    const { rows } = await this.db.query<WebhookRow>('SELECT * FROM webhooks WHERE id = $1 AND environment_id = $2', [id, environmentId]);
    return rows[0] && webhookOfRow(rows[0], this.box);
  }

  async list(environmentId: string, query: { limit: number; cursor?: string }): Promise<{ webhooks: StoredWebhook[]; nextCursor: string | null }> {
    const [afterCreated, afterId] = query.cursor === undefined ? ['', ''] : decodeCursor(query.cursor);
    const { rows } = await this.db.query<WebhookRow>(
      'SELECT * FROM webhooks WHERE environment_id = $1 AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4',
      [environmentId, afterCreated, afterId, query.limit + 1],
    );
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return { webhooks: page.map((row) => webhookOfRow(row, this.box)), nextCursor: rows.length > query.limit && last ? encodeCursor(last) : null };
  }

  async update(webhook: StoredWebhook): Promise<boolean> {
    const { rowCount } = await this.db.query(
      'UPDATE webhooks SET target_url = $1, event_types = $2, is_active = $3, updated_at = $4 WHERE id = $5 AND environment_id = $6',
      [webhook.targetUrl, encodeEventTypes(webhook.eventTypes), webhook.isActive, webhook.updatedAt, webhook.id, webhook.environmentId],
    );
    return (rowCount ?? 0) > 0;
  }

  async delete(environmentId: string, id: string): Promise<boolean> {
    return ((await this.db.query('DELETE FROM webhooks WHERE id = $1 AND environment_id = $2', [id, environmentId])).rowCount ?? 0) > 0;
  }

  async record(events: readonly OutboxEvent[], onlyWebhookId?: string): Promise<void> {
    await inTransaction(this.db, (client) => writeOutboxEvents(client, events, onlyWebhookId));
  }

  async claimDue(now: string, leaseUntil: string, leaseToken: string, limit: number): Promise<ClaimedDelivery[]> {
    const { rows } = await this.db.query<{
      event_id: string;
      webhook_id: string;
      attempts: number;
      environment_id: string;
      event: string;
      payload: string;
      created_at: string;
    }>(
      `WITH due AS (
         SELECT event_id, webhook_id FROM webhook_deliveries
         WHERE state = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
         ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED),
       claimed AS (
         UPDATE webhook_deliveries d SET lease_token = $2, lease_until = $3 FROM due
         WHERE d.event_id = due.event_id AND d.webhook_id = due.webhook_id
         RETURNING d.event_id, d.webhook_id, d.attempts)
       SELECT c.event_id, c.webhook_id, c.attempts, e.environment_id, e.event, e.payload, e.created_at
       FROM claimed c JOIN webhook_events e ON e.id = c.event_id`,
      [now, leaseToken, leaseUntil, limit],
    );
    if (rows.length === 0) return [];
    const hooks = await this.db.query<WebhookRow>('SELECT * FROM webhooks WHERE id = ANY($1)', [[...new Set(rows.map((r) => r.webhook_id))]]);
    const byId = new Map(hooks.rows.map((row) => [row.id, webhookOfRow(row, this.box)]));
    return rows.flatMap((row) => {
      const webhook = byId.get(row.webhook_id);
      if (!webhook) return [];
      return [
        {
          event: { id: row.event_id, environmentId: row.environment_id, event: row.event as WebhookEventType, payload: JSON.parse(row.payload), createdAt: row.created_at },
          webhookId: row.webhook_id,
          targetUrl: webhook.targetUrl,
          secret: webhook.secret === '' ? undefined : webhook.secret,
          attempts: row.attempts,
          leaseToken,
        },
      ];
    });
  }

  async finish(
    eventId: string,
    webhookId: string,
    leaseToken: string,
    attempt: DeliveryAttempt,
    outcome: { state: DeliveryState; nextAttemptAt: string | null; at: string },
  ): Promise<boolean> {
    return inTransaction(this.db, async (client) => {
      const { rowCount } = await client.query(
        `UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, next_attempt_at = $2, lease_token = NULL, lease_until = NULL,
           delivered_at = CASE WHEN $1 = 'delivered' THEN $3 ELSE NULL END
         WHERE event_id = $4 AND webhook_id = $5 AND lease_token = $6`,
        [outcome.state, outcome.nextAttemptAt, outcome.at, eventId, webhookId, leaseToken],
      );
      if ((rowCount ?? 0) === 0) return false;
      await client.query('INSERT INTO webhook_attempts (event_id, webhook_id, attempt, started_at, status_code, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
        eventId,
        webhookId,
        attempt.attempt,
        attempt.startedAt,
        attempt.statusCode,
        attempt.error,
        Math.round(attempt.durationMs),
      ]);
      return true;
    });
  }

  async prune(before: string, limit: number): Promise<number> {
    return (await this.db.query(`DELETE FROM webhook_events WHERE id IN (
         SELECT e.id FROM webhook_events e
         WHERE e.created_at < $1 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.state = 'pending')
         ORDER BY e.created_at LIMIT $2)`, [before, limit])).rowCount ?? 0;
  }

  async deliveries(
    environmentId: string,
    webhookId: string,
    query: { limit: number; cursor?: string },
  ): Promise<{ deliveries: DeliveryRecord[]; nextCursor: string | null }> {
    const [beforeCreated, beforeId] = query.cursor === undefined ? ['\uffff', '\uffff'] : decodeCursor(query.cursor);
    const { rows } = await this.db.query<DeliveryRow>(
      `SELECT d.event_id, d.webhook_id, d.environment_id, e.event, d.state, d.created_at, d.next_attempt_at, d.delivered_at
       FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
       WHERE d.webhook_id = $1 AND d.environment_id = $2 AND (d.created_at, d.event_id) < ($3, $4)
       ORDER BY d.created_at DESC, d.event_id DESC LIMIT $5`,
      [webhookId, environmentId, beforeCreated, beforeId, query.limit + 1],
    );
    const page = rows.slice(0, query.limit);
    const attempts =
      page.length === 0
        ? []
        : (await this.db.query<AttemptRow>('SELECT * FROM webhook_attempts WHERE webhook_id = $1 AND event_id = ANY($2) ORDER BY attempt', [webhookId, page.map((r) => r.event_id)]))
            .rows;
    const last = page[page.length - 1];
    return { deliveries: page.map((row) => deliveryOfRow(row, attempts)), nextCursor: rows.length > query.limit && last ? deliveryCursor(last) : null };
  }
}
