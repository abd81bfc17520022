import { z } from 'zod';
import { BATCH_MAX_ITEMS, BatchAnswerSchema, BatchBodySchema } from './batch';
import { ErrorBodySchema } from './errors';
import { UnifiedListQueryParametersSchema, UnifiedQueryParametersSchema } from './query';
import { BUILT_IN_RESOURCES, listEnvelopeSchema, UNIFIED_METHOD_ROUTES, type UnifiedMethod, type UnifiedResourceDefinition } from './resources';
import {
  IntegratedAccountCreateBodySchema,
  IntegratedAccountPatchBodySchema,
  IntegratedAccountSchema,
  PipelinerContextSchema,
} from './integrated-account';
import { LinkTokenCreateBodySchema, LinkTokenSchema, WEBHOOK_EVENT_TYPES, WebhookCreateBodySchema, WebhookPatchBodySchema, WebhookSchema } from './connect';


type JsonSchema = Record<string, unknown>;

/**
 * A zod schema as a self-contained JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1), without
 * `$schema`, `$defs` or ids.
 * @param io `input` for what a caller sends (defaults optional), `output` for what unicrm answers
 */
export function toJsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
  // A schema with a meta id comes back as { $ref: '#/$defs/<id>', $defs }, and a re-labelled schema as a chain of
  // such refs: inline every ref into a plain, self-contained component (unicrm's schemas have no cycles).
  const defs = (json.$defs ?? {}) as Record<string, JsonSchema>;
  const inline = (value: unknown, depth: number): unknown => {
    if (Array.isArray(value)) return value.map((item) => inline(item, depth));
    if (typeof value !== 'object' || value === null) return value;
    const object = value as JsonSchema;
    const ref = typeof object.$ref === 'string' && object.$ref.startsWith('#/$defs/') ? defs[object.$ref.slice('#/$defs/'.length)] : undefined;
    if (ref && depth < 32) {
      const { $ref: _ref, ...rest } = object;
      return inline({ ...ref, ...rest }, depth + 1);
    }
    return Object.fromEntries(Object.entries(object).map(([key, item]) => [key, inline(item, depth)]));
  };
  const component = inline(json, 0) as JsonSchema;
  delete component.$schema;
  delete component.$defs;
  delete component.id;
  return component;
}

/** The OpenAPI query parameters of a schema of query parameters (default: a unified call's, {@link UnifiedQueryParametersSchema}). */
function unifiedQueryParameters(schema: z.ZodType = UnifiedQueryParametersSchema): JsonSchema[] {
  const query = toJsonSchema(schema, 'input') as { properties: Record<string, JsonSchema>; required?: string[] };
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

const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  schema: { type: 'string', minLength: 1, maxLength: 255 },
  description:
    'Makes the write safe to retry (draft-ietf-httpapi-idempotency-key-header): the first answer is replayed for 24 h ' +
    'with `Idempotent-Replayed: true`; another request with the key answers 422, a concurrent one 409.',
};

const TITLE: Record<UnifiedMethod, (noun: string, plural: string) => string> = {
  list: (_noun, plural) => `List ${plural}`,
  get: (noun) => `Get a ${noun}`,
  create: (noun) => `Create a ${noun}`,
  update: (noun) => `Update a ${noun}`,
  delete: (noun) => `Delete a ${noun}`,
};

