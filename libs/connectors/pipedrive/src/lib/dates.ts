/** v1's `YYYY-MM-DD HH:MM:SS` (UTC, no zone: pipedrive-api.md §2.3), still seen in older payloads. */
const V1_DATE = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})$/;

/**
 * A Pipedrive date as RFC 3339 UTC with milliseconds (`2024-01-01T00:00:00.000Z`): API v2's ISO 8601 times
 * (`2024-01-01T00:00:00Z`, any offset), or v1's zone-less UTC form. Undefined for anything else (no date is invented).
 */
export function pipedriveDateToIso(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const v1 = V1_DATE.exec(value);
  const text = v1 ? `${v1[1]}T${v1[2]}Z` : value;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(text)) return undefined;
  const time = Date.parse(text);
  return Number.isNaN(time) ? undefined : new Date(time).toISOString();
}
