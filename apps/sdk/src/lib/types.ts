import type {
  BatchAnswer,
  IntegratedAccount,
  IntegratedAccountCreateBody,
  IntegratedAccountList,
  IntegratedAccountPatchBody,
  LinkToken,
  LinkTokenCreateBody,
  Pipeline,
  Webhook,
  WebhookCreateBody,
  WebhookEventType,
  PipelineListFilters,
  ResponseFormat,
  Stage,
  StageCreateBody,
  StageListFilters,
  StageUpdateBody,
} from '@unicrm/model';

/**
 * Query parameters of a call on one record (`get`, `create`, `update`, `delete`): the query parameters of
 * `/unified/<model>/<resource>[/:id]` (docs/contract.md "Query"), as Truto's TS SDK takes them. Both transports encode
 * them with qs (indices format, `truto_exclude_fields[0]=id`), which is what the API parses.
 */
export interface UnifiedRecordQuery {
  /** The integrated account to call (a UUID). */
  integrated_account_id: string;
  /** `unified` (default): the mapped record; `raw`: the provider's own body; `normalized`: every field, nulls, no `remote_data`. */
  truto_response_format?: ResponseFormat;
  /** Leaves `remote_data` out of a `unified` answer. */
  truto_ignore_remote_data?: boolean;
  /** Fields to leave out of a `unified` or `normalized` answer; dot paths reach nested fields (`pipeline.name`, `remote_data.revision`). */
  truto_exclude_fields?: string[];
  /** Query parameters passed as they are to the provider's call (Pipeliner: `expand`, `validation-level`, `include-deleted`, ...). */
  remote_query?: Record<string, unknown>;
}

/** Query options of `crm.stages.create` (and of `get`, `update`, `delete`): {@link UnifiedRecordQuery}. */
export type StageCreateQuery = UnifiedRecordQuery;

/**
 * Query parameters of a list (`GET /unified/<model>/<resource>`) besides its filters: {@link UnifiedRecordQuery},
 * the page and the list-only flags (docs/contract.md "Lists").
 */
export interface ListQuery extends UnifiedRecordQuery {
  /** Records per page (an integer >= 1). Unset: the integration's default page (Pipeliner 30); above its largest (Pipeliner 100) it is lowered to it. */
  limit?: number;
  /**
   * Start from this cursor: a `next_cursor` (or `prev_cursor`) of an earlier page of the same list, as it was given
   * (opaque; one issued for another account, resource, filters or `remote_query` is a 400). The iterator passes them
   * itself; set this to resume a walk.
   */
  next_cursor?: string;
  /** Answer each page's `result` as an object keyed by this field of each record (a name or dot path: `id`, `pipeline.id`). */
  truto_key_by?: string;
  /** Ignore `limit`: pages of the integration's default size. */
  truto_ignore_limit?: boolean;
}

/**
 * Query of `crm.stages.list`: {@link ListQuery} and the stage filters (`GET /unified/crm/stages`), each sent as a
 * query parameter: `pipeline: { id }` (`pipeline[id]=...`), `name` (exact), `status` (`active`, the default, or
 * `inactive`: Pipeliner's deleted steps), `created_at` / `updated_at` (an RFC 3339 date-time, or bounds
 * `{ gte, lte }`, `{ gt }`, ...). A filter the account's integration cannot apply is a 400, never ignored.
 */
export type StageListQuery = ListQuery & StageListFilters;

/** Query of `crm.pipelines.list`: {@link ListQuery} and the pipeline filter `name` (exact). */
export type PipelineListQuery = ListQuery & PipelineListFilters;

/** A stage in the `normalized` format: every Stage field in schema order, `null` where the provider has no value, no `remote_data`. */
export type NormalizedStage = {
  id: string | null;
  name: string | null;
  position: number | null;
  status: 'active' | 'inactive' | null;
  pipeline: { id: string | null; name: string | null } | null;
  created_at: string | null;
  updated_at: string | null;
};

/** A pipeline in the `normalized` format: every Pipeline field in schema order, `null` where missing, no `remote_data` (`stages` as in `unified`). */
export type NormalizedPipeline = {
  id: string | null;
  name: string | null;
  entity: Pipeline['entity'] | null;
  stages: NonNullable<Pipeline['stages']> | null;
  created_at: string | null;
  updated_at: string | null;
};

