import { type ContractProfile, OpenApiContract, type OpenApiDocument } from '../kit/contract/openapi-contract';
import { isRfc3339DateTime } from '../kit/contract/ajv';
import { findFileAbove, readOpenApiDocument } from '../kit/contract/load';
import { parseNameTree, type Relation, withoutNull } from '../kit/contract/schema';

/**
 * The Pipeliner module's contract: where its OpenAPI document lives, and how Pipeliner's API differs from what the
 * document alone says (docs/pipeliner-sandbox.md "Contract tests"). The checks themselves are the kit's.
 */

/** Where the committed copy of Pipeliner's document lives, relative to the repository root. */
export const PIPELINER_OPENAPI_RELATIVE_PATH = 'libs/connectors/pipeliner/openapi/pipeliner-steps-pipelines.subset.openapi.json';

/** Options of {@link loadPipelinerContract}. */
export interface ContractOptions {
  /** The parsed OpenAPI document; default: read from `specPath`. */
  document?: OpenApiDocument;
  /** Path of the document; default: {@link findPipelinerOpenApi}. */
  specPath?: string;
}

/** Pipeliner's wire form of a date (pipeliner-api.md §5): `2024-07-09 12:51:48.050073+00:00`. */
const PIPELINER_WIRE_DATE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}[+-]\d{2}:\d{2}$/;

/**
 * `format: date-time` in answers: exactly the form Pipeliner sends (space separator, 6 fraction digits, `±HH:MM`
 * offset) with a real calendar date and time. The document's `2019-01-01T00:00:00` examples are placeholders.
 * Requests keep the kit's RFC 3339 check (`T` or a space), so both `2024-09-19T12:30:45Z` and Pipeliner's form pass.
 */
export function isPipelinerDateTime(text: string): boolean {
  return PIPELINER_WIRE_DATE.test(text) && isRfc3339DateTime(text);
}

/**
 * Expandable relations between the document's entities. `Step.pipeline` is documented as "Relation to Pipeline. By
 * default it is returned as URI ... Using parameter 'expand', it will return full entity". `Pipeline.steps` is typed
 * as `batchStepInput` objects, an input schema reused in the output (even expanded Steps could not match it: their
 * `documents` are URIs, not `{id}` objects), so un-expanded it is validated as URIs, like every other relation of the
 * document, and expanded as Steps (pipeliner-api.md §3, sandbox guess 8).
 */
const RELATIONS: Record<string, Record<string, Relation>> = {
  Step: { pipeline: { entity: 'Pipeline' } },
  Pipeline: {
    steps: { entity: 'Step', many: true, unexpanded: { type: 'array', items: { type: 'string', format: 'uri' } } },
  },
};

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** How Pipeliner's API reads beyond its document (each rule: docs/pipeliner-sandbox.md "Contract tests"). */
export const PIPELINER_CONTRACT_PROFILE: ContractProfile = {
  // Pipeliner's query parameters are conventions of the whole API (the docs' "API parameters" page describes `expand`,
  // `load-only`, `filter`, ... once for all), while the document lists them per operation: the connector reads
  // `GET Pipelines/{id}?load-only=id,name`, and `Steps.get` declares only `id`.
  queryParameters: 'document',
  // The legacy paging parameters, named only in `page_info`'s description.
  extraQueryParameters: ['limit', 'offset'].map((name) => ({ name, schema: { type: 'integer', format: 'int32' } })),
  // `validation-level` bit 8 "allows to override readonly fields" (pipeliner-api.md §6).
  allowsReadOnly: (query) => {
    const level = query.get('validation-level') ?? '';
    return /^\d+$/.test(level) && (Number(level) & 8) === 8;
  },
  readOnlyHint: 'send it only with validation-level bit 8 ("allows to override readonly fields")',
  // `createStepInput` / `updateStepInput` / `batchStepInput` write a `Step`.
  inputEntity: (name) => /^(?:create|update|batch)(\w+)Input$/.exec(name)?.[1],
  // Pipeliner answers empty values as null; its document never says `nullable`.
  optionalMayBeNull: true,
  relations: RELATIONS,
  view: (query) => ({ expand: parseNameTree(query.get('expand')) ?? new Map(), loadOnly: parseNameTree(query.get('load-only')) }),
  // Statuses the document leaves out (400, 401, 422, 429, ...): Pipeliner answers them in its `Error` shape (§4).
  fallbackErrorSchema: 'Error',
  // Every success envelope of the document lists `success` and `data` but requires neither; every documented and
  // captured answer has both, never null (pipeliner-api.md §4), and without this `{}` would pass.
  adjustResponseSchema: (schema, statusKey) => {
    const properties = schema.properties;
    if (statusKey.startsWith('2') && isObject(properties) && isObject(properties.success) && isObject(properties.data)) {
      schema.required = [...new Set([...((schema.required as string[] | undefined) ?? []), 'success', 'data'])];
      properties.success = withoutNull(properties.success);
      properties.data = withoutNull(properties.data);
    }
  },
  formats: { response: { 'date-time': isPipelinerDateTime } },
};

/**
 * Finds the committed copy of Pipeliner's OpenAPI document by walking up from this file (sources under Jest, or
 * `dist/` after a build) and from the working directory to the repository root.
 * @throws Error when no directory above holds it
 */
export function findPipelinerOpenApi(): string {
  try {
    return findFileAbove(PIPELINER_OPENAPI_RELATIVE_PATH, [__dirname, process.cwd()]);
  } catch (error) {
    throw new Error(`${(error as Error).message} Pass its path as specPath.`);
  }
}

let shared: OpenApiContract | undefined;

/**
 * Loads Pipeliner's OpenAPI document and compiles its checks with {@link PIPELINER_CONTRACT_PROFILE}. Without options
 * the result is cached: the committed copy is read and compiled once per process.
 * @throws Error when the document cannot be read or compiled
 */
export function loadPipelinerContract(options: ContractOptions = {}): OpenApiContract {
  if (!options.document && !options.specPath && shared) return shared;
  const document = options.document ?? readOpenApiDocument(options.specPath ?? findPipelinerOpenApi());
  const contract = new OpenApiContract(document, PIPELINER_CONTRACT_PROFILE);
  if (!options.document && !options.specPath) shared = contract;
  return contract;
}
