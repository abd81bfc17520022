import { z } from 'zod';
import { ErrorBodySchema } from './errors';
import { UnifiedQueryParametersSchema } from './query';
import {
  IntegratedAccountCreateBodySchema,
  IntegratedAccountPatchBodySchema,
  IntegratedAccountSchema,
  PipelinerContextSchema,
} from './integrated-account';
import { StageCreateBodySchema, StageSchema } from './stage';

type JsonSchema = Record<string, unknown>;

/**
 * A zod schema as a self-contained JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1), without
 * `$schema`, `$defs` or ids.
 * @param io `input` for what a caller sends (defaults optional), `output` for what unicrm answers
 */
export function toJsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
  // A schema with a meta id comes back as { $ref: '#/$defs/<id>', $defs }: unwrap it into a plain component.
  const defs = json.$defs as Record<string, JsonSchema> | undefined;
  const refName = typeof json.$ref === 'string' ? json.$ref.replace('#/$defs/', '') : undefined;
  const component = refName && defs?.[refName] ? { ...defs[refName] } : { ...json };
  delete component.$schema;
  delete component.$defs;
  delete component.id;
  return component;
}

/** The OpenAPI parameters of a unified call, from {@link UnifiedQueryParametersSchema}. */
function unifiedQueryParameters(): JsonSchema[] {
  const query = toJsonSchema(UnifiedQueryParametersSchema, 'input') as { properties: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(query.properties).map(([name, schema]) => {
    const { description, ...rest } = schema;
    const complex = rest.type === 'object' || rest.type === 'array';
    return {
      name,
      in: 'query',
      ...(query.required?.includes(name) && { required: true }),
      ...(complex && { style: 'deepObject', explode: true }),
      schema: rest,
      description,
    };
  });
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ref('Error') } },
});

/**
 * Builds the OpenAPI 3.1 document of unicrm's HTTP API from the zod schemas of this lib, so the
 * document, the validation and the types cannot drift apart. Served at `GET /openapi.json`.
 * Query parameters follow create-stages.txt; error answers follow DESIGN.md §3.
 * @param version the API version shown in `info.version`
 */
