#!/usr/bin/env node
// Generates the Pipedrive connector's TypeScript types from Pipedrive's own OpenAPI document (the API v2
// stages/pipelines subset committed in ../openapi) with openapi-typescript.
//   node libs/connectors/pipedrive/tools/generate-types.mjs          write the file
//   node libs/connectors/pipedrive/tools/generate-types.mjs --check  exit 1 if the committed file is stale
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateConnectorTypes } from '../../../../tools/codegen/connector-types.mjs';

const script = fileURLToPath(import.meta.url);
await generateConnectorTypes({
  lib: join(dirname(script), '..'),
  spec: 'openapi/pipedrive-v2-stages-pipelines.subset.openapi.json',
  out: 'src/lib/generated/pipedrive-api.ts',
  script,
});
