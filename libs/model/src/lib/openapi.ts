import { z } from 'zod';
import { ErrorBodySchema } from './errors';
import { IntegratedAccountCreateBodySchema, IntegratedAccountSchema, PipelinerContextSchema } from './integrated-account';
import { StageCreateBodySchema, StageSchema } from './stage';

type JsonSchema = Record<string, unknown>;

function toSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
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
            {
              name: 'integrated_account_id',
              in: 'query',
              required: true,
              schema: { type: 'string', format: 'uuid' },
              description: 'The ID of the integrated account to use for the request.',
            },
            {
              name: 'truto_response_format',
              in: 'query',
              schema: { type: 'string', enum: ['unified', 'raw', 'normalized'], default: 'unified' },
              description: 'unified: mapped; raw: the provider body verbatim; normalized: every field, nulls, no remote_data.',
            },
            {
              name: 'truto_ignore_remote_data',
              in: 'query',
              schema: { type: 'boolean', default: false },
              description: 'Excludes remote_data from the response (true|false|1|0, any case).',
            },
            {
              name: 'truto_exclude_fields',
              in: 'query',
              style: 'deepObject',
              schema: { type: 'array', items: { type: 'string' } },
              description: 'Fields to leave out (dot paths reach nested fields). `a[]=x`, `a[0]=x`, `a=x&a=y` and `a=x,y` are all accepted.',
            },
            {
              name: 'remote_query',
              in: 'query',
              style: 'deepObject',
              explode: true,
              schema: { type: 'object', additionalProperties: true },
              description: "Query parameters passed as-is to the provider's API; they win over the connector's own.",
            },
          ],
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
        Stage: toSchema(StageSchema, 'output'),
        StageCreateBody: toSchema(StageCreateBodySchema, 'input'),
        Error: toSchema(ErrorBodySchema, 'output'),
        IntegratedAccount: toSchema(IntegratedAccountSchema, 'output'),
        IntegratedAccountCreateBody: toSchema(IntegratedAccountCreateBodySchema, 'input'),
        PipelinerContext: toSchema(PipelinerContextSchema, 'input'),
      },
    },
  };
}
