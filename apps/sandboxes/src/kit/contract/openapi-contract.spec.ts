import { type ContractViolation, OpenApiContract, type OpenApiDocument } from './openapi-contract';

// The kit's contract checks read a document as OpenAPI says when no profile changes it (Pipeliner's profile and its
// document are tested in pipeliner/contract.spec.ts). Inline documents, one per dialect.

const JSON_TYPE = 'application/json';
const brief = (violations: ContractViolation[]) => violations.map((v) => `${v.location} ${v.instancePath}: ${v.message}`);

/** A small CRM API in OpenAPI 3.0: stages under `/api/v2`, with the constructs real documents use. */
function crm30(): OpenApiDocument {
  return {
    openapi: '3.0.3',
    servers: [{ url: 'https://crm.example.com/api/v2' }],
    paths: {
      '/stages': {
        parameters: [{ $ref: '#/components/parameters/Limit' }],
        get: {
          operationId: 'listStages',
          parameters: [
            { name: 'ids', in: 'query', schema: { type: 'array', items: { type: 'integer' } } },
            { name: 'fields', in: 'query', explode: false, schema: { type: 'array', items: { type: 'string', enum: ['id', 'name'] } } },
          ],
          responses: {
            '200': {
              description: 'ok',
              content: { 'application/json': { schema: { type: 'object', required: ['data'], properties: { data: { type: 'array', items: { $ref: '#/components/schemas/Stage' } } } } } },
            },
            '4XX': { $ref: '#/components/responses/Error' },
          },
        },
        post: {
          operationId: 'addStage',
          parameters: [{ name: 'dry_run', in: 'query', schema: { type: 'boolean' } }],
          requestBody: { $ref: '#/components/requestBodies/StageInput' },
          responses: { '201': { description: 'created', content: { 'application/json': { schema: { $ref: '#/components/schemas/Stage' } } } } },
        },
      },
      '/stages/{id}': {
        delete: {
          operationId: 'deleteStage',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 0, exclusiveMinimum: true } }],
          responses: { '204': { description: 'gone' }, default: { $ref: '#/components/responses/Error' } },
        },
        put: {
          operationId: 'replaceStage',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }],
          requestBody: { content: { 'application/x-www-form-urlencoded': { schema: { type: 'object', properties: { name: { type: 'string' } } } } } },
          responses: { '200': { description: 'ok', content: { 'application/json': { schema: { $ref: '#/components/schemas/Stage' } } } } },
        },
      },
    },
    components: {
      parameters: { Limit: { name: 'limit', in: 'query', schema: { type: 'integer', maximum: 500 } } },
      requestBodies: { StageInput: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/StageInput' } } } } },
      responses: { Error: { description: 'error', content: { '*/*': { schema: { $ref: '#/components/schemas/Error' } } } } },
      schemas: {
        Stage: {
          type: 'object',
          required: ['id', 'name', 'secret'],
          properties: {
            id: { type: 'integer', readOnly: true },
            name: { type: 'string', example: 'Won', 'x-internal': true },
            rotten_days: { type: 'integer', nullable: true },
            probability: { type: 'integer', minimum: 0, maximum: 100 },
            secret: { type: 'string', writeOnly: true },
          },
        },
        StageInput: {
          type: 'object',
          required: ['name'],
          properties: { id: { type: 'integer', readOnly: true }, name: { type: 'string' }, probability: { type: 'integer' } },
        },
        Error: { required: ['message'], properties: { message: { type: 'string' }, code: { type: 'string', nullable: true } } },
      },
    },
  };
}