/** The provider's own answer (`truto_response_format=raw`), parsed; for Pipeliner `{ success, data: <Step> }` (a list: `{ success, data: [...], page_info }`). */
export type RawProviderBody = Record<string, unknown>;

/**
 * What a call on one record resolves to for a given `truto_response_format` `F`: `U` (`unified`, the default), `N`
 * (`normalized`) or {@link RawProviderBody} (`raw`). Fields named in `truto_exclude_fields` are missing at run time
 * even where the type says otherwise.
 */
export type RecordResult<F, U, N> = F extends 'raw' ? RawProviderBody : F extends 'normalized' ? N : U;

/** A stage in the format `F` asks for: {@link Stage}, {@link NormalizedStage} or {@link RawProviderBody}. */
export type StageResult<F extends ResponseFormat | undefined = undefined> = RecordResult<F, Stage, NormalizedStage>;

/** What `crm.stages.create` resolves to for a given `truto_response_format` (see {@link StageResult}). */
export type StageCreateResult<F extends ResponseFormat | undefined = undefined> = StageResult<F>;

/** A pipeline in the format `F` asks for: {@link Pipeline}, {@link NormalizedPipeline} or {@link RawProviderBody}. */
export type PipelineResult<F extends ResponseFormat | undefined = undefined> = RecordResult<F, Pipeline, NormalizedPipeline>;

/**
 * One page of a unified list, Truto's list envelope (docs/contract.md "Lists"): `result` (the records, or with
 * `truto_key_by` an object of them keyed by that field), `next_cursor` (null on the last page), `prev_cursor` (null
 * on the first), `result_count` (how many records are in `result`).
 */
export interface ListPage<R, Result extends R[] | Record<string, R> = R[] | Record<string, R>> {
  result: Result;
  next_cursor: string | null;
  prev_cursor: string | null;
  result_count: number;
}

/** `result` of a page: an array, or with `truto_key_by` (`K` a string) an object keyed by that field. */
export type ListResultOf<K, R> = unknown extends K
  ? R[]
  : [K] extends [undefined]
    ? R[]
    : [K] extends [string]
      ? Record<string, R>
      : R[] | Record<string, R>;

/**
 * A page of a list in the format `F` asks for: a {@link ListPage} of `U` (or `N` for `normalized`), keyed when `K`
 * (`truto_key_by`) is a string; in the `raw` format the provider's own page, as it came ({@link RawProviderBody};
 * its cursors are on `responseMeta(page)`).
 */
export type ListPageOf<F, K, U, N> = F extends 'raw' ? RawProviderBody : ListPage<RecordResult<F, U, N>, ListResultOf<K, RecordResult<F, U, N>>>;

/** A record of a list in the format `F` asks for; in the `raw` format, a whole provider page (see {@link PagedList}). */
export type ListItemOf<F, U, N> = F extends 'raw' ? RawProviderBody : RecordResult<F, U, N>;

/**
 * What `list` returns: nothing is fetched until it is iterated. Iterating it (`for await (const page of list)`)
 * yields the pages one by one from the first (or from the query's `next_cursor`), each fetched when the loop asks
 * for it, following `next_cursor` until it is null; every iteration starts a new walk. Each page is the API's
 * answer: the list envelope, or in the `raw` format the provider's own page (the cursors are then read from the
 * API's `Unicrm-Next-Cursor` / `Unicrm-Prev-Cursor` headers, and `responseMeta(page)` holds them).
 *
 * Errors: a failed page rejects the iteration with the UnicrmError of that call (the pages before it were
 * yielded); an API that answers the same `next_cursor` twice in a row rejects with a UnicrmError 502 instead of
 * looping forever.
 */
export interface PagedList<Page, Item> extends AsyncIterable<Page> {
  /** Fetches the first page only (one call). */
  first(): Promise<Page>;
  /**
   * Fetches every page and answers their records in order, as one array (with `truto_key_by`: each page's values).
   * In the `raw` format the SDK cannot know where a provider keeps its records: it answers the pages themselves.
   */
  all(): Promise<Item[]>;
  /** The records one by one, across pages, each page fetched when needed (`raw`: the pages, see {@link all}). */
  items(): AsyncIterableIterator<Item>;
}

