import { type ContractProfile, OpenApiContract, type OpenApiDocument } from '../kit/contract/openapi-contract';
import { findFileAbove, readOpenApiDocument } from '../kit/contract/load';

/** Where the committed copy of Pipedrive's API v2 document (stages and pipelines) lives, from the repository root. */
export const PIPEDRIVE_OPENAPI_RELATIVE_PATH = 'libs/connectors/pipedrive/openapi/pipedrive-v2-stages-pipelines.subset.openapi.json';

/**
 * Pipedrive's error body as its "responses" page documents it (pipedrive-api.md §2.6). Its OpenAPI document declares
 * only 200s, so the sandbox checks its 4xx/5xx answers against this schema, added to the loaded document in memory
 * (the committed file is unchanged).
 */
export const PIPEDRIVE_ERROR_SCHEMA = {
  type: 'object',
  required: ['success', 'error'],
  properties: {
    success: { type: 'boolean', enum: [false] },
    error: { type: 'string' },
    error_info: { type: 'string' },
    data: { nullable: true },
    additional_data: { nullable: true },
  },
};

/**
 * How Pipedrive's API reads beyond its document (docs/pipedrive-sandbox.md "Contract checks"):
 * - optional answer fields may be `null` (`next_cursor` is `null` on the last page, as its description says, while the
 *   schema types it as a plain string);
 * - error answers (statuses the document leaves out) follow {@link PIPEDRIVE_ERROR_SCHEMA};
 * - the success envelopes must carry `success` and `data` (the document requires neither).
 */
export const PIPEDRIVE_CONTRACT_PROFILE: ContractProfile = {
  optionalMayBeNull: true,
  fallbackErrorSchema: 'PipedriveError',
  adjustResponseSchema: (schema, statusKey) => {
    if (!statusKey.startsWith('2')) return;
    const properties = schema.properties as Record<string, unknown> | undefined;
    if (properties && 'success' in properties && 'data' in properties) {
      schema.required = [...new Set([...((schema.required as string[] | undefined) ?? []), 'success', 'data'])];
    }
  },
};

/** Finds the committed copy of Pipedrive's document above this file or the working directory. @throws Error */
export function findPipedriveOpenApi(): string {
  return findFileAbove(PIPEDRIVE_OPENAPI_RELATIVE_PATH, [__dirname, process.cwd()]);
}

let shared: OpenApiContract | undefined;

/**
 * Pipedrive's document with {@link PIPEDRIVE_ERROR_SCHEMA} added, compiled with {@link PIPEDRIVE_CONTRACT_PROFILE};
 * without arguments compiled once per process.
 * @throws Error when the document cannot be read or compiled
 */
export function loadPipedriveContract(specPath?: string): OpenApiContract {
  if (!specPath && shared) return shared;
  const document: OpenApiDocument = readOpenApiDocument(specPath ?? findPipedriveOpenApi());
  const components = { ...(document.components ?? {}) };
  components.schemas = { ...(components.schemas ?? {}), PipedriveError: PIPEDRIVE_ERROR_SCHEMA };
  const contract = new OpenApiContract({ ...document, components }, PIPEDRIVE_CONTRACT_PROFILE);
  if (!specPath) shared = contract;
  return contract;
}
