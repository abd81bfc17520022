import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type Ajv from 'ajv';
import type { ErrorObject } from 'ajv';
import { createAjv, type Validator } from './ajv';
import { type EntityView, nameTreeKey, parseNameTree, SchemaConverter, type SchemaObject, withoutNull } from './schema';

/**
 * Contract checks against Pipeliner's own OpenAPI document (docs/pipeliner-sandbox.md "Contract tests"): every
 * request is checked against its operation's parameters and request body, every answer against the response schema
 * of its status. The sandbox runs them on each exchange when started with `contract: true`; tests can call them
 * directly.
 */

/** Where the committed copy of Pipeliner's document lives, relative to the repository root. */
export const PIPELINER_OPENAPI_RELATIVE_PATH = 'libs/connectors/pipeliner/openapi/pipeliner-steps-pipelines.subset.openapi.json';

/** Which part of an exchange broke the contract. */
export type ContractLocation = 'operation' | 'path' | 'query' | 'content-type' | 'body' | 'status';

/** One mismatch between an exchange and Pipeliner's OpenAPI document. */
export interface ContractViolation {
  direction: 'request' | 'response';
  method: string;
  /** The request path as received (without the query). */
  path: string;
  /** The operation of the document (`Steps.create`), when one matched. */
  operationId?: string;
  /** The answer's status (responses only). */
  status?: number;
  location: ContractLocation;
  /** JSON pointer inside the located part: `/name` of the body, `/first` of the query, '' for the whole. */
  instancePath: string;
  message: string;
}

/** A request to check. */
export interface ContractRequest {
  method: string;
  /** The path, with the `/api/v100/rest/spaces/{space_id}` prefix (or without it: `/entities/Steps`). */
  path: string;
  /** The raw query string without '?' ('' when none). */
  query?: string;
  /** The raw body text as sent ('' or undefined when none). */
  body?: string;
  /** The request's Content-Type header. */
  contentType?: string;
}

/** An answer to check, with the request it answers (its `expand` and `load-only` shape the expected entity). */
export interface ContractResponse {
  method: string;
  path: string;
  query?: string;
  status: number;
  /** The parsed JSON body. */
  body: unknown;
  /** The answer's Content-Type header; not checked when undefined. */
  contentType?: string;
}

/** Options of {@link loadPipelinerContract}. */
export interface ContractOptions {
  /** The parsed OpenAPI document; default: read from `specPath`. */
  document?: OpenApiDocument;
  /** Path of the document; default: {@link findPipelinerOpenApi}. */
  specPath?: string;
}

/** The parts of an OpenAPI 3.0 document the contract reads. */
export interface OpenApiDocument {
  openapi: string;
  servers?: Array<{ url: string }>;
  paths: Record<string, Record<string, unknown>>;
  components?: { schemas?: Record<string, SchemaObject> };
}

interface ParameterObject {
  name: string;
  in: 'query' | 'path' | 'header' | 'cookie';
  required?: boolean;
  schema?: SchemaObject;
  style?: string;
}

interface MediaTypes {
  /** Normalised media types (`application / json` -> `application/json`) to their schema. */
  content: Map<string, unknown>;
}

interface Operation {
  method: string;
  /** The document's path (`/entities/Steps/{id}`). */
  template: string;
  segments: string[];
  literals: number;
  operationId: string;
  query: Map<string, ParameterObject>;
  pathParams: Map<string, ParameterObject>;
  requestBody?: MediaTypes & { required: boolean };
  responses: Map<string, MediaTypes>;
  /** Lazily compiled validators. */
  cache: Map<string, Validator>;
}

/** Status key of an answer checked against `Error` because its operation does not declare the status. */
const ERROR_FALLBACK = 'Error';
const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
const int32 = { type: 'integer', format: 'int32' };
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** `application / json; charset=utf-8` -> `application/json`: the document's typo is read as `application/json`. */
export function normaliseMediaType(text: string): string {
  return text.split(';')[0].replace(/\s+/g, '').toLowerCase();
}

const isJsonMediaType = (type: string) => type === 'application/json' || /^application\/[\w.+-]+\+json$/.test(type);

/**
 * Finds the committed copy of Pipeliner's OpenAPI document by walking up from this file (sources under Jest, or
 * `dist/` after a build) and from the working directory to the repository root.
 * @throws Error when no directory above holds it
 */
