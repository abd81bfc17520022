import type AjvCore from 'ajv/dist/core';
import type { ErrorObject } from 'ajv';
import { createAjv, type FormatCheck, type Validator } from './ajv';
import {
  type EntityView,
  nameTreeKey,
  type Relation,
  SchemaConverter,
  type SchemaObject,
} from './schema';

/**
 * Contract checks against a provider's own OpenAPI document, OpenAPI 3.0 or 3.1 (docs/sandboxes.md "Contract
 * checks"): every request is checked against its operation's path and query parameters and request body, every answer
 * against the response schema of its status. A sandbox runs them on each exchange when started with `contract: true`;
 * tests can call them directly. What differs between providers (Pipeliner's API-wide parameters, its `expand`, its
 * date format...) is a {@link ContractProfile}; without one, the document is read as OpenAPI says.
 */

/** Which part of an exchange broke the contract. */
export type ContractLocation = 'operation' | 'path' | 'query' | 'content-type' | 'body' | 'status';

/** One mismatch between an exchange and the provider's OpenAPI document. */
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
  /** The path, with the path of the document's first server as prefix (`/api/v2/stages`) or without it (`/stages`). */
  path: string;
  /** The raw query string without '?' ('' when none). */
  query?: string;
  /** The raw body text as sent ('' or undefined when none). */
  body?: string;
  /** The request's Content-Type header. */
  contentType?: string;
}

/** An answer to check, with the request it answers (its query may shape the expected entity, see `view`). */
export interface ContractResponse {
  method: string;
  path: string;
  query?: string;
  status: number;
  /** The parsed JSON body; undefined for an answer without a body (e.g. 204). */
  body: unknown;
  /** The answer's Content-Type header; not checked when undefined. */
  contentType?: string;
}

/** The parts of an OpenAPI 3.0 / 3.1 document the contract reads. */
export interface OpenApiDocument {
  openapi: string;
  servers?: Array<{ url: string }>;
  paths: Record<string, Record<string, unknown>>;
  components?: { schemas?: Record<string, SchemaObject>; [section: string]: unknown };
  [key: string]: unknown;
}

/** A query parameter declared outside the document (see {@link ContractProfile.extraQueryParameters}). */
export interface ExtraQueryParameter {
  name: string;
  schema: SchemaObject;
}

/**
 * What a provider's API does that its document does not say, so its checks neither miss nor invent violations.
 * Every field is optional; the defaults read the document as OpenAPI says.
 */
export interface ContractProfile {
  /**
   * Where a query parameter is accepted: `operation` (default: where the operation declares it) or `document` (a
   * parameter declared by any operation is accepted on every operation, typed by that declaration: Pipeliner's
   * parameters are API-wide conventions). An undeclared name is a violation either way.
   */
  queryParameters?: 'operation' | 'document';
  /** Parameters accepted on every operation though the document declares none (Pipeliner's legacy `limit`/`offset`). */
  extraQueryParameters?: ExtraQueryParameter[];
  /** Whether this request may write read-only properties (Pipeliner: `validation-level` bit 8). Default never. */
  allowsReadOnly?(query: URLSearchParams): boolean;
  /** Said after `is read-only (X.y): ` when it may not (Pipeliner names `validation-level` bit 8). */
  readOnlyHint?: string;
  /** The entity schema an input schema writes, whose read-only fields it inherits (`createStepInput` -> `Step`). */
  inputEntity?(componentName: string): string | undefined;
  /** Answers: a property outside `required` may also be `null` (Pipeliner answers empty values as null). Default false. */
  optionalMayBeNull?: boolean;
  /** Relations an answer can expand into the related entity, by component schema, then property. */
  relations?: Record<string, Record<string, Relation>>;
  /** The view a request asks of its answer's entity (Pipeliner: `expand` and `load-only`). Default: nothing expanded, every field. */
  view?(query: URLSearchParams): EntityView;
  /** Component schema that error answers (4xx/5xx) follow when the operation declares neither the status nor a default. */
  fallbackErrorSchema?: string;
  /** Last change to an answer's converted schema (Pipeliner requires `success` and `data` of its envelopes). */
  adjustResponseSchema?(schema: SchemaObject, statusKey: string): void;
  /** String formats that replace the defaults (RFC 3339 `date-time`, ...), per side. */
  formats?: { request?: Record<string, FormatCheck>; response?: Record<string, FormatCheck> };
}

