import { readFileSync } from 'node:fs';
import { type ContractViolation, formatContractViolation, type OpenApiDocument } from '../kit/contract/openapi-contract';
import { findPipelinerOpenApi, loadPipelinerContract } from './contract';

const contract = loadPipelinerContract();
const BASE = '/api/v100/rest/spaces/sandbox_space/entities';
const STEP_ID = '00000000-57e9-4000-8000-000000000001';
const PIPELINE_ID = '00000000-5a1e-4000-8000-000000000001';
const DATE = '2024-01-15 09:00:00.000000+00:00';
const JSON_TYPE = 'application/json';

const post = (path: string, body: unknown, query = '', contentType = JSON_TYPE) =>
  contract.checkRequest({ method: 'POST', path: `${BASE}/${path}`, query, body: typeof body === 'string' ? body : JSON.stringify(body), contentType });
const get = (path: string, query = '') => contract.checkRequest({ method: 'GET', path: `${BASE}/${path}`, query });
const answer = (method: string, path: string, status: number, body: unknown, query = '') =>
  contract.checkResponse({ method, path: `${BASE}/${path}`, query, status, body, contentType: JSON_TYPE });
/** `location instancePath: message` of each violation, the readable part. */
const brief = (violations: ContractViolation[]) => violations.map((v) => `${v.location} ${v.instancePath}: ${v.message}`);

/** A Step as Pipeliner outputs it, un-expanded. */
function step(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    is_delete_protected: false,
    id: STEP_ID,
    is_deleted: false,
    modified: DATE,
    created: DATE,
    lead_process: null,
    pipeline: `http://127.0.0.1:8100${BASE}/Pipelines/${PIPELINE_ID}`,
    quote_process: null,
    description: null,
    has_readonly_form: false,
    has_version_increment: false,
    lead_process_id: null,
    name: 'Qualification',
    percent: 10,
    pipeline_id: PIPELINE_ID,
    quote_process_id: null,
    sort_order: 0,
    timeframe: null,
    revision: 1002,
    documents: [],
    step_checklists: [],
    ...overrides,
  };
}

/** A Pipeline as Pipeliner outputs it, un-expanded. */
function pipeline(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    is_delete_protected: false,
    id: PIPELINE_ID,
    is_deleted: false,
    modified: DATE,
    created: DATE,
    color: 16233984,
    name: 'Sales Pipeline',
    revision: 1001,
    steps: [`http://127.0.0.1:8100${BASE}/Steps/${STEP_ID}`],
    opportunity_types: [],
    ...overrides,
  };
}

describe('Pipeliner OpenAPI contract: the document', () => {
  it('reads the committed copy of the document and knows its 14 operations', () => {
    expect(findPipelinerOpenApi()).toMatch(/libs\/connectors\/pipeliner\/openapi\/pipeliner-steps-pipelines\.subset\.openapi\.json$/);
    expect(contract.listOperations()).toHaveLength(14);
    expect(contract.findOperation('POST', `${BASE}/Steps/batch-modify`)).toEqual({ operationId: 'Steps.batch_create_or_update', path: '/entities/Steps/batch-modify', extensions: {} });
    expect(contract.findOperation('GET', `${BASE}/Steps/${STEP_ID}`)?.operationId).toBe('Steps.get');
    expect(contract.findOperation('GET', '/entities/Pipelines')?.operationId).toBe('Pipelines.list');
    expect(loadPipelinerContract()).toBe(contract);
  });

  it('refuses what it cannot check faithfully: another OpenAPI version, an unknown $ref, an unknown format', () => {
    const document = JSON.parse(readFileSync(findPipelinerOpenApi(), 'utf8')) as OpenApiDocument;
    // The kit checks OpenAPI 3.0 and 3.1 documents; anything else is refused.
    for (const openapi of ['3.2.0', '2.0', '3.0']) {
      expect(() => loadPipelinerContract({ document: { ...document, openapi } })).toThrow(/Expected an OpenAPI 3\.0 or 3\.1 document/);
    }
    const withSchemas = (schemas: Record<string, Record<string, unknown>>) =>
      loadPipelinerContract({ document: { ...document, components: { schemas: { ...document.components?.schemas, ...schemas } } } });
    expect(() => withSchemas({ Step: { properties: { x: { $ref: '#/components/schemas/Nope' } } } })).toThrow(/no schema 'Nope'/);
    expect(() => withSchemas({ Error: { properties: { x: { type: 'string', format: 'postal-code' } } } })).toThrow(/unknown format "postal-code"/);
  });

  it('formats a violation as one readable line', () => {
    const [violation] = post('Steps', { name: 123 });
    expect(formatContractViolation(violation)).toBe(`request POST ${BASE}/Steps [Steps.create] body /name: must be string`);
  });
});

