import 'reflect-metadata';
import {
  BATCH_MAX_ITEMS,
  type BatchAnswer,
  BatchBodySchema,
  type BatchItem,
  type BatchItemResult,
  type BatchRepresentation,
  type BatchWrite,
  type BatchWriteOutcome,
  type CreateMethod,
  type ItemResult,
  type Logger,
  resourceKey,
  TOKENS,
  UnicrmError,
  type UnifiedQuery,
  type UnifiedResourceDefinition,
  UNIFIED_METHOD_ROUTES,
  type UpdateMethod,
  zodFailures,
} from '@unicrm/model';
import { parseUnifiedQuery } from '@unicrm/query';
import { createHash } from 'node:crypto';
import { inject, injectable } from 'tsyringe';
import type { CoreEnvironment } from './config';
import { checkRecordId } from './get';
import { IdempotencyGuard, type IdempotentAnswer, REPLAYED_HEADER } from './idempotency';
import { type Operation, type UnifiedRequest, type UnifiedResponse, type UnifiedTarget, UnifiedTargets } from './unified-target';

/** A batch request: a unified request whose body is `{ items }`, and how much of each record to answer. */
export interface BatchRequest extends UnifiedRequest {
  /** From `Prefer: return=minimal` (RFC 7240): only each record's id. Default `representation`. */
  representation?: BatchRepresentation;
}

/** The account and connector a batch writes with. */
type Resolved = Pick<UnifiedTarget<unknown>, 'account' | 'connector' | 'connectorAccount'>;

/**
 * Writes of a batch that go to the connector's `BatchMethod` are collected here and sent in chunks of at most
 * `maxItems`: a chunk leaves when it is full, or when every item of the batch that may still join has joined or
 * settled otherwise (replayed, refused, invalid). Each item joins or leaves exactly once.
 */
export class WriteCollector {
  private readonly pending: Array<{ write: BatchWrite; resolve: (result: ItemResult) => void; reject: (error: unknown) => void }> = [];
  private open: number;

  constructor(
    expected: number,
    private readonly maxItems: number,
    private readonly send: (writes: BatchWrite[]) => Promise<BatchWriteOutcome[]>,
  ) {
    this.open = expected;
  }

  /** An item's write: resolves with its record, rejects with its own error or its chunk's. */
  join(write: BatchWrite): Promise<ItemResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ write, resolve, reject });
      this.open -= 1;
      this.flush();
    });
  }

  /** An item that will not join (it settled without writing through the batch). */
  leave(): void {
    this.open -= 1;
    this.flush();
  }

  private flush(): void {
    while (this.pending.length >= this.maxItems || (this.open === 0 && this.pending.length > 0)) {
      const chunk = this.pending.splice(0, this.maxItems);
      // Through a promise, so that even a send that throws at once settles its chunk's items.
      Promise.resolve()
        .then(() => this.send(chunk.map((entry) => entry.write)))
        .then(
          (outcomes) =>
            chunk.forEach((entry, at) => {
              const outcome = outcomes[at];
              if (!outcome) entry.reject(new UnicrmError(502, 'The provider answered fewer results than the batch had writes.'));
              else if (outcome.ok) entry.resolve(outcome.result);
              else entry.reject(outcome.error);
            }),
          (error: unknown) => chunk.forEach((entry) => entry.reject(error)),
        );
    }
  }
}

/** Runs work at most `n` at a time (the others wait, first come first served). */
type Limiter = <T>(work: () => Promise<T>) => Promise<T>;

function limiter(n: number): Limiter {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async (work) => {
    if (active >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else active += 1;
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active -= 1;
    }
  };
}

/** Statuses after which an item may still succeed when sent again: a batch answer holding one is not replayed. */
const RETRY_STATUSES = (status: number) => status >= 500 || status === 408 || status === 409 || status === 425 || status === 429;

/** True when the batch's query asks for a dry run (`dry_run=true`): validate every item, write nothing. */
export function dryRunOf(query: string | Record<string, unknown>): boolean {
  const value = typeof query === 'string' ? new URLSearchParams(query.startsWith('?') ? query.slice(1) : query).get('dry_run') : query['dry_run'];
  if (value === undefined || value === null) return false;
  const text = String(value).toLowerCase();
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw UnicrmError.validation([{ path: 'dry_run', message: 'must be true or false' }]);
}

