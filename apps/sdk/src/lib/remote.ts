import {
  type BatchAnswer,
  type ErrorBody,
  errorCodeOf,
  type ErrorExtras,
  type IntegratedAccount,
  type Pipeline,
  type Stage,
  type StageCreateBody,
  type StageUpdateBody,
  isUnicrmError,
  UNIFIED_METHOD_ROUTES,
  UnicrmError,
} from '@unicrm/model';
import createClient from 'openapi-fetch';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { Agent, fetch as undiciFetch, Request as UndiciRequest } from 'undici';
import type { components, operations, paths } from './generated/unicrm-api';
import { PREFERENCE_APPLIED_HEADER, REPLAYED_HEADER } from './meta';
import { encodeQuery } from './query';
import { DEFAULT_RETRY, retryDelay, type RetryPolicy } from './retry';
import type { BatchQuery, ListPage, PipelineListQuery, StageBatchItem, StageListQuery, Unicrm, UnifiedRecordQuery } from './types';
import { type Answer, type BatchCall, NEXT_CURSOR_HEADER, PREV_CURSOR_HEADER, proxyMethod, type Transport, unifiedResource } from './unified';
import { SDK_VERSION } from './version';

/** Options of {@link createUnicrmClient}. */
export interface CreateUnicrmClientOptions {
  /**
   * Where unicrm (or another Truto-compatible unified API) answers, e.g. `http://127.0.0.1:8000`; a path prefix is
   * kept (`https://example.com/crm-api`). Use `https` beyond loopback: the token travels in every request.
   */
  baseUrl: string;
  /** An API token of the server, sent as `Authorization: Bearer <token>`. */
  token: string;
  /**
   * Longest wait for a whole answer (connect, headers and body), in milliseconds; default 30 000. Then the call
   * rejects with a UnicrmError 504. A write that timed out may still have been carried out by the server.
   */
  timeoutMs?: number;
  /** Your product token, put in front of the SDK's: `User-Agent: <userAgent> unicrm-sdk/<version>`. */
  userAgent?: string;
  /**
   * Retries of calls that are safe to repeat (reads, and writes with an Idempotency-Key, which the client adds by
   * itself to every create, update, delete and proxy write): on 429 (after `Retry-After`), 409 (the key's first
   * request still running), 502, 503, 504 and network
   * failures, with capped exponential backoff and jitter, within a time budget (`budgetMs`: the whole call, waits
   * included; an attempt's timeout is cut to what is left of it). `Retry-After` is read by {@link retryAfterMs}
   * (RFC 9110: whole seconds or an HTTP-date; anything else falls back to the backoff). Defaults
   * {@link DEFAULT_RETRY}; `false` turns retries off (then `timeoutMs` alone bounds a call).
   */
  retry?: Partial<RetryPolicy> | false;
}

const SAFE = { safe: true, idempotencyKey: false } as const;

/** Default of {@link CreateUnicrmClientOptions.timeoutMs}, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Headers of an error answer kept on `UnicrmError.headers`: those the API forwards from the provider
 * (docs/contract.md "Errors"), and `Idempotent-Replayed` of a replayed error, as the embedded client has it too.
 */
const FORWARDED_HEADER = /^(retry-after|ratelimit-(limit|remaining|reset|policy)|x-ratelimit-[a-z-]+|idempotent-replayed)$/;

/** True when A and B are the same type (not only assignable both ways, which optional fields would let pass). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
/** An intersection as one object type, for {@link Same}. */
type Flat<T> = { [K in keyof T]: T[K] };
type Check<T extends true> = T;
/** The JSON body of an operation's answer with status S. */
type Json<O, S extends number> = O extends { responses: { [K in S]: { content: { 'application/json': infer B } } } } ? B : never;
/**
 * The SDK's public types come from the model's zod schemas, the remote client's from the generated file: both must
 * describe the same shapes, or the build fails here (then run `npm run codegen:sdk`).
 */