const capital = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/** The OpenAPI operation of one unified method of a resource. */
function unifiedOperation(definition: UnifiedResourceDefinition, method: UnifiedMethod, commonErrors: Record<string, JsonSchema>): JsonSchema {
  const { component } = definition;
  const operationId = method === 'list' ? `list${capital(definition.resource)}` : `${method}${capital(definition.noun)}`;
  const record = { content: { 'application/json': { schema: ref(component) } } };
  const writeErrors = {
    '409': errorResponse('A request with the same Idempotency-Key is still being processed'),
    '422': errorResponse('The Idempotency-Key was used with another request, or the provider refused the write'),
  };
  const errors = {
    ...commonErrors,
    '429': errorResponse("Rate limited (unicrm's own limits, or the provider's, forwarded with Retry-After)"),
    '501': errorResponse(`The account's integration cannot ${method} ${definition.resource}`),
    default: errorResponse("Any other error of the provider, its status mirrored (truto_is_remote_error: true)"),
  };
  const operation: JsonSchema = { operationId, summary: TITLE[method](definition.noun, definition.resource), tags: [`${definition.model}/${definition.resource}`] };
  switch (method) {
    case 'list': {
      const filters = definition.listFilters ? unifiedQueryParameters(definition.listFilters) : [];
      return {
        ...operation,
        description:
          'One page in the list envelope. The filters an integration applies are in the meta endpoint (`/meta/list`); any other parameter is a 400. ' +
          'With `truto_response_format=raw` the body is the provider page verbatim and the cursors come in the `Unicrm-Next-Cursor` and `Unicrm-Prev-Cursor` headers.',
        parameters: [...unifiedQueryParameters(UnifiedListQueryParametersSchema), ...filters],
        responses: { '200': { description: 'One page', content: { 'application/json': { schema: ref(`${component}List`) } } }, ...errors },
      };
    }
    case 'get':
      return { ...operation, parameters: unifiedQueryParameters(), responses: { '200': { description: `The ${definition.noun}`, ...record }, ...errors } };
    case 'create':
      return {
        ...operation,
        parameters: [...unifiedQueryParameters(), IDEMPOTENCY_KEY],
        requestBody: { required: true, content: { 'application/json': { schema: ref(`${component}CreateBody`) } } },
        responses: {
          '201': {
            description: `The created ${definition.noun} (\`raw\`: the provider body; \`normalized\`: every field, nulls)`,
            headers: { 'Idempotent-Replayed': { schema: { type: 'string', enum: ['true'] }, description: 'Set on a replayed answer' } },
            ...record,
          },
          ...errors,
          ...writeErrors,
        },
      };
    case 'update':
      return {
        ...operation,
        parameters: [...unifiedQueryParameters(), IDEMPOTENCY_KEY],
        requestBody: { required: true, content: { 'application/json': { schema: ref(`${component}UpdateBody`) } } },
        responses: { '200': { description: `The ${definition.noun} as the provider now has it`, ...record }, ...errors, ...writeErrors },
      };
    case 'delete':
      return {
        ...operation,
        parameters: [...unifiedQueryParameters(), IDEMPOTENCY_KEY],
        responses: {
          '200': { description: `The deleted ${definition.noun} as the provider now shows it (\`raw\`: the provider's answer to the delete)`, ...record },
          ...errors,
          ...writeErrors,
        },
      };
  }
}

/** `POST /unified/<model>/<resource>/batch` (issue 18; docs/contract.md "Batch writes"). */
function batchOperation(definition: UnifiedResourceDefinition, commonErrors: Record<string, JsonSchema>): JsonSchema {
  return {
    operationId: `batch${capital(definition.resource)}`,
    summary: `Create and update up to ${BATCH_MAX_ITEMS} ${definition.resource} in one request`,
    description:
      `Each item is answered as its single request would be (status, the ${definition.noun} or the error), in request order; the request answers 200 ` +
      "whenever it was itself valid. Connectors with a bulk endpoint (Pipeliner's batch-modify) write the items in as few provider calls as " +
      'it takes; the others write them one by one, paced to the provider\'s rate limit. `Idempotency-Key` covers the whole batch, and each ' +
      "item's `idempotency_key` (or, without one, a key derived from the batch's) covers the item, so a retried batch writes no item twice.",
    tags: [`${definition.model}/${definition.resource}`],
    parameters: [
      ...unifiedQueryParameters(),
      {
        name: 'dry_run',
        in: 'query',
        schema: { type: 'boolean', default: false },
        description: 'Check every item as its write would be (schemas, method, id) and write nothing: a valid item answers 200 with the body as the integration takes it.',
      },
      IDEMPOTENCY_KEY,
      {
        name: 'Prefer',
        in: 'header',
        schema: { type: 'string', enum: ['return=representation', 'return=minimal'] },
        description: "RFC 7240: `return=minimal` answers only each record's `id` (fewer provider calls on some integrations).",
      },
    ],
    requestBody: { required: true, content: { 'application/json': { schema: ref('BatchBody') } } },
    responses: {
      '200': { description: 'One answer per item, in request order', content: { 'application/json': { schema: ref('BatchAnswer') } } },
      '400': commonErrors['400'],
      '401': commonErrors['401'],
      '404': commonErrors['404'],
      '409': errorResponse('A batch with the same Idempotency-Key is still being processed'),
      '413': commonErrors['413'],
      '415': commonErrors['415'],
      '422': errorResponse('The Idempotency-Key was used with another batch'),
      '429': errorResponse("Rate limited (unicrm's own limits)"),
    },
  };
}

