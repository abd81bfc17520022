import 'reflect-metadata';
import { formatRecord, type FormattedResponse } from '@unicrm/formatters';
import {
  type CallOptions,
  type Connector,
  type ConnectorAccount,
  type ConnectorResource,
  exceedsJsonDepth,
  prototypeKeyPath,
  isJsonObject,
  type ItemResult,
  type Logger,
  type MetricsObserver,
  type RequestObservation,
  MAX_JSON_DEPTH,
  resourceKey,
  type StoredAccount,
  TOKENS,
  UnicrmError,
  type UnifiedMethod,
  type UnifiedQuery,
  type UnifiedResourceDefinition,
  zodFailures,
} from '@unicrm/model';
import { inject, injectable } from 'tsyringe';
import type { z } from 'zod';
import { IntegratedAccountService } from './accounts';
import { AccountBulkhead } from './bulkhead';
import type { CoreEnvironment } from './config';
import { IdempotencyGuard, type IdempotentAnswer } from './idempotency';
import { CORE_TOKENS } from './core-tokens';
import { OAuthRefresher } from './oauth-refresh';
import { Pacer, type PacingTag } from './pacing';
import { operationDeadline } from './operation-deadline';
import { ConnectorRegistry } from './registry';
import { ResourceCatalog } from './resource-catalog';

/** A unified request as both front doors hand it over (the API from its route, the SDK from its method). */
export interface UnifiedRequest {
  /** Environment of the caller's API token. */
  environmentId: string;
  /** The unified model and resource of the path (`crm`, `stages`); compared in lower case. */
  model: string;
  resource: string;
  /** The record's id, for get, update and delete. */
  id?: string;
  /** The raw query string, or the same parameters as an object (SDK). */
  query: string | Record<string, unknown>;
  /** The parsed JSON body, for create and update. */
  body?: unknown;
  /** The `Idempotency-Key` header value, if any (create, update, delete). */
  idempotencyKey?: string;
  signal?: AbortSignal;
  /** Id of the request (`x-request-id`): every log line written for it carries it as `req_id`. */
  requestId?: string;
  /** Filled in by the core as it learns them (the account's integration), for the front door's metrics. */
  observed?: RequestObservation;
}

/** A successful unified answer: status, JSON body, for the raw format the provider's exact text, headers to send. */
export interface UnifiedResponse extends FormattedResponse {
  statusCode: number;
  headers?: Record<string, string>;
}

/** The answer to a body that is not a JSON object. */
export const NOT_A_JSON_OBJECT = 'The body must be a JSON object, e.g. {"name": "Qualified"}.';

/**
 * How a use case reaches the provider within one operation: `options` for the connector (its `signal` is the
 * operation's deadline), and `remote` to run a connector call in the account's bulkhead compartment. A remote 401
 * that ends the operation marks the account `needs_reauth`.
 */
export interface Operation {
  options: CallOptions;
  /**
   * Runs a connector call in the account's bulkhead compartment, handing it the account as the connector is to use
   * it: with OAuth tokens refreshed first when they are about to expire, and the call run once more with refreshed
   * tokens after a remote 401 (OAuthRefresher; connectors that declare no `oauth` are called as they are).
   */
  remote<T>(call: (account: ConnectorAccount) => Promise<T>): Promise<T>;
}

/** Everything a method needs once a request is resolved: the resource, the account, its connector and method. */
export interface UnifiedTarget<M> {
  definition: UnifiedResourceDefinition;
  account: StoredAccount;
  connector: Connector;
  /** What the connector is handed of the account. */
  connectorAccount: ConnectorAccount;
  method: M;
}

/**
 * What every unified use case shares (DESIGN.md §6): finding the resource (404), the account of the caller's
 * environment (404; 401 while it needs re-authentication), its connector and the method it declares (501 naming the
 * integration); validating bodies against the unified and the integration's schema; calling the connector so that a
 * remote 401 marks the account `needs_reauth` (DESIGN.md §3); running writes under the Idempotency-Key guard; and
 * formatting one record.
 */
@injectable()
export class UnifiedTargets {
  private readonly operationTimeoutMs: number;