interface ParameterObject {
  name: string;
  in: 'query' | 'path' | 'header' | 'cookie';
  required?: boolean;
  schema?: SchemaObject;
  style?: string;
  explode?: boolean;
}

interface MediaTypes {
  /** Normalised media types and ranges (`application / json` -> `application/json`, `*\/*`) to their schema. */
  content: Map<string, unknown>;
}

interface Operation {
  method: string;
  /** The document's path (`/entities/Steps/{id}`). */
  template: string;
  segments: string[];
  literals: number;
  operationId: string;
  /** The operation's specification extensions (`x-token-cost`...), as written. */
  extensions: Record<string, unknown>;
  query: Map<string, ParameterObject>;
  pathParams: Map<string, ParameterObject>;
  requestBody?: MediaTypes & { required: boolean };
  responses: Map<string, MediaTypes>;
  /** Lazily compiled validators. */
  cache: Map<string, Validator>;
}

/** Status key of an answer checked against the profile's error schema because its operation does not declare the status. */
const ERROR_FALLBACK = '(fallback error schema)';
const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
const NO_VIEW = (): EntityView => ({ expand: new Map() });
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** `application / json; charset=utf-8` -> `application/json`: the document's typo is read as `application/json`. */
export function normaliseMediaType(text: string): string {
  return text.split(';')[0].replace(/\s+/g, '').toLowerCase();
}

const isJsonMediaType = (type: string) => type === 'application/json' || /^application\/[\w.+-]+\+json$/.test(type);