/** The paths and components of the unified resources. */
function unifiedPaths(resources: readonly UnifiedResourceDefinition[], commonErrors: Record<string, JsonSchema>) {
  const paths: Record<string, JsonSchema> = {};
  const schemas: Record<string, JsonSchema> = {};
  for (const definition of resources) {
    const base = `/unified/${definition.model}/${definition.resource}`;
    const collection: JsonSchema = {};
    const item: JsonSchema = { parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }] };
    for (const method of definition.methods) {
      const route = UNIFIED_METHOD_ROUTES[method];
      (route.withId ? item : collection)[route.http.toLowerCase()] = unifiedOperation(definition, method, commonErrors);
    }
    if (Object.keys(collection).length > 0) paths[base] = collection;
    if (Object.keys(item).length > 1) paths[`${base}/{id}`] = item;
    if (definition.methods.includes('create') || definition.methods.includes('update')) {
      paths[`${base}/batch`] = { post: batchOperation(definition, commonErrors) };
      schemas.BatchBody ??= toJsonSchema(BatchBodySchema, 'input');
      schemas.BatchAnswer ??= toJsonSchema(BatchAnswerSchema, 'output');
    }
    paths[`${base}/meta/{method}`] = {
      get: {
        operationId: `get${capital(definition.noun)}Meta`,
        summary: `The JSON Schemas of a ${definition.noun} method for an account's integration`,
        tags: [`${definition.model}/${definition.resource}`],
        parameters: [
          { name: 'method', in: 'path', required: true, schema: { type: 'string', enum: [...definition.methods] } },
          unifiedQueryParameters()[0],
        ],
        responses: {
          '200': { description: 'The schemas', content: { 'application/json': { schema: ref('MethodMeta') } } },
          '400': commonErrors['400'],
          '401': commonErrors['401'],
          '404': commonErrors['404'],
          '501': errorResponse('The integration does not serve this method'),
        },
      },
    };
    schemas[definition.component] = toJsonSchema(definition.schema, 'output');
    schemas[`${definition.component}List`] = listEnvelopeSchema(definition.component);
    if (definition.createBody && definition.methods.includes('create')) schemas[`${definition.component}CreateBody`] = toJsonSchema(definition.createBody, 'input');
    if (definition.updateBody && definition.methods.includes('update')) schemas[`${definition.component}UpdateBody`] = toJsonSchema(definition.updateBody, 'input');
  }
  return { paths, schemas };
}

/** The proxy's paths (truto-contract.md §5.4). */
function proxyPaths(commonErrors: Record<string, JsonSchema>): Record<string, JsonSchema> {
  const account = unifiedQueryParameters()[0];
  const anyJson = { description: "The provider's answer, verbatim", content: { 'application/json': { schema: {} } } };
  const errors = { '400': commonErrors['400'], '401': commonErrors['401'], '404': commonErrors['404'], '501': errorResponse('The integration has no proxy'), default: errorResponse("The provider's error, its status mirrored") };
  const write = (operationId: string, summary: string) => ({
    operationId,
    summary,
    tags: ['proxy'],
    parameters: [account, IDEMPOTENCY_KEY],
    requestBody: { content: { 'application/json': { schema: {} } } },
    responses: { '200': anyJson, '201': anyJson, ...errors },
  });
  return {
    '/proxy/{resource}': {
      parameters: [{ name: 'resource', in: 'path', required: true, schema: { type: 'string' }, description: "The provider's resource, e.g. Pipeliner's `Steps`" }],
      get: {
        operationId: 'proxyList',
        summary: "A page of the provider's own resource, in the list envelope",
        tags: ['proxy'],
        parameters: [
          account,
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1 } },
          { name: 'next_cursor', in: 'query', schema: { type: 'string' } },
        ],
        responses: {
          '200': {
            description: 'One page: the records as the provider sent them',
            content: { 'application/json': { schema: { type: 'object', properties: { result: { type: 'array', items: {} }, next_cursor: { type: ['string', 'null'] }, prev_cursor: { type: ['string', 'null'] }, result_count: { type: 'integer' } }, required: ['result', 'next_cursor', 'prev_cursor', 'result_count'] } } },
          },
          ...errors,
        },
      },
      post: write('proxyCreate', "Create in the provider's own resource"),
    },
    '/proxy/{resource}/{id}': {
      parameters: [
        { name: 'resource', in: 'path', required: true, schema: { type: 'string' } },
        { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
      ],
      get: { operationId: 'proxyGet', summary: "One record of the provider's own resource", tags: ['proxy'], parameters: [account], responses: { '200': anyJson, ...errors } },
      patch: write('proxyUpdate', "Update a record of the provider's own resource"),
      delete: { operationId: 'proxyDelete', summary: "Delete a record of the provider's own resource", tags: ['proxy'], parameters: [account, IDEMPOTENCY_KEY], responses: { '200': anyJson, ...errors } },
      post: write('proxyAction', 'A provider action on a resource (e.g. Pipeliner `batch-modify`)'),
    },
  };
}