  constructor(
    private readonly catalog: ResourceCatalog,
    private readonly accounts: IntegratedAccountService,
    private readonly registry: ConnectorRegistry,
    private readonly idempotency: IdempotencyGuard,
    private readonly bulkhead: AccountBulkhead,
    private readonly oauth: OAuthRefresher,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Config) config: CoreEnvironment,
    @inject(TOKENS.Metrics) private readonly metrics: MetricsObserver,
    @inject(CORE_TOKENS.Pacer) private readonly pacer: Pacer,
  ) {
    this.operationTimeoutMs = config.operationTimeoutMs;
  }

  /** @throws UnicrmError 404 for an unknown resource */
  definition(request: Pick<UnifiedRequest, 'model' | 'resource'>): UnifiedResourceDefinition {
    return this.catalog.get(request.model, request.resource);
  }

  /**
   * The account, connector and declared method of a request.
   * @throws UnicrmError 404 (account), 401 (account needs re-authentication), 500 (unreadable account), 501 (the
   *   integration does not serve this resource or method)
   */
  async resolve<K extends UnifiedMethod>(
    definition: UnifiedResourceDefinition,
    environmentId: string,
    accountId: string,
    method: K,
    requestId?: string,
  ): Promise<UnifiedTarget<NonNullable<ConnectorResource[K]>>> {
    const { account, connector, connectorAccount } = await this.account(environmentId, accountId, requestId);
    const declared = connector.resources[resourceKey(definition.model, definition.resource)]?.[method];
    if (!declared) {
      throw new UnicrmError(501, `The ${account.integration} integration cannot ${method} ${definition.resource}.`);
    }
    return { definition, account, connector, connectorAccount, method: declared as NonNullable<ConnectorResource[K]> };
  }

  /**
   * The account of a request and its connector, whatever the method (a batch checks each item's).
   * @throws UnicrmError 404 (account), 401 (account needs re-authentication), 500 (unreadable account)
   */
  async account(environmentId: string, accountId: string, requestId?: string): Promise<Pick<UnifiedTarget<unknown>, 'account' | 'connector' | 'connectorAccount'>> {
    const account = await this.accounts.load(environmentId, accountId, requestId);
    if (account.status === 'needs_reauth') {
      throw new UnicrmError(
        401,
        `Integrated account ${account.id} needs re-authentication: ${account.integration} rejected its credentials. ` +
          'Update them with PATCH /integrated-account/:id.',
      );
    }
    const connector = this.registry.get(account.integration);
    return { account, connector, connectorAccount: { id: account.id, integration: account.integration, context: account.context } };
  }

  /**
   * Checks a request body against the resource's unified schema: a JSON object (400), at most {@link MAX_JSON_DEPTH}
   * deep (400), of the unified types with no unknown field (400 "Invalid body: ...").
   * @returns the parsed body
   */
  unifiedBody(schema: z.ZodType<Record<string, unknown>> | undefined, body: unknown): Record<string, unknown> {
    if (!isJsonObject(body)) throw UnicrmError.badRequest(NOT_A_JSON_OBJECT);
    if (exceedsJsonDepth(body)) throw UnicrmError.badRequest(`The body nests objects or arrays deeper than ${MAX_JSON_DEPTH} levels.`);
    // Keys that could reach a prototype are never sent to a provider (mergeRemoteData skips them, a schema drops an
    // own __proto__): refused here, before any schema, rather than dropped silently.
    const forbidden = prototypeKeyPath(body);
    if (forbidden !== undefined) {
      throw UnicrmError.invalid('Invalid body', [{ path: forbidden, message: 'is a key unicrm does not send (__proto__, constructor and prototype could reach an object\'s prototype)' }]);
    }
    if (!schema) return body;
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw UnicrmError.invalid('Invalid body', zodFailures(parsed.error));
    return parsed.data;
  }

  /**
   * Checks a body against the integration's narrower schema ("Invalid body for Pipeliner: ..."); a required field
   * that is missing adds `truto_error_insight.missing_required_body_fields` (truto-contract.md §3).
   * @returns the body as the connector takes it
   */
  integrationBody<B>(connector: Connector, schema: z.ZodType<B>, body: Record<string, unknown>): B {
    const parsed = schema.safeParse(body);
    if (parsed.success) return parsed.data;
    const failures = zodFailures(parsed.error);
    const error = UnicrmError.invalid(`Invalid body for ${connector.displayName}`, failures);
    // A top-level field that failed while absent, null or blank counts as missing (a blank name is no name).
    const blank = (value: unknown) => value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
    const missing = [...new Set(failures.map((f) => f.path).filter((path) => !path.includes('.') && blank(body[path])))];
    if (missing.length > 0) {
      error.body.truto_error_insight = {
        missing_required_body_fields: { description: `${connector.displayName} requires these fields`, value: missing },
      };
    }
    throw error;
  }

  /**
   * Runs one operation against the provider (issue 12 "Deadlines and isolation"): every connector call it makes runs
   * within one deadline (`UNICRM_OPERATION_TIMEOUT_MS`, then 504; the caller's signal aborts it too) and in the
   * account's compartment of the {@link AccountBulkhead} (429 when it is full), each of its provider calls waits for the
   * account's turn in the {@link Pacer} (`priority`: `interactive` by default, `bulk` for a batch's items), and a remote
   * 401 marks the account `needs_reauth` (DESIGN.md §3), unless it changed since it was read.
   */
  operation<T>(
    account: StoredAccount,
    request: { environmentId: string; signal?: AbortSignal; requestId?: string; observed?: RequestObservation; priority?: PacingTag['priority'] },
    remoteQuery: UnifiedQuery['remote_query'],
    body: (operation: Operation) => Promise<T>,
  ): Promise<T> {
    // Written as promise chains, not async functions: on the create path every async frame is a few more
    // microtasks and promises per request (docs/benchmarks.md).
    const deadline = operationDeadline(this.operationTimeoutMs, request.signal);
    const compartment = `${request.environmentId}:${account.id}`;
    // The connector hands this signal to the transport with every call: the pacer knows whose turn it waits for.
    this.pacer.tag(deadline.signal, { key: compartment, priority: request.priority ?? 'interactive' });
    const connector = this.registry.byName(account.integration);
    const integration = account.integration;
    if (request.observed) request.observed.integration = integration;
    /** One provider call, timed for the metrics (its outcome: ok, the provider's error status, or error). */
    const timed = <R>(call: () => Promise<R>): Promise<R> => {
      const started = performance.now();
      return call().then(
        (value) => {
          this.metrics.providerCall(integration, 'ok', (performance.now() - started) / 1000);
          return value;
        },
        (error: unknown) => {
          const outcome = error instanceof UnicrmError && error.isRemote ? String(error.statusCode) : 'error';
          this.metrics.providerCall(integration, outcome, (performance.now() - started) / 1000);
          throw error;
        },
      );
    };
    /** The account as last used: after an OAuth refresh, the refreshed one (what a 401 is then recorded against). */
    let current = account;
    const connectorAccount = (of: StoredAccount): ConnectorAccount => ({ id: of.id, integration: of.integration, context: of.context });
    const plain = connectorAccount(account);
    const remote: Operation['remote'] = connector?.oauth
      ? <R>(call: (account: ConnectorAccount) => Promise<R>): Promise<R> => this.withOAuth(connector, current, request.requestId, (fresh) => {
          current = fresh;
          return this.bulkhead.run(compartment, () => timed(() => call(connectorAccount(fresh))), deadline.signal);
        })
      : <R>(call: (account: ConnectorAccount) => Promise<R>): Promise<R> => this.bulkhead.run(compartment, () => timed(() => call(plain)), deadline.signal);
    let running: Promise<T>;
    try {
      running = body({ options: { remoteQuery, signal: deadline.signal, requestId: request.requestId }, remote });
    } catch (error) {
      running = Promise.reject(error);
    }
    return running.then(
      (value) => {
        deadline.clear();
        return value;
      },
      (error: unknown) => {
        deadline.clear();
        if (error instanceof UnicrmError && error.isRemote && error.statusCode === 401) {
          return this.accounts.markNeedsReauth(current, `${account.integration} answered 401: ${error.message}`).then(
            () => {
              this.logger.warn({ req_id: request.requestId, integrated_account_id: account.id }, 'remote 401: account marked needs_reauth');
              throw error;
            },
            (storeError: unknown) => {
              this.logger.error({ req_id: request.requestId, integrated_account_id: account.id, err: (storeError as Error).message }, 'remote 401: could not mark the account needs_reauth');
              throw error;
            },
          );
        }
        throw error;
      },
    );
  }

  /**
   * Runs `call` with the account's OAuth tokens fresh (refreshed first when about to expire), and once more with
   * refreshed tokens after a remote 401 (the provider refused the request, so sending it again is safe for any method).
   */
  private async withOAuth<R>(connector: Connector, account: StoredAccount, requestId: string | undefined, call: (account: StoredAccount) => Promise<R>): Promise<R> {
    const fresh = await this.oauth.fresh(account, connector, requestId);
    try {
      return await call(fresh);
    } catch (error) {
      if (!(error instanceof UnicrmError && error.isRemote && error.statusCode === 401)) throw error;
      const refreshed = await this.oauth.afterUnauthorized(fresh, connector, requestId);
      if (!refreshed) throw error;
      this.logger.info({ req_id: requestId, integrated_account_id: account.id }, 'remote 401: OAuth token refreshed, call sent again');
      return call(refreshed);
    }
  }

  /**
   * Runs a write at most once per Idempotency-Key (when one came), scoped to environment, account, HTTP method and
   * path (docs/reliability.md). A write that `retrySafe` may simply run again after a failure that left its outcome
   * unknown; any other keeps its key ambiguous and asks `reconcile` before writing again. A failure after which the
   * write may have happened gets a message saying how to retry.
   * @param fingerprint the request as the key is bound to it (only computed when a key came)
   */
  write(
    target: UnifiedTarget<{ retrySafe: boolean }>,
    request: Pick<UnifiedRequest, 'environmentId' | 'idempotencyKey'>,
    scope: { method: string; path: string },
    fingerprint: () => unknown,
    run: () => Promise<IdempotentAnswer>,
    reconcile?: (since: Date) => Promise<IdempotentAnswer | undefined>,
  ): Promise<IdempotentAnswer> {
    const key = request.idempotencyKey === undefined ? undefined : IdempotencyGuard.parseKey(request.idempotencyKey);
    const retrySafe = target.method.retrySafe;
    const attempt =
      key === undefined
        ? run()
        : this.idempotency.run([request.environmentId, target.account.id, scope.method, scope.path], key, fingerprint(), run, reconcile, { retrySafe });
    return attempt.catch((error: unknown) => {
      throw error instanceof UnicrmError && error.requestMayHaveArrived ? withRetryHint(error, target.definition.noun, scope.method, key !== undefined, retrySafe) : error;
    });
  }

  /** One record in the requested format (`unified`, `raw`, `normalized`), with the method's success status. */
  answer(definition: UnifiedResourceDefinition, result: ItemResult<Record<string, unknown>>, query: UnifiedQuery, statusCode: number): UnifiedResponse {
    const formatted = formatRecord(result.unified, result.remote, definition.shape, {
      format: query.truto_response_format,
      ignoreRemoteData: query.truto_ignore_remote_data,
      excludeFields: query.truto_exclude_fields,
    });
    return { statusCode, ...formatted };
  }
}

const PAST_TENSE: Record<string, string> = { POST: 'created', PATCH: 'updated', DELETE: 'deleted' };

/** The same error, its message saying how to retry a write that may have happened (its flag kept). */
function withRetryHint(error: UnicrmError, noun: string, httpMethod: string, hasKey: boolean, retrySafe: boolean): UnicrmError {
  const done = `The ${noun} may have been ${PAST_TENSE[httpMethod] ?? 'changed'}`;
  const hint = retrySafe
    ? ` ${done}: sending the same request again is safe.`
    : hasKey
      ? ` ${done}: retry with the same Idempotency-Key and unicrm will look for it before creating it again.`
      : ` ${done}: check before retrying, or send an Idempotency-Key so that a retry cannot create it twice.`;
  const { statusCode: _s, error: _e, message, ...extras } = error.body;
  const sentence = /[.!?]$/.test(message) ? message : `${message}.`;
  const hinted = new UnicrmError(error.statusCode, `${sentence}${hint}`, extras, { ...error.headers });
  hinted.requestMayHaveArrived = true;
  return hinted;
}
