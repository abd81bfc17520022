import { Router } from 'express';
import { SandboxHttpError } from '../errors';
import { sendEmpty, sendJson } from '../http';
import { OpenApiContract, type OpenApiDocument } from '../contract/openapi-contract';
import type { ProviderInstance, ProviderModule } from '../provider';
import type { ProviderRateLimits } from '../rate-limit';

/**
 * A test-only provider module ("Fakedesk"), to prove the kit works for a provider that is not Pipeliner: one route
 * (`/v1/things`: GET lists, POST creates, DELETE empties), an API key header, its own error shape
 * (`{ error: { type, message, field? } }`), validation errors on 400, a JSON type with a charset, and an OpenAPI 3.1
 * document. Never registered in `providers.ts`.
 */

/** Fakedesk's options. */
export interface FakedeskOptions {
  /** The `x-api-key` it accepts; default 'fake-key'. */
  apiKey?: string;
  /** Names of the things it starts with; default ['First']. */
  seed?: string[];
}

/** One Fakedesk sandbox's state. */
export interface FakedeskInstance extends ProviderInstance {
  things(): Array<{ id: number; name: unknown }>;
}

const error = (status: number, type: string, message: string, extra: Record<string, unknown> = {}) =>
  new SandboxHttpError(status, { error: { type, message, ...extra } });

/** Fakedesk's OpenAPI 3.1 document. */
export const FAKEDESK_DOCUMENT: OpenApiDocument = {
  openapi: '3.1.0',
  servers: [{ url: 'https://api.fakedesk.test/v1' }],
  paths: {
    '/things': {
      get: {
        operationId: 'listThings',
        parameters: [{ name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1 } }],
        responses: {
          '200': { description: 'ok', content: { 'application/json': { schema: { type: 'object', required: ['data'], properties: { data: { type: 'array', items: { $ref: '#/components/schemas/Thing' } } } } } } },
          '4XX': { $ref: '#/components/responses/Error' },
          '5XX': { $ref: '#/components/responses/Error' },
        },
      },
      post: {
        operationId: 'createThing',
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { type: 'object', required: ['name'], properties: { name: { type: 'string' } }, additionalProperties: false } } },
        },
        responses: {
          '201': { description: 'created', content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } },
          '4XX': { $ref: '#/components/responses/Error' },
          '5XX': { $ref: '#/components/responses/Error' },
        },
      },
      delete: {
        operationId: 'deleteThings',
        responses: { '204': { description: 'emptied' }, '4XX': { $ref: '#/components/responses/Error' }, '5XX': { $ref: '#/components/responses/Error' } },
      },
    },
  },
  components: {
    responses: { Error: { description: 'an error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } } },
    schemas: {
      Thing: { type: 'object', required: ['id', 'name'], properties: { id: { type: 'integer' }, name: { type: 'string' } } },
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['type', 'message'],
            properties: { type: { type: 'string' }, message: { type: 'string' }, field: { type: ['string', 'null'] } },
          },
        },
      },
    },
  },
};

let contract: OpenApiContract | undefined;

/** Fakedesk's rate-limit settings: `max` requests per `windowMs` per API key; a POST costs `postCost`. */
export interface FakedeskRateLimits {
  max: number;
  windowMs: number;
  postCost: number;
}

/**
 * Fakedesk's rate limits (test-only): a rolling window per `x-api-key` (a wrong key is not counted), `X-Fake-Limit` /
 * `X-Fake-Remaining` / `X-Fake-Reset-Ms` on every counted answer, and a 429 in Fakedesk's shape.
 */
export const FAKEDESK_RATE_LIMITS: ProviderRateLimits<FakedeskRateLimits, FakedeskInstance & { apiKey: string }> = {
  defaults: { max: 3, windowMs: 60_000, postCost: 1 },
  meanings: { max: 'requests per window', windowMs: 'window in ms', postCost: 'units a POST spends' },
  parse(value) {
    const input = (value ?? {}) as Record<string, unknown>;
    const out: Partial<FakedeskRateLimits> = {};
    for (const [key, item] of Object.entries(input)) {
      if (!['max', 'windowMs', 'postCost'].includes(key)) throw new Error(`${key}: unknown setting`);
      if (typeof item !== 'number' || !Number.isInteger(item) || item < 0) throw new Error(`${key}: must be a whole number`);
      out[key as keyof FakedeskRateLimits] = item;
    }
    return out;
  },
  windows: (settings) => [{ name: 'requests', max: settings.max, windowMs: settings.windowMs }],
  classify: (req, instance, settings) =>
    req.headers['x-api-key'] === instance.apiKey ? { key: instance.apiKey, costs: { requests: req.method === 'POST' ? settings.postCost : 1 } } : undefined,
  headers: (decision) => ({
    'X-Fake-Limit': String(decision.windows['requests'].max),
    'X-Fake-Remaining': String(decision.windows['requests'].remaining),
    'X-Fake-Reset-Ms': String(decision.windows['requests'].resetMs),
  }),
  refusal: () => error(429, 'rate_limited', 'Slow down.'),
};

