import type {
  ClaimedDelivery,
  DeliveryAttempt,
  DeliveryRecord,
  DeliveryState,
  LinkTokenRecord,
  LinkTokenStore,
  OutboxEvent,
  StoredWebhook,
  WebhookEventType,
  WebhookStore,
} from '@unicrm/model';
import type Database from 'better-sqlite3';
import { decodeCursor, encodeCursor } from './account-rows';
import { decodeEventTypes, encodeEventTypes } from './connect-schema';
import type { SecretBox } from './secret-box';

/** AAD of a webhook's sealed secret: the secret cannot be moved to another webhook's row. */
export const webhookSecretAad = (id: string) => `webhook:${id}`;

/** A link token's row. */
export interface LinkTokenRow {
  environment_id: string;
  tenant_id: string;
  integrated_account_id: string | null;
  integration: string | null;
  redirect_uri: string | null;
  created_at: string;
  expires_at: string;
  used_at: string | null;
  token_hash?: Buffer;
  oauth_integration?: string | null;
}

export const linkTokenOfRow = (row: LinkTokenRow): LinkTokenRecord => ({
  environmentId: row.environment_id,
  tenantId: row.tenant_id,
  integratedAccountId: row.integrated_account_id,
  integration: row.integration,
  redirectUri: row.redirect_uri,
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  usedAt: row.used_at,
});

/** A webhook's row. */
export interface WebhookRow {
  id: string;
  environment_id: string;
  target_url: string;
  event_types: string;
  is_active: number | boolean;
  sealed_secret: string;
  created_at: string;
  updated_at: string;
}

