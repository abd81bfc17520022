import type { HttpRequest, HttpResponse, HttpTransport, Logger } from '@unicrm/model';
import { UnicrmError } from '@unicrm/model';
import { PipelineNameCache, PipelinerClient } from './client';
import { PipelinerStageUpdateBodySchema, stageListQuery, updateStage } from './stages';

const silent: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const context = { service_url: 'https://eu-central.api.pipelinersales.com', space_id: 'fr_Myself', username: 'u', password: 'p' };
const PIPELINE = '11111111-1111-4111-8111-111111111111';
const OTHER = '22222222-2222-4222-8222-222222222222';
const STEP = '33333333-3333-4333-8333-333333333333';

class Queue implements HttpTransport {
  readonly sent: HttpRequest[] = [];
  readonly answers: HttpResponse[] = [];
  async request(request: HttpRequest): Promise<HttpResponse> {
    this.sent.push(request);
    const answer = this.answers.shift();
    if (!answer) throw new Error('no answer queued');
    return answer;
  }
  close = () => Promise.resolve();
}
const json = (status: number, body: unknown): HttpResponse => ({ status, headers: {}, bodyText: JSON.stringify(body) });
const step = (extra: Record<string, unknown> = {}) => ({ success: true, data: { id: STEP, name: 'Won', sort_order: 1, is_deleted: false, pipeline_id: PIPELINE, ...extra } });

describe('stageListQuery', () => {
  const page = { limit: 10, direction: 'next' as const };
  it.each([
    [{}, page, { first: 10 }],
    [{}, { ...page, cursor: 'c1' }, { first: 10, after: 'c1' }],
    [{}, { limit: 5, cursor: 'c0', direction: 'prev' as const }, { last: 5, before: 'c0' }],
    [{ pipeline: { id: PIPELINE } }, page, { first: 10, filter: { pipeline_id: PIPELINE } }],
    [{ name: 'Won', status: 'active' as const }, page, { first: 10, filter: { name: 'Won' } }],
    [{ status: 'inactive' as const }, page, { first: 10, 'include-deleted': 'true', filter: { is_deleted: 'true' } }],
    [{ created_at: '2024-01-01T00:00:00Z' }, page, { first: 10, filter: { created: '2024-01-01T00:00:00Z' }, 'filter-op': { created: 'eq' } }],
    [{ updated_at: { lt: '2024-01-01T00:00:00Z' } }, page, { first: 10, filter: { modified: '2024-01-01T00:00:00Z' }, 'filter-op': { modified: 'lt' } }],
    [
      { created_at: { gte: '2024-01-01T00:00:00Z', lte: '2024-02-01T00:00:00Z' } },
      page,
      { first: 10, filter: { created: '2024-01-01T00:00:00Z,2024-02-01T00:00:00Z' }, 'filter-op': { created: 'between' } },
    ],
  ])('maps %j with %j to %j', (filters, p, query) => {
    expect(stageListQuery(filters, p)).toEqual(query);
  });

  it('refuses date bounds Pipeliner cannot combine (one operator per field)', () => {
    expect(() => stageListQuery({ created_at: { gt: '2024-01-01T00:00:00Z', lt: '2025-01-01T00:00:00Z' } }, page)).toThrow(UnicrmError);
  });
});

describe('updateStage', () => {
  let transport: Queue;
  let client: PipelinerClient;
  beforeEach(() => {
    transport = new Queue();
    client = new PipelinerClient(transport, context, new PipelineNameCache());
  });
  const body = (input: unknown) => PipelinerStageUpdateBodySchema.parse(input);

  it('PATCHes a rename without validation-level, and reads the pipeline name once', async () => {
    transport.answers.push(json(200, step({ name: 'New' })), json(200, { success: true, data: { id: PIPELINE, name: 'Sales' } }));
    const result = await updateStage(client, STEP, body({ name: 'New' }), { remoteQuery: {} }, silent);
    expect(result.unified).toMatchObject({ id: STEP, name: 'New', pipeline: { id: PIPELINE, name: 'Sales' } });
    expect(transport.sent[0]).toMatchObject({ method: 'PATCH', url: `${context.service_url}/api/v100/rest/spaces/fr_Myself/entities/Steps/${STEP}` });
    expect(JSON.parse(transport.sent[0]?.body ?? '')).toEqual({ name: 'New' });
  });

  it('writes sort_order and pipeline_id with validation-level=8 and checks the move', async () => {
    transport.answers.push(json(200, step({ pipeline_id: OTHER, sort_order: 0 })), json(200, { success: true, data: { id: OTHER, name: 'Other' } }));
    await updateStage(client, STEP, body({ pipeline: { id: OTHER }, position: 0 }), { remoteQuery: {} }, silent);
    expect(transport.sent[0]?.url).toMatch(/\?validation-level=8$/);
    expect(JSON.parse(transport.sent[0]?.body ?? '')).toEqual({ pipeline_id: OTHER, sort_order: 0 });
  });

  it('answers 502 when Pipeliner did not move the step, reading it back when the answer leaves the pipeline out', async () => {
    transport.answers.push(json(200, { success: true, data: { id: STEP } }), json(200, { success: true, data: { id: STEP, pipeline_id: PIPELINE } }));
    await expect(updateStage(client, STEP, body({ pipeline: { id: OTHER } }), { remoteQuery: { 'load-only': 'id' } }, silent)).rejects.toMatchObject({
      statusCode: 502,
      message: expect.stringContaining(`did not move it to pipeline ${OTHER}`),
    });
    expect(transport.sent[1]?.url).toMatch(/Steps\/.*\?load-only=id%2Cpipeline_id$/);
  });

  it("reads the step when there is nothing to write ({} or status 'active')", async () => {
    transport.answers.push(json(200, step()), json(200, { success: true, data: { id: PIPELINE, name: 'Sales' } }));
    const result = await updateStage(client, STEP, body({ status: 'active' }), { remoteQuery: {} }, silent);
    expect(transport.sent.map((r) => r.method)).toEqual(['GET', 'GET']);
    expect(result.unified.status).toBe('active');
  });

  it("refuses status 'inactive', a conflicting remote_data and a bad name before anything is sent", () => {
    for (const input of [{ status: 'inactive' }, { position: 1, remote_data: { sort_order: 2 } }, { name: '' }, { name: 'a\u0000b' }]) {
      expect(PipelinerStageUpdateBodySchema.safeParse(input).success).toBe(false);
    }
  });
});
