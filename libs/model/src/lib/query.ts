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
