/** A JSON object (what a provider body and `remote_data` are). */
export type JsonObject = Record<string, unknown>;

/** True for plain JSON objects (not arrays, not null, not class instances). */
export function isJsonObject(value: unknown): value is JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Deep-merges `remoteData` over a mapped provider body (DESIGN.md §2 "Body"): plain objects are merged
 * recursively, arrays and scalars (and `null`) from `remoteData` replace what the mapping produced;
 * remote_data wins. Neither input is modified. Keys that could reach a prototype (`__proto__`,
 * `constructor`, `prototype`) are skipped.
 * Laws (tested): `merge(b, {}) = b`, `merge({}, r) = r`, and every leaf of `r` is in the result.
 * @returns a new object
 */
export function mergeRemoteData(mapped: JsonObject, remoteData: JsonObject | undefined): JsonObject {
  if (!remoteData) return { ...mapped };
  const out: JsonObject = { ...mapped };
  for (const [key, value] of Object.entries(remoteData)) {
    if (FORBIDDEN_KEYS.has(key)) continue;
    const base = out[key];
    out[key] = isJsonObject(base) && isJsonObject(value) ? mergeRemoteData(base, value) : value;
  }
  return out;
}

/**
 * The path (`a.b`) of the first own key that could reach a prototype (`__proto__`, `constructor`, `prototype`) in a
 * JSON value, or undefined. {@link mergeRemoteData} never sends such keys, so a body holding one is refused rather
 * than sent without it. Iterative; looks at every key once.
 */
export function prototypeKeyPath(value: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [current, path] = stack.pop() as [unknown, string];
    if (typeof current !== 'object' || current === null) continue;
    if (Array.isArray(current)) {
      current.forEach((item, i) => stack.push([item, `${path}${path ? '.' : ''}${i}`]));
      continue;
    }
    for (const key of Object.keys(current)) {
      const at = `${path}${path ? '.' : ''}${key}`;
      if (FORBIDDEN_KEYS.has(key)) return at;
      stack.push([(current as Record<string, unknown>)[key], at]);
    }
  }
  return undefined;
}

/** Deepest nesting of objects and arrays a request body may have (a deeper one is a 400, not a stack overflow). */
export const MAX_JSON_DEPTH = 64;

/**
 * True when `value` nests objects or arrays deeper than `max` levels. Iterative, so any input is safe to check.
 */
export function exceedsJsonDepth(value: unknown, max: number = MAX_JSON_DEPTH): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (typeof current !== 'object' || current === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}