/** The Idempotency-Key an item without its own gets from its batch's key: the same for every retry of that batch. */
export function derivedItemKey(batchKey: string, index: number): string {
  return `batch-${createHash('sha256').update(batchKey, 'utf8').digest('hex').slice(0, 40)}-${index}`;
}

/**
 * The batch use case (issue 18; docs/contract.md "Batch writes"): `POST /unified/<model>/<resource>/batch`.
 * - Up to {@link BATCH_MAX_ITEMS} creates and updates, each validated, guarded and answered as its single request
 *   would be (`status`, the record or the error), in request order; the request answers 200 whenever it is valid.
 * - Writes of the methods the connector's `BatchMethod` declares go to it in chunks of its `maxItems`; the others
 *   run through the single methods, at most `UNICRM_BATCH_CONCURRENCY` (default 4) at once per request.
 * - Every provider call of a batch is paced as `bulk` (pacing.ts): the account's ordinary calls go first.
 * - `dry_run=true` checks every item as its write would be, and writes nothing.
 * - `Idempotency-Key` covers the batch (its answer is replayed); each item's `idempotency_key`, or a key derived from
 *   the batch's ({@link derivedItemKey}), covers the item in the scope of its single request, so a retry never writes
 *   an item twice and an ambiguous create is looked for (`findCreated`) before it is written again.
 */
@injectable()
export class BatchUseCase {
  private readonly concurrency: number;