describe('kit contract: an OpenAPI 3.0 document read as OpenAPI says (no profile)', () => {
  const contract = new OpenApiContract(crm30());
  const post = (body: unknown, query = '', contentType = JSON_TYPE) =>
    contract.checkRequest({ method: 'POST', path: '/api/v2/stages', query, body: JSON.stringify(body), contentType });

  it('finds operations with and without the server path, and says when none matches', () => {
    expect(contract.dialect).toBe('3.0');
    expect(contract.findOperation('GET', '/api/v2/stages')).toEqual({ operationId: 'listStages', path: '/stages', extensions: {} });
    expect(contract.findOperation('DELETE', '/stages/3')).toEqual({ operationId: 'deleteStage', path: '/stages/{id}', extensions: {} });
    expect(brief(contract.checkRequest({ method: 'PATCH', path: '/api/v2/stages/3' }))).toEqual([
      'operation : the document has no PATCH operation on /stages/{id} (only DELETE, PUT)',
    ]);
  });

  it('checks bodies: required, types, nullable only where declared, read-only fields refused', () => {
    expect(post({ name: 'Won', probability: 40 })).toEqual([]);
    expect(brief(post({ probability: '40' }))).toEqual(["body : must have required property 'name'", 'body /probability: must be integer']);
    expect(brief(post({ name: null }))).toEqual(['body /name: must be string']);
    expect(brief(post({ name: 'Won', id: 3 }))).toEqual([
      'body /id: is read-only (StageInput.id): the document marks it readOnly, so a request should not send it',
    ]);
    expect(brief(contract.checkRequest({ method: 'POST', path: '/api/v2/stages', contentType: JSON_TYPE }))).toEqual(['body : is required']);
  });

  it('checks query parameters where their operation (or its path) declares them, arrays included', () => {
    expect(contract.checkRequest({ method: 'GET', path: '/api/v2/stages', query: 'limit=10&ids=1&ids=2&fields=id,name' })).toEqual([]);
    expect(brief(contract.checkRequest({ method: 'GET', path: '/api/v2/stages', query: 'limit=501&ids=x&fields=id,colour' }))).toEqual([
      'query /limit: must be <= 500',
      'query /ids/0: must be integer',
      'query /fields/1: must be equal to one of the allowed values: ["id","name"]',
    ]);
    // `dry_run` belongs to addStage only: elsewhere it is not a parameter (no profile makes parameters API-wide).
    expect(brief(contract.checkRequest({ method: 'GET', path: '/api/v2/stages', query: 'dry_run=true' }))).toEqual([
      'query /dry_run: is not a query parameter of any operation of the document',
    ]);
    expect(post({ name: 'x' }, 'dry_run=true&limit=5')).toEqual([]);
  });

  it('reads boolean exclusiveMinimum (3.0) as the numeric bound', () => {
    expect(contract.checkRequest({ method: 'DELETE', path: '/api/v2/stages/1' })).toEqual([]);
    expect(brief(contract.checkRequest({ method: 'DELETE', path: '/api/v2/stages/0' }))).toEqual(['path /id: must be > 0']);
  });

  it('accepts a declared non-JSON body without reading it as JSON', () => {
    const put = (contentType: string, body: string) => contract.checkRequest({ method: 'PUT', path: '/api/v2/stages/1', body, contentType });
    expect(put('application/x-www-form-urlencoded', 'name=Won')).toEqual([]);
    expect(brief(put('application/json', '{"name":"Won"}'))).toEqual([
      "content-type : 'application/json' is not a declared media type (application/x-www-form-urlencoded)",
    ]);
  });

  it('checks answers: optional fields are not null unless nullable, writeOnly is never required', () => {
    const answer = (status: number, body: unknown, contentType = JSON_TYPE) => contract.checkResponse({ method: 'POST', path: '/api/v2/stages', status, body, contentType });
    expect(answer(201, { id: 1, name: 'Won', rotten_days: null })).toEqual([]);
    expect(brief(answer(201, { id: 1, name: 'Won', probability: null }))).toEqual(['body /probability: must be integer']);
    expect(brief(answer(201, { id: 1, name: 'Won', probability: 101 }))).toEqual(['body /probability: must be <= 100']);
    // Without a fallback error schema, an error status the operation does not declare is a violation.
    expect(brief(answer(400, { message: 'no' }))).toEqual(['status : 400 is not a declared status of addStage (201)']);
  });

  it('follows response refs, 4XX ranges, `default` and `*/*` media ranges', () => {
    const list = (status: number, body: unknown, contentType = JSON_TYPE) => contract.checkResponse({ method: 'GET', path: '/api/v2/stages', status, body, contentType });
    expect(list(404, { message: 'gone', code: null }, 'application/problem+json')).toEqual([]);
    expect(brief(list(429, { code: 7 }))).toEqual(["body : must have required property 'message'", 'body /code: must be string or null']);
    expect(brief(list(500, { message: 'x' }))).toEqual(['status : 500 is not a declared status of listStages (200, 4XX)']);
    const remove = (status: number, body: unknown) => contract.checkResponse({ method: 'DELETE', path: '/api/v2/stages/1', status, body, contentType: status === 204 ? undefined : JSON_TYPE });
    expect(remove(204, undefined)).toEqual([]);
    expect(remove(503, { message: 'later' })).toEqual([]);
    expect(brief(remove(503, undefined))).toEqual(['body : is missing: the document declares a body for default']);
  });

  it('refuses what it cannot check faithfully: other versions, remote refs, unknown formats', () => {
    expect(() => new OpenApiContract({ ...crm30(), openapi: '2.0' })).toThrow('Expected an OpenAPI 3.0 or 3.1 document, got openapi: 2.0.');
    const withStage = (extra: Record<string, unknown>) => {
      const document = crm30();
      const schemas = document.components?.schemas as Record<string, Record<string, unknown>>;
      schemas.Stage = { ...schemas.Stage, properties: { ...(schemas.Stage.properties as object), ...extra } };
      return () => new OpenApiContract(document);
    };
    expect(withStage({ owner: { $ref: 'https://example.com/owner.json' } })).toThrow(/Unsupported \$ref 'https:\/\/example.com\/owner.json'/);
    expect(withStage({ owner: { $ref: '#/components/schemas/Owner' } })).toThrow(/no schema 'Owner'/);
    expect(withStage({ zip: { type: 'string', format: 'postal-code' } })).toThrow(/unknown format "postal-code"/);
    expect(withStage({ self: { $ref: '#/components/schemas/Stage' } })).toThrow(/Cyclic \$ref through Stage -> Stage/);
  });
});

