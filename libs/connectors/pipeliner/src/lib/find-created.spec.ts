import type { HttpRequest, HttpResponse, HttpTransport, Logger } from '@unicrm/model';
import { PipelinerClient } from './client';
import { CLOCK_SKEW_MS, findCreatedStage } from './find-created';

class ListTransport implements HttpTransport {
  readonly requests: HttpRequest[] = [];
  constructor(private readonly answers: HttpResponse[]) {}
  async request(request: HttpRequest): Promise<HttpResponse> {
    this.requests.push(request);
    const answer = this.answers.shift();
    if (!answer) throw new Error('no answer queued');
    return answer;
  }
  async close(): Promise<void> {}
}
const logger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
const context = { service_url: 'https://eu-central.api.pipelinersales.com', space_id: 'fr_Myself', username: 'u', password: 'p' };
const json = (body: unknown): HttpResponse => ({ status: 200, headers: {}, bodyText: JSON.stringify(body) });
const since = new Date('2026-06-01T12:00:00.000Z');
const P = '11111111-1111-4111-8111-111111111111';

describe('findCreatedStage', () => {
  it('asks for the newest same-named step of the pipeline created since the attempt, and unifies it', async () => {
    const step = { id: 's1', name: 'Won', pipeline_id: P, sort_order: 3, is_deleted: false, created: '2026-06-01 12:00:01.000000+00:00', modified: '2026-06-01 12:00:01.000000+00:00' };
    const transport = new ListTransport([json({ success: true, data: [step] }), json({ success: true, data: { id: P, name: 'Sales' } })]);
    const found = await findCreatedStage(new PipelinerClient(transport, context), { name: 'Won', pipeline: { id: P } }, since, { remoteQuery: {} }, logger);
    const url = new URL(transport.requests[0]?.url ?? '');
    expect(url.pathname).toBe('/api/v100/rest/spaces/fr_Myself/entities/Steps');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      'filter[name]': 'Won',
      'filter[created]': new Date(since.getTime() - CLOCK_SKEW_MS).toISOString(),
      'filter[pipeline_id]': P,
      'filter-op[name]': 'eq',
      'filter-op[created]': 'gte',
      'order-by': '-created',
      first: '1',
    });
    expect(found?.unified).toMatchObject({ id: 's1', name: 'Won', position: 3, pipeline: { id: P, name: 'Sales' } });
    expect(found?.remote.body).toEqual({ success: true, data: step });
  });

  it('looks for a step without a pipeline when none was asked for, and answers undefined when there is none', async () => {
    const transport = new ListTransport([json({ success: true, data: [] })]);
    const found = await findCreatedStage(new PipelinerClient(transport, context), { name: 'Loose', remote_data: { name: 'Renamed' } }, since, { remoteQuery: {} }, logger);
    const url = new URL(transport.requests[0]?.url ?? '');
    expect(url.searchParams.get('filter[name]')).toBe('Renamed');
    expect(url.searchParams.get('filter-op[pipeline_id]')).toBe('null');
    expect(url.searchParams.get('filter[pipeline_id]')).toBeNull();
    expect(found).toBeUndefined();
  });

  it("judges by its own query, never the caller's remote_query (a load-only there cannot hide the step's fields)", async () => {
    const step = { id: 's2', name: 'Won', pipeline_id: P, sort_order: 1, is_deleted: false };
    const transport = new ListTransport([json({ success: true, data: [step] }), json({ success: true, data: { id: P, name: 'Sales' } })]);
    const found = await findCreatedStage(
      new PipelinerClient(transport, context),
      { name: 'Won', pipeline: { id: P } },
      since,
      { remoteQuery: { 'load-only': 'id', expand: 'pipeline' } },
      logger,
    );
    const url = new URL(transport.requests[0]?.url ?? '');
    expect(url.searchParams.has('load-only')).toBe(false);
    expect(url.searchParams.has('expand')).toBe(false);
    expect(found?.unified).toMatchObject({ id: 's2', name: 'Won', position: 1, pipeline: { id: P, name: 'Sales' } });
  });
});
