import { z } from 'zod';

/** The response formats of `truto_response_format` (create-stages.txt; DESIGN.md §2 "Formats"). */
export const ResponseFormatSchema = z.enum(['unified', 'raw', 'normalized']);
export type ResponseFormat = z.infer<typeof ResponseFormatSchema>;

/** The `truto_*` query parameters unicrm knows; any other `truto_*` key is a 400 (DESIGN.md §2). */
export const TRUTO_QUERY_PARAMETERS = [
  'truto_response_format',
  'truto_ignore_remote_data',
  'truto_exclude_fields',
] as const;

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

/** Provider query parameters, as qs parses `remote_query[...]` (strings, arrays and nested objects). */
export type RemoteQuery = { [key: string]: RemoteQueryValue };
export type RemoteQueryValue = string | RemoteQueryValue[] | { [key: string]: RemoteQueryValue };
