import { type HttpRequest, type HttpResponse, type HttpTransport, type Logger, UnicrmError } from '@unicrm/model';
import fc from 'fast-check';
import qs from 'qs';
import { PipelinerClient, pipelinerQueryString } from './client';
import { createStage } from './create-stage';

/** A transport whose answers the test releases one by one, to hold requests in flight. */
class HeldTransport implements HttpTransport {
  readonly requests: HttpRequest[] = [];
  private readonly waiting: Array<(answer: HttpResponse | UnicrmError) => void> = [];

  request(request: HttpRequest): Promise<HttpResponse> {
    this.requests.push(request);
    return new Promise((resolve, reject) => {
      this.waiting.push((answer) => (answer instanceof UnicrmError ? reject(answer) : resolve(answer)));
    });
  }

  /** Answers the oldest unanswered request. */
  answer(answer: HttpResponse | UnicrmError): void {
    const next = this.waiting.shift();
    if (!next) throw new Error('no request is waiting');
    next(answer);
  }

  async close(): Promise<void> {}
}

const context = { service_url: 'https://eu-central.api.pipelinersales.com', space_id: 'fr_Myself', username: 'tok', password: 'pw' };
const PIPELINE = '00000000-0000-0000-0000-000000008e97';
const ok = (status: number, body: unknown): HttpResponse => ({ status, headers: {}, bodyText: JSON.stringify(body) });
const pipelineAnswer = (name = 'Sales Pipeline') => ok(200, { success: true, data: { id: PIPELINE, name } });
const flush = () => new Promise((resolve) => setImmediate(resolve));
const gets = (transport: HeldTransport) => transport.requests.filter((r) => r.method === 'GET');

describe('PipelinerClient.pipelineName', () => {
  it('reads the name with load-only=id,name', async () => {
    const transport = new HeldTransport();
    const name = new PipelinerClient(transport, context).pipelineName(PIPELINE);
    transport.answer(pipelineAnswer());
    await expect(name).resolves.toBe('Sales Pipeline');
    expect(transport.requests[0]?.url).toBe(
      `https://eu-central.api.pipelinersales.com/api/v100/rest/spaces/fr_Myself/entities/Pipelines/${PIPELINE}?load-only=id%2Cname`,
    );
  });

  it('shares one read among concurrent callers with the same credentials (two clients, as two creates make)', async () => {
    const transport = new HeldTransport();
    const first = new PipelinerClient(transport, context).pipelineName(PIPELINE);
    const second = new PipelinerClient(transport, context).pipelineName(PIPELINE);
    expect(gets(transport)).toHaveLength(1);
    transport.answer(pipelineAnswer());
    await expect(Promise.all([first, second])).resolves.toEqual(['Sales Pipeline', 'Sales Pipeline']);
  });

  it('keeps nothing once the read settles: the next call reads again and sees a rename', async () => {
    const transport = new HeldTransport();
    const client = new PipelinerClient(transport, context);
    const before = client.pipelineName(PIPELINE);
    transport.answer(pipelineAnswer('Sales Pipeline'));
    await expect(before).resolves.toBe('Sales Pipeline');
    const after = client.pipelineName(PIPELINE);
    expect(gets(transport)).toHaveLength(2);
    transport.answer(pipelineAnswer('Renamed'));
    await expect(after).resolves.toBe('Renamed');
  });

  it('does not share between other credentials, other pipelines or other transports', async () => {
    const transport = new HeldTransport();
    const other = new HeldTransport();
    void new PipelinerClient(transport, context).pipelineName(PIPELINE);
    void new PipelinerClient(transport, { ...context, password: 'other' }).pipelineName(PIPELINE);
    void new PipelinerClient(transport, context).pipelineName('00000000-0000-0000-0000-000000000002');
    void new PipelinerClient(other, context).pipelineName(PIPELINE);
    expect(gets(transport)).toHaveLength(3);
    expect(gets(other)).toHaveLength(1);
  });

  it('gives a shared failure to every caller, then reads again', async () => {
    const transport = new HeldTransport();
    const first = new PipelinerClient(transport, context).pipelineName(PIPELINE);
    const second = new PipelinerClient(transport, context).pipelineName(PIPELINE);
    transport.answer(ok(500, { success: false, message: 'down' }));
    await expect(first).rejects.toMatchObject({ statusCode: 500 });
    await expect(second).rejects.toMatchObject({ statusCode: 500 });
    const third = new PipelinerClient(transport, context).pipelineName(PIPELINE);
    expect(gets(transport)).toHaveLength(2);
    transport.answer(pipelineAnswer());
    await expect(third).resolves.toBe('Sales Pipeline');
  });

  it('shares the read with a caller that has an abort signal, which stops waiting alone when it aborts', async () => {
    // Issue 12: every create now carries its operation's deadline as a signal; single flight must still hold.
    const transport = new HeldTransport();
    const plain = new PipelinerClient(transport, context).pipelineName(PIPELINE);
    const controller = new AbortController();
    const withSignal = new PipelinerClient(transport, context).pipelineName(PIPELINE, controller.signal);
    const kept = new PipelinerClient(transport, context).pipelineName(PIPELINE, new AbortController().signal);
    expect(gets(transport)).toHaveLength(1);
    const reason = new UnicrmError(504, 'deadline');
    controller.abort(reason);
    await expect(withSignal).rejects.toBe(reason);
    transport.answer(pipelineAnswer());
    await expect(Promise.all([plain, kept])).resolves.toEqual(['Sales Pipeline', 'Sales Pipeline']);
    await expect(new PipelinerClient(transport, context).pipelineName(PIPELINE, controller.signal)).rejects.toBe(reason);
  });

  it('answers undefined for a pipeline without a string name', async () => {
    const transport = new HeldTransport();
    const name = new PipelinerClient(transport, context).pipelineName(PIPELINE);
    transport.answer(ok(200, { success: true, data: { id: PIPELINE } }));
    await expect(name).resolves.toBeUndefined();
  });
});

