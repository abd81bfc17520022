import qs from 'qs';

/**
 * Encodes a query object the way Truto's TS SDK does and unicrm's API parses it: `qs.stringify` with its defaults,
 * i.e. the indices array format with encoded brackets (`truto_exclude_fields%5B0%5D=id`) and nested objects as
 * bracket keys (`remote_query%5Bexpand%5D=pipeline`). `undefined` values are left out; booleans become `true`/`false`.
 * @returns the query string, without the leading `?` (empty for an empty object)
 */
export function encodeQuery(query: object): string {
  return qs.stringify(query, { arrayFormat: 'indices' });
}
