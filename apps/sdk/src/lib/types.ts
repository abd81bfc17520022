import type {
  IntegratedAccount,
  IntegratedAccountCreateBody,
  IntegratedAccountList,
  IntegratedAccountPatchBody,
  ResponseFormat,
  Stage,
  StageCreateBody,
} from '@unicrm/model';

/**
 * Query options of `crm.stages.create`: the query parameters of `POST /unified/crm/stages`
 * (create-stages.txt "Query parameters"; docs/contract.md "Query"), as Truto's TS SDK takes them.
 * Both transports encode them with qs (indices format, `truto_exclude_fields[0]=id`), which is what the API parses.
 */
export interface StageCreateQuery {
  /** The integrated account to create the stage in (a UUID). */
  integrated_account_id: string;
  /** `unified` (default): the mapped stage; `raw`: the provider's own body; `normalized`: every field, nulls, no `remote_data`. */
  truto_response_format?: ResponseFormat;
  /** Leaves `remote_data` out of a `unified` answer. */
  truto_ignore_remote_data?: boolean;
  /** Fields to leave out of a `unified` or `normalized` answer; dot paths reach nested fields (`pipeline.name`, `remote_data.revision`). */
  truto_exclude_fields?: string[];
  /** Query parameters passed as they are to the provider's create call (Pipeliner: `expand`, `validation-level`, ...). */
  remote_query?: Record<string, unknown>;
}

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

/** The provider's own answer (`truto_response_format=raw`), parsed; for Pipeliner `{ success, data: <Step> }`. */
export type RawProviderBody = Record<string, unknown>;

/**
 * What `crm.stages.create` resolves to for a given `truto_response_format`: {@link Stage} (`unified`, the default),
 * {@link NormalizedStage} or {@link RawProviderBody}. Fields named in `truto_exclude_fields` are missing at run time
 * even where the type says otherwise.
 */
export type StageCreateResult<F extends ResponseFormat | undefined = undefined> = F extends 'raw'
  ? RawProviderBody
  : F extends 'normalized'
    ? NormalizedStage
    : Stage;

/** Per-call options (the third argument of `crm.stages.create`). */
export interface StageCreateOptions {
  /**
   * An `Idempotency-Key` (1–255 printable ASCII characters): the server runs the create once per key and
   * request and answers a repeat with the first answer (for 24 h; a success, or a remote 4xx other than
   * 408/409/425/429), so a create can be retried safely. After a 502/504 that came once the request had been sent,
   * the key is marked ambiguous and the retry first looks for the stage in the provider before creating it again.
   * The same key with another request is a UnicrmError 422; while the first is still running, 409
   * (`headers['retry-after']`). Remote: sent as the `Idempotency-Key` header; embedded: handed to the core, which
   * applies the same rules (docs/reliability.md). The remote client makes one up for every create unless given
   * one (so its retries are safe); `false` sends none and turns its retries of this create off.
   */
  idempotencyKey?: string | false;
}

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
    stages: {
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
        options?: StageCreateOptions,
      ): Promise<StageCreateResult<Q['truto_response_format']>>;
    };
  };
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
  /** Releases the transport: the database and connection pools (embedded) or the HTTP connection pool (remote). Idempotent. */
  close(): Promise<void>;
}