type _GeneratedTypesMatchTheModel = [
  Check<Same<Stage, components['schemas']['Stage']>>,
  Check<Same<StageCreateBody, components['schemas']['StageCreateBody']>>,
  Check<Same<StageUpdateBody, components['schemas']['StageUpdateBody']>>,
  Check<Same<Pipeline, components['schemas']['Pipeline']>>,
  Check<Same<ListPage<Stage>, components['schemas']['StageList']>>,
  Check<Same<ListPage<Pipeline>, components['schemas']['PipelineList']>>,
  Check<Same<IntegratedAccount, components['schemas']['IntegratedAccount']>>,
  Check<Same<ErrorBody, components['schemas']['Error']>>,
  // The SDK's query types are the API's query parameters.
  Check<Same<Flat<StageListQuery>, operations['listStages']['parameters']['query']>>,
  Check<Same<Flat<PipelineListQuery>, operations['listPipelines']['parameters']['query']>>,
  Check<Same<UnifiedRecordQuery, operations['getStage']['parameters']['query']>>,
  Check<Same<UnifiedRecordQuery, operations['updateStage']['parameters']['query']>>,
  Check<Same<UnifiedRecordQuery, operations['deleteStage']['parameters']['query']>>,
  Check<Same<UnifiedRecordQuery, operations['getPipeline']['parameters']['query']>>,
  // Every route the generic transport builds is in the document, with the method it sends and the answer it expects.
  Check<Same<Json<paths['/unified/crm/stages']['get'], 200>, components['schemas']['StageList']>>,
  Check<Same<Json<paths['/unified/crm/stages']['post'], 201>, components['schemas']['Stage']>>,
  Check<Same<Json<paths['/unified/crm/stages/{id}']['get'], 200>, components['schemas']['Stage']>>,
  Check<Same<Json<paths['/unified/crm/stages/{id}']['patch'], 200>, components['schemas']['Stage']>>,
  Check<Same<Json<paths['/unified/crm/stages/{id}']['delete'], 200>, components['schemas']['Stage']>>,
  Check<Same<Json<paths['/unified/crm/pipelines']['get'], 200>, components['schemas']['PipelineList']>>,
  Check<Same<Json<paths['/unified/crm/pipelines/{id}']['get'], 200>, components['schemas']['Pipeline']>>,
  Check<Same<BatchAnswer, components['schemas']['BatchAnswer']>>,
  Check<Same<Json<paths['/unified/crm/stages/batch']['post'], 200>, components['schemas']['BatchAnswer']>>,
  Check<Same<Flat<BatchQuery>, operations['batchStages']['parameters']['query']>>,
  // Every item the SDK's types allow is an item of the document's batch body.
  Check<StageBatchItem extends components['schemas']['BatchBody']['items'][number] ? true : false>,
  Check<'get' | 'post' extends keyof paths['/proxy/{resource}'] ? true : false>,
  Check<'get' | 'post' | 'patch' | 'delete' extends keyof paths['/proxy/{resource}/{id}'] ? true : false>,
];

/** The write's outcome the 504 of a call that timed out leaves open, by HTTP method. */
const MAY_HAVE_HAPPENED: Record<string, string> = {
  POST: ' A create may still have been carried out.',
  PATCH: ' An update may still have been carried out.',
  DELETE: ' A delete may still have been carried out.',
};

/** The same for a batch: any of its writes. */
const BATCH_MAY_HAVE_HAPPENED = ' Some of its writes may still have been carried out: send it again with the same Idempotency-Key (and item keys).';

/**
 * openapi-fetch's client with the path as a plain string: the generic transport builds
 * `/unified/<model>/<resource>[/{id}]` and `/proxy/{resource}[/{id}]` for any resource, which the typed methods cannot
 * name one by one. The checks above keep those paths in the generated document.
 */
