import { OpenApiContract } from '../kit/contract/openapi-contract';
import { findFileAbove, readOpenApiDocument } from '../kit/contract/load';

/** Where the committed copy of HubSpot's CRM Pipelines v3 document lives, from the repository root. */
export const HUBSPOT_OPENAPI_RELATIVE_PATH = 'libs/connectors/hubspot/openapi/hubspot-crm-pipelines-v3.openapi.json';

/** Finds the committed copy of HubSpot's document above this file or the working directory. @throws Error */
export function findHubSpotOpenApi(): string {
  return findFileAbove(HUBSPOT_OPENAPI_RELATIVE_PATH, [__dirname, process.cwd()]);
}

let shared: OpenApiContract | undefined;

/**
 * HubSpot's document as published, read as OpenAPI says (no profile: its `default` error response, the spec's
 * `Error`, covers every error status; its query parameters are the operations' own); without arguments compiled once
 * per process.
 * @throws Error when the document cannot be read or compiled
 */
export function loadHubSpotContract(specPath?: string): OpenApiContract {
  if (!specPath && shared) return shared;
  const contract = new OpenApiContract(readOpenApiDocument(specPath ?? findHubSpotOpenApi()));
  if (!specPath) shared = contract;
  return contract;
}