describe('Pipeliner OpenAPI contract: requests', () => {
  it("passes the connector's own calls", () => {
    expect(post('Steps', { name: 'Won', pipeline_id: PIPELINE_ID, sort_order: 1 }, 'validation-level=8')).toEqual([]);
    expect(post('Steps', { name: 'Won', pipeline_id: PIPELINE_ID }, 'validation-level=8&expand=pipeline')).toEqual([]);
    expect(post('Steps', { name: 'Loose', percent: 40, description: 'x' })).toEqual([]);
    expect(get(`Pipelines/${PIPELINE_ID}`, 'load-only=id,name')).toEqual([]);
  });

  it('catches a wrong body type with its JSON path', () => {
    expect(post('Steps', { name: 123 })).toEqual([
      {
        direction: 'request',
        method: 'POST',
        path: `${BASE}/Steps`,
        operationId: 'Steps.create',
        location: 'body',
        instancePath: '/name',
        message: 'must be string',
      },
    ]);
    expect(brief(post('Steps', { percent: 'ten', has_readonly_form: 'yes' }))).toEqual([
      "body : must have required property 'name'",
      'body /has_readonly_form: must be boolean',
      'body /percent: must be integer',
    ]);
    expect(brief(contract.checkRequest({ method: 'PATCH', path: `${BASE}/Steps/${STEP_ID}`, body: '{"timeframe":1.5}', contentType: JSON_TYPE }))).toEqual([
      'body /timeframe: must be integer',
      'body /timeframe: must match format "int32"',
    ]);
    expect(brief(post('Steps/batch-delete', ['not-a-uuid']))).toEqual(['body /0: must match format "uuid"']);
  });

  it('accepts read-only fields exactly when validation-level has bit 8', () => {
    const body = { name: 'Won', pipeline_id: PIPELINE_ID, sort_order: 2 };
    const readOnly = (field: string) =>
      `body /${field}: is read-only (Step.${field}): send it only with validation-level bit 8 ("allows to override readonly fields")`;
    expect(brief(post('Steps', body))).toEqual([readOnly('pipeline_id'), readOnly('sort_order')]);
    expect(brief(post('Steps', body, 'validation-level=4'))).toEqual([readOnly('pipeline_id'), readOnly('sort_order')]);
    for (const level of ['8', '10', '24', '30']) expect(post('Steps', body, `validation-level=${level}`)).toEqual([]);
    // With bit 8 they are typed by the entity's schema.
    expect(brief(post('Steps', { name: 'x', pipeline_id: 'nope', sort_order: 'last' }, 'validation-level=8'))).toEqual([
      'body /pipeline_id: must match format "uuid"',
      'body /sort_order: must be integer',
    ]);
    // Server-set fields, on update and inside Pipeline.steps too; a batch item's own `id` is writable.
    expect(brief(contract.checkRequest({ method: 'PATCH', path: `${BASE}/Steps/${STEP_ID}`, body: JSON.stringify({ id: STEP_ID }), contentType: JSON_TYPE }))).toEqual([
      readOnly('id'),
    ]);
    expect(brief(post('Pipelines', { name: 'P', color: 1, steps: [{ name: 'S', sort_order: 0 }] }))).toEqual([
      'body /steps/0/sort_order: is read-only (Step.sort_order): send it only with validation-level bit 8 ("allows to override readonly fields")',
    ]);
    expect(post('Steps/batch-modify', [{ id: STEP_ID, name: 'Renamed' }, { name: 'New' }])).toEqual([]);
    // Dates in requests: RFC 3339 with an offset, `T` or space (Pipeliner's own form).
    for (const created of ['2024-09-19T12:30:45Z', '2024-07-09 12:51:48.050073+00:00']) {
      expect(post('Steps', { name: 'x', created }, 'validation-level=8')).toEqual([]);
    }
    expect(brief(post('Steps', { name: 'x', created: '2024-09-19T12:30:45' }, 'validation-level=8'))).toEqual([
      'body /created: must match format "date-time"',
    ]);
    // Read-only properties are never required: createStepInput lists created/modified, and only `name` is needed.
    expect(post('Steps', { name: 'Only a name' })).toEqual([]);
  });

  it('checks query parameters against their declarations (typed, deepObject, unknown names)', () => {
    expect(brief(get('Steps', 'first=abc'))).toEqual(['query /first: must be integer']);
    expect(brief(get('Steps', 'include-deleted=yes&last=1.5'))).toEqual(['query /include-deleted: must be boolean', 'query /last: must be integer']);
    expect(brief(get('Steps', 'first=99999999999'))).toEqual(['query /first: must match format "int32"']);
    expect(brief(get('Steps', 'first=1&first=2'))).toEqual(['query /first: must be integer']);
    expect(brief(get('Steps', 'include_deleted=true&frist=5'))).toEqual([
      'query /include_deleted: is not a query parameter of any operation of the document',
      'query /frist: is not a query parameter of any operation of the document',
    ]);
    expect(brief(get('Steps', 'filter=Sales'))).toEqual(['query /filter: must be object']);
    expect(brief(post('Steps', { name: 'x' }, 'validation-level=x'))).toEqual(['query /validation-level: must be integer']);
    expect(
      get('Steps', 'filter[name]=Lead%20A&filter-op[name]=ieq&filter-op[pipeline_id]=not-null&order-by=-name&first=20&after=WyJ4Il0%3D&include-deleted=true'),
    ).toEqual([]);
    expect(get('Steps', 'limit=3&offset=2&order-by=name')).toEqual([]);
    // Parameters are API-wide conventions: one declared by any operation is accepted everywhere, typed.
    expect(get(`Steps/${STEP_ID}`, 'expand=pipeline&include-deleted=true')).toEqual([]);
    expect(brief(get(`Steps/${STEP_ID}`, 'include-deleted=maybe'))).toEqual(['query /include-deleted: must be boolean']);
  });

  it('checks path parameters', () => {
    expect(brief(get('Steps/not-a-uuid'))).toEqual(['path /id: must match format "uuid"']);
    expect(get(`Steps/${STEP_ID.toUpperCase()}`)).toEqual([]);
  });

  it("reads the document's `application / json` typo as application/json and checks the Content-Type", () => {
    // Steps.create declares its body as `application / json`.
    expect(post('Steps', { name: 'x' }, '', 'application/json; charset=utf-8')).toEqual([]);
    expect(brief(post('Steps', { name: 'x' }, '', 'text/plain'))).toEqual([
      "content-type : 'text/plain' is not a declared media type (application/json)",
    ]);
    expect(brief(contract.checkRequest({ method: 'POST', path: `${BASE}/Steps`, body: '{"name":"x"}' }))).toEqual([
      'content-type : no Content-Type is not a declared media type (application/json)',
    ]);
  });

  it('catches bodies that are missing, not JSON, or not expected', () => {
    expect(brief(post('Steps', ''))).toEqual(['body : is required']);
    expect(brief(post('Steps', '{"name":'))).toEqual(['body : is not valid JSON']);
    expect(brief(post('Steps', '[1,2]'))).toEqual(['body : must be object']);
    expect(brief(post('Steps/batch-modify', { name: 'x' }))).toEqual(['body : must be array']);
    expect(brief(contract.checkRequest({ method: 'GET', path: `${BASE}/Steps`, body: '{}', contentType: JSON_TYPE }))).toEqual([
      'body : Steps.list takes no request body',
    ]);
  });

  it('reports requests no operation of the document takes', () => {
    expect(brief(contract.checkRequest({ method: 'PUT', path: `${BASE}/Steps/${STEP_ID}` }))).toEqual([
      'operation : the document has no PUT operation on /entities/Steps/{id} (only GET, DELETE, PATCH)',
    ]);
    expect(brief(post('Steps/batch-restore', [STEP_ID]))).toEqual([
      'operation : the document has no POST operation on /entities/Steps/{id} (only GET, DELETE, PATCH)',
    ]);
    expect(brief(get('Contacts'))).toEqual(['operation : no path of the document matches']);
    expect(brief(contract.checkRequest({ method: 'GET', path: '/api/v100/rest/nothing' }))).toEqual(['operation : no path of the document matches']);
  });
});

