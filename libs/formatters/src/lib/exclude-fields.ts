type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function without(record: JsonObject, path: readonly string[]): JsonObject {
  const [head, ...rest] = path;
  if (head === undefined || !Object.prototype.hasOwnProperty.call(record, head)) return record;
  if (rest.length === 0) {
    const { [head]: _removed, ...kept } = record;
    return kept;
  }
  const child = record[head];
  if (!isObject(child)) return record;
  const next = without(child, rest);
  return next === child ? record : { ...record, [head]: next };
}

/**
 * Removes fields from a record by name or dot path (`pipeline.name`, `remote_data.revision`)
 * (DESIGN.md §2 `truto_exclude_fields`). Paths that do not exist, or that cross an array or a
 * scalar, are ignored. The input is not modified: only the objects along a removed path are copied,
 * so a large `remote_data` is never cloned for an excluded top-level field.
 */
export function excludeFields(record: JsonObject, paths: readonly string[]): JsonObject {
  let result = record;
  for (const path of paths) result = without(result, path.split('.'));
  return result;
}
