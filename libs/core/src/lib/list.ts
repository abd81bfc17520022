import 'reflect-metadata';
import { formatUnified } from '@unicrm/formatters';
import { type ListMethod, resourceKey, UnicrmError, type UnifiedListQuery, zodFailures } from '@unicrm/model';
import { parseUnifiedListQuery } from '@unicrm/query';
import { inject, injectable } from 'tsyringe';
import { CORE_TOKENS } from './core-tokens';
import { type CursorBinding, CursorCodec } from './cursors';
import { fingerprintOf } from './idempotency';
import { type UnifiedRequest, type UnifiedResponse, UnifiedTargets } from './unified-target';

/** Headers that carry the cursors of a `raw` list, whose body is the provider's page as it came. */
export const NEXT_CURSOR_HEADER = 'unicrm-next-cursor';
export const PREV_CURSOR_HEADER = 'unicrm-prev-cursor';

/** The value at a dot path of a record, or undefined. */
function valueAt(record: Record<string, unknown>, path: string): unknown {
  let value: unknown = record;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/**
 * The list use case, for any unified resource: `GET /unified/<model>/<resource>` (Truto's List Stages and List
 * Pipelines; truto-contract.md §5.3). Answers one page in Truto's envelope `{ result, next_cursor, prev_cursor,
 * result_count }`:
 * - `limit`: the integration's default page size unless given; past its largest page it is lowered to it
 *   (`truto_ignore_limit=true`: the default); a page is one page of the provider's.
 * - `next_cursor`: a `next_cursor` or `prev_cursor` given back exactly; unicrm's own (the provider's cursor, signed
 *   and bound to the account, resource, filters and remote_query: any other is a 400).
 * - filters: the parameters the integration declares (its meta `query_schema`); any other parameter is a 400, so a
 *   filter is never silently left out.
 * - `truto_key_by=<field>`: `result` is an object keyed by that field's value (a later record with the same value
 *   replaces an earlier one; records without it are left out of `result`, and `result_count` counts what is there).
 * - `raw`: the provider's page verbatim, the cursors in the `Unicrm-Next-Cursor` / `Unicrm-Prev-Cursor` headers.
 */
@injectable()
export class ListUseCase {
  constructor(
    private readonly targets: UnifiedTargets,
    @inject(CORE_TOKENS.CursorCodec) private readonly cursors: CursorCodec,
  ) {}

  /** @throws UnicrmError 400 (query, filters, cursor), 401, 404, 501, remote errors mirrored, 502, 504 */
  async execute(request: UnifiedRequest): Promise<UnifiedResponse> {
    const definition = this.targets.definition(request);
    const query = parseUnifiedListQuery(request.query);
    const target = await this.targets.resolve(definition, request.environmentId, query.integrated_account_id, 'list', request.requestId);
    const method: ListMethod = target.method;
    const filters = this.filters(method, target.connector.displayName, query);
    const binding: CursorBinding = {
      accountId: target.account.id,
      resource: resourceKey(definition.model, definition.resource),
      queryFingerprint: fingerprintOf({ filters, remote_query: query.remote_query }),
    };
    const from = query.next_cursor === undefined ? undefined : this.cursors.open(binding, query.next_cursor);
    const limit = query.truto_ignore_limit || query.limit === undefined ? method.pageSize.default : Math.min(query.limit, method.pageSize.max);
    const page = await this.targets.operation(target.account, request, query.remote_query, ({ options, remote }) =>
      remote((account) => method.list(account, filters, { limit, cursor: from?.cursor, direction: from?.direction ?? 'next' }, options)),
    );
    const next = page.nextCursor === null ? null : this.cursors.issue(binding, { cursor: page.nextCursor, direction: 'next' });
    const prev = page.prevCursor === null ? null : this.cursors.issue(binding, { cursor: page.prevCursor, direction: 'prev' });

    if (query.truto_response_format === 'raw') {
      const headers: Record<string, string> = {};
      if (next !== null) headers[NEXT_CURSOR_HEADER] = next;
      if (prev !== null) headers[PREV_CURSOR_HEADER] = prev;
      return { statusCode: 200, body: page.remote.body, rawText: page.remote.bodyText, headers };
    }
    const options = { format: query.truto_response_format, ignoreRemoteData: query.truto_ignore_remote_data, excludeFields: query.truto_exclude_fields };
    let result: Record<string, unknown>[] | Record<string, Record<string, unknown>>;
    let count: number;
    if (query.truto_key_by === undefined) {
      result = page.items.map((item) => formatUnified(item, definition.shape, options));
      count = result.length;
    } else {
      const keyed: Record<string, Record<string, unknown>> = {};
      for (const item of page.items) {
        const key = valueAt(item, query.truto_key_by);
        if (key === undefined || key === null || typeof key === 'object') continue;
        keyed[String(key)] = formatUnified(item, definition.shape, options);
      }
      result = keyed;
      count = Object.keys(keyed).length;
    }
    return { statusCode: 200, body: { result, next_cursor: next, prev_cursor: prev, result_count: count } };
  }

  /**
   * The filters of a list, checked against what the integration applies.
   * @throws UnicrmError 400 naming each parameter that is not a filter of this integration, or a bad value
   */
  private filters(method: ListMethod, integration: string, query: UnifiedListQuery): Record<string, unknown> {
    const parsed = method.filterSchema.safeParse(query.filters);
    if (parsed.success) return parsed.data;
    const known = Object.keys((method.filterSchema as unknown as { shape?: Record<string, unknown> }).shape ?? {});
    const failures = zodFailures(parsed.error).map((failure) =>
      failure.message === 'unknown field' && !failure.path.includes('.')
        ? {
            path: failure.path,
            message: `is not a parameter of this list: ${integration} filters by ${known.join(', ') || 'nothing'}; the others are integrated_account_id, limit, next_cursor, remote_query and truto_*`,
          }
        : failure,
    );
    throw UnicrmError.invalid('Invalid query', failures);
  }
}
