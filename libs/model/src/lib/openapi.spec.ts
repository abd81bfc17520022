import { buildOpenApiDocument } from './openapi';

describe('buildOpenApiDocument', () => {
  const doc = buildOpenApiDocument('1.2.3') as {
    openapi: string;
    info: { version: string };
    paths: Record<string, Record<string, { parameters?: Array<{ name: string; required?: boolean }> }>>;
    components: { schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }> };
  };

  it('is OpenAPI 3.1 with the create operation, its five query parameters and Idempotency-Key', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toBe('1.2.3');
    const params = doc.paths['/unified/crm/stages']?.post?.parameters ?? [];
    expect(params.map((p) => p.name)).toEqual([
      'integrated_account_id',
      'truto_response_format',
      'truto_ignore_remote_data',
      'truto_exclude_fields',
      'remote_query',
      'Idempotency-Key',
    ]);
    expect(params[0]?.required).toBe(true);
  });

  it('describes every route the API serves', () => {
    const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).filter((k) => k !== 'parameters').map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual([
      'DELETE /integrated-account/{id}',
      'DELETE /proxy/{resource}/{id}',
      'DELETE /unified/crm/stages/{id}',
      'DELETE /webhook/{id}',
      'GET /health',
      'GET /integrated-account',
      'GET /integrated-account/{id}',
      'GET /openapi.json',
      'GET /proxy/{resource}',
      'GET /proxy/{resource}/{id}',
      'GET /unified/crm/pipelines',
      'GET /unified/crm/pipelines/meta/{method}',
      'GET /unified/crm/pipelines/{id}',
      'GET /unified/crm/stages',
      'GET /unified/crm/stages/meta/{method}',
      'GET /unified/crm/stages/{id}',
      'GET /webhook',
      'GET /webhook/{id}',
      'GET /webhook/{id}/deliveries',
      'PATCH /integrated-account/{id}',
      'PATCH /proxy/{resource}/{id}',
      'PATCH /unified/crm/stages/{id}',
      'PATCH /webhook/{id}',
      'POST /integrated-account',
      'POST /link-token',
      'POST /proxy/{resource}',
      'POST /proxy/{resource}/{id}',
      'POST /unified/crm/stages',
      'POST /unified/crm/stages/batch',
      'POST /webhook',
      'POST /webhook/test',
    ]);
  });

  it('derives the Stage and error schemas from the zod schemas', () => {
    const stage = doc.components.schemas.Stage;
    expect(Object.keys(stage?.properties ?? {})).toEqual([
      'id', 'name', 'position', 'status', 'pipeline', 'created_at', 'updated_at', 'remote_data',
    ]);
    expect(stage?.required).toEqual(['id']);
    expect(doc.components.schemas.Error?.required).toEqual(['statusCode', 'error', 'message']);
    expect(JSON.stringify(doc)).not.toContain('$defs');
  });
});

describe('the unified resources in the document', () => {
  const doc = buildOpenApiDocument() as {
    paths: Record<string, Record<string, { operationId?: string; parameters?: Array<{ name: string; style?: string }> }>>;
    components: { schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }> };
  };

  it('describes the list with its page parameters and the unified filters, and the envelope', () => {
    const names = (doc.paths['/unified/crm/stages']?.get?.parameters ?? []).map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining(['integrated_account_id', 'limit', 'next_cursor', 'truto_key_by', 'truto_ignore_limit', 'pipeline', 'name', 'status', 'created_at', 'updated_at']));
    expect(doc.components.schemas.StageList?.required).toEqual(['result', 'next_cursor', 'prev_cursor', 'result_count']);
    expect(Object.keys(doc.components.schemas.Pipeline?.properties ?? {})).toEqual(['id', 'name', 'entity', 'stages', 'created_at', 'updated_at', 'remote_data']);
    expect(doc.components.schemas.StageUpdateBody?.required).toBeUndefined();
  });

  it('gives every operation a unique id', () => {
    const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((operation) => (operation as { operationId?: string }).operationId)).filter(Boolean);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
