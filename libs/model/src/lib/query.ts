import { z } from 'zod';

/** The response formats of `truto_response_format` (create-stages.txt; DESIGN.md §2 "Formats"). */
export const ResponseFormatSchema = z.enum(['unified', 'raw', 'normalized']);
export type ResponseFormat = z.infer<typeof ResponseFormatSchema>;

/** The `truto_*` query parameters unicrm knows; any other `truto_*` key is a 400 (DESIGN.md §2). */
export const TRUTO_QUERY_PARAMETERS = [
  'truto_response_format',
  'truto_ignore_remote_data',
  'truto_exclude_fields',
  'truto_key_by',
  'truto_ignore_limit',
] as const;

/** The `truto_*` parameters that only a list takes (truto-contract.md §1.5, [ST-LIST]); elsewhere they are a 400. */
export const TRUTO_LIST_ONLY_PARAMETERS = ['truto_key_by', 'truto_ignore_limit'] as const;

/** Parameters of a list besides filters: the page (`limit`, `next_cursor`). */
export const LIST_PAGE_PARAMETERS = ['limit', 'next_cursor'] as const;

/**
 * The query parameters of a unified call, described for documents (the OpenAPI parameters and the meta
 * endpoint's `query_schema`). Parsing is `@unicrm/query`'s: it accepts more encodings than a JSON Schema
 * can say (`a[]=x`, `a[0]=x`, `a=x,y`; booleans `true|false|1|0` in any case).
 */
export const UnifiedQueryParametersSchema = z
  .object({
    integrated_account_id: z.guid().describe('The ID of the integrated account to use for the request.'),
    truto_response_format: ResponseFormatSchema.default('unified').describe(
      'unified: mapped; raw: the provider body verbatim; normalized: every field, nulls, no remote_data.',
    ),
    truto_ignore_remote_data: z
      .boolean()
      .default(false)
      .describe('Excludes remote_data from the response (true|false|1|0, any case).'),
    truto_exclude_fields: z
      .array(z.string())
      .optional()
      .describe('Fields to leave out; dot paths reach nested fields. `a[]=x`, `a[0]=x`, `a=x&a=y` and `a=x,y` are all accepted.'),
    remote_query: z
      .record(z.string(), z.unknown())
      .optional()
      .describe("Query parameters passed as-is to the provider's API (`remote_query[foo]=bar`); they win over the connector's own."),
  })
  .meta({ id: 'UnifiedQuery' });

/** The query parameters of a unified list, beyond {@link UnifiedQueryParametersSchema} (filters are the integration's). */
export const UnifiedListQueryParametersSchema = UnifiedQueryParametersSchema.extend({
  limit: z.int().min(1).optional().describe("Page size; past the integration's largest page it is lowered to it (the default is the integration's, see the meta endpoint)."),
  next_cursor: z.string().optional().describe('A next_cursor or prev_cursor of an earlier page of the same list, as it was given.'),
  truto_key_by: z.string().optional().describe('Answer result as an object keyed by this field of each record (a name or dot path).'),
  truto_ignore_limit: z.boolean().default(false).describe("Ignore limit: pages of the integration's default size."),
}).meta({ id: 'UnifiedListQuery' });

/**
 * A validated unified query (DESIGN.md §2 "Query"), as `@unicrm/query` produces it from a query string.
 * - `truto_exclude_fields`: field names or dot paths (`pipeline.name`), order kept, duplicates removed.
 * - `remote_query`: passed as-is to the provider's query string; nested objects become bracket keys.
 */
export interface UnifiedQuery {
  integrated_account_id: string;
  truto_response_format: ResponseFormat;
  truto_ignore_remote_data: boolean;
  truto_exclude_fields: string[];
  remote_query: RemoteQuery;
}

/** A validated list query: {@link UnifiedQuery} plus the page, the list flags and the filters. */
export interface UnifiedListQuery extends UnifiedQuery {
  /** Page size asked for (unset: the integration's default). */
  limit?: number;
  /** The cursor given back, as it was given. */
  next_cursor?: string;
  /** Key `result` by this field (a name or dot path). */
  truto_key_by?: string;
  truto_ignore_limit: boolean;
  /** Every other parameter, for the integration's filter schema to judge (unknown ones are a 400 there). */
  filters: Record<string, unknown>;
}

/** Provider query parameters, as qs parses `remote_query[...]` (strings, arrays and nested objects). */
export type RemoteQuery = { [key: string]: RemoteQueryValue };
export type RemoteQueryValue = string | RemoteQueryValue[] | { [key: string]: RemoteQueryValue };
