import { findFileAbove, readOpenApiDocument } from './load';
import { type ContractViolation, OpenApiContract, type OpenApiDocument } from './openapi-contract';

// The kit compiles the OpenAPI documents of the other providers (Pipedrive API v2, OpenAPI 3.0.1; HubSpot CRM Pipelines
// v3, OpenAPI 3.0.1) as they are, and checks a real request and answer of each. Each provider's connector commits its
// copy (like Pipeliner's under libs/connectors/pipeliner/openapi); a missing copy fails these tests.
const SPECS = {
  pipedrive: ['libs/connectors/pipedrive/openapi', 'pipedrive-v2-stages-pipelines.subset.openapi.json'],
  hubspot: ['libs/connectors/hubspot/openapi', 'hubspot-crm-pipelines-v3.openapi.json'],
} as const;

function locate([committedDir, file]: readonly [string, string]): string {
  return findFileAbove(`${committedDir}/${file}`, [__dirname]);
}

const brief = (violations: ContractViolation[]) => violations.map((v) => `${v.location} ${v.instancePath}: ${v.message}`);
const JSON_TYPE = 'application/json';

/** `document` as OpenAPI 3.1 says it: `nullable` folded into type arrays (to compile a real document in that dialect). */
function asOpenApi31(document: OpenApiDocument): OpenApiDocument {
  const walk = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(walk);
    if (typeof value !== 'object' || value === null) return value;
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) if (key !== 'nullable') out[key] = walk(item);
    const source = value as Record<string, unknown>;
    if (source.nullable === true && typeof source.type === 'string') out.type = [source.type, 'null'];
    return out;
  };
  return { ...(walk(document) as OpenApiDocument), openapi: '3.1.0' };
}

const pipedrivePath = locate(SPECS.pipedrive);
const hubspotPath = locate(SPECS.hubspot);

describe('the kit on Pipedrive API v2 (OpenAPI 3.0.1)', () => {
  const document = readOpenApiDocument(pipedrivePath);

  it.each([
    ['3.0 as published', () => new OpenApiContract(document)],
    ['the same document as 3.1', () => new OpenApiContract(asOpenApi31(document))],
  ])('compiles %s and checks a stage create and its answer', (_name, load) => {
    const contract = load();
    expect(contract.findOperation('POST', '/api/v2/stages')?.operationId).toBe('addStage');
    expect(contract.findOperation('PATCH', '/stages/7')?.operationId).toBe('updateStage');
    // Extensions as written: Pipedrive's token cost of each operation (the sandbox's daily budget reads it).
    expect(contract.findOperation('POST', '/api/v2/stages')?.extensions['x-token-cost']).toBe(5);
    expect(contract.findOperation('GET', '/api/v2/stages/7')?.extensions['x-token-cost']).toBe(1);

    const request = { method: 'POST', path: '/api/v2/stages', body: JSON.stringify({ name: 'Won', pipeline_id: 1 }), contentType: JSON_TYPE };
    expect(contract.checkRequest(request)).toEqual([]);
    expect(brief(contract.checkRequest({ ...request, body: JSON.stringify({ name: 'Won' }) }))).toEqual(["body : must have required property 'pipeline_id'"]);
    expect(brief(contract.checkRequest({ method: 'GET', path: '/api/v2/stages', query: 'pipeline_id=x&sort_by=name&limit=2' }))).toEqual([
      'query /pipeline_id: must be integer',
      'query /sort_by: must be equal to one of the allowed values: ["id","update_time","add_time","order_nr"]',
    ]);

    const stage = {
      id: 5, order_nr: 1, name: 'Won', is_deleted: false, deal_probability: 100, pipeline_id: 1,
      is_deal_rot_enabled: false, days_to_rotten: null, add_time: '2024-01-01T00:00:00Z', update_time: '2024-01-01T00:00:00Z',
    };
    const answer = { method: 'POST', path: '/api/v2/stages', status: 200, contentType: JSON_TYPE, body: { success: true, data: stage } };
    expect(contract.checkResponse(answer)).toEqual([]);
    expect(brief(contract.checkResponse({ ...answer, body: { success: true, data: { ...stage, id: '5', is_deal_rot_enabled: null } } }))).toEqual([
      'body /data/id: must be integer',
      'body /data/is_deal_rot_enabled: must be boolean',
    ]);
    // Pipedrive declares only 200s: an error answer is a status the document does not declare.
    expect(brief(contract.checkResponse({ ...answer, status: 400, body: { success: false, error: 'x' } }))).toEqual([
      'status : 400 is not a declared status of addStage (200)',
    ]);
  });
});

describe('the kit on HubSpot CRM Pipelines v3 (OpenAPI 3.0.1)', () => {
  const document = readOpenApiDocument(hubspotPath);
  const stagesPath = '/crm/v3/pipelines/deals/default/stages';

  it.each([
    ['3.0 as published', () => new OpenApiContract(document)],
    ['the same document as 3.1', () => new OpenApiContract(asOpenApi31(document))],
  ])('compiles %s and checks a stage create, its answer, its error and an archive', (_name, load) => {
    const contract = load();
    expect(contract.listOperations()).toHaveLength(14);

    const request = {
      method: 'POST',
      path: stagesPath,
      body: JSON.stringify({ label: 'Contract sent', displayOrder: 3, metadata: { probability: '0.6' } }),
      contentType: JSON_TYPE,
    };
    expect(contract.checkRequest(request)).toEqual([]);
    expect(brief(contract.checkRequest({ ...request, body: JSON.stringify({ label: 'x', displayOrder: 1.5, metadata: { probability: 0.6 } }) }))).toEqual([
      'body /displayOrder: must be integer',
      'body /displayOrder: must match format "int32"',
      'body /metadata/probability: must be string',
    ]);

    const stage = {
      id: 'contractsent', label: 'Contract sent', displayOrder: 3, metadata: { probability: '0.6' }, archived: false,
      createdAt: '2024-01-01T00:00:00.000Z', updatedAt: '2024-01-01T00:00:00.000Z', writePermissions: 'CRM_PERMISSIONS_ENFORCEMENT',
    };
    const answer = { method: 'POST', path: stagesPath, status: 201, contentType: JSON_TYPE, body: stage };
    expect(contract.checkResponse(answer)).toEqual([]);
    expect(brief(contract.checkResponse({ ...answer, body: { ...stage, createdAt: 'yesterday' } }))).toEqual(['body /createdAt: must match format "date-time"']);
    // Errors follow the `default` response, a `$ref` to components/responses/Error served as `*/*`.
    const error = { status: 'error', message: 'Invalid input', correlationId: 'aeb5f871-7f07-4993-9211-075dc63e7cbf', category: 'VALIDATION_ERROR' };
    expect(contract.checkResponse({ ...answer, status: 400, contentType: 'application/json;charset=utf-8', body: error })).toEqual([]);
    expect(brief(contract.checkResponse({ ...answer, status: 429, body: { message: 'slow down' } }))).toEqual([
      "body : must have required property 'category'",
      "body : must have required property 'correlationId'",
    ]);
    // An archive answers 204 without a body.
    const archive = { method: 'DELETE', path: `${stagesPath}/contractsent`, query: 'validateReferencesBeforeDelete=true' };
    expect(contract.checkRequest(archive)).toEqual([]);
    expect(contract.checkResponse({ ...archive, status: 204, body: undefined })).toEqual([]);
  });
});
