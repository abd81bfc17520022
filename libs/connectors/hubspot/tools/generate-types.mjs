#!/usr/bin/env node
// Generates the HubSpot connector's TypeScript types from HubSpot's own OpenAPI document (CRM Pipelines v3,
// committed unchanged in ../openapi) with openapi-typescript.
//   node libs/connectors/hubspot/tools/generate-types.mjs          write the file
//   node libs/connectors/hubspot/tools/generate-types.mjs --check  exit 1 if the committed file is stale
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateConnectorTypes } from '../../../../tools/codegen/connector-types.mjs';

const script = fileURLToPath(import.meta.url);
await generateConnectorTypes({
  lib: join(dirname(script), '..'),
  spec: 'openapi/hubspot-crm-pipelines-v3.openapi.json',
  out: 'src/lib/generated/hubspot-api.ts',
  script,
});