export function buildOpenApiDocument(version = '0.1.0'): JsonSchema {
  const commonErrors = {
    '400': errorResponse('Invalid query or body; `details.failures` names each field'),
    '401': errorResponse('Missing or invalid API token, or the integrated account needs re-authentication'),
    '404': errorResponse('Unknown integrated account or route'),
    '413': errorResponse('Body larger than 1 MiB'),
    '415': errorResponse('Body is not application/json'),
    '502': errorResponse('The provider could not be reached or answered something unusable'),
    '504': errorResponse('The provider did not answer within the timeout'),
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'unicrm',
      version,
      description:
        "Self-hosted, Truto-compatible unified CRM API. Remote errors mirror the provider's status and add " +
        '`truto_is_remote_error`, `raw_response` and `truto_error_insight`. `truto_response_format=normalized` ' +
        'returns every Stage field in schema order, missing values as null, without remote_data.',
    },
    servers: [{ url: '/' }],
    security: [{ bearerAuth: [] }],
    paths: {
      '/unified/crm/stages': {
        post: {
          operationId: 'createStage',
          summary: 'Create a stage (Pipeliner: a Step)',
          parameters: [
            ...unifiedQueryParameters(),
            {
              name: 'Idempotency-Key',
              in: 'header',
              schema: { type: 'string', minLength: 1, maxLength: 255 },
              description:
                'Makes the create safe to retry (draft-ietf-httpapi-idempotency-key-header): the first answer is replayed for 24 h ' +
                'with `Idempotent-Replayed: true`; another request with the key answers 422, a concurrent one 409.',
            },
          ],
          requestBody: { required: true, content: { 'application/json': { schema: ref('StageCreateBody') } } },
          responses: {
            '201': {
              description: 'The created stage (`raw`: the provider body; `normalized`: every field, nulls)',
              headers: { 'Idempotent-Replayed': { schema: { type: 'string', enum: ['true'] }, description: 'Set on a replayed answer' } },
              content: { 'application/json': { schema: ref('Stage') } },
            },
            ...commonErrors,
            '409': errorResponse('A request with the same Idempotency-Key is still being processed'),
            '422': errorResponse('The Idempotency-Key was used with another request, or the provider refused the stage'),
            '429': errorResponse("Rate limited (unicrm's own limits, or the provider's, forwarded with Retry-After)"),
            '501': errorResponse('The integration cannot create stages'),
            default: errorResponse("Any other error of the provider, its status mirrored (truto_is_remote_error: true)"),
          },
        },
      },
      '/unified/crm/stages/meta/create': {
        get: {
          operationId: 'getStageCreateMeta',
          summary: "The JSON Schemas of the create for an account's integration",
          parameters: [unifiedQueryParameters()[0]],
          responses: {
            '200': { description: 'The schemas', content: { 'application/json': { schema: ref('StageCreateMeta') } } },
            '400': commonErrors['400'],
            '401': commonErrors['401'],
            '404': commonErrors['404'],
          },
        },
      },
      '/integrated-account': {
        post: {
          operationId: 'createIntegratedAccount',
          summary: 'Connect an account of an integration',
          requestBody: { required: true, content: { 'application/json': { schema: ref('IntegratedAccountCreateBody') } } },
          responses: {
            '201': { description: 'The account, secrets stripped', content: { 'application/json': { schema: ref('IntegratedAccount') } } },
            '400': commonErrors['400'],
            '401': commonErrors['401'],
            '422': errorResponse('The provider rejected the credentials; nothing was stored'),
            '502': commonErrors['502'],
            '504': commonErrors['504'],
          },
        },
        get: {
          operationId: 'listIntegratedAccounts',
          summary: "The environment's accounts, oldest first",
          parameters: [
            { name: 'tenant_id', in: 'query', schema: { type: 'string' } },
            { name: 'status', in: 'query', schema: { type: 'string', enum: ['active', 'needs_reauth', 'validation_error'] } },
            { name: 'integration', in: 'query', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 100 } },
            { name: 'next_cursor', in: 'query', schema: { type: 'string' } },
          ],
          responses: {
            '200': { description: 'One page', content: { 'application/json': { schema: ref('IntegratedAccountList') } } },
            '400': commonErrors['400'],
            '401': commonErrors['401'],
          },
        },
      },
      '/integrated-account/{id}': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
        get: {
          operationId: 'getIntegratedAccount',
          responses: {
            '200': { description: 'The account, secrets stripped', content: { 'application/json': { schema: ref('IntegratedAccount') } } },
            '401': commonErrors['401'],
            '404': commonErrors['404'],
          },
        },
        patch: {
          operationId: 'updateIntegratedAccount',
          summary: 'Change tenant_id and/or merge context shallowly (new credentials are checked first)',
          requestBody: { required: true, content: { 'application/json': { schema: ref('IntegratedAccountPatchBody') } } },
          responses: {
            '200': { description: 'The account, secrets stripped', content: { 'application/json': { schema: ref('IntegratedAccount') } } },
            '400': commonErrors['400'],
            '401': commonErrors['401'],
            '404': commonErrors['404'],
            '422': errorResponse('The provider rejected the new credentials; nothing changed'),
          },
        },
        delete: {
          operationId: 'deleteIntegratedAccount',
          responses: {
            '200': {
              description: 'The id of the deleted account',
              content: { 'application/json': { schema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } } },
            },
            '401': commonErrors['401'],
            '404': commonErrors['404'],
          },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'getOpenApiDocument',
          summary: 'This document',
          responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } }, '401': commonErrors['401'] },
        },
      },
      '/health': {
        get: {
          operationId: 'health',
          security: [],
          responses: {
            '200': {
              description: 'The service is up',
              content: {
                'application/json': {
                  schema: { type: 'object', properties: { status: { type: 'string', const: 'ok' } }, required: ['status'] },
                },
              },
            },
          },
        },
      },
    },
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Stage: toJsonSchema(StageSchema, 'output'),
        StageCreateBody: toJsonSchema(StageCreateBodySchema, 'input'),
        Error: toJsonSchema(ErrorBodySchema, 'output'),
        IntegratedAccount: toJsonSchema(IntegratedAccountSchema, 'output'),
        IntegratedAccountCreateBody: toJsonSchema(IntegratedAccountCreateBodySchema, 'input'),
        IntegratedAccountPatchBody: toJsonSchema(IntegratedAccountPatchBodySchema, 'input'),
        IntegratedAccountList: {
          type: 'object',
          properties: {
            result: { type: 'array', items: ref('IntegratedAccount') },
            next_cursor: { type: ['string', 'null'] },
            limit: { type: 'integer' },
          },
          required: ['result', 'next_cursor', 'limit'],
        },
        StageCreateMeta: {
          type: 'object',
          properties: {
            unified_model: { const: 'crm' },
            resource: { const: 'stages' },
            method: { const: 'create' },
            integration: { type: 'string' },
            documentation_link: { type: 'string' },
            schema: { type: 'object', description: 'JSON Schema of the Stage answered' },
            query_schema: { type: 'object', description: 'JSON Schema of the query parameters' },
            request_body_schema: { type: 'object', description: "JSON Schema of the body the account's integration accepts" },
          },
          required: ['unified_model', 'resource', 'method', 'integration', 'documentation_link', 'schema', 'query_schema', 'request_body_schema'],
        },
        PipelinerContext: toJsonSchema(PipelinerContextSchema, 'input'),
      },
    },
  };
}