/** The {@link PagedList} that `crm.stages.list(query)` returns for a query `Q`. */
export type StageList<Q extends StageListQuery> = PagedList<
  ListPageOf<Q['truto_response_format'], Q['truto_key_by'], Stage, NormalizedStage>,
  ListItemOf<Q['truto_response_format'], Stage, NormalizedStage>
>;

/** The {@link PagedList} that `crm.pipelines.list(query)` returns for a query `Q`. */
export type PipelineList<Q extends PipelineListQuery> = PagedList<
  ListPageOf<Q['truto_response_format'], Q['truto_key_by'], Pipeline, NormalizedPipeline>,
  ListItemOf<Q['truto_response_format'], Pipeline, NormalizedPipeline>
>;

/** Per-call options of the writes: `create`, `update`, `delete` (their last argument). */
export interface WriteOptions {
  /**
   * An `Idempotency-Key` (1–255 printable ASCII characters): the server runs the write once per key and
   * request and answers a repeat with the first answer (for 24 h; a success, or a remote 4xx other than
   * 408/409/425/429), so a write can be retried safely. For a create, after a 502/504 that came once the request had
   * been sent, the key is marked ambiguous and the retry first looks for the stage in the provider before creating it
   * again (an update or a delete is simply sent again). The same key with another request is a UnicrmError 422; while
   * the first is still running, 409 (`headers['retry-after']`). Remote: sent as the `Idempotency-Key` header;
   * embedded: handed to the core, which applies the same rules (docs/reliability.md). The remote client makes one up
   * for every write unless given one (so its retries are safe); `false` sends none and turns its retries of this
   * write off.
   */
  idempotencyKey?: string | false;
}

/** Per-call options of `crm.stages.create` (see {@link WriteOptions}). */
export type StageCreateOptions = WriteOptions;

/**
 * Query of a batch write (`POST /unified/<model>/<resource>/batch`): {@link UnifiedRecordQuery} (it applies to every
 * item: `truto_response_format`, `truto_ignore_remote_data`, `truto_exclude_fields`, `remote_query`) and `dry_run`.
 */
export interface BatchQuery extends UnifiedRecordQuery {
  /**
   * `true`: check every item as its write would be checked (the unified schema, the integration's schema, the
   * method and the id) and write nothing. A valid item answers 200 with its body as the integration would take it;
   * no key is used, so a later real run is not affected.
   */
  dry_run?: boolean;
}

/** Per-call options of a batch write: the batch's `Idempotency-Key` ({@link WriteOptions}) and `minimal`. */
export interface BatchOptions extends WriteOptions {
  /**
   * `true` sends `Prefer: return=minimal` (RFC 7240): each written item's `result` is `{ id }` only, and the answer
   * carries `Preference-Applied: return=minimal` (`responseMeta(answer)?.preferenceApplied`). On Pipeliner this spares
   * the read-back of each created Step: 100 creates are one provider call. Default `false`: each `result` is the
   * record as the single request would answer it.
   */
  minimal?: boolean;
}

/**
 * One item of `crm.stages.batch`: a create (no `id`) or an update (the stage's `id`), its unified body as the single
 * `create` or `update` takes it, and optionally its own Idempotency-Key (`idempotency_key`, 1-255 printable ASCII):
 * the same key space as the single create's or update's `Idempotency-Key` (scope: the account and
 * `POST /unified/crm/stages`, or `PATCH /unified/crm/stages/<id>`), so an item whose key was used answers the first
 * answer (`replayed: true`) and writes nothing again.
 */
export type StageBatchItem =
  | { method: 'create'; body: StageCreateBody; idempotency_key?: string; id?: undefined }
  | { method: 'update'; id: string; body: StageUpdateBody; idempotency_key?: string };

/** The HTTP methods of the proxy. */
export type ProxyMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/**
 * Query of a proxy call: `integrated_account_id` (required), for a list `limit` and `next_cursor` (unicrm's own
 * cursor over the provider's paging); every other parameter is passed to the provider as it is (qs-encoded:
 * `{ filter: { name: 'x' } }` is `filter[name]=x`). `truto_*` parameters are a 400 (none applies to the proxy).
 */
export interface ProxyQuery {
  integrated_account_id: string;
  /** A list's page size (integer >= 1; above the provider's largest page, lowered to it). */
  limit?: number;
  /** A list's `next_cursor` (or `prev_cursor`) of an earlier page of the same list. */
  next_cursor?: string;
  [parameter: string]: unknown;
}