describe('Pipeliner OpenAPI contract: answers', () => {
  it('catches a Step missing its id, with the JSON path', () => {
    const { id: _id, ...withoutId } = step();
    expect(answer('GET', `Steps/${STEP_ID}`, 200, { success: true, data: withoutId })).toEqual([
      {
        direction: 'response',
        method: 'GET',
        path: `${BASE}/Steps/${STEP_ID}`,
        operationId: 'Steps.get',
        status: 200,
        location: 'body',
        instancePath: '/data',
        message: "must have required property 'id'",
      },
    ]);
    expect(answer('GET', `Steps/${STEP_ID}`, 200, { success: true, data: step() })).toEqual([]);
  });

  it('checks types, required fields and the envelope', () => {
    expect(brief(answer('GET', `Steps/${STEP_ID}`, 200, { success: true, data: 'x' }))).toEqual(['body /data: must be object']);
    expect(brief(answer('GET', `Steps/${STEP_ID}`, 200, { success: true, data: null }))).toEqual(['body /data: must be object']);
    expect(brief(answer('GET', `Steps/${STEP_ID}`, 200, {}))).toEqual([
      "body : must have required property 'success'",
      "body : must have required property 'data'",
    ]);
    expect(brief(answer('POST', 'Steps', 201, { success: true, data: step({ percent: '10', revision: 1.5, pipeline: 'not a uri' }) }))).toEqual([
      'body /data/pipeline: must match format "uri"',
      'body /data/percent: must be integer or null',
      'body /data/revision: must be integer or null',
      'body /data/revision: must match format "int32"',
    ]);
  });

  it('lets optional fields be null (Pipeliner sends empty values as null) but not required ones', () => {
    expect(answer('GET', `Steps/${STEP_ID}`, 200, { success: true, data: step({ pipeline: null, pipeline_id: null, percent: null }) })).toEqual([]);
    expect(brief(answer('GET', `Steps/${STEP_ID}`, 200, { success: true, data: step({ name: null, sort_order: null }) }))).toEqual([
      'body /data/name: must be string',
      'body /data/sort_order: must be integer',
    ]);
  });

  it("checks date-time as Pipeliner's wire form, not the document's placeholder examples", () => {
    const at = (created: string) => brief(answer('GET', `Steps/${STEP_ID}`, 200, { success: true, data: step({ created }) }));
    expect(at('2024-07-09 12:51:48.050073+00:00')).toEqual([]);
    expect(at('2024-01-15 03:00:00.000000-06:00')).toEqual([]);
    for (const wrong of ['2019-01-01T00:00:00', '2024-07-09T12:51:48.050073Z', '2024-07-09 12:51:48+00:00', '2024-02-30 12:00:00.000000+00:00']) {
      expect(at(wrong)).toEqual(['body /data/created: must match format "date-time"']);
    }
  });

  it('follows expand and load-only: relations become entities, load-only limits what is required', () => {
    expect(answer('GET', `Steps/${STEP_ID}`, 200, { success: true, data: step({ pipeline: pipeline() }) }, 'expand=pipeline')).toEqual([]);
    expect(brief(answer('GET', `Steps/${STEP_ID}`, 200, { success: true, data: step({ pipeline: pipeline() }) }))).toEqual([
      'body /data/pipeline: must be string or null',
    ]);
    const { color: _color, ...colorless } = pipeline();
    expect(brief(answer('GET', `Steps/${STEP_ID}`, 200, { success: true, data: step({ pipeline: colorless }) }, 'expand=pipeline'))).toEqual([
      "body /data/pipeline: must have required property 'color'",
    ]);
    expect(answer('GET', `Pipelines/${PIPELINE_ID}`, 200, { success: true, data: { id: PIPELINE_ID, name: 'Sales Pipeline' } }, 'load-only=id,name')).toEqual([]);
    expect(brief(answer('GET', `Pipelines/${PIPELINE_ID}`, 200, { success: true, data: { id: PIPELINE_ID, name: 'Sales Pipeline' } }))).toEqual([
      "body /data: must have required property 'is_delete_protected'",
      "body /data: must have required property 'color'",
      "body /data: must have required property 'steps'",
      "body /data: must have required property 'opportunity_types'",
    ]);
    expect(answer('GET', `Steps/${STEP_ID}`, 200, { success: true, data: { id: STEP_ID, pipeline: { name: 'Sales' } } }, 'load-only=id,pipeline.name')).toEqual([]);
  });

  it('takes un-expanded Pipeline.steps as URIs and expanded ones as Steps', () => {
    expect(answer('GET', `Pipelines/${PIPELINE_ID}`, 200, { success: true, data: pipeline() })).toEqual([]);
    expect(brief(answer('GET', `Pipelines/${PIPELINE_ID}`, 200, { success: true, data: pipeline({ steps: [{ id: STEP_ID }] }) }))).toEqual([
      'body /data/steps/0: must be string',
    ]);
    expect(answer('GET', `Pipelines/${PIPELINE_ID}`, 200, { success: true, data: pipeline({ steps: [step()] }) }, 'expand=steps')).toEqual([]);
    expect(brief(answer('GET', `Pipelines/${PIPELINE_ID}`, 200, { success: true, data: pipeline({ steps: [step({ sort_order: 'first' })] }) }, 'expand=steps'))).toEqual([
      'body /data/steps/0/sort_order: must be integer',
    ]);
  });

  it('checks list envelopes item by item, with the observed null cursors of an empty page', () => {
    const pageInfo = { start_cursor: null, end_cursor: null, has_previous_page: false, has_next_page: false };
    expect(answer('GET', 'Steps', 200, { success: true, total: 0, page_info: pageInfo, data: [] })).toEqual([]);
    expect(brief(answer('GET', 'Steps', 200, { success: true, total: 2, data: [step(), step({ id: 7 })] }, 'limit=2'))).toEqual([
      'body /data/1/id: must be string',
    ]);
  });

  it('checks batch answers: ids or Error objects', () => {
    expect(answer('POST', 'Steps/batch-modify', 200, { success: true, data: [STEP_ID, { success: false, http_status: 422, code: 40000 }] })).toEqual([]);
    expect(brief(answer('POST', 'Steps/batch-delete', 200, { success: true, data: [{ code: 2001 }] }))).toEqual([
      'body /data/0: must be string',
      "body /data/0: must have required property 'success'",
      "body /data/0: must have required property 'http_status'",
      'body /data/0: must match exactly one schema in oneOf',
    ]);
  });

  it('checks errors against Error, declared (404) or not (400, 401, 422, 429), and flags undeclared success statuses', () => {
    const error = (status: number) => ({ code: 1, name: 'E', message: 'm', http_status: status, success: false });
    for (const status of [404, 400, 401, 422, 429, 503]) expect(answer('GET', `Steps/${STEP_ID}`, status, error(status))).toEqual([]);
    expect(brief(answer('POST', 'Steps', 422, { success: false, code: '40000' }))).toEqual([
      "body : must have required property 'http_status'",
      'body /code: must be integer or null',
    ]);
    expect(brief(answer('POST', 'Steps', 200, { success: true, data: step() }))).toEqual([
      'status : 200 is not a declared status of Steps.create (201, 500)',
    ]);
    expect(brief(contract.checkResponse({ method: 'GET', path: `${BASE}/Steps`, status: 200, body: { success: true, data: [] }, contentType: 'text/html' }))).toEqual([
      "content-type : 'text/html' is not a declared media type (application/json)",
    ]);
    // Answers to requests of no operation are not checked: the request already is a violation.
    expect(answer('PUT', `Steps/${STEP_ID}`, 405, { status: 405 })).toEqual([]);
  });
});

