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
      'GET /health',
      'GET /integrated-account',
      'GET /integrated-account/{id}',
      'GET /openapi.json',
      'GET /unified/crm/stages/meta/create',
      'PATCH /integrated-account/{id}',
      'POST /integrated-account',
      'POST /unified/crm/stages',
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