export function findPipelinerOpenApi(): string {
  for (const start of [__dirname, process.cwd()]) {
    let dir = resolve(start);
    for (;;) {
      const candidate = join(dir, PIPELINER_OPENAPI_RELATIVE_PATH);
      if (existsSync(candidate)) return candidate;
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  throw new Error(`Cannot find ${PIPELINER_OPENAPI_RELATIVE_PATH} above ${__dirname} or ${process.cwd()}; pass its path as specPath.`);
}

/** One violation as a line: `request POST /api/.../Steps [Steps.create] body /name: must be string`. */
export function formatContractViolation(violation: ContractViolation): string {
  const status = violation.status === undefined ? '' : ` -> ${violation.status}`;
  const operation = violation.operationId ? ` [${violation.operationId}]` : '';
  return `${violation.direction} ${violation.method} ${violation.path}${status}${operation} ${violation.location} ${violation.instancePath || '(root)'}: ${violation.message}`;
}

function ajvViolations(errors: ErrorObject[] | null | undefined, base: Omit<ContractViolation, 'instancePath' | 'message'>): ContractViolation[] {
  return (errors ?? []).map((error) => ({
    ...base,
    instancePath: error.instancePath,
    message: messageOf(error),
  }));
}

/** ajv's message, made readable where it is terse (`must be string,null` -> `must be string or null`). */
function messageOf(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'type' && Array.isArray(params.type)) return `must be ${params.type.join(' or ')}`;
  if (error.keyword === 'enum' && Array.isArray(params.allowedValues)) return `${error.message}: ${JSON.stringify(params.allowedValues)}`;
  return error.message ?? 'is invalid';
}

/**
 * Pipeliner's OpenAPI document compiled into request and answer checks. Build it with
 * {@link loadPipelinerContract}; one instance can serve any number of sandboxes.
 */
export class OpenApiContract {
  private readonly operations: Operation[] = [];
  private readonly prefix: string[];
  /** Every query parameter of the document, by name (see collectQueryParameters). */
  private readonly documentQuery = new Map<string, ParameterObject>();
  private readonly converter: SchemaConverter;
  private readonly bodyAjv: Ajv = createAjv('request-body');
  private readonly parameterAjv: Ajv = createAjv('parameters');
  private readonly responseAjv: Ajv = createAjv('response');

  /** @throws Error when the document is not OpenAPI 3.0 or uses a construct the contract does not support */
  constructor(document: OpenApiDocument) {
    if (!/^3\.0\.\d+$/.test(String(document.openapi))) throw new Error(`Expected an OpenAPI 3.0 document, got openapi: ${String(document.openapi)}.`);
    this.converter = new SchemaConverter(document.components?.schemas ?? {});
    // The servers' path (`/api/v100/rest/spaces/{space_id}`) comes before every path of the document.
    const serverPath = (document.servers?.[0]?.url ?? '').replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '');
    this.prefix = serverPath.split('/').filter(Boolean);
    for (const [template, item] of Object.entries(document.paths)) {
      for (const [method, raw] of Object.entries(item)) {
        if (!HTTP_METHODS.has(method) || !isObject(raw)) continue;
        this.operations.push(this.readOperation(method.toUpperCase(), template, raw));
      }
    }
    this.collectQueryParameters();
    // Compile every request and answer schema now, so a schema ajv cannot compile fails at load, not mid-test.
    for (const operation of this.operations) {
      if (operation.requestBody) for (const allow of [false, true]) this.bodyValidator(operation, allow);
      this.parameterValidator(operation, 'query');
      this.parameterValidator(operation, 'path');
      for (const status of operation.responses.keys()) this.responseValidator(operation, status, { expand: new Map() });
    }
  }

  /** The operations of the document, as `METHOD template operationId`. */
  listOperations(): Array<{ method: string; path: string; operationId: string }> {
    return this.operations.map((op) => ({ method: op.method, path: op.template, operationId: op.operationId }));
  }

  /** The operation a request goes to, or undefined when the document has none for it. */
  findOperation(method: string, path: string): { operationId: string; path: string } | undefined {
    const { operation } = this.match(method.toUpperCase(), path);
    return operation && { operationId: operation.operationId, path: operation.template };
  }

  /** Checks a request against its operation's path and query parameters and its request body. */
  checkRequest(request: ContractRequest): ContractViolation[] {
    const method = request.method.toUpperCase();
    const base = { direction: 'request' as const, method, path: request.path };
    const found = this.match(method, request.path);
    if (!found.operation) return [{ ...base, location: 'operation', instancePath: '', message: found.reason }];
    const operation = found.operation;
    const located = { ...base, operationId: operation.operationId };
    const violations: ContractViolation[] = [];

    violations.push(...ajvViolations(this.runParameters(operation, 'path', found.pathParams), { ...located, location: 'path' }));

    const params = new URLSearchParams(request.query ?? '');
    const { values, unknown } = this.readQuery(operation, params);
    for (const name of unknown) {
      violations.push({ ...located, location: 'query', instancePath: `/${name}`, message: 'is not a query parameter of any operation of the document' });
    }
    violations.push(...ajvViolations(this.runParameters(operation, 'query', values), { ...located, location: 'query' }));

    const text = request.body ?? '';
    if (!operation.requestBody) {
      if (text !== '') violations.push({ ...located, location: 'body', instancePath: '', message: `${operation.operationId} takes no request body` });
      return violations;
    }
    if (text === '') {
      if (operation.requestBody.required) violations.push({ ...located, location: 'body', instancePath: '', message: 'is required' });
      return violations;
    }
    const contentType = request.contentType ? normaliseMediaType(request.contentType) : '';
    if (!operation.requestBody.content.has(contentType)) {
      const declared = [...operation.requestBody.content.keys()].join(', ');
      violations.push({
        ...located,
        location: 'content-type',
        instancePath: '',
        message: `${request.contentType ? `'${request.contentType}'` : 'no Content-Type'} is not a declared media type (${declared})`,
      });
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      violations.push({ ...located, location: 'body', instancePath: '', message: 'is not valid JSON' });
      return violations;
    }
    // `validation-level` bit 8 "allows to override readonly fields" (pipeliner-api.md §6).
    const level = params.get('validation-level') ?? '';
    const allowReadOnly = /^\d+$/.test(level) && (Number(level) & 8) === 8;
    const validate = this.bodyValidator(operation, allowReadOnly);
    if (validate && !validate(body)) violations.push(...ajvViolations(validate.errors, { ...located, location: 'body' }));
    return violations;
  }

  /**
   * Checks an answer against the schema the document declares for its status. A status the operation does not
   * declare is checked against `Error` when it is 4xx/5xx, and is itself a violation otherwise. Answers to requests
   * that match no operation are not checked (the request already is a violation).
   */
  checkResponse(response: ContractResponse): ContractViolation[] {
    const method = response.method.toUpperCase();
    const found = this.match(method, response.path);
    if (!found.operation) return [];
    const operation = found.operation;
    const located = { direction: 'response' as const, method, path: response.path, operationId: operation.operationId, status: response.status };
    const statusKey = this.responseKey(operation, response.status);
    if (statusKey === undefined) {
      return [
        {
          ...located,
          location: 'status',
          instancePath: '',
          message: `${response.status} is not a declared status of ${operation.operationId} (${[...operation.responses.keys()].join(', ')})`,
        },
      ];
    }
    const violations: ContractViolation[] = [];
    const declared = statusKey === ERROR_FALLBACK ? undefined : operation.responses.get(statusKey);
    if (response.contentType !== undefined && declared && declared.content.size > 0) {
      const type = normaliseMediaType(response.contentType);
      if (!declared.content.has(type)) {
        violations.push({
          ...located,
          location: 'content-type',
          instancePath: '',
          message: `'${response.contentType}' is not a declared media type (${[...declared.content.keys()].join(', ')})`,
        });
      }
    }
    const params = new URLSearchParams(response.query ?? '');
    const view: EntityView = { expand: parseNameTree(params.get('expand')) ?? new Map(), loadOnly: parseNameTree(params.get('load-only')) };
    const validate = this.responseValidator(operation, statusKey, view);
    if (validate && !validate(response.body)) violations.push(...ajvViolations(validate.errors, { ...located, location: 'body' }));
    return violations;
  }

  private readOperation(method: string, template: string, raw: Record<string, unknown>): Operation {
    const operationId = typeof raw.operationId === 'string' ? raw.operationId : `${method} ${template}`;
    const segments = [...this.prefix, ...template.split('/').filter(Boolean)];
    const operation: Operation = {
      method,
      template,
      segments,
      literals: segments.filter((s) => !/^\{.+\}$/.test(s)).length,
      operationId,
      query: new Map(),
      pathParams: new Map(),
      responses: new Map(),
      cache: new Map(),
    };
    for (const param of (raw.parameters as ParameterObject[] | undefined) ?? []) {
      if (param.in === 'query') operation.query.set(param.name, param);
      else if (param.in === 'path') operation.pathParams.set(param.name, param);
      // Header and cookie parameters: the document declares none.
    }
    if (isObject(raw.requestBody)) {
      operation.requestBody = { required: raw.requestBody.required === true, content: readContent(raw.requestBody.content) };
    }
    for (const [status, response] of Object.entries(isObject(raw.responses) ? raw.responses : {})) {
      operation.responses.set(status, { content: readContent(isObject(response) ? response.content : undefined) });
    }
    return operation;
  }

  /**
   * Pipeliner's query parameters are conventions of the whole API (the docs' "API parameters" page describes `expand`,
   * `load-only`, `filter`, ... once for all), while the document lists them per operation. So a parameter declared by
   * any operation of the document is accepted on every operation and typed by that declaration; the connector reads
   * `GET Pipelines/{id}?load-only=id,name`, for instance, and `Steps.get` declares only `id`. The legacy `limit` and
   * `offset` are added as int32: the document names them only in `page_info`'s description. A name no operation
   * declares is a violation.
   */
  private collectQueryParameters(): void {
    for (const operation of this.operations) {
      for (const [name, param] of operation.query) if (!this.documentQuery.has(name)) this.documentQuery.set(name, param);
    }
    for (const name of ['limit', 'offset']) {
      if (!this.documentQuery.has(name)) this.documentQuery.set(name, { name, in: 'query', schema: int32 });
    }
  }

  private match(method: string, rawPath: string): { operation?: Operation; pathParams: Record<string, string>; reason: string } {
    const segments = rawPath.split('/').filter((s, i) => i > 0 || s !== '').map(safeDecode);
    const withPrefix = segments.slice(0, this.prefix.length).every((s, i) => /^\{.+\}$/.test(this.prefix[i]) || s === this.prefix[i]);
    const full = withPrefix && segments.length > this.prefix.length ? segments : [...this.prefix, ...segments];
    const candidates = this.operations
      .map((operation) => ({ operation, params: bind(operation.segments, full) }))
      .filter((c): c is { operation: Operation; params: Record<string, string> } => c.params !== undefined)
      // Concrete paths before templated ones (OpenAPI 3.0 "Path Templating Matching").
      .sort((a, b) => b.operation.literals - a.operation.literals);
    const hit = candidates.find((c) => c.operation.method === method);
    if (hit) {
      const pathParams = Object.fromEntries(Object.entries(hit.params).filter(([name]) => hit.operation.pathParams.has(name)));
      return { operation: hit.operation, pathParams, reason: '' };
    }
    if (candidates.length > 0) {
      const templates = [...new Set(candidates.map((c) => c.operation.template))];
      const allowed = [...new Set(candidates.map((c) => c.operation.method))].join(', ');
      return { pathParams: {}, reason: `the document has no ${method} operation on ${templates.join(' or ')} (only ${allowed})` };
    }
    return { pathParams: {}, reason: 'no path of the document matches' };
  }

  /** Splits the query into declared parameters (deepObject ones as objects) and unknown names. */
  private readQuery(operation: Operation, params: URLSearchParams): { values: Record<string, unknown>; unknown: string[] } {
    const values: Record<string, unknown> = {};
    const unknown = new Set<string>();
    for (const [key, value] of params) {
      const bracket = /^([^[\]]+)\[([^[\]]*)\]$/.exec(key);
      const deep = bracket ? this.queryParameter(operation, bracket[1]) : undefined;
      if (bracket && deep?.style === 'deepObject') {
        const target = isObject(values[bracket[1]]) ? (values[bracket[1]] as Record<string, unknown>) : {};
        values[bracket[1]] = target;
        target[bracket[2]] = bracket[2] in target ? ([] as unknown[]).concat(target[bracket[2]], value) : value;
        continue;
      }
      if (!this.queryParameter(operation, key)) {
        unknown.add(key);
        continue;
      }
      // A repeated scalar becomes an array, which its scalar schema then rejects.
      values[key] = key in values ? ([] as unknown[]).concat(values[key], value) : value;
    }
    return { values, unknown: [...unknown] };
  }

  private queryParameter(operation: Operation, name: string): ParameterObject | undefined {
    return operation.query.get(name) ?? this.documentQuery.get(name);
  }

  private runParameters(operation: Operation, where: 'query' | 'path', values: Record<string, unknown>): ErrorObject[] | null | undefined {
    const validate = this.parameterValidator(operation, where);
    return validate(values) ? [] : validate.errors;
  }

  private parameterValidator(operation: Operation, where: 'query' | 'path'): Validator {
    return this.cached(operation, `params:${where}`, () => {
      const declared = where === 'query' ? new Map([...this.documentQuery, ...operation.query]) : operation.pathParams;
      const properties: Record<string, SchemaObject> = {};
      const required: string[] = [];
      for (const [name, param] of declared) {
        properties[name] = param.schema ? this.converter.convert(param.schema, { side: 'request', allowReadOnly: false }) : {};
        // Only the operation's own declarations can make a parameter required.
        if (where === 'path' || (param.required && operation.query.get(name) === param)) required.push(name);
      }
      return this.parameterAjv.compile({ type: 'object', properties, required });
    });
  }

  private bodyValidator(operation: Operation, allowReadOnly: boolean): Validator | undefined {
    const schema = operation.requestBody && jsonSchemaOf(operation.requestBody);
    if (schema === undefined) return undefined;
    return this.cached(operation, `body:${allowReadOnly}`, () =>
      this.bodyAjv.compile(this.converter.convert(schema, { side: 'request', allowReadOnly })),
    );
  }

  private responseKey(operation: Operation, status: number): string | undefined {
    const exact = String(status);
    if (operation.responses.has(exact)) return exact;
    const range = `${String(status)[0]}XX`;
    if (operation.responses.has(range)) return range;
    if (operation.responses.has('default')) return 'default';
    // Statuses the document leaves out (400, 401, 422, 429, ...): Pipeliner answers them in its `Error` shape (§4).
    if (status >= 400 && this.converter.has('Error')) return ERROR_FALLBACK;
    return undefined;
  }

  private responseValidator(operation: Operation, statusKey: string, view: EntityView): Validator | undefined {
    const schema =
      statusKey === ERROR_FALLBACK ? { $ref: '#/components/schemas/Error' } : jsonSchemaOf(operation.responses.get(statusKey));
    if (schema === undefined) return undefined;
    const key = `response:${statusKey}:${nameTreeKey(view.expand)}:${nameTreeKey(view.loadOnly)}`;
    return this.cached(operation, key, () => {
      const converted = this.converter.convert(schema, { side: 'response', view });
      // Tightening: every success envelope of the document lists `success` and `data` but requires neither; every
      // documented and captured answer has both, never null (pipeliner-api.md §4), and without this `{}` would pass.
      const properties = converted.properties;
      if (statusKey.startsWith('2') && isObject(properties) && isObject(properties.success) && isObject(properties.data)) {
        converted.required = [...new Set([...((converted.required as string[] | undefined) ?? []), 'success', 'data'])];
        properties.success = withoutNull(properties.success);
        properties.data = withoutNull(properties.data);
      }
      return this.responseAjv.compile(converted);
    });
  }

  private cached(operation: Operation, key: string, build: () => Validator): Validator {
    let validator = operation.cache.get(key);
    if (!validator) {
      // Answers are keyed by expand/load-only; keep the cache bounded for long-running sandboxes.
      if (operation.cache.size > 200) operation.cache.clear();
      validator = build();
      operation.cache.set(key, validator);
    }
    return validator;
  }
}

