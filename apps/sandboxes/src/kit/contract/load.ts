import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { OpenApiDocument } from './openapi-contract';

/**
 * Finds a file committed in the repository (a provider's OpenAPI document) by walking up from each start directory
 * to the filesystem root: from this file (sources under Jest, or `dist/` after a build) and from the working
 * directory, by default.
 * @param relativePath the path from the repository root, e.g. `libs/connectors/pipeliner/openapi/x.openapi.json`
 * @throws Error naming the path and the start directories when no directory above holds it
 */
export function findFileAbove(relativePath: string, starts: string[] = [__dirname, process.cwd()]): string {
  for (const start of starts) {
    let dir = resolve(start);
    for (;;) {
      const candidate = join(dir, relativePath);
      if (existsSync(candidate)) return candidate;
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  throw new Error(`Cannot find ${relativePath} above ${starts.join(' or ')}.`);
}

/**
 * Reads an OpenAPI document stored as JSON (the form the repository keeps them in; YAML is converted when committed).
 * @throws Error when the file cannot be read, is not JSON, or has no `openapi` version and `paths`
 */
export function readOpenApiDocument(path: string): OpenApiDocument {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`Cannot read the OpenAPI document ${path}: ${(error as Error).message}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new Error(`The OpenAPI document ${path} is not valid JSON: ${(error as Error).message}`);
  }
  const candidate = document as Partial<OpenApiDocument> | null;
  if (typeof candidate !== 'object' || candidate === null || typeof candidate.openapi !== 'string' || typeof candidate.paths !== 'object') {
    throw new Error(`${path} is not an OpenAPI 3 document (no 'openapi' version or no 'paths').`);
  }
  return candidate as OpenApiDocument;
}
