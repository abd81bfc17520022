import 'reflect-metadata';
import { formatRecord, type FormattedResponse } from '@unicrm/formatters';
import {
  exceedsJsonDepth,
  isJsonObject,
  type Logger,
  MAX_JSON_DEPTH,
  STAGE_SHAPE,
  type CreateResult,
  type Stage,
  type StageCreateBody,
  StageCreateBodySchema,
  type StagesResource,
  type StoredAccount,
  type UnifiedQuery,
  TOKENS,
  UnicrmError,
  zodFailures,
} from '@unicrm/model';
import { parseUnifiedQuery } from '@unicrm/query';
import { inject, injectable } from 'tsyringe';
import { IntegratedAccountService } from './accounts';
import { AccountBulkhead } from './bulkhead';
import type { CoreEnvironment } from './config';
import { IdempotencyGuard } from './idempotency';
import { ConnectorRegistry } from './registry';

/** The same error, its message saying how to retry a write that may have happened (its flag kept). */
function withRetryHint(error: UnicrmError, hasKey: boolean): UnicrmError {
  const hint = hasKey
    ? ' The stage may have been created: retry with the same Idempotency-Key and unicrm will look for it before creating it again.'
    : ' The stage may have been created: check before retrying, or send an Idempotency-Key so that a retry cannot create it twice.';
  const { statusCode: _s, error: _e, message, ...extras } = error.body;
  const sentence = /[.!?]$/.test(message) ? message : `${message}.`;
  const hinted = new UnicrmError(error.statusCode, `${sentence}${hint}`, extras, { ...error.headers });
  hinted.requestMayHaveArrived = true;
  return hinted;
}

/**
 * The deadline of one unified operation (issue 12): a controller whose signal aborts, with a 504 as its reason,
 * `timeoutMs` after it is made, or when `outer` (the caller's signal) aborts. Call `clear` when the operation ends.
 */
function operationDeadline(timeoutMs: number, outer?: AbortSignal): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(
    () =>
      controller.abort(
        new UnicrmError(
          504,
          `The operation did not finish within ${timeoutMs} ms (UNICRM_OPERATION_TIMEOUT_MS): the provider answered too slowly, or this account's earlier requests held every slot.`,
          { truto_is_remote_error: true, raw_response: null, truto_error_insight: { remote_error: { description: 'The provider did not answer in time.' } } },
        ),
      ),
    timeoutMs,
  );
  const onOuterAbort = () => controller.abort(outer?.reason);
  if (outer?.aborted) onOuterAbort();
  else outer?.addEventListener('abort', onOuterAbort, { once: true });
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuterAbort);
    },
  };
}

/** The answer to a body that is not a JSON object. */
export const NOT_A_JSON_OBJECT = 'The body must be a JSON object, e.g. {"name": "Qualified"}.';

/** A create request as both front doors hand it over. */
export interface CreateStageRequest {
  /** Environment of the caller's API token. */
  environmentId: string;
  /** The raw query string, or the same parameters as an object (SDK). */
  query: string | Record<string, unknown>;
  /** The parsed JSON body. */
  body: unknown;
  /** The `Idempotency-Key` header value, if any. */
  idempotencyKey?: string;
  signal?: AbortSignal;
  /** Id of the request (`x-request-id`): every log line written for it carries it as `req_id`. */
  requestId?: string;
}

/** A successful unified answer: status, JSON body, for the raw format the provider's exact text, headers to send. */
export interface UnifiedResponse extends FormattedResponse {
  statusCode: number;
  headers?: Record<string, string>;
}

/**
 * The `createStage` use case: `POST /unified/crm/stages` (create-stages.txt; DESIGN.md §2).
 * Validates query and body, loads the integrated account of the caller's environment, lets the
 * account's connector create the stage, and formats the answer. A remote 401 marks the account
 * `needs_reauth`; such an account answers 401 until its credentials are updated (DESIGN.md §3).
 * Every provider call of one request (the lookup of an idempotent retry, the create and its pipeline-name read)
 * runs within one deadline (`UNICRM_OPERATION_TIMEOUT_MS`, then 504) and in the account's compartment of the
 * {@link AccountBulkhead} (429 when it is full).
 */
@injectable()
export class CreateStageUseCase {
  private readonly operationTimeoutMs: number;

