import 'reflect-metadata';
import { type ProxyRequest, type RequestObservation, UnicrmError, type ValidationFailure } from '@unicrm/model';
import { parseQueryString } from '@unicrm/query';
import { inject, injectable } from 'tsyringe';
import { IntegratedAccountService } from './accounts';
import { CORE_TOKENS } from './core-tokens';
import { type CursorBinding, CursorCodec } from './cursors';
import { checkRecordId } from './get';
import { fingerprintOf, IdempotencyGuard } from './idempotency';
import { ConnectorRegistry } from './registry';
import { type UnifiedResponse, UnifiedTargets } from './unified-target';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Parameters unicrm reads itself; every other one reaches the provider. */
const OWN_PARAMETERS = new Set(['integrated_account_id', 'limit', 'next_cursor']);

/** A request to `/proxy/<resource>[/<id>]` as the API hands it over. */
export interface ProxyCall {
  environmentId: string;
  method: ProxyRequest['method'];
  resource: string;
  id?: string;
  /** The raw query string (or the parameters, from the SDK). */
  query: string | Record<string, unknown>;
  /** The parsed JSON body, for POST and PATCH. */
  body?: unknown;
  /** The caller's request headers (lower-case names); the connector forwards the ones it allows. */
  headers?: Record<string, string | string[] | undefined>;
  idempotencyKey?: string;
  signal?: AbortSignal;
  requestId?: string;
  /** Filled in by the core as it learns them (the account's integration), for the front door's metrics. */
  observed?: RequestObservation;
}

/**
 * The proxy (truto-contract.md §5.4; DESIGN.md §6): `GET|POST|PATCH|DELETE /proxy/<resource>[/<id>]?integrated_account_id=…`
 * reaches the provider's own resource with the account's credentials, through the connector (so the outbound policy
 * and the error contract hold). A list (GET without id) answers the list envelope, paged by unicrm's cursors over the
 * provider's (`limit`, `next_cursor`); any other answer is the provider's body verbatim with its status. Query
 * parameters other than `integrated_account_id`, `limit` and `next_cursor` are forwarded; `truto_*` parameters are a
 * 400 (none applies here). Writes take an Idempotency-Key; a POST whose outcome is unknown stays ambiguous (unicrm
 * cannot look a provider record up on its own), so it is never sent twice under one key. Like the unified methods, a
 * proxy call runs within the operation deadline and the account's bulkhead compartment.
 */
@injectable()
export class ProxyUseCase {
  constructor(
    private readonly accounts: IntegratedAccountService,
    private readonly registry: ConnectorRegistry,
    private readonly idempotency: IdempotencyGuard,
    private readonly targets: UnifiedTargets,
    @inject(CORE_TOKENS.CursorCodec) private readonly cursors: CursorCodec,
  ) {}

  /** @throws UnicrmError 400, 401, 404 (account), 409/422 (Idempotency-Key), 501 (no proxy), remote errors mirrored, 502, 504 */
  async execute(call: ProxyCall): Promise<UnifiedResponse> {
    const key = call.idempotencyKey === undefined ? undefined : IdempotencyGuard.parseKey(call.idempotencyKey);
    const params = typeof call.query === 'string' ? parseQueryString(call.query) : call.query;
    const failures: ValidationFailure[] = [];
    const accountId = params.integrated_account_id;
    if (typeof accountId !== 'string' || !UUID.test(accountId)) {
      failures.push({ path: 'integrated_account_id', message: accountId === undefined ? 'is required' : 'must be a UUID' });
    }
    for (const name of Object.keys(params)) if (name.startsWith('truto_')) failures.push({ path: name, message: 'is not a parameter of the proxy' });
    const list = call.method === 'GET' && call.id === undefined;
    let limit: number | undefined;
    if (params.limit !== undefined) {
      if (!list) failures.push({ path: 'limit', message: 'applies to lists only (GET without an id)' });
      else if (typeof params.limit !== 'string' || !/^[0-9]{1,9}$/.test(params.limit) || Number(params.limit) < 1) failures.push({ path: 'limit', message: 'must be a whole number >= 1' });
      else limit = Number(params.limit);
    }
    if (params.next_cursor !== undefined && (!list || typeof params.next_cursor !== 'string')) {
      failures.push({ path: 'next_cursor', message: list ? 'must be a cursor this API gave out' : 'applies to lists only (GET without an id)' });
    }
    if (failures.length > 0) throw UnicrmError.invalid('Invalid query', failures);
    if (call.id !== undefined) checkRecordId(call.id);

    const account = await this.accounts.load(call.environmentId, (accountId as string).toLowerCase(), call.requestId);
    if (account.status === 'needs_reauth') {
      throw new UnicrmError(401, `Integrated account ${account.id} needs re-authentication: ${account.integration} rejected its credentials. Update them with PATCH /integrated-account/:id.`);
    }
    const connector = this.registry.get(account.integration);
    const proxy = connector.proxy;
    if (!proxy) throw new UnicrmError(501, `The ${account.integration} integration has no proxy.`);
    const forwarded: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(params)) if (!OWN_PARAMETERS.has(name)) forwarded[name] = value;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(call.headers ?? {})) if (typeof value === 'string') headers[name.toLowerCase()] = value;

    const binding: CursorBinding = { accountId: account.id, resource: `proxy/${call.resource}`, queryFingerprint: fingerprintOf(forwarded) };
    const from = list && typeof params.next_cursor === 'string' ? this.cursors.open(binding, params.next_cursor) : undefined;
    const request: ProxyRequest = {
      method: call.method,
      resource: call.resource,
      ...(call.id !== undefined && { id: call.id }),
      query: forwarded,
      ...(call.body !== undefined && { bodyText: JSON.stringify(call.body) }),
      headers,
      ...(list && {
        page: {
          limit: Math.min(limit ?? proxy.pageSize.default, proxy.pageSize.max),
          cursor: from?.cursor,
          direction: from?.direction ?? 'next',
        },
      }),
    };
    const send = async (): Promise<UnifiedResponse> => {
      const response = await this.targets.operation(account, call, {}, ({ options, remote }) =>
        remote((connectorAccount) => proxy.request(connectorAccount, request, { signal: options.signal, requestId: call.requestId })),
      );
      // `body` is null, as a replay of it reads: the answer is its text, byte for byte.
      if (!response.list) return { statusCode: response.status, body: null, rawText: response.bodyText, headers: response.headers };
      const { items, nextCursor, prevCursor } = response.list;
      const { 'content-type': _type, ...headersBack } = response.headers;
      return {
        statusCode: 200,
        body: {
          result: items,
          next_cursor: nextCursor === null ? null : this.cursors.issue(binding, { cursor: nextCursor, direction: 'next' }),
          prev_cursor: prevCursor === null ? null : this.cursors.issue(binding, { cursor: prevCursor, direction: 'prev' }),
          result_count: items.length,
        },
        headers: headersBack,
      };
    };
    if (call.method === 'GET' || key === undefined) return send();
    const path = `/proxy/${call.resource}${call.id === undefined ? '' : `/${call.id}`}`;
    return (await this.idempotency.run(
      [call.environmentId, account.id, call.method, path],
      key,
      { query: forwarded, body: call.body ?? null },
      send,
      call.method === 'POST'
        ? async () => {
            throw new UnicrmError(
              409,
              'The first request with this Idempotency-Key may have been carried out by the provider, and unicrm cannot look it up through the proxy: check in the provider, then send a new key.',
            );
          }
        : undefined,
      { retrySafe: call.method !== 'POST' },
    )) as UnifiedResponse;
  }
}