describe('Pipeliner OpenAPI contract: OpenAPI 3.0 conversion', () => {
  const document: OpenApiDocument = {
    openapi: '3.0.2',
    paths: {
      '/things': {
        post: {
          operationId: 'Things.create',
          requestBody: {
            required: true,
            content: {
              'application / json': {
                schema: {
                  required: ['label', 'kind'],
                  properties: {
                    label: { type: 'string', nullable: true, example: 'x' },
                    kind: { type: 'string', enum: ['a', 'b'], nullable: true },
                    size: { type: 'integer', format: 'int32' },
                  },
                },
              },
            },
          },
          responses: { '201': { content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } } },
        },
      },
    },
    components: { schemas: { Thing: { required: ['label'], properties: { label: { type: 'string' }, size: { type: 'integer' } } } } },
  };
  const things = loadPipelinerContract({ document });
  const create = (body: unknown) => things.checkRequest({ method: 'POST', path: '/things', body: JSON.stringify(body), contentType: JSON_TYPE });

  it('turns nullable into a union with null (and null into the enum), and only there in requests', () => {
    expect(create({ label: null, kind: null })).toEqual([]);
    expect(brief(create({ label: 1, kind: 'c' }))).toEqual(['body /label: must be string or null', 'body /kind: must be equal to one of the allowed values: ["a","b",null]']);
    expect(brief(create({ label: 'x', kind: 'a', size: null }))).toEqual(['body /size: must be integer']);
  });

  it('reads a schema with properties and no type as an object', () => {
    expect(brief(create('just a string'))).toEqual(['body : must be object']);
    expect(brief(things.checkResponse({ method: 'POST', path: '/things', status: 201, body: 'label' }))).toEqual(['body : must be object']);
    expect(things.checkResponse({ method: 'POST', path: '/things', status: 201, body: { label: 'x', size: null } })).toEqual([]);
  });
});