  constructor(
    private readonly accounts: IntegratedAccountService,
    private readonly registry: ConnectorRegistry,
    private readonly idempotency: IdempotencyGuard,
    private readonly bulkhead: AccountBulkhead,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Config) config: CoreEnvironment,
  ) {
    this.operationTimeoutMs = config.operationTimeoutMs;
  }

  /**
   * @returns 201 with the stage in the requested format
   * @throws UnicrmError 400 (query, body, integration rules), 401 (account needs re-auth), 404 (account),
   *   429 (the account's bulkhead is full), 501 (integration cannot create stages), remote errors mirrored from the
   *   provider, 502, 504 (a call's or the operation's deadline)
   */
  async execute(request: CreateStageRequest): Promise<UnifiedResponse> {
    const key = request.idempotencyKey === undefined ? undefined : IdempotencyGuard.parseKey(request.idempotencyKey);
    const query = parseUnifiedQuery(request.query);
    if (!isJsonObject(request.body)) throw UnicrmError.badRequest(NOT_A_JSON_OBJECT);
    if (exceedsJsonDepth(request.body)) throw UnicrmError.badRequest(`The body nests objects or arrays deeper than ${MAX_JSON_DEPTH} levels.`);
    const parsed = StageCreateBodySchema.safeParse(request.body);
    if (!parsed.success) throw UnicrmError.invalid('Invalid body', zodFailures(parsed.error));

    const account = this.accounts.load(request.environmentId, query.integrated_account_id, request.requestId);
    if (account.status === 'needs_reauth') {
      throw new UnicrmError(
        401,
        `Integrated account ${account.id} needs re-authentication: ${account.integration} rejected its credentials. ` +
          'Update them with PATCH /integrated-account/:id.',
      );
    }
    const connector = this.registry.get(account.integration);
    const stages = connector.stages;
    if (!stages) {
      throw new UnicrmError(501, `The ${account.integration} integration cannot create stages.`);
    }
    const deadline = operationDeadline(this.operationTimeoutMs, request.signal);
    const compartment = `${request.environmentId}:${account.id}`;
    const remote = <T>(call: () => Promise<T>) => this.bulkhead.run(compartment, call, deadline.signal);
    const create = () => remote(() => this.create(account, stages, parsed.data, query, request, deadline.signal));
    try {
      if (key === undefined) return await create();
      const findCreated = stages.findCreated;
      return await this.idempotency.run(
        [request.environmentId, account.id, 'POST', '/unified/crm/stages'],
        key,
        { query: { ...query, integrated_account_id: account.id }, body: parsed.data },
        create,
        findCreated &&
          ((since) =>
            remote(async () => {
              const found = await findCreated({ id: account.id, integration: account.integration, context: account.context }, parsed.data, since, {
                remoteQuery: {},
                signal: deadline.signal,
                requestId: request.requestId,
              });
              return found && this.answer(found, query);
            })),
      );
    } catch (error) {
      throw error instanceof UnicrmError && error.requestMayHaveArrived ? withRetryHint(error, key !== undefined) : error;
    } finally {
      deadline.clear();
    }
  }

  private answer(result: CreateResult<Stage>, query: UnifiedQuery): UnifiedResponse {
    const formatted = formatRecord(result.unified, result.remote, STAGE_SHAPE, {
      format: query.truto_response_format,
      ignoreRemoteData: query.truto_ignore_remote_data,
      excludeFields: query.truto_exclude_fields,
    });
    return { statusCode: 201, ...formatted };
  }

  private async create(
    account: StoredAccount,
    stages: StagesResource,
    body: StageCreateBody,
    query: UnifiedQuery,
    request: CreateStageRequest,
    signal: AbortSignal,
  ): Promise<UnifiedResponse> {
    try {
      const result = await stages.create(
        { id: account.id, integration: account.integration, context: account.context },
        body,
        { remoteQuery: query.remote_query, signal, requestId: request.requestId },
      );
      return this.answer(result, query);
    } catch (error) {
      if (error instanceof UnicrmError && error.isRemote && error.statusCode === 401) {
        this.accounts.markNeedsReauth(account, `${account.integration} answered 401: ${error.message}`);
        this.logger.warn({ req_id: request.requestId, integrated_account_id: account.id }, 'remote 401: account marked needs_reauth');
      }
      throw error;
    }
  }
}