/** The declared media type (or range: `application/*`, `*\/*`) that covers `type`, exact ones first. */
function coveringMediaType(declared: Map<string, unknown>, type: string): string | undefined {
  if (declared.has(type)) return type;
  const range = `${type.split('/')[0]}/*`;
  if (declared.has(range)) return range;
  return declared.has('*/*') ? '*/*' : undefined;
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
 * A provider's OpenAPI document (3.0.x or 3.1.x) compiled into request and answer checks, read with a
 * {@link ContractProfile}. One instance can serve any number of sandboxes.
 */
export class OpenApiContract {
  /** `3.0` or `3.1`, from the document's `openapi`. */
  readonly dialect: '3.0' | '3.1';
  private readonly operations: Operation[] = [];
  private readonly prefix: string[];
  /** Query parameters accepted on every operation, by name (see collectQueryParameters). */
  private readonly documentQuery = new Map<string, ParameterObject>();
  private readonly converter: SchemaConverter;
  private readonly bodyAjv: AjvCore;
  private readonly parameterAjv: AjvCore;
  private readonly responseAjv: AjvCore;

  /**
   * Compiles every request and answer schema of the document now, so a schema that cannot be checked faithfully
   * fails at load, not mid-test.
   * @throws Error when the document is not OpenAPI 3.0/3.1, or uses a construct the contract does not support (a
   *   remote or cyclic `$ref`, an unknown format or keyword)
   */
  constructor(
    private readonly document: OpenApiDocument,
    private readonly profile: ContractProfile = {},
  ) {
    const version = /^3\.([01])\.\d+$/.exec(String(document.openapi));
    if (!version) throw new Error(`Expected an OpenAPI 3.0 or 3.1 document, got openapi: ${String(document.openapi)}.`);
    this.dialect = version[1] === '0' ? '3.0' : '3.1';
    this.converter = new SchemaConverter(document as unknown as SchemaObject, {
      dialect: this.dialect,
      optionalMayBeNull: profile.optionalMayBeNull,
      relations: profile.relations,
      inputEntity: profile.inputEntity,
    });
    const settings = { dialect: this.dialect, readOnlyHint: profile.readOnlyHint };
    this.bodyAjv = createAjv('request-body', { ...settings, formats: profile.formats?.request });
    this.parameterAjv = createAjv('parameters', { ...settings, formats: profile.formats?.request });
    this.responseAjv = createAjv('response', { ...settings, formats: profile.formats?.response });
    // The first server's path (Pipeliner `/api/v100/rest/spaces/{space_id}`, Pipedrive `/api/v2`) comes before every path.
    const serverPath = (document.servers?.[0]?.url ?? '').replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '');
    this.prefix = serverPath.split('/').filter(Boolean);
    for (const [template, item] of Object.entries(document.paths ?? {})) {
      const pathItem = this.deref(item);
      if (!isObject(pathItem)) continue;
      for (const [method, raw] of Object.entries(pathItem)) {
        if (!HTTP_METHODS.has(method) || !isObject(raw)) continue;
        this.operations.push(this.readOperation(method.toUpperCase(), template, raw, pathItem.parameters));
      }
    }
    this.collectQueryParameters();
    for (const operation of this.operations) {
      if (operation.requestBody) for (const allow of [false, true]) this.bodyValidator(operation, allow);
      this.parameterValidator(operation, 'query');
      this.parameterValidator(operation, 'path');
      for (const status of operation.responses.keys()) this.responseValidator(operation, status, NO_VIEW());
    }
  }

  /** The operations of the document, as `METHOD template operationId`. */
  listOperations(): Array<{ method: string; path: string; operationId: string }> {
    return this.operations.map((op) => ({ method: op.method, path: op.template, operationId: op.operationId }));
  }

  /**
   * The operation a request goes to, or undefined when the document has none for it. `extensions` are the operation's
   * `x-*` fields as written (e.g. Pipedrive's `x-token-cost`).
   */
  findOperation(method: string, path: string): { operationId: string; path: string; extensions: Record<string, unknown> } | undefined {
    const { operation } = this.match(method.toUpperCase(), path);
    return operation && { operationId: operation.operationId, path: operation.template, extensions: { ...operation.extensions } };
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
    const covering = contentType ? coveringMediaType(operation.requestBody.content, contentType) : undefined;
    if (covering === undefined) {
      const declared = [...operation.requestBody.content.keys()].join(', ');
      violations.push({
        ...located,
        location: 'content-type',
        instancePath: '',
        message: `${request.contentType ? `'${request.contentType}'` : 'no Content-Type'} is not a declared media type (${declared})`,
      });
    }
    // A body of a declared media type that is not JSON (a form, a file) is not checked further.
    if (covering !== undefined && !isJsonMediaType(contentType)) return violations;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      violations.push({ ...located, location: 'body', instancePath: '', message: 'is not valid JSON' });
      return violations;
    }
    const allowReadOnly = this.profile.allowsReadOnly?.(params) ?? false;
    const validate = this.bodyValidator(operation, allowReadOnly);
    if (validate && !validate(body)) violations.push(...ajvViolations(validate.errors, { ...located, location: 'body' }));
    return violations;
  }

  /**
   * Checks an answer against the schema the document declares for its status (exact, then `4XX`-style range, then
   * `default`). A status the operation does not declare is checked against the profile's `fallbackErrorSchema` when
   * it is 4xx/5xx, and is itself a violation otherwise. Answers to requests that match no operation are not checked
   * (the request already is a violation).
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
    if (response.contentType !== undefined && response.body !== undefined && declared && declared.content.size > 0) {
      const type = normaliseMediaType(response.contentType);
      if (coveringMediaType(declared.content, type) === undefined) {
        violations.push({
          ...located,
          location: 'content-type',
          instancePath: '',
          message: `'${response.contentType}' is not a declared media type (${[...declared.content.keys()].join(', ')})`,
        });
      }
    }
    const params = new URLSearchParams(response.query ?? '');
    const view = this.profile.view?.(params) ?? NO_VIEW();
    const validate = this.responseValidator(operation, statusKey, view);
    if (response.body === undefined) {
      if (validate) violations.push({ ...located, location: 'body', instancePath: '', message: `is missing: the document declares a body for ${statusKey}` });
      return violations;
    }
    if (validate && !validate(response.body)) violations.push(...ajvViolations(validate.errors, { ...located, location: 'body' }));
    return violations;
  }

  /** Follows local `$ref`s of non-schema objects (parameters, request bodies, responses, path items). */
  private deref(value: unknown, seen: string[] = []): unknown {
    if (!isObject(value) || typeof value.$ref !== 'string') return value;
    const ref = value.$ref;
    if (!ref.startsWith('#/')) throw new Error(`Unsupported $ref '${ref}': only references inside the document (#/...) are supported.`);
    if (seen.includes(ref)) throw new Error(`Cyclic $ref through ${[...seen, ref].join(' -> ')}.`);
    let target: unknown = this.document;
    for (const raw of ref.slice(2).split('/')) {
      const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      target = isObject(target) || Array.isArray(target) ? (target as Record<string, unknown>)[part] : undefined;
    }
    if (target === undefined) throw new Error(`The OpenAPI document has nothing at ${ref}.`);
    return this.deref(target, [...seen, ref]);
  }

  private readOperation(method: string, template: string, raw: Record<string, unknown>, shared: unknown): Operation {
    const operationId = typeof raw.operationId === 'string' ? raw.operationId : `${method} ${template}`;
    const segments = [...this.prefix, ...template.split('/').filter(Boolean)];
    const operation: Operation = {
      method,
      template,
      segments,
      literals: segments.filter((s) => !/^\{.+\}$/.test(s)).length,
      operationId,
      extensions: Object.fromEntries(Object.entries(raw).filter(([key]) => key.startsWith('x-'))),
      query: new Map(),
      pathParams: new Map(),
      responses: new Map(),
      cache: new Map(),
    };
    // Path-level parameters first, so the operation's own (same name and place) win, as OpenAPI says.
    const declared = [...(Array.isArray(shared) ? shared : []), ...(Array.isArray(raw.parameters) ? raw.parameters : [])];
    for (const entry of declared) {
      const param = this.deref(entry) as ParameterObject;
      if (!isObject(param)) continue;
      if (param.in === 'query') operation.query.set(param.name, param);
      else if (param.in === 'path') operation.pathParams.set(param.name, param);
      // Header and cookie parameters are not checked (credentials and provider headers are the module's business).
    }
    const requestBody = this.deref(raw.requestBody);
    if (isObject(requestBody)) {
      operation.requestBody = { required: requestBody.required === true, content: readContent(requestBody.content) };
    }
    for (const [status, entry] of Object.entries(isObject(raw.responses) ? raw.responses : {})) {
      const response = this.deref(entry);
      operation.responses.set(/^[1-5]xx$/i.test(status) ? status.toUpperCase() : status, { content: readContent(isObject(response) ? response.content : undefined) });
    }
    return operation;
  }

  /**
   * The query parameters accepted on every operation: with the profile's `queryParameters: 'document'`, each one any
   * operation declares (the first declaration types it); then the profile's extra parameters.
   */
  private collectQueryParameters(): void {
    if (this.profile.queryParameters === 'document') {
      for (const operation of this.operations) {
        for (const [name, param] of operation.query) if (!this.documentQuery.has(name)) this.documentQuery.set(name, param);
      }
    }
    for (const { name, schema } of this.profile.extraQueryParameters ?? []) {
      if (!this.documentQuery.has(name)) this.documentQuery.set(name, { name, in: 'query', schema });
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

  /**
   * Splits the query into declared parameters and unknown names: deepObject parameters as objects, array parameters
   * as arrays (repeated names; comma lists when `explode: false`), scalars as text (ajv coerces them to their type).
   */
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
      const param = this.queryParameter(operation, key);
      if (!param) {
        unknown.add(key);
        continue;
      }
      if (isArraySchema(param.schema)) {
        const items = param.explode === false && (param.style ?? 'form') === 'form' ? value.split(',') : [value];
        values[key] = [...((values[key] as unknown[] | undefined) ?? []), ...items];
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
        // A parameter described by `content` instead of `schema` is accepted with any value.
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
    const fallback = this.profile.fallbackErrorSchema;
    if (status >= 400 && fallback !== undefined && this.converter.has(fallback)) return ERROR_FALLBACK;
    return undefined;
  }

  private responseValidator(operation: Operation, statusKey: string, view: EntityView): Validator | undefined {
    const schema =
      statusKey === ERROR_FALLBACK
        ? { $ref: `#/components/schemas/${encodeURIComponent(this.profile.fallbackErrorSchema ?? '')}` }
        : jsonSchemaOf(operation.responses.get(statusKey));
    if (schema === undefined) return undefined;
    const key = `response:${statusKey}:${nameTreeKey(view.expand)}:${nameTreeKey(view.loadOnly)}`;
    return this.cached(operation, key, () => {
      const converted = this.converter.convert(schema, { side: 'response', view });
      this.profile.adjustResponseSchema?.(converted, statusKey);
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

/** The schema of a JSON media type, else of a range that covers JSON (`application/*`, `*\/*`). */
function jsonSchemaOf(media: MediaTypes | undefined): unknown {
  if (!media) return undefined;
  for (const [type, schema] of media.content) if (isJsonMediaType(type) && schema !== undefined) return schema;
  for (const range of ['application/*', '*/*']) if (media.content.get(range) !== undefined) return media.content.get(range);
  return undefined;
}

function isArraySchema(schema: SchemaObject | undefined): boolean {
  return schema !== undefined && (schema.type === 'array' || (Array.isArray(schema.type) && schema.type.includes('array')));
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