/** A call to the provider's own API through unicrm (`/proxy/<resource>[/<id>]`), for `unicrm.proxy`. */
export interface ProxyRequest {
  /** `GET` (a list without `id`, one record with it), `POST` (a create, or with `id` an action such as `batch-modify`), `PATCH`, `DELETE`. */
  method: ProxyMethod;
  /** The provider's resource as it names it (Pipeliner: an entity collection, `Steps`, `Pipelines`, `Accounts`). */
  resource: string;
  /** The record's id (or, with `POST`, an action name). */
  id?: string;
  query: ProxyQuery;
  /** The JSON body (POST, PATCH), sent as it is. */
  body?: unknown;
  /** As for the unified writes ({@link WriteOptions.idempotencyKey}); the remote client makes one up for POST, PATCH and DELETE unless given one or `false`. */
  idempotencyKey?: string | false;
}

/** What a proxy list (`GET` without `id`) answers: the list envelope around the provider's records, as it sent them. */
export type ProxyListPage = ListPage<Record<string, unknown>, Record<string, unknown>[]>;

/** Body of `accounts.update` (`PATCH /integrated-account/:id`): a new `tenant_id` and/or a shallow merge into `context`; `validate: false` skips the credential check. */
export type IntegratedAccountUpdateBody = IntegratedAccountPatchBody;

/** Filters and paging of `accounts.list` (`GET /integrated-account`). */
export interface IntegratedAccountListQuery {
  tenant_id?: string;
  status?: IntegratedAccount['status'];
  /** Integration name, e.g. `pipeliner`. */
  integration?: string;
  /** Page size, 1–500 (default 100). */
  limit?: number;
  /** The `next_cursor` of the previous page. */
  next_cursor?: string;
}

/**
 * The one SDK interface, whatever the transport: {@link createUnicrm} runs the core in your process,
 * {@link createUnicrmClient} calls a unicrm server over HTTP. Both resolve to the same bodies and reject with
 * the same `UnicrmError` (its `body` is the error body the HTTP API sends; `statusCode`, `headers`).
 */