/** A Fakedesk module; `name`, `envPrefix` and `defaultPort` can be changed to register two of them side by side. */
export function fakedeskModule(
  overrides: Partial<Pick<ProviderModule, 'name' | 'title' | 'envPrefix' | 'defaultPort'>> = {},
): ProviderModule<FakedeskOptions, FakedeskInstance & { apiKey: string }> {
  const title = overrides.title ?? 'Fakedesk';
  return {
    name: overrides.name ?? 'fakedesk',
    title,
    summary: 'a test-only provider with one route',
    defaultPort: overrides.defaultPort ?? 8999,
    envPrefix: overrides.envPrefix ?? 'FAKEDESK_SANDBOX',
    settings: [{ name: `${overrides.envPrefix ?? 'FAKEDESK_SANDBOX'}_API_KEY`, default: 'fake-key', meaning: 'the x-api-key it accepts' }],
    jsonContentType: 'application/json; charset=utf-8',
    rateLimits: FAKEDESK_RATE_LIMITS,
    errors: {
      validationStatus: 400,
      fault: (rule) =>
        rule.missingField === undefined
          ? { body: { error: { type: `injected_${rule.status}`, message: `Injected HTTP ${rule.status}.` } }, headers: { 'X-Fakedesk-Fault': 'yes' } }
          : { body: { error: { type: 'validation_failed', message: `${rule.missingField} is required.`, field: rule.missingField } } },
      notFound: (request) => error(404, 'not_found', `No route ${request.method} ${request.path}.`),
      badRequest: (message) => error(400, 'bad_request', message),
      tooLarge: (limit) => error(413, 'too_large', `Bodies are limited to ${limit}.`),
      internal: () => error(500, 'internal', 'Something broke.'),
    },
    optionsFromEnv: (env) => ({ apiKey: env[`${overrides.envPrefix ?? 'FAKEDESK_SANDBOX'}_API_KEY`] || undefined }),
    contract: () => (contract ??= new OpenApiContract(FAKEDESK_DOCUMENT)),
    create: (options) => {
      const apiKey = options.apiKey ?? 'fake-key';
      const seed = options.seed ?? ['First'];
      let things: Array<{ id: number; name: unknown }> = [];
      const reset = () => {
        things = seed.map((name, index) => ({ id: index + 1, name }));
      };
      reset();
      const router = Router();
      router
        .route('/v1/things')
        .all((req, _res, next) => next(req.headers['x-api-key'] === apiKey ? undefined : error(401, 'unauthorized', 'Bad or missing x-api-key.')))
        .get((_req, res) => sendJson(res, 200, { data: things }))
        .post((req, res) => {
          let body: { name?: unknown };
          try {
            body = JSON.parse(Buffer.isBuffer(req.body) && req.body.length > 0 ? req.body.toString('utf8') : '{}');
          } catch {
            throw error(400, 'bad_request', 'The body is not JSON.');
          }
          // Lenient on purpose: a non-string name is stored as given, so the contract checks have something to catch.
          if (body.name === undefined) throw error(400, 'validation_failed', 'name is required.', { field: 'name' });
          const thing = { id: things.length + 1, name: body.name };
          things.push(thing);
          sendJson(res, 201, thing);
        })
        .delete((_req, res) => {
          things = [];
          sendEmpty(res, 204);
        });
      return {
        apiKey,
        router,
        reset,
        things: () => things.map((thing) => ({ ...thing })),
        describe: (url) => ({
          integration: 'fakedesk',
          context: { api_url: `${url}/v1`, api_key: apiKey },
          details: [
            { label: 'API URL', value: `${url}/v1` },
            { label: 'API key', value: apiKey },
          ],
          examples: [`curl -H 'x-api-key: ${apiKey}' ${url}/v1/things`],
        }),
      };
    },
  };
}