/**
 * Builds the OpenAPI 3.1 document of unicrm's HTTP API from the zod schemas of this lib, so the
 * document, the validation and the types cannot drift apart. Served at `GET /openapi.json`.
 * Query parameters follow create-stages.txt; error answers follow DESIGN.md §3.
 * @param version the API version shown in `info.version`
 * @param resources the unified resources served (default: the built-in ones)
 */
export function buildOpenApiDocument(version = '0.1.0', resources: readonly UnifiedResourceDefinition[] = BUILT_IN_RESOURCES): JsonSchema {
  const commonErrors = {
    '400': errorResponse('Invalid query or body; `details.failures` names each field'),
    '401': errorResponse('Missing or invalid API token, or the integrated account needs re-authentication'),
    '404': errorResponse('Unknown integrated account or route'),
    '413': errorResponse('Body larger than 1 MiB'),
    '415': errorResponse('Body is not application/json'),
    '502': errorResponse('The provider could not be reached or answered something unusable'),
    '504': errorResponse('The provider did not answer within the timeout'),
  };
  const unified = unifiedPaths(resources, commonErrors);
  return {
    openapi: '3.1.0',
    info: {
      title: 'unicrm',
      version,
      description:
        "Self-hosted, Truto-compatible unified CRM API. Remote errors mirror the provider's status and add " +
        '`truto_is_remote_error`, `raw_response` and `truto_error_insight`. `truto_response_format=normalized` ' +
        'returns every field of the record in schema order, missing values as null, without remote_data.',
    },
    servers: [{ url: '/' }],
    security: [{ bearerAuth: [] }],
    paths: {
      ...unified.paths,
      ...proxyPaths(commonErrors),
      ...connectPaths(commonErrors),
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
        ...unified.schemas,
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
        MethodMeta: {
          type: 'object',
          properties: {
            unified_model: { type: 'string' },
            resource: { type: 'string' },
            method: { type: 'string', enum: ['list', 'get', 'create', 'update', 'delete'] },
            integration: { type: 'string' },
            description: { type: 'string', description: 'What the method does at the provider' },
            retry_safe: { type: 'boolean', description: 'True when the method may be sent again after a failure that left its outcome unknown' },
            documentation_link: { type: 'string' },
            schema: { type: 'object', description: 'JSON Schema of the record answered' },
            query_schema: { type: 'object', description: 'JSON Schema of the query parameters (a list: with the filters the integration applies)' },
            request_body_schema: { type: 'object', description: "JSON Schema of the body the account's integration accepts (create, update)" },
            page_size: {
              type: 'object',
              properties: { default: { type: 'integer' }, max: { type: 'integer' } },
              required: ['default', 'max'],
              description: 'A list: the default and the largest page',
            },
          },
          required: ['unified_model', 'resource', 'method', 'integration', 'description', 'retry_safe', 'documentation_link', 'schema', 'query_schema'],
        },
        PipelinerContext: toJsonSchema(PipelinerContextSchema, 'input'),
        LinkTokenCreateBody: toJsonSchema(LinkTokenCreateBodySchema, 'input'),
        LinkToken: toJsonSchema(LinkTokenSchema, 'output'),
        Webhook: toJsonSchema(WebhookSchema, 'output'),
        WebhookCreateBody: toJsonSchema(WebhookCreateBodySchema, 'input'),
        WebhookPatchBody: toJsonSchema(WebhookPatchBodySchema, 'input'),
        WebhookList: {
          type: 'object',
          properties: { result: { type: 'array', items: ref('Webhook') }, next_cursor: { type: ['string', 'null'] }, limit: { type: 'integer' } },
          required: ['result', 'next_cursor', 'limit'],
        },
        WebhookDelivery: {
          type: 'object',
          description: 'One event sent to one webhook, with its attempts',
          properties: {
            id: { type: 'string', description: "The event's id (the body's id)" },
            event: { type: 'string', enum: [...WEBHOOK_EVENT_TYPES] },
            webhook_id: { type: 'string' },
            status: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
            created_at: { type: 'string', format: 'date-time' },
            next_attempt_at: { type: ['string', 'null'], format: 'date-time' },
            delivered_at: { type: ['string', 'null'], format: 'date-time' },
            attempts: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  attempt: { type: 'integer' },
                  started_at: { type: 'string', format: 'date-time' },
                  status_code: { type: ['integer', 'null'] },
                  error: { type: ['string', 'null'] },
                  duration_ms: { type: 'number' },
                },
                required: ['attempt', 'started_at', 'status_code', 'error', 'duration_ms'],
              },
            },
          },
          required: ['id', 'event', 'webhook_id', 'status', 'created_at', 'next_attempt_at', 'delivered_at', 'attempts'],
        },
        WebhookDeliveryList: {
          type: 'object',
          properties: { result: { type: 'array', items: ref('WebhookDelivery') }, next_cursor: { type: ['string', 'null'] }, limit: { type: 'integer' } },
          required: ['result', 'next_cursor', 'limit'],
        },
      },
    },
  };
}