function readContent(content: unknown): Map<string, unknown> {
  const map = new Map<string, unknown>();
  if (!isObject(content)) return map;
  for (const [type, media] of Object.entries(content)) map.set(normaliseMediaType(type), isObject(media) ? media.schema : undefined);
  return map;
}

function jsonSchemaOf(media: MediaTypes | undefined): unknown {
  if (!media) return undefined;
  for (const [type, schema] of media.content) if (isJsonMediaType(type) && schema !== undefined) return schema;
  return undefined;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Binds path segments to a template's; undefined when they do not match. */
function bind(template: string[], segments: string[]): Record<string, string> | undefined {
  if (template.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < template.length; i += 1) {
    const variable = /^\{(.+)\}$/.exec(template[i]);
    if (variable) {
      if (segments[i] === '') return undefined;
      params[variable[1]] = segments[i];
    } else if (template[i] !== segments[i]) {
      return undefined;
    }
  }
  return params;
}

let shared: OpenApiContract | undefined;

/**
 * Loads Pipeliner's OpenAPI document and compiles its checks. Without options the result is cached: the committed
 * copy is read and compiled once per process.
 * @throws Error when the document cannot be read or compiled
 */
export function loadPipelinerContract(options: ContractOptions = {}): OpenApiContract {
  if (!options.document && !options.specPath && shared) return shared;
  const document = options.document ?? (JSON.parse(readFileSync(options.specPath ?? findPipelinerOpenApi(), 'utf8')) as OpenApiDocument);
  const contract = new OpenApiContract(document);
  if (!options.document && !options.specPath) shared = contract;
  return contract;
}