/** A row to a webhook; a secret that does not open (the key changed) reads as `''`. */
export function webhookOfRow(row: WebhookRow, box: SecretBox): StoredWebhook {
  let secret = '';
  try {
    secret = box.open(row.sealed_secret, webhookSecretAad(row.id));
  } catch {
    // Left empty: a delivery of this webhook then fails with a message saying so (WebhookDispatcher).
  }
  return {
    id: row.id,
    environmentId: row.environment_id,
    targetUrl: row.target_url,
    eventTypes: decodeEventTypes<WebhookEventType>(row.event_types),
    isActive: row.is_active === true || row.is_active === 1,
    secret,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** A delivery's row joined with its event. */
export interface DeliveryRow {
  event_id: string;
  webhook_id: string;
  environment_id: string;
  event: string;
  state: DeliveryState;
  created_at: string;
  next_attempt_at: string | null;
  delivered_at: string | null;
}

/** An attempt's row. */
export interface AttemptRow {
  event_id: string;
  webhook_id: string;
  attempt: number;
  started_at: string;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

export const attemptOfRow = (row: AttemptRow): DeliveryAttempt => ({
  attempt: row.attempt,
  startedAt: row.started_at,
  statusCode: row.status_code,
  error: row.error,
  durationMs: row.duration_ms,
});

export function deliveryOfRow(row: DeliveryRow, attempts: AttemptRow[]): DeliveryRecord {
  return {
    eventId: row.event_id,
    webhookId: row.webhook_id,
    environmentId: row.environment_id,
    event: row.event as WebhookEventType,
    state: row.state,
    attempts: attempts.filter((a) => a.event_id === row.event_id && a.webhook_id === row.webhook_id).map(attemptOfRow),
    createdAt: row.created_at,
    nextAttemptAt: row.state === 'pending' ? row.next_attempt_at : null,
    deliveredAt: row.delivered_at,
  };
}

/** Cursor of a delivery listing (newest first): its creation time and event id. */
export const deliveryCursor = (row: { created_at: string; event_id: string }) => encodeCursor({ created_at: row.created_at, id: row.event_id });

/**
 * Writes outbox events on a SQLite connection: the event and one pending delivery per subscribed active webhook of its
 * environment. Call it inside the transaction of the change the events report ({@link SqliteAccountStore}).
 */
export class SqliteOutbox {
  private readonly insertEvent: Database.Statement;
  private readonly fanOut: Database.Statement;
  private readonly toOne: Database.Statement;

  constructor(db: Database.Database) {
    this.insertEvent = db.prepare('INSERT INTO webhook_events (id, environment_id, event, payload, created_at) VALUES (@id, @environment_id, @event, @payload, @created_at)');
    this.fanOut = db.prepare(
      `INSERT INTO webhook_deliveries (event_id, webhook_id, environment_id, state, attempts, next_attempt_at, created_at)
       SELECT @id, w.id, w.environment_id, 'pending', 0, @created_at, @created_at FROM webhooks w
       WHERE w.environment_id = @environment_id AND w.is_active = 1 AND (w.event_types = '' OR instr(w.event_types, ',' || @event || ',') > 0)`,
    );
    this.toOne = db.prepare(
      `INSERT INTO webhook_deliveries (event_id, webhook_id, environment_id, state, attempts, next_attempt_at, created_at)
       SELECT @id, w.id, w.environment_id, 'pending', 0, @created_at, @created_at FROM webhooks w WHERE w.id = @webhook_id AND w.environment_id = @environment_id`,
    );
  }

  /** Writes the events (synchronously: inside the caller's transaction). */
  write(events: readonly OutboxEvent[], onlyWebhookId?: string): void {
    for (const event of events) {
      const params = { id: event.id, environment_id: event.environmentId, event: event.event, payload: JSON.stringify(event.payload), created_at: event.createdAt };
      this.insertEvent.run(params);
      if (onlyWebhookId === undefined) this.fanOut.run(params);
      else this.toOne.run({ ...params, webhook_id: onlyWebhookId });
    }
  }
}

/** Link tokens in SQLite, by SHA-256 (issue 17). */
export class SqliteLinkTokenStore implements LinkTokenStore {
  constructor(private readonly db: Database.Database) {}

  async add(record: LinkTokenRecord, tokenHash: Buffer): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO link_tokens (token_hash, environment_id, tenant_id, integrated_account_id, integration, redirect_uri, created_at, expires_at, used_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(tokenHash, record.environmentId, record.tenantId, record.integratedAccountId, record.integration, record.redirectUri, record.createdAt, record.expiresAt, record.usedAt);
  }

  async find(tokenHash: Buffer): Promise<LinkTokenRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM link_tokens WHERE token_hash = ?').get(tokenHash) as LinkTokenRow | undefined;
    return row && linkTokenOfRow(row);
  }

  async hold(tokenHash: Buffer, now: string, holdUntil: string): Promise<boolean> {
    return (
      this.db
        .prepare('UPDATE link_tokens SET held_until = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? AND (held_until IS NULL OR held_until <= ?)')
        .run(holdUntil, tokenHash, now, now).changes > 0
    );
  }

  async release(tokenHash: Buffer): Promise<void> {
    this.db.prepare('UPDATE link_tokens SET held_until = NULL WHERE token_hash = ?').run(tokenHash);
  }

  async markUsed(tokenHash: Buffer, at: string): Promise<boolean> {
    return this.db.prepare('UPDATE link_tokens SET used_at = ?, held_until = NULL WHERE token_hash = ? AND used_at IS NULL').run(at, tokenHash).changes > 0;
  }

  async prune(before: string): Promise<number> {
    return this.db.prepare('DELETE FROM link_tokens WHERE expires_at < ?').run(before).changes;
  }

  async startOAuth(tokenHash: Buffer, stateHash: Buffer, integration: string): Promise<boolean> {
    return (
      this.db.prepare('UPDATE link_tokens SET oauth_state_hash = ?, oauth_integration = ? WHERE token_hash = ? AND used_at IS NULL').run(stateHash, integration, tokenHash)
        .changes > 0
    );
  }

  async findByOAuthState(stateHash: Buffer): Promise<{ record: LinkTokenRecord; tokenHash: Buffer; integration: string } | undefined> {
    const row = this.db.prepare('SELECT * FROM link_tokens WHERE oauth_state_hash = ?').get(stateHash) as LinkTokenRow | undefined;
    return row && { record: linkTokenOfRow(row), tokenHash: row.token_hash as Buffer, integration: row.oauth_integration as string };
  }
}

/** Webhooks and the outbox's deliveries in SQLite (issue 17); secrets sealed with the data directory's key. */
export class SqliteWebhookStore implements WebhookStore {
  private readonly outbox: SqliteOutbox;

  constructor(
    private readonly db: Database.Database,
    private readonly box: SecretBox,
  ) {
    this.outbox = new SqliteOutbox(db);
  }

  async create(webhook: StoredWebhook): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO webhooks (id, environment_id, target_url, event_types, is_active, sealed_secret, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        webhook.id,
        webhook.environmentId,
        webhook.targetUrl,
        encodeEventTypes(webhook.eventTypes),
        webhook.isActive ? 1 : 0,
        this.box.seal(webhook.secret, webhookSecretAad(webhook.id)),
        webhook.createdAt,
        webhook.updatedAt,
      );
  }

  async get(environmentId: string, id: string): Promise<StoredWebhook | undefined> {
    const row = this.db.prepare('SELECT * FROM webhooks WHERE id = ? AND environment_id = ?').get(id, environmentId) as WebhookRow | undefined;
    return row && webhookOfRow(row, this.box);
  }

  async list(environmentId: string, query: { limit: number; cursor?: string }): Promise<{ webhooks: StoredWebhook[]; nextCursor: string | null }> {
    const [afterCreated, afterId] = query.cursor === undefined ? ['', ''] : decodeCursor(query.cursor);
    const rows = this.db
      .prepare(
        `SELECT * FROM webhooks WHERE environment_id = ? AND (created_at > ? OR (created_at = ? AND id > ?)) ORDER BY created_at, id LIMIT ?`,
      )
      .all(environmentId, afterCreated, afterCreated, afterId, query.limit + 1) as WebhookRow[];
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return { webhooks: page.map((row) => webhookOfRow(row, this.box)), nextCursor: rows.length > query.limit && last ? encodeCursor(last) : null };
  }

  async update(webhook: StoredWebhook): Promise<boolean> {
    return (
      this.db
        .prepare('UPDATE webhooks SET target_url = ?, event_types = ?, is_active = ?, updated_at = ? WHERE id = ? AND environment_id = ?')
        .run(webhook.targetUrl, encodeEventTypes(webhook.eventTypes), webhook.isActive ? 1 : 0, webhook.updatedAt, webhook.id, webhook.environmentId).changes > 0
    );
  }

  async delete(environmentId: string, id: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM webhooks WHERE id = ? AND environment_id = ?').run(id, environmentId).changes > 0;
  }

  async record(events: readonly OutboxEvent[], onlyWebhookId?: string): Promise<void> {
    this.db.transaction(() => this.outbox.write(events, onlyWebhookId)).immediate();
  }

  async claimDue(now: string, leaseUntil: string, leaseToken: string, limit: number): Promise<ClaimedDelivery[]> {
    // One statement: of two workers (processes) that look at once, SQLite serialises the writes, and the second one's
    // condition no longer matches a row the first one holds.
    const claimed = this.db
      .prepare(
        `UPDATE webhook_deliveries SET lease_token = @token, lease_until = @until
         WHERE (event_id, webhook_id) IN (
           SELECT event_id, webhook_id FROM webhook_deliveries
           WHERE state = 'pending' AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until <= @now)
           ORDER BY next_attempt_at LIMIT @limit)
         RETURNING event_id, webhook_id, attempts`,
      )
      .all({ token: leaseToken, until: leaseUntil, now, limit }) as Array<{ event_id: string; webhook_id: string; attempts: number }>;
    const out: ClaimedDelivery[] = [];
    for (const row of claimed) {
      const event = this.db.prepare('SELECT * FROM webhook_events WHERE id = ?').get(row.event_id) as
        | { id: string; environment_id: string; event: string; payload: string; created_at: string }
        | undefined;
      const webhook = this.db.prepare('SELECT * FROM webhooks WHERE id = ?').get(row.webhook_id) as WebhookRow | undefined;
      if (!event || !webhook) continue;
      const opened = webhookOfRow(webhook, this.box);
      out.push({
        event: { id: event.id, environmentId: event.environment_id, event: event.event as WebhookEventType, payload: JSON.parse(event.payload), createdAt: event.created_at },
        webhookId: row.webhook_id,
        targetUrl: opened.targetUrl,
        secret: opened.secret === '' ? undefined : opened.secret,
        attempts: row.attempts,
        leaseToken,
      });
    }
    return out;
  }

  async finish(
    eventId: string,
    webhookId: string,
    leaseToken: string,
    attempt: DeliveryAttempt,
    outcome: { state: DeliveryState; nextAttemptAt: string | null; at: string },
  ): Promise<boolean> {
    return this.db
      .transaction(() => {
        const changed =
          this.db
            .prepare(
              `UPDATE webhook_deliveries SET state = @state, attempts = attempts + 1, next_attempt_at = @next, lease_token = NULL, lease_until = NULL,
                 delivered_at = CASE WHEN @state = 'delivered' THEN @at ELSE NULL END
               WHERE event_id = @event_id AND webhook_id = @webhook_id AND lease_token = @token`,
            )
            .run({ state: outcome.state, next: outcome.nextAttemptAt, at: outcome.at, event_id: eventId, webhook_id: webhookId, token: leaseToken }).changes > 0;
        if (changed) {
          this.db
            .prepare('INSERT INTO webhook_attempts (event_id, webhook_id, attempt, started_at, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?)')
            .run(eventId, webhookId, attempt.attempt, attempt.startedAt, attempt.statusCode, attempt.error, Math.round(attempt.durationMs));
        }
        return changed;
      })
      .immediate();
  }

  async prune(before: string, limit: number): Promise<number> {
    return this.db.prepare(`DELETE FROM webhook_events WHERE id IN (
         SELECT e.id FROM webhook_events e
         WHERE e.created_at < ? AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.state = 'pending')
         ORDER BY e.created_at LIMIT ?)`).run(before, limit).changes;
  }

  async deliveries(
    environmentId: string,
    webhookId: string,
    query: { limit: number; cursor?: string },
  ): Promise<{ deliveries: DeliveryRecord[]; nextCursor: string | null }> {
    const [beforeCreated, beforeId] = query.cursor === undefined ? ['\uffff', '\uffff'] : decodeCursor(query.cursor);
    const rows = this.db
      .prepare(
        `SELECT d.event_id, d.webhook_id, d.environment_id, e.event, d.state, d.created_at, d.next_attempt_at, d.delivered_at
         FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
         WHERE d.webhook_id = ? AND d.environment_id = ? AND (d.created_at < ? OR (d.created_at = ? AND d.event_id < ?))
         ORDER BY d.created_at DESC, d.event_id DESC LIMIT ?`,
      )
      .all(webhookId, environmentId, beforeCreated, beforeCreated, beforeId, query.limit + 1) as DeliveryRow[];
    const page = rows.slice(0, query.limit);
    const ids = page.map((row) => row.event_id);
    const attempts =
      ids.length === 0
        ? []
        : (this.db
            .prepare(`SELECT * FROM webhook_attempts WHERE webhook_id = ? AND event_id IN (${ids.map(() => '?').join(', ')}) ORDER BY attempt`)
            .all(webhookId, ...ids) as AttemptRow[]);
    const last = page[page.length - 1];
    return { deliveries: page.map((row) => deliveryOfRow(row, attempts)), nextCursor: rows.length > query.limit && last ? deliveryCursor(last) : null };
  }
}
