/**
 * The tables of issue 17 (link tokens, webhooks, the account-event outbox and its deliveries), one migration per
 * backend, kept apart from the other migrations so that each backend's list only gains one entry.
 *
 * - `webhooks.event_types` is `''` (every event) or `,a,b,` (so one `instr`/`position` matches a type exactly).
 * - `webhook_deliveries` has one row per event and webhook, made in the transaction that writes the event; a worker
 *   holds a row under `lease_token` until `lease_until` while it sends it.
 */
export const CONNECT_MIGRATION_SQLITE = `
  CREATE TABLE link_tokens (
    token_hash BLOB PRIMARY KEY,
    environment_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    integrated_account_id TEXT,
    integration TEXT,
    redirect_uri TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    held_until TEXT,
    oauth_state_hash BLOB,
    oauth_integration TEXT
  );
  CREATE UNIQUE INDEX link_tokens_oauth_state ON link_tokens (oauth_state_hash);
  CREATE INDEX link_tokens_expiry ON link_tokens (expires_at);
  CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL,
    target_url TEXT NOT NULL,
    event_types TEXT NOT NULL,
    is_active INTEGER NOT NULL,
    sealed_secret TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE INDEX webhooks_listing ON webhooks (environment_id, created_at, id);
  CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE webhook_deliveries (
    event_id TEXT NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    environment_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    lease_token TEXT,
    lease_until TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT,
    PRIMARY KEY (event_id, webhook_id)
  );
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
  CREATE INDEX webhook_deliveries_listing ON webhook_deliveries (webhook_id, created_at, event_id);
  CREATE TABLE webhook_attempts (
    event_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (event_id, webhook_id, attempt),
    FOREIGN KEY (event_id, webhook_id) REFERENCES webhook_deliveries (event_id, webhook_id) ON DELETE CASCADE
  );`;

/** The same tables on PostgreSQL (times as `COLLATE "C"` text, like the other tables). */
export const CONNECT_MIGRATION_POSTGRES = `
  CREATE TABLE link_tokens (
    token_hash bytea PRIMARY KEY,
    environment_id text NOT NULL,
    tenant_id text NOT NULL,
    integrated_account_id text,
    integration text,
    redirect_uri text,
    created_at text COLLATE "C" NOT NULL,
    expires_at text COLLATE "C" NOT NULL,
    used_at text COLLATE "C",
    held_until text COLLATE "C",
    oauth_state_hash bytea UNIQUE,
    oauth_integration text
  );
  CREATE INDEX link_tokens_expiry ON link_tokens (expires_at);
  CREATE TABLE webhooks (
    id text COLLATE "C" PRIMARY KEY,
    environment_id text NOT NULL,
    target_url text NOT NULL,
    event_types text NOT NULL,
    is_active boolean NOT NULL,
    sealed_secret text NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    updated_at text COLLATE "C" NOT NULL
  );
  CREATE INDEX webhooks_listing ON webhooks (environment_id, created_at, id);
  CREATE TABLE webhook_events (
    id text COLLATE "C" PRIMARY KEY,
    environment_id text NOT NULL,
    event text NOT NULL,
    payload text NOT NULL,
    created_at text COLLATE "C" NOT NULL
  );
  CREATE TABLE webhook_deliveries (
    event_id text COLLATE "C" NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    webhook_id text COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    environment_id text NOT NULL,
    state text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at text COLLATE "C",
    lease_token text,
    lease_until text COLLATE "C",
    created_at text COLLATE "C" NOT NULL,
    delivered_at text COLLATE "C",
    PRIMARY KEY (event_id, webhook_id)
  );
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
  CREATE INDEX webhook_deliveries_listing ON webhook_deliveries (webhook_id, created_at, event_id);
  CREATE TABLE webhook_attempts (
    event_id text COLLATE "C" NOT NULL,
    webhook_id text COLLATE "C" NOT NULL,
    attempt integer NOT NULL,
    started_at text COLLATE "C" NOT NULL,
    status_code integer,
    error text,
    duration_ms integer NOT NULL,
    PRIMARY KEY (event_id, webhook_id, attempt),
    FOREIGN KEY (event_id, webhook_id) REFERENCES webhook_deliveries (event_id, webhook_id) ON DELETE CASCADE
  );`;

/** `event_types` as stored: `''` for every event, else `,a,b,`. */
export function encodeEventTypes(types: readonly string[]): string {
  return types.length === 0 ? '' : `,${[...new Set(types)].join(',')},`;
}

/** The stored `event_types` as a list (empty: every event). */
export function decodeEventTypes<T extends string>(text: string): T[] {
  return text.split(',').filter((t) => t !== '') as T[];
}