describe('createStage with concurrent creates in one pipeline', () => {
  const logger: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
  const stepAnswer = (id: string) =>
    ok(201, { success: true, data: { id, name: 'Won', pipeline_id: PIPELINE, sort_order: 1, created: '2024-07-09 12:51:48.050073+00:00' } });

  it('makes one pipeline read for creates whose reads overlap, and each gets the name', async () => {
    const transport = new HeldTransport();
    const create = () => createStage(new PipelinerClient(transport, context), { name: 'Won', pipeline: { id: PIPELINE } }, { remoteQuery: {} }, logger);
    const a = create();
    const b = create();
    transport.answer(stepAnswer('s1'));
    transport.answer(stepAnswer('s2'));
    await flush();
    expect(gets(transport)).toHaveLength(1);
    transport.answer(pipelineAnswer());
    const [stageA, stageB] = await Promise.all([a, b]);
    expect(stageA.unified.pipeline).toEqual({ id: PIPELINE, name: 'Sales Pipeline' });
    expect(stageB.unified.pipeline).toEqual({ id: PIPELINE, name: 'Sales Pipeline' });
    expect(stageA.unified.id).toBe('s1');
    expect(stageB.unified.id).toBe('s2');
  });

  it('still answers both creates, without a name, when the shared read fails', async () => {
    const warnings: unknown[] = [];
    const warnLogger: Logger = { ...logger, warn: (o) => warnings.push(o) };
    const transport = new HeldTransport();
    const create = () => createStage(new PipelinerClient(transport, context), { name: 'Won', pipeline: { id: PIPELINE } }, { remoteQuery: {} }, warnLogger);
    const a = create();
    const b = create();
    transport.answer(stepAnswer('s1'));
    transport.answer(stepAnswer('s2'));
    await flush();
    transport.answer(ok(503, { success: false, message: 'busy' }));
    const stages = await Promise.all([a, b]);
    expect(stages.map((s) => s.unified.pipeline)).toEqual([{ id: PIPELINE }, { id: PIPELINE }]);
    expect(warnings).toEqual([
      expect.objectContaining({ step_id: 's1', status: 503 }),
      expect.objectContaining({ step_id: 's2', status: 503 }),
    ]);
  });
});

describe('pipelinerQueryString', () => {
  it('is empty for no parameters and bracket-encodes nested ones', () => {
    expect(pipelinerQueryString({})).toBe('');
    expect(pipelinerQueryString(Object.create({ inherited: 'x' }))).toBe('');
    expect(pipelinerQueryString({ 'load-only': 'id,name', filter: { name: 'a b' }, ids: ['1', '2'] })).toBe(
      'load-only=id%2Cname&filter[name]=a%20b&ids[]=1&ids[]=2',
    );
  });

  it('writes plain parameters without qs, to the same text qs writes', () => {
    const viaQs = (query: Record<string, unknown>) =>
      qs.stringify(query, {
        arrayFormat: 'brackets',
        encoder: (text, defaultEncoder, charset, type) =>
          type === 'key' ? encodeURIComponent(String(text)).replace(/%5B/gi, '[').replace(/%5D/gi, ']') : defaultEncoder(text, defaultEncoder, charset),
      });
    expect(pipelinerQueryString({ 'validation-level': 8 })).toBe('validation-level=8');
    const key = fc.oneof(fc.constantFrom('validation-level', 'first', 'a.b', 'x~y', '', 'filter[name]', 'é', 'a b'), fc.string({ maxLength: 6 }));
    const value = fc.oneof(
      fc.string({ maxLength: 8 }),
      fc.constantFrom('id,name', 'a b', '~._-', '', 'é'),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }),
      fc.dictionary(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 }), { maxKeys: 2 }),
    );
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 4 }), (query) => {
        expect(pipelinerQueryString(query)).toBe(viaQs(query));
        expect(pipelinerQueryString(Object.freeze({ ...query }))).toBe(viaQs(query));
      }),
      { numRuns: 2000 },
    );
  });
});