  constructor(
    private readonly targets: UnifiedTargets,
    private readonly idempotency: IdempotencyGuard,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Config) config: CoreEnvironment,
  ) {
    this.concurrency = Math.max(1, config.batchConcurrency);
  }

  /**
   * @returns 200 with a `BatchAnswer`
   * @throws UnicrmError 400 (query; a body that is not `{ items: [1..100 items] }`), 401, 404 (resource, account),
   *   409/422 (the batch's Idempotency-Key); each item's own failure is in its answer instead
   */
  async execute(request: BatchRequest): Promise<UnifiedResponse> {
    const definition = this.targets.definition(request);
    const batchKey = request.idempotencyKey === undefined ? undefined : IdempotencyGuard.parseKey(request.idempotencyKey);
    const query = parseUnifiedQuery(request.query);
    const parsed = BatchBodySchema.safeParse(request.body);
    if (!parsed.success) throw UnicrmError.invalid(`Invalid batch (1 to ${BATCH_MAX_ITEMS} items)`, zodFailures(parsed.error));
    const items = parsed.data.items;
    const representation = request.representation ?? 'representation';
    const resolved = await this.targets.account(request.environmentId, query.integrated_account_id, request.requestId);
    if (dryRunOf(request.query)) return { statusCode: 200, body: this.validateAll(definition, resolved, items) };
    const run = () => this.writeAll(definition, request, query, resolved, items, representation, batchKey);
    const answer =
      batchKey === undefined
        ? await run()
        : await this.idempotency.run(
            [request.environmentId, resolved.account.id, 'POST', `/unified/${definition.model}/${definition.resource}/batch`],
            batchKey,
            { query: { ...query, integrated_account_id: resolved.account.id }, items, ...(representation === 'minimal' && { return: 'minimal' }) },
            run,
            undefined,
            // Running it again writes nothing twice: each item is guarded by its own key. An answer with an item that
            // may still succeed (a 5xx, a 429, a 409 of a key in use) is not kept: a retry runs those items again.
            { retrySafe: true, final: (answer) => (answer.body as BatchAnswer).result.every((item) => !RETRY_STATUSES(item.status)) },
          );
    return { statusCode: answer.statusCode, body: answer.body, ...(answer.headers && { headers: answer.headers }) };
  }

  /**
   * `dry_run=true`: each item checked as its write would be (the unified schema, the integration's, the method and
   * the id), nothing sent to the provider and no key used. A valid item answers 200 with the body as the connector
   * would take it.
   */
  private validateAll(definition: UnifiedResourceDefinition, resolved: Resolved, items: BatchItem[]): BatchAnswer {
    const result = items.map((item, index): BatchItemResult => {
      try {
        const { body } = this.validated(definition, resolved, item);
        return { index, method: item.method, status: 200, result: body };
      } catch (error) {
        if (!(error instanceof UnicrmError)) throw error;
        return { index, method: item.method, status: error.statusCode, error: error.body };
      }
    });
    const succeeded = result.filter((item) => item.status < 300).length;
    return { result, succeeded, failed: result.length - succeeded };
  }

  /**
   * An item's body and method as its single request would check them.
   * @throws UnicrmError 400 (body, id), 501 (the integration lacks the method)
   */
  private validated(definition: UnifiedResourceDefinition, resolved: Resolved, item: BatchItem) {
    const method = item.method;
    const unifiedBody = this.targets.unifiedBody(method === 'create' ? definition.createBody : definition.updateBody, item.body);
    const declared = resolved.connector.resources[resourceKey(definition.model, definition.resource)]?.[method] as CreateMethod | UpdateMethod | undefined;
    if (!declared || !definition.methods.includes(method)) {
      throw new UnicrmError(501, `The ${resolved.account.integration} integration cannot ${method} ${definition.resource}.`);
    }
    const body = this.targets.integrationBody(resolved.connector, declared.bodySchema, unifiedBody);
    const id = method === 'update' ? checkRecordId(item.id) : undefined;
    return { method, unifiedBody, declared, body, id };
  }

  private async writeAll(
    definition: UnifiedResourceDefinition,
    request: BatchRequest,
    query: UnifiedQuery,
    resolved: Resolved,
    items: BatchItem[],
    representation: BatchRepresentation,
    batchKey: string | undefined,
  ): Promise<IdempotentAnswer> {
    const batch = resolved.connector.resources[resourceKey(definition.model, definition.resource)]?.batch;
    const viaBatch = (item: BatchItem) => batch !== undefined && batch.methods.includes(item.method);
    const bulk = { environmentId: request.environmentId, signal: request.signal, requestId: request.requestId, observed: request.observed, priority: 'bulk' as const };
    const collector =
      batch &&
      new WriteCollector(items.filter(viaBatch).length, Math.max(1, batch.maxItems), (writes) =>
        this.targets.operation(resolved.account, bulk, query.remote_query, ({ options, remote }) =>
          remote((account) => batch.write(account, writes, { ...options, representation })),
        ),
      );
    const results: BatchItemResult[] = new Array(items.length);
    // Lookups of ambiguous creates (findCreated) each take an operation of the account: at most `concurrency` at once,
    // so a batch retried after a crash does not fill the account's bulkhead with them.
    const lookups = limiter(this.concurrency);
    const one = async (item: BatchItem, index: number): Promise<void> => {
      const key = item.idempotency_key ?? (batchKey === undefined ? undefined : derivedItemKey(batchKey, index));
      const joins = viaBatch(item);
      let joined = false;
      const join = (write: BatchWrite) => {
        joined = true;
        return (collector as WriteCollector).join(write);
      };
      try {
        const answer = await this.writeOne(definition, request, query, resolved, item, key, representation, bulk, joins ? join : undefined, lookups);
        results[index] = {
          index,
          method: item.method,
          status: answer.statusCode,
          result: answer.body as Record<string, unknown>,
          ...(answer.headers?.[REPLAYED_HEADER] === 'true' && { replayed: true }),
        };
      } catch (error) {
        if (!(error instanceof UnicrmError)) {
          this.logger.error({ req_id: request.requestId, index, err: (error as Error)?.message }, 'batch item failed unexpectedly');
        }
        const failure = error instanceof UnicrmError ? error : new UnicrmError(500, 'The item failed unexpectedly; nothing is known of its write.');
        const retryAfter = failure.headers['retry-after'];
        results[index] = {
          index,
          method: item.method,
          status: failure.statusCode,
          error: failure.body,
          ...(failure.headers[REPLAYED_HEADER] === 'true' && { replayed: true }),
          ...(retryAfter !== undefined && /^\d+$/.test(retryAfter) && { retry_after: Number(retryAfter) }),
        };
      } finally {
        if (joins && !joined) (collector as WriteCollector).leave();
      }
    };
    // Items written through the connector's batch all start at once (they wait in the collector, holding nothing);
    // the others take turns, `concurrency` at a time.
    const numbered = items.map((item, index) => ({ item, index }));
    const batched = numbered.filter(({ item }) => viaBatch(item));
    const single = numbered.filter(({ item }) => !viaBatch(item));
    let next = 0;
    const worker = async () => {
      while (next < single.length) {
        const { item, index } = single[next++] as { item: BatchItem; index: number };
        await one(item, index);
      }
    };
    await Promise.all([...batched.map(({ item, index }) => one(item, index)), ...Array.from({ length: Math.min(this.concurrency, single.length) }, worker)]);
    const succeeded = results.filter((result) => result.status < 300).length;
    const body: BatchAnswer = { result: results, succeeded, failed: results.length - succeeded };
    return { statusCode: 200, body };
  }

  /**
   * One item, as its single request: validated (unified schema, then the integration's), guarded by its key in the
   * single request's scope, written (through `join` when the connector's batch takes it), formatted.
   * @throws UnicrmError as the single request would
   */
  private writeOne(
    definition: UnifiedResourceDefinition,
    request: BatchRequest,
    query: UnifiedQuery,
    resolved: Resolved,
    item: BatchItem,
    key: string | undefined,
    representation: BatchRepresentation,
    bulk: Parameters<UnifiedTargets['operation']>[1],
    join: ((write: BatchWrite) => Promise<ItemResult>) | undefined,
    lookups: Limiter,
  ): Promise<IdempotentAnswer> {
    const { method, unifiedBody, declared, body, id } = this.validated(definition, resolved, item);
    const target: UnifiedTarget<CreateMethod | UpdateMethod> = { ...resolved, definition, method: declared };
    const status = UNIFIED_METHOD_ROUTES[method].status;
    const base = `/unified/${definition.model}/${definition.resource}`;
    const scope = method === 'create' ? { method: 'POST', path: base } : { method: 'PATCH', path: `${base}/${id}` };
    const fingerprint = () => ({
      query: { ...query, integrated_account_id: resolved.account.id },
      body: unifiedBody,
      ...(representation === 'minimal' && { return: 'minimal' }),
    });
    const shown = (result: ItemResult): IdempotentAnswer =>
      representation === 'minimal' ? { statusCode: status, body: { id: result.unified.id } } : this.targets.answer(definition, result, query, status);
    const guarded = { environmentId: request.environmentId, idempotencyKey: key };
    const findCreated = method === 'create' ? (declared as CreateMethod).findCreated : undefined;
    /** Looks, within `operation`, for the record an earlier attempt may have created (asked without remote_query). */
    const lookIn =
      findCreated &&
      ((operation: Operation, since: Date) =>
        operation
          .remote((account) => findCreated.call(declared, account, body, since, { ...operation.options, remoteQuery: {} }))
          .then((found) => found && shown(found)));
    if (join) {
      // The write waits in the collector, outside any operation: a lookup takes an operation of its own.
      const reconcile =
        lookIn && ((since: Date) => lookups(() => this.targets.operation(resolved.account, bulk, query.remote_query, (operation) => lookIn(operation, since))));
      return this.targets.write(target, guarded, scope, fingerprint, () => join({ method, ...(id !== undefined && { id }), body }).then(shown), reconcile);
    }
    return this.targets.operation(resolved.account, bulk, query.remote_query, (operation) =>
      this.targets.write(
        target,
        guarded,
        scope,
        fingerprint,
        () =>
          operation
            .remote((account) =>
              method === 'create'
                ? (declared as CreateMethod).create(account, body, operation.options)
                : (declared as UpdateMethod).update(account, id as string, body, operation.options),
            )
            .then(shown),
        lookIn && ((since: Date) => lookIn(operation, since)),
      ),
    );
  }
}