interface UntypedClient {
  request(method: string, url: string, init: Record<string, unknown>): Promise<FetchResult>;
}

/** What openapi-fetch resolves to (with `parseAs: 'text'`). */
interface FetchResult {
  data?: unknown;
  error?: unknown;
  response: Response;
}

function errorCode(error: unknown): string {
  return errorCodeOf(error) ?? ((error as Error)?.message || (error as Error)?.name || 'unknown error');
}

function withCause(error: UnicrmError, cause: unknown): UnicrmError {
  Object.defineProperty(error, 'cause', { value: cause, enumerable: false, configurable: true, writable: true });
  return error;
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}...` : flat || '(empty)';
}

function isErrorBody(value: unknown): value is ErrorBody {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as ErrorBody).statusCode === 'number' &&
    typeof (value as ErrorBody).message === 'string'
  );
}

function forwardedHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    const key = name.toLowerCase();
    if (FORWARDED_HEADER.test(key)) out[key] = value;
  });
  return out;
}

/**
 * The UnicrmError for an error answer: the server's own error body when it sent one (statusCode, message and
 * every other field kept, `error` included), else a UnicrmError with the HTTP status and a message quoting the body.
 */
function errorFromAnswer(response: Response, error: unknown, what: string, origin: string): UnicrmError {
  const headers = forwardedHeaders(response.headers);
  if (isErrorBody(error)) {
    const { statusCode, message, ...rest } = error;
    // `rest` keeps the server's `error` phrase: it overrides the one UnicrmError derives from the status.
    return new UnicrmError(statusCode, message, rest as ErrorExtras, headers);
  }
  const text = typeof error === 'string' ? error : JSON.stringify(error ?? '');
  return new UnicrmError(
    response.status,
    `${origin} answered ${what} with ${response.status} ${response.statusText || STATUS_CODES[response.status] || ''} ` +
      `and a body that is not a unicrm error: ${snippet(text)}`.replace(/ {2,}/g, ' '),
    {},
    headers,
  );
}

/**
 * Creates the remote client: the {@link Unicrm} interface over HTTP, against a unicrm server (or anything that
 * speaks Truto's unified API). Built on openapi-fetch with the types generated from the API's OpenAPI document
 * (`GET /openapi.json`; `generated/unicrm-api.ts`), over its own undici connection pool.
 *
 * Every request carries `Authorization: Bearer <token>`, `User-Agent: unicrm-sdk/<version>` and
 * `Accept: application/json`; query objects are encoded with qs in the indices format, as Truto's TS SDK does and
 * the API parses it. The `crm.*` methods and `proxy` are one generic transport over the document's paths
 * (`/unified/<model>/<resource>[/{id}]`, `/proxy/{resource}[/{id}]`). Their writes (create, update, delete, proxy
 * POST/PATCH/DELETE, and `crm.stages.batch` as a whole) carry an `Idempotency-Key` (one of their own unless given
 * one, or `false`), so they and reads are retried per `options.retry`; a write without a key, and the `accounts`
 * writes, are sent once.
 *
 * Errors: every failure rejects with a UnicrmError. An error answer becomes the UnicrmError the server described
 * (`statusCode`, `message`, `body` as sent, `headers` = the forwarded `Retry-After` / rate-limit headers). No
 * connection, or an answer that breaks off: 502. No whole answer within `timeoutMs`: 504. A success whose body is
 * not JSON: 502. The original failure is on `error.cause`.
 * @throws TypeError when `baseUrl` is not an http(s) URL, `token` is empty or `timeoutMs` is not a positive number
 */
export function createUnicrmClient(options: CreateUnicrmClientOptions): Unicrm {
  let base: URL;
  try {
    base = new URL(options.baseUrl);
  } catch {
    throw new TypeError(`baseUrl must be an http(s) URL such as http://127.0.0.1:8000, not "${options.baseUrl}".`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new TypeError(`baseUrl must be an http(s) URL such as http://127.0.0.1:8000, not "${options.baseUrl}".`);
  }
  if (typeof options.token !== 'string' || options.token.trim() === '') throw new TypeError('token must be a non-empty API token.');
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError(`timeoutMs must be a positive number of milliseconds, not ${timeoutMs}.`);

  const origin = `${base.origin}${base.pathname.replace(/\/+$/, '')}`;
  const userAgent = options.userAgent ? `${options.userAgent} unicrm-sdk/${SDK_VERSION}` : `unicrm-sdk/${SDK_VERSION}`;
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: 64, pipelining: 1 });
  let closed = false;

  const client = createClient<paths>({
    baseUrl: origin,
    // undici's own fetch and Request (one copy of undici, so its Agent can be used and closed).
    fetch: undiciFetch as unknown as typeof globalThis.fetch,
    Request: UndiciRequest as unknown as typeof globalThis.Request,
    requestInitExt: { dispatcher: agent },
    headers: { Authorization: `Bearer ${options.token}`, 'User-Agent': userAgent, Accept: 'application/json' },
    querySerializer: (query) => encodeQuery(query),
  });

  const policy: RetryPolicy | undefined = options.retry === false ? undefined : { ...DEFAULT_RETRY, ...options.retry };

  /**
   * Runs a call, retrying it per {@link retryDelay} when `repeatable` says it is safe to repeat. Each attempt may take
   * the smaller of `timeoutMs` and what is left of the retry budget (`budgetMs`, counted from the call's start), so
   * a call with retries never outlives its budget by more than the timer's slack. Rejects with the last failure.
   * @param emptyIsNull true when an empty success body is an answer (`null`: the proxy), not a broken one
   * @returns the parsed body, the response and the number of attempts
   */
  async function exchange<T>(
    what: string,
    run: (signal: AbortSignal) => Promise<FetchResult>,
    repeatable: { safe: boolean; idempotencyKey: boolean } = { safe: false, idempotencyKey: false },
    emptyIsNull = false,
  ): Promise<{ value: T; response: Response; attempts: number }> {
    const started = Date.now();
    let failure: unknown;
    for (let attempt = 1; ; attempt++) {
      const left = policy ? policy.budgetMs - (Date.now() - started) : Infinity;
      // The wait before this retry used up the budget (the timer fired late): no attempt without time to answer.
      if (attempt > 1 && left <= 0) throw failure;
      try {
        const { value, response } = await once<T>(what, run, Math.min(timeoutMs, left), left < timeoutMs ? policy?.budgetMs : undefined, emptyIsNull);
        return { value, response, attempts: attempt };
      } catch (error) {
        const wait = policy && isUnicrmError(error) ? retryDelay(error, attempt, Date.now() - started, repeatable, policy) : undefined;
        if (wait === undefined || closed) throw error;
        failure = error;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  /** {@link exchange}, resolving to the body only. */
  async function call<T>(what: string, run: (signal: AbortSignal) => Promise<FetchResult>, repeatable?: { safe: boolean; idempotencyKey: boolean }): Promise<T> {
    return (await exchange<T>(what, run, repeatable)).value;
  }

  /**
   * Runs one attempt within `limitMs` and turns every failure into a UnicrmError; resolves to the parsed JSON body and the response.
   * @param budgetMs set when the limit is what is left of the retry budget (for the 504's message)
   */
  async function once<T>(
    what: string,
    run: (signal: AbortSignal) => Promise<FetchResult>,
    limitMs: number,
    budgetMs: number | undefined,
    emptyIsNull: boolean,
  ): Promise<{ value: T; response: Response }> {
    if (closed) throw new Error('This unicrm client is closed.');
    const signal = AbortSignal.timeout(Math.max(1, Math.ceil(limitMs)));
    let result: FetchResult;
    try {
      result = await run(signal);
    } catch (error) {
      if (signal.aborted) {
        const within = budgetMs === undefined ? `within ${timeoutMs} ms` : `within the retry budget of ${budgetMs} ms`;
        const open = what.endsWith('/batch') ? BATCH_MAY_HAVE_HAPPENED : (MAY_HAVE_HAPPENED[what.split(' ', 1)[0] as string] ?? '');
        throw withCause(new UnicrmError(504, `unicrm at ${origin} did not answer ${what} ${within}.${open}`), error);
      }
      const code = errorCode(error);
      throw withCause(new UnicrmError(502, `Could not reach unicrm at ${origin} for ${what} (${code}). Is the server running?`), error);
    }
    const { response } = result;
    if (!response.ok) throw errorFromAnswer(response, result.error, what, origin);
    const text = typeof result.data === 'string' ? result.data : '';
    if (emptyIsNull && text === '') return { value: null as T, response };
    try {
      return { value: JSON.parse(text) as T, response };
    } catch (error) {
      throw withCause(
        new UnicrmError(502, `unicrm at ${origin} answered ${what} with ${response.status} and a body that is not JSON: ${snippet(text)}`),
        error,
      );
    }
  }

  const untyped = client as unknown as UntypedClient;

  /**
   * The remote {@link Transport}: a unified call or a proxy call as an HTTP request. Reads are retried; a write
   * (POST, PATCH, DELETE) carries an `Idempotency-Key` (the caller's, else one of its own unless `false`), which makes
   * its retries safe, and is retried only with one.
   */
  const send: Transport = async (c) => {
    if (c.kind === 'batch') return sendBatch(c);
    const http = c.kind === 'unified' ? UNIFIED_METHOD_ROUTES[c.method].http : c.method;
    const write = http !== 'GET';
    const key =
      typeof c.idempotencyKey === 'string' ? c.idempotencyKey : write && c.idempotencyKey !== false ? `unicrm-sdk-${randomUUID()}` : undefined;
    const base = c.kind === 'unified' ? `/unified/${c.model}/${c.resource}` : '/proxy/{resource}';
    const path = c.id === undefined ? base : `${base}/{id}`;
    const pathParams = { ...(c.kind === 'proxy' && { resource: c.resource }), ...(c.id !== undefined && { id: c.id }) };
    const what = `${http} ${c.kind === 'unified' ? base : `/proxy/${c.resource}`}${c.id === undefined ? '' : '/:id'}`;
    const { value, response, attempts } = await exchange<unknown>(
      what,
      (signal) =>
        untyped.request(http, path, {
          params: { query: c.query, ...(Object.keys(pathParams).length > 0 && { path: pathParams }) },
          ...(c.body !== undefined && { body: c.body }),
          ...(key !== undefined && { headers: { 'Idempotency-Key': key } }),
          parseAs: 'text',
          signal,
        }),
      write ? { safe: false, idempotencyKey: key !== undefined } : SAFE,
      c.kind === 'proxy',
    );
    const headers: Record<string, string> = {};
    for (const name of [REPLAYED_HEADER, NEXT_CURSOR_HEADER, PREV_CURSOR_HEADER]) {
      const header = response.headers.get(name);
      if (header !== null) headers[name] = header;
    }
    const answer: Answer = { statusCode: response.status, body: value, headers, attempts };
    if (key !== undefined) answer.idempotencyKey = key;
    return answer;
  };
  /**
   * A batch write as `POST /unified/<model>/<resource>/batch`: with an `Idempotency-Key` (the caller's, else one of
   * its own unless `false`), which makes the whole batch safe to send again (a replay, or each item guarded by its own
   * key), so it is retried as a create is; `Prefer: return=minimal` when asked.
   */
  async function sendBatch(c: BatchCall): Promise<Answer> {
    const key = typeof c.idempotencyKey === 'string' ? c.idempotencyKey : c.idempotencyKey !== false ? `unicrm-sdk-${randomUUID()}` : undefined;
    const path = `/unified/${c.model}/${c.resource}/batch`;
    const headers: Record<string, string> = {
      ...(key !== undefined && { 'Idempotency-Key': key }),
      ...(c.minimal === true && { Prefer: 'return=minimal' }),
    };
    const { value, response, attempts } = await exchange<unknown>(
      `POST ${path}`,
      (signal) => untyped.request('POST', path, { params: { query: c.query }, body: c.body, headers, parseAs: 'text', signal }),
      { safe: false, idempotencyKey: key !== undefined },
    );
    const answerHeaders: Record<string, string> = {};
    for (const name of [REPLAYED_HEADER, PREFERENCE_APPLIED_HEADER]) {
      const header = response.headers.get(name);
      if (header !== null) answerHeaders[name] = header;
    }
    return { statusCode: response.status, body: value, headers: answerHeaders, attempts, ...(key !== undefined && { idempotencyKey: key }) };
  }

  const stages = unifiedResource(send, 'crm', 'stages');
  const pipelines = unifiedResource(send, 'crm', 'pipelines');

  return {
    crm: {
      stages: stages as Unicrm['crm']['stages'],
      pipelines: { list: pipelines.list, get: pipelines.get } as Unicrm['crm']['pipelines'],
    },
    proxy: proxyMethod(send) as Unicrm['proxy'],
    accounts: {
      create: (body) =>
        call('POST /integrated-account', (signal) => client.POST('/integrated-account', { body, parseAs: 'text', signal })),
      list: (query = {}) =>
        call('GET /integrated-account', (signal) => client.GET('/integrated-account', { params: { query }, parseAs: 'text', signal }), SAFE),
      get: (id) =>
        call(
          'GET /integrated-account/:id',
          (signal) => client.GET('/integrated-account/{id}', { params: { path: { id } }, parseAs: 'text', signal }),
          SAFE,
        ),
      update: (id, body) =>
        call('PATCH /integrated-account/:id', (signal) =>
          client.PATCH('/integrated-account/{id}', { params: { path: { id } }, body, parseAs: 'text', signal }),
        ),
      delete: (id) =>
        call('DELETE /integrated-account/:id', (signal) =>
          client.DELETE('/integrated-account/{id}', { params: { path: { id } }, parseAs: 'text', signal }),
        ),
    },
    linkTokens: {
      // Sent once: a second link token would be harmless but is not what was asked.
      create: (body) => call('POST /link-token', (signal) => client.POST('/link-token', { body, parseAs: 'text', signal })),
    },
    webhooks: {
      create: (body) => call('POST /webhook', (signal) => client.POST('/webhook', { body, parseAs: 'text', signal })),
      list: (query = {}) => call('GET /webhook', (signal) => client.GET('/webhook', { params: { query }, parseAs: 'text', signal }), SAFE),
      get: (id) => call('GET /webhook/:id', (signal) => client.GET('/webhook/{id}', { params: { path: { id } }, parseAs: 'text', signal }), SAFE),
      update: (id, body) =>
        call('PATCH /webhook/:id', (signal) => client.PATCH('/webhook/{id}', { params: { path: { id } }, body, parseAs: 'text', signal }), SAFE),
      delete: (id) => call('DELETE /webhook/:id', (signal) => client.DELETE('/webhook/{id}', { params: { path: { id } }, parseAs: 'text', signal })),
      test: (id) => call('POST /webhook/test', (signal) => client.POST('/webhook/test', { body: { id }, parseAs: 'text', signal })),
      deliveries: (id, query = {}) =>
        call(
          'GET /webhook/:id/deliveries',
          (signal) => client.GET('/webhook/{id}/deliveries', { params: { path: { id }, query }, parseAs: 'text', signal }),
          SAFE,
        ),
    },
    async close() {
      if (closed) return;
      closed = true;
      await agent.close();
    },
  };
}