/** `POST /link-token` and `/webhook…` (issue 17; docs/connect.md). */
function connectPaths(commonErrors: Record<string, JsonSchema>): Record<string, JsonSchema> {
  const json = (name: string, description: string) => ({ description, content: { 'application/json': { schema: ref(name) } } });
  const body = (name: string) => ({ required: true, content: { 'application/json': { schema: ref(name) } } });
  const idParameter = [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }];
  const page = [
    { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 100 } },
    { name: 'next_cursor', in: 'query', schema: { type: 'string' } },
  ];
  return {
    '/link-token': {
      post: {
        operationId: 'createLinkToken',
        summary: 'A single-use link for an end customer to connect (tenant_id) or reconnect (integrated_account_id) an account',
        requestBody: body('LinkTokenCreateBody'),
        responses: { '201': json('LinkToken', 'The link token, its expiry and the connect page URL'), '400': commonErrors['400'], '401': commonErrors['401'], '404': commonErrors['404'] },
      },
    },
    '/webhook': {
      post: {
        operationId: 'createWebhook',
        summary: 'Subscribe a URL to account events; the answer holds the signing secret (shown once)',
        requestBody: body('WebhookCreateBody'),
        responses: { '201': json('Webhook', 'The webhook with its secret'), '400': commonErrors['400'], '401': commonErrors['401'] },
      },
      get: {
        operationId: 'listWebhooks',
        parameters: page,
        responses: { '200': json('WebhookList', 'One page, oldest first'), '400': commonErrors['400'], '401': commonErrors['401'] },
      },
    },
    '/webhook/test': {
      post: {
        operationId: 'testWebhook',
        summary: 'Queue a test event for one webhook',
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } } } },
        responses: {
          '202': {
            description: 'The queued event',
            content: {
              'application/json': {
                schema: { type: 'object', properties: { id: { type: 'string' }, event: { type: 'string', const: 'test' }, webhook_id: { type: 'string' } }, required: ['id', 'event', 'webhook_id'] },
              },
            },
          },
          '400': commonErrors['400'],
          '401': commonErrors['401'],
          '404': commonErrors['404'],
        },
      },
    },
    '/webhook/{id}': {
      parameters: idParameter,
      get: { operationId: 'getWebhook', responses: { '200': json('Webhook', 'The webhook (no secret)'), '401': commonErrors['401'], '404': commonErrors['404'] } },
      patch: {
        operationId: 'updateWebhook',
        requestBody: body('WebhookPatchBody'),
        responses: { '200': json('Webhook', 'The webhook (no secret)'), '400': commonErrors['400'], '401': commonErrors['401'], '404': commonErrors['404'] },
      },
      delete: {
        operationId: 'deleteWebhook',
        responses: {
          '200': { description: 'Its id', content: { 'application/json': { schema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } } } },
          '401': commonErrors['401'],
          '404': commonErrors['404'],
        },
      },
    },
    '/webhook/{id}/deliveries': {
      parameters: idParameter,
      get: {
        operationId: 'listWebhookDeliveries',
        parameters: page,
        responses: { '200': json('WebhookDeliveryList', 'Newest first, with their attempts'), '400': commonErrors['400'], '401': commonErrors['401'], '404': commonErrors['404'] },
      },
    },
  };
}
