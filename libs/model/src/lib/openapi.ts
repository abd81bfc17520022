import { z } from 'zod';
import { ErrorBodySchema } from './errors';
import { UnifiedQueryParametersSchema } from './query';
import { IntegratedAccountCreateBodySchema, IntegratedAccountSchema, PipelinerContextSchema } from './integrated-account';
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
          parameters: unifiedQueryParameters(),
          requestBody: { required: true, content: { 'application/json': { schema: ref('StageCreateBody') } } },
          responses: {
            '201': { description: 'The created stage', content: { 'application/json': { schema: ref('Stage') } } },
            ...commonErrors,
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
      '/health': {
        get: {
          operationId: 'health',
          security: [],
          responses: { '200': { description: 'The service is up', content: { 'application/json': { schema: { type: 'object' } } } } },
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
        PipelinerContext: toJsonSchema(PipelinerContextSchema, 'input'),
      },
    },
  };
}