export interface Unicrm {
  crm: {
    /**
     * Pipeline stages (`/unified/crm/stages`; Pipeliner: Steps). Every method takes the query with
     * `integrated_account_id` and the `truto_*` flags; the answer's type follows `truto_response_format`.
     */
    stages: {
      /**
       * Lists stages (`GET /unified/crm/stages`), page by page: nothing is fetched until the result is iterated.
       * Pipeliner: ordered by id, so a walk never repeats or skips a stage that stays while others move or go.
       * @param query {@link StageListQuery}: `integrated_account_id` (required), `limit`, `next_cursor`, the filters
       *   `pipeline: { id }`, `name`, `status`, `created_at`, `updated_at`, and the `truto_*` flags
       * @returns a {@link PagedList}: `for await (const page of list)`, `first()`, `all()`, `items()`
       * @throws (while iterating) UnicrmError 400 (a bad query, a filter the integration cannot apply, a cursor of
       *   another list), 401, 404 (account), 501 (the integration cannot list stages), remote errors mirrored, 502, 504
       */
      list<Q extends StageListQuery>(query: Q): StageList<Q>;
      /**
       * Reads one stage (`GET /unified/crm/stages/:id`). Pipeliner: a deleted step is a 404 unless
       * `remote_query: { 'include-deleted': 'true' }`.
       * @param id the stage's id
       * @param query {@link UnifiedRecordQuery}
       * @returns the stage in the requested format ({@link StageResult})
       * @throws UnicrmError 400 (query, an empty id), 401, 404 (account; the provider's 404 for an unknown stage,
       *   `isRemote: true`), remote errors mirrored, 502, 504
       */
      get<Q extends UnifiedRecordQuery>(id: string, query: Q): Promise<StageResult<Q['truto_response_format']>>;
      /**
       * Creates a stage, exactly as `POST /unified/crm/stages` does (Pipeliner: a Step).
       * @param query the query parameters ({@link StageCreateQuery}); `integrated_account_id` is required
       * @param body `{ name, pipeline?: { id }, position?, status?, remote_data? }` (Pipeliner requires `name`)
       * @returns the stage in the requested format (see {@link StageCreateResult}). `responseMeta(result)` (exported
       *   by the SDK) tells whether the answer was replayed for an `Idempotency-Key` an earlier request used
       *   (`replayed: true`: that request created the stage, this one nothing), on either transport.
       * @throws UnicrmError 400 (query or body, `body.details.failures` names each field), 401 (token, or the account
       *   needs re-authentication), 404 (account), the provider's status for remote errors (`isRemote`, `body.raw_response`),
       *   502 (provider unreachable, or for the remote client: the server), 504 (no answer in time)
       */
      create<Q extends StageCreateQuery>(
        query: Q,
        body: StageCreateBody,
        options?: WriteOptions,
      ): Promise<StageCreateResult<Q['truto_response_format']>>;
      /**
       * Changes a stage (`PATCH /unified/crm/stages/:id`): rename (`name`), reorder (`position`), move to another
       * pipeline (`pipeline: { id }`), provider fields (`remote_data`). Pipeliner: a new position or pipeline is
       * written with `validation-level=8`; `status: 'active'` restores a deleted step, `'inactive'` is a 400 (use
       * `delete`). A field the integration cannot change is a 400 saying so, never dropped.
       * @param id the stage's id
       * @param query {@link UnifiedRecordQuery}
       * @param body {@link StageUpdateBody}: every field optional
       * @param options `idempotencyKey` ({@link WriteOptions}); the remote client sends one of its own unless given one
       * @returns the stage as the provider now has it, in the requested format; `responseMeta(result)` says
       *   `statusCode` (200), `replayed`, `idempotencyKey` and `attempts`
       * @throws UnicrmError 400 (query or body), 401, 404 (account; the provider's 404 for an unknown or deleted
       *   stage), 409/422 (Idempotency-Key), remote errors mirrored (a pipeline that does not exist: 422), 502, 504
       */
      update<Q extends UnifiedRecordQuery>(
        id: string,
        query: Q,
        body: StageUpdateBody,
        options?: WriteOptions,
      ): Promise<StageResult<Q['truto_response_format']>>;
      /**
       * Deletes a stage (`DELETE /unified/crm/stages/:id`). Pipeliner deletes softly: the answer is the deleted
       * stage as Pipeliner now shows it (`status: 'inactive'`; `raw`: Pipeliner's answer to the delete); its documented
       * API cannot restore it. A second delete of the same stage is the provider's 404.
       * @param id the stage's id
       * @param query {@link UnifiedRecordQuery}
       * @param options `idempotencyKey` ({@link WriteOptions}); with one, a repeat answers the first answer
       * @returns the deleted stage in the requested format; `responseMeta(result)` as for `update`
       * @throws UnicrmError 400, 401, 404 (account; the provider's 404 for an unknown or already deleted stage), 409/422
       *   (Idempotency-Key), remote errors mirrored, 502, 504
       */
      delete<Q extends UnifiedRecordQuery>(id: string, query: Q, options?: WriteOptions): Promise<StageResult<Q['truto_response_format']>>;
      /**
       * Creates and updates up to 100 stages in one request (`POST /unified/crm/stages/batch`; embedded:
       * `core.unified.batch`). Each item is validated, guarded by its key and answered as its single request would be;
       * the call resolves whenever the request itself was valid, with one answer per item in request order:
       * `{ result: [{ index, method, status, result?, error?, replayed? }], succeeded, failed }` ({@link BatchAnswer}).
       * `status` is what the single request would have answered (201 created, 200 updated or checked by `dry_run`,
       * else the error's status, with `error` the error body); `result` is the stage in the query's format, or
       * `{ id }` only with `options.minimal`. Pipeliner writes the creates with `batch-modify` (up to 100 Steps a
       * call; with `minimal` nothing is read back) and the updates with single calls; every provider call of a batch
       * is paced per account behind the account's ordinary calls (docs/contract.md "Batch writes").
       *
       * Idempotency: `options.idempotencyKey` covers the batch: sent again with the same key and items, the first
       * answer is replayed (`responseMeta(answer)?.replayed`), unless an item of it ended retryable (5xx, 408, 409,
       * 425, 429): then the batch runs again and each item is guarded by its own key. An item's `idempotency_key` (or,
       * without one, a key derived from the batch's key and its position) guards the item, so a retried batch never
       * writes an item twice. The remote client sends a key of its own unless given one or `false`, and retries the
       * whole batch on 409, 429 (after `Retry-After`), 502, 503, 504 and network failures (its `retry` option); an
       * own retryable failure is in its answer, for the caller to send again with the same `idempotency_key`.
       * @param query {@link BatchQuery}: `integrated_account_id` (required), the `truto_*` flags for the results, `dry_run`
       * @param items 1 to 100 {@link StageBatchItem}s
       * @param options {@link BatchOptions}: `idempotencyKey`, `minimal`
       * @returns the {@link BatchAnswer}; `responseMeta(answer)` has `statusCode` (200), `replayed`, `idempotencyKey`,
       *   `attempts` and `preferenceApplied`
       * @throws UnicrmError 400 (query; a body that is not 1 to 100 well-formed items: `body.details.failures` names
       *   each, e.g. `items.3.id`), 401, 404 (account), 409 (the batch's key still running), 422 (the batch's key used
       *   with other items), 429 (unicrm's own rate limit), 502, 504 (remote: no answer in time; some items may have
       *   been written: send the batch again with the same key)
       */
      batch(query: BatchQuery, items: StageBatchItem[], options?: BatchOptions): Promise<BatchAnswer>;
    };
    /**
     * Sales pipelines with their stages (`/unified/crm/pipelines`; Pipeliner: Pipelines), read-only: where a stage's
     * `pipeline.id` comes from.
     */
    pipelines: {
      /**
       * Lists pipelines (`GET /unified/crm/pipelines`), each with `stages[]` (`id`, `name`, `status`, `pipeline.id`)
       * in their order; nothing is fetched until the result is iterated.
       * @param query {@link PipelineListQuery}: `integrated_account_id` (required), `limit`, `next_cursor`, `name`, `truto_*`
       * @returns a {@link PagedList}
       * @throws (while iterating) as `crm.stages.list`
       */
      list<Q extends PipelineListQuery>(query: Q): PipelineList<Q>;
      /**
       * Reads one pipeline with its stages (`GET /unified/crm/pipelines/:id`).
       * @returns the pipeline in the requested format ({@link PipelineResult})
       * @throws UnicrmError 400, 401, 404 (account; the provider's 404 for an unknown pipeline), remote errors, 502, 504
       */
      get<Q extends UnifiedRecordQuery>(id: string, query: Q): Promise<PipelineResult<Q['truto_response_format']>>;
    };
  };
  /**
   * Calls the provider's own API with the account's credentials (`/proxy/<resource>[/<id>]`): for what the unified
   * model does not cover. A list (`GET` without `id`) answers the list envelope, paged by unicrm's cursors over the
   * provider's (`query.limit`, `query.next_cursor`); anything else answers the provider's body as it came (parsed
   * JSON; `null` when it sent no body), with the provider's success status on `responseMeta(answer)?.statusCode`.
   * Errors follow the unified contract (remote errors mirrored with `isRemote`, `body.raw_response`).
   * @param request {@link ProxyRequest}: `{ method, resource, id?, query: { integrated_account_id, ... }, body?, idempotencyKey? }`
   * @returns for a list, a {@link ProxyListPage}; else the provider's answer (type it with `T`)
   * @throws UnicrmError 400 (query, a resource name the provider cannot have), 401, 404 (account), 409/422
   *   (Idempotency-Key), 501 (the integration has no proxy), the provider's errors mirrored, 502 (also: an answer
   *   that is not JSON), 504
   */
  proxy(request: ProxyRequest & { method: 'GET'; id?: undefined }): Promise<ProxyListPage>;
  proxy<T = unknown>(request: ProxyRequest): Promise<T>;
  accounts: {
    /**
     * Connects an integrated account (`POST /integrated-account`). Unless `validate: false`, the credentials are
     * checked first with one cheap provider call. Credentials are sealed at rest and never returned.
     * @param body `{ integration: 'pipeliner', tenant_id, context: { service_url, space_id, username, password }, validate? }`
     * @returns the account, secrets stripped from `context`
     * @throws UnicrmError 400 naming each bad field, or an unknown integration; 422 when the provider rejects the
     *   credentials (nothing is stored); 502/504 when it cannot be reached
     */
    create(body: IntegratedAccountCreateBody): Promise<IntegratedAccount>;
    /**
     * Lists integrated accounts, oldest first (`GET /integrated-account`).
     * @returns one page: `{ result, next_cursor, limit }`; pass `next_cursor` back for the next page (`null` = last page)
     * @throws UnicrmError 400 for a bad filter, limit or cursor
     */
    list(query?: IntegratedAccountListQuery): Promise<IntegratedAccountList>;
    /**
     * Reads an integrated account (`GET /integrated-account/:id`).
     * @throws UnicrmError 404 when there is no such account
     */
    get(id: string): Promise<IntegratedAccount>;
    /**
     * Changes `tenant_id` and/or merges `context` shallowly (`PATCH /integrated-account/:id`). Changed credentials are
     * checked with the provider first (unless `validate: false`); new credentials bring a `needs_reauth` account back to `active`.
     * @throws UnicrmError 400, 404, 422 (credentials rejected: nothing changes)
     */
    update(id: string, body: IntegratedAccountUpdateBody): Promise<IntegratedAccount>;
    /**
     * Removes an integrated account (`DELETE /integrated-account/:id`).
     * @returns `{ id }` of the removed account
     * @throws UnicrmError 404
     */
    delete(id: string): Promise<{ id: string }>;
  };
  /** Link tokens (`POST /link-token`; docs/connect.md): a short-lived, single-use page for an end customer to connect their CRM. */
  linkTokens: {
    /**
     * Makes a link token: `{ tenant_id }` for a new connection (Truto's `linkToken.createForNewIntegration`) or
     * `{ integrated_account_id }` to reconnect an account (`createForExistingIntegratedAccount`); optional `integration`
     * (only that one is offered) and `redirect_uri` (must be on the environment's allow-list).
     * @returns `{ link_token, expires_at, url }`: open `url` in a browser (the embedded client builds it from
     *   `UNICRM_PUBLIC_URL`, else `http://127.0.0.1:<PORT or 8000>`)
     * @throws UnicrmError 400 (bad body, unknown integration, a redirect_uri not allowed), 404 (unknown account)
     */
    create(body: LinkTokenCreateBody): Promise<LinkToken>;
  };
  /** Webhooks (`/webhook`; docs/connect.md): account events POSTed to your URL, signed with `X-Truto-Signature`. */
  webhooks: {
    /**
     * Subscribes a URL (`POST /webhook`). @returns the webhook with its `secret`, shown only here
     * @throws UnicrmError 400 (a URL the outbound policy refuses: https, or http on loopback; an `environment_id` not the token's)
     */
    create(body: WebhookCreateBody): Promise<Webhook>;
    /** One page, oldest first (`GET /webhook`). */
    list(query?: { limit?: number; next_cursor?: string }): Promise<WebhookList>;
    /** @throws UnicrmError 404 */
    get(id: string): Promise<Webhook>;
    /** Changes `target_url`, `event_types`, `is_active` (`PATCH /webhook/:id`). @throws UnicrmError 400, 404 */
    update(id: string, body: { target_url?: string; event_types?: WebhookEventType[]; is_active?: boolean }): Promise<Webhook>;
    /** @returns `{ id }` @throws UnicrmError 404 */
    delete(id: string): Promise<{ id: string }>;
    /** Queues a `test` event for the webhook (`POST /webhook/test`). @returns the event's id */
    test(id: string): Promise<{ id: string; event: 'test'; webhook_id: string }>;
    /** The webhook's deliveries, newest first, each with its attempts (`GET /webhook/:id/deliveries`). */
    deliveries(id: string, query?: { limit?: number; next_cursor?: string }): Promise<WebhookDeliveryList>;
  };
  /** Releases the transport: the database and connection pools (embedded) or the HTTP connection pool (remote). Idempotent. */
  close(): Promise<void>;
}

/** One page of `webhooks.list`. */
export interface WebhookList {
  result: Webhook[];
  next_cursor: string | null;
  limit: number;
}

/** One page of `webhooks.deliveries`: each event sent to the webhook, its status and attempts. */
export interface WebhookDeliveryList {
  result: Array<{
    id: string;
    event: string;
    webhook_id: string;
    status: 'pending' | 'delivered' | 'failed';
    created_at: string;
    next_attempt_at: string | null;
    delivered_at: string | null;
    attempts: Array<{ attempt: number; started_at: string; status_code: number | null; error: string | null; duration_ms: number }>;
  }>;
  next_cursor: string | null;
  limit: number;
}
