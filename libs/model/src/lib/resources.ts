import { z } from 'zod';
import { PIPELINE_SHAPE, PipelineListFiltersSchema, PipelineSchema } from './pipeline';
import {
  type FieldShape,
  STAGE_SHAPE,
  StageCreateBodySchema,
  StageListFiltersSchema,
  StageSchema,
  StageUpdateBodySchema,
} from './stage';

/** The methods of a unified resource (truto-contract.md §5; DESIGN.md §6), in the order documents list them. */
export const UNIFIED_METHODS = ['list', 'get', 'create', 'update', 'delete'] as const;
export type UnifiedMethod = (typeof UNIFIED_METHODS)[number];

/** The HTTP method and whether the path names one record, for each unified method. */
export const UNIFIED_METHOD_ROUTES: Readonly<Record<UnifiedMethod, { http: 'GET' | 'POST' | 'PATCH' | 'DELETE'; withId: boolean; status: number }>> = {
  list: { http: 'GET', withId: false, status: 200 },
  get: { http: 'GET', withId: true, status: 200 },
  create: { http: 'POST', withId: false, status: 201 },
  update: { http: 'PATCH', withId: true, status: 200 },
  delete: { http: 'DELETE', withId: true, status: 200 },
};

/**
 * A unified resource: what `/unified/<model>/<resource>` serves whatever the integration (DESIGN.md §6). The
 * record schema fixes the answer's shape; the body and filter schemas fix the types a caller may send, which each
 * integration narrows in its connector (required fields, accepted values, supported filters). Core serves every
 * resource it is given under `TOKENS.UnifiedResource`; adding one adds no route.
 */
export interface UnifiedResourceDefinition {
  /** The unified model, e.g. `crm`. */
  readonly model: string;
  /** The resource, plural as in the path, e.g. `stages`. */
  readonly resource: string;
  /** One record in words, for messages: `stage`. */
  readonly noun: string;
  /** The unified record (the `unified` answer, the meta `schema`). */
  readonly schema: z.ZodType;
  /** The `normalized` format's fields, in order. */
  readonly shape: FieldShape;
  /** The unified create body (strict: unknown fields are a 400). */
  readonly createBody?: z.ZodType<Record<string, unknown>>;
  /** The unified update body. */
  readonly updateBody?: z.ZodType<Record<string, unknown>>;
  /** Every list filter the unified model defines, as query parameters (strict). */
  readonly listFilters?: z.ZodType<Record<string, unknown>>;
  /** Name of the OpenAPI component of the record (`Stage`). */
  readonly component: string;
  /** The methods the unified model defines for it (what the OpenAPI document describes); each integration serves a subset. */
  readonly methods: readonly UnifiedMethod[];
}

/** `crm/stages`: pipeline stages (create-stages.txt; truto-stages-pipelines.md §11). */
export const STAGES_RESOURCE: UnifiedResourceDefinition = {
  model: 'crm',
  resource: 'stages',
  noun: 'stage',
  schema: StageSchema,
  shape: STAGE_SHAPE,
  createBody: StageCreateBodySchema,
  updateBody: StageUpdateBodySchema,
  listFilters: StageListFiltersSchema,
  component: 'Stage',
  methods: ['list', 'get', 'create', 'update', 'delete'],
};

/** `crm/pipelines`: sales pipelines with their stages (truto-stages-pipelines.md §11, Pipelines object). */
export const PIPELINES_RESOURCE: UnifiedResourceDefinition = {
  model: 'crm',
  resource: 'pipelines',
  noun: 'pipeline',
  schema: PipelineSchema,
  shape: PIPELINE_SHAPE,
  listFilters: PipelineListFiltersSchema,
  component: 'Pipeline',
  methods: ['list', 'get'],
};

/** The resources unicrm defines. */
export const BUILT_IN_RESOURCES: readonly UnifiedResourceDefinition[] = [STAGES_RESOURCE, PIPELINES_RESOURCE];

/** `model/resource`, the key a connector declares a resource under. */
export const resourceKey = (model: string, resource: string): string => `${model}/${resource}`;

/**
 * One page of a unified list (truto-contract.md §5.3): `result` (an object keyed by `truto_key_by` when given),
 * `next_cursor` / `prev_cursor` (opaque; pass one back as `next_cursor`; null at the end), `result_count`.
 */
export interface UnifiedListPage<T = Record<string, unknown>> {
  result: T[] | Record<string, T>;
  next_cursor: string | null;
  prev_cursor: string | null;
  result_count: number;
}

/** The list envelope as JSON Schema, for a record component. */
export function listEnvelopeSchema(component: string): Record<string, unknown> {
  const item = { $ref: `#/components/schemas/${component}` };
  return {
    type: 'object',
    properties: {
      result: {
        oneOf: [
          { type: 'array', items: item },
          { type: 'object', additionalProperties: item, description: 'With truto_key_by: the records keyed by that field' },
        ],
      },
      next_cursor: { type: ['string', 'null'], description: 'Pass back as next_cursor for the next page; null on the last page' },
      prev_cursor: { type: ['string', 'null'], description: 'Pass back as next_cursor for the previous page; null on the first page' },
      result_count: { type: 'integer', description: 'How many records are in result' },
    },
    required: ['result', 'next_cursor', 'prev_cursor', 'result_count'],
  };
}
