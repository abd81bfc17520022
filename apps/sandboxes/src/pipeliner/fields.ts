/**
 * Scalar fields of the emulated entities and their types: what `filter[...]` and `order-by` accept
 * (pipeliner-api.md §6). Relation and array fields (`pipeline`, `steps`, `documents`, ...) are not filterable.
 */

export type FieldType = 'string' | 'uuid' | 'int' | 'bool' | 'date';

export type EntityName = 'Step' | 'Pipeline';
export type EntityPath = 'Steps' | 'Pipelines';

/** Filterable / sortable fields of a Step (spec schema `Step`). */
export const STEP_FIELDS: Readonly<Record<string, FieldType>> = {
  id: 'uuid',
  is_delete_protected: 'bool',
  is_deleted: 'bool',
  modified: 'date',
  created: 'date',
  description: 'string',
  has_readonly_form: 'bool',
  has_version_increment: 'bool',
  lead_process_id: 'uuid',
  name: 'string',
  percent: 'int',
  pipeline_id: 'uuid',
  quote_process_id: 'uuid',
  sort_order: 'int',
  timeframe: 'int',
  revision: 'int',
};

/** Filterable / sortable fields of a Pipeline (spec schema `Pipeline`). */
export const PIPELINE_FIELDS: Readonly<Record<string, FieldType>> = {
  id: 'uuid',
  is_delete_protected: 'bool',
  is_deleted: 'bool',
  modified: 'date',
  created: 'date',
  color: 'int',
  name: 'string',
  revision: 'int',
};

/** The entity collections the sandbox serves, by their path name. */
export const ENTITY_BY_PATH: Readonly<Record<EntityPath, { name: EntityName; fields: Readonly<Record<string, FieldType>> }>> =
  {
    Steps: { name: 'Step', fields: STEP_FIELDS },
    Pipelines: { name: 'Pipeline', fields: PIPELINE_FIELDS },
  };

/** Narrows a path segment to an emulated entity collection. */
export function isEntityPath(value: string): value is EntityPath {
  return value === 'Steps' || value === 'Pipelines';
}