describe('kit contract: an OpenAPI 3.1 document (JSON Schema 2020-12)', () => {
  const document: OpenApiDocument = {
    openapi: '3.1.0',
    servers: [{ url: '/crm/v3' }],
    paths: {
      '/pipelines/{objectType}/stages': {
        post: {
          operationId: 'createStage',
          parameters: [{ name: 'objectType', in: 'path', required: true, schema: { enum: ['deals', 'tickets'] } }],
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/StageInput' } } } },
          responses: { '201': { description: 'created', content: { 'application/json': { schema: { $ref: '#/components/schemas/Stage', description: 'the stage' } } } } },
        },
      },
    },
    components: {
      schemas: {
        StageInput: {
          type: 'object',
          required: ['label'],
          properties: {
            label: { type: 'string', minLength: 1 },
            displayOrder: { type: ['integer', 'null'], examples: [1] },
            kind: { const: 'stage' },
            range: { type: 'array', prefixItems: [{ type: 'integer' }, { type: 'integer' }], items: false },
            // 3.1: a $ref's siblings apply (here: the label must also be short).
            short: { $ref: '#/components/schemas/Label', maxLength: 3 },
            // `nullable` is not a 3.1 keyword: it changes nothing.
            note: { type: 'string', nullable: true },
          },
          unevaluatedProperties: false,
        },
        Label: { type: 'string' },
        Stage: {
          type: 'object',
          required: ['id', 'label'],
          properties: { id: { type: 'string' }, label: { type: 'string' }, archivedAt: { type: ['string', 'null'], format: 'date-time' } },
        },
      },
    },
  };
  const contract = new OpenApiContract(document);
  const create = (body: unknown, objectType = 'deals') =>
    contract.checkRequest({ method: 'POST', path: `/crm/v3/pipelines/${objectType}/stages`, body: JSON.stringify(body), contentType: JSON_TYPE });

  it('compiles with the 2020-12 keywords and checks requests by them', () => {
    expect(contract.dialect).toBe('3.1');
    expect(create({ label: 'Won', displayOrder: null, kind: 'stage', range: [1, 2], short: 'abc' })).toEqual([]);
    expect(brief(create({ label: '', kind: 'step', range: [1, 'x', 3], short: 'abcd', extra: 1 }, 'companies'))).toEqual([
      'path /objectType: must be equal to one of the allowed values: ["deals","tickets"]',
      'body /label: must NOT have fewer than 1 characters',
      'body /kind: must be equal to constant',
      'body /range/1: must be integer',
      'body /range: must NOT have more than 2 items',
      'body /short: must NOT have more than 3 characters',
      'body : must NOT have unevaluated properties',
    ]);
    expect(brief(create({ label: 'x', note: null }))).toEqual(['body /note: must be string']);
  });

  it('checks answers, null only where the type says so', () => {
    const answer = (body: unknown) => contract.checkResponse({ method: 'POST', path: '/crm/v3/pipelines/deals/stages', status: 201, body, contentType: JSON_TYPE });
    expect(answer({ id: '1', label: 'Won', archivedAt: null })).toEqual([]);
    expect(answer({ id: '1', label: 'Won', archivedAt: '2024-05-01T10:00:00Z' })).toEqual([]);
    expect(brief(answer({ id: 1, label: null, archivedAt: '2024-05-01' }))).toEqual([
      'body /id: must be string',
      'body /label: must be string',
      'body /archivedAt: must match format "date-time"',
    ]);
  });
});
