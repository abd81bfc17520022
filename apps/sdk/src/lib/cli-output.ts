import type { UnicrmError } from '@unicrm/model';
import { retryAfterMs } from './retry';

/** Human output of one value as `key: value` lines. */
function scalar(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

function flatten(value: unknown, prefix: string, out: [string, string][], depth: number): void {
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object')) {
      out.push([prefix, value.length === 0 ? '[]' : value.map(scalar).join(', ')]);
      return;
    }
    value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out, depth + 1));
    return;
  }
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    if (entries.length === 0) {
      out.push([prefix, '{}']);
      return;
    }
    for (const [key, v] of entries) {
      const path = prefix ? `${prefix}.${key}` : key;
      // remote_data holds the provider's whole record: summarised on a terminal, whole with --output json.
      if (depth === 0 && key === 'remote_data' && typeof v === 'object' && v !== null && !Array.isArray(v)) {
        out.push([path, `{${Object.keys(v).length} fields of the provider's record; --output json shows them}`]);
        continue;
      }
      flatten(v, path, out, depth + 1);
    }
    return;
  }
  out.push([prefix, scalar(value)]);
}

/**
 * Renders an object as aligned `key: value` lines (nested keys as dot paths, top-level `remote_data` summarised).
 * @returns the lines joined by newlines
 */
export function keyValueLines(value: unknown): string {
  const pairs: [string, string][] = [];
  flatten(value, '', pairs, 0);
  const width = Math.max(0, ...pairs.map(([key]) => key.length));
  return pairs.map(([key, v]) => `${`${key}:`.padEnd(width + 2)}${v}`.trimEnd()).join('\n');
}

/** Renders rows as a small left-aligned table with a header. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/**
 * The stderr text of a UnicrmError: `error <status> <reason>: <message>`, a line per failing field, for remote
 * errors the provider's own answer, `retry after: N s` (`Retry-After` read by {@link retryAfterMs}; an HTTP-date as
 * the seconds from `now`, rounded up), and a hint where one helps.
 */
export function errorLines(error: UnicrmError, remoteMode: boolean, now: number = Date.now()): string {
  const lines = [`error ${error.statusCode} ${error.body.error}: ${error.message}`];
  for (const failure of error.body.details?.failures ?? []) lines.push(`  ${failure.path || '(body)'}: ${failure.message}`);
  const missing = error.body.truto_error_insight?.missing_required_body_fields?.value;
  if (Array.isArray(missing) && missing.length > 0 && !error.body.details) lines.push(`  missing: ${missing.join(', ')}`);
  if (error.isRemote && error.body.raw_response !== undefined && error.body.raw_response !== null) {
    const raw = error.body.raw_response;
    lines.push(`remote answer: ${typeof raw === 'string' ? raw : JSON.stringify(raw)}`);
  }
  const retryAfter = error.headers['retry-after'];
  if (retryAfter !== undefined) {
    // Read as the SDK's retries read it (RFC 9110), so that the printed wait is the one they would wait.
    const ms = retryAfterMs(retryAfter, now);
    lines.push(ms === undefined ? `retry after: ${JSON.stringify(retryAfter)} (not whole seconds or an HTTP-date; ignored)` : `retry after: ${Math.ceil(ms / 1000)} s`);
  }
  if (error.statusCode === 401 && !error.isRemote && remoteMode && /token/i.test(error.message)) {
    lines.push('hint: set UNICRM_API_TOKEN to an API token of that server');
  }
  return lines.join('\n');
}
