import { Client } from '@hubspot/api-client';
import { formatContractViolation } from '../kit/contract/openapi-contract';
import { HUBSPOT_DEFAULTS } from './module';
import { type RunningHubSpotSandbox, startHubSpotSandbox } from './server';

// HubSpot's own npm client (@hubspot/api-client), pointed at the sandbox with `basePath`, works against it as against
// HubSpot: pipelines, a stage listed, created, moved, archived and listed archived, and HubSpot's error as its
// ApiException. Every exchange is checked against HubSpot's document.
let sandbox: RunningHubSpotSandbox;
let hubspot: Client;

beforeAll(async () => {
  sandbox = await startHubSpotSandbox({ port: 0, contract: true });
  hubspot = new Client({ accessToken: HUBSPOT_DEFAULTS.accessToken, basePath: sandbox.url });
});
afterEach(() => expect(sandbox.takeContractViolations().map(formatContractViolation)).toEqual([]));
afterAll(() => sandbox.close());

describe("HubSpot's npm client against the sandbox", () => {
  it('lists pipelines and stages, creates a stage, moves it, archives it and sees it archived', async () => {
    const stagesApi = hubspot.crm.pipelines.pipelineStagesApi;
    const pipelines = await hubspot.crm.pipelines.pipelinesApi.getAll('deals');
    expect(pipelines.results.map((p) => [p.id, p.label])).toEqual([['default', 'Sales Pipeline']]);
    expect(pipelines.results[0]?.stages).toHaveLength(7);
    expect(pipelines.results[0]?.stages[0]?.createdAt).toEqual(new Date(0));

    const created = await stagesApi.create('deals', 'default', { label: 'Negotiation', displayOrder: 7, metadata: { probability: '0.7' } });
    expect(created).toMatchObject({ label: 'Negotiation', displayOrder: 7, archived: false, metadata: { probability: '0.7' } });
    expect(created.createdAt).toBeInstanceOf(Date);

    const moved = await stagesApi.update('deals', 'default', created.id, { displayOrder: 2, metadata: created.metadata });
    expect(moved.displayOrder).toBe(2);
    const listed = await stagesApi.getAll('deals', 'default');
    expect(listed.results.map((s) => s.label).slice(0, 3)).toEqual(['Appointment Scheduled', 'Qualified To Buy', 'Negotiation']);

    await stagesApi.archive('deals', 'default', created.id);
    const archived = await stagesApi.getById('deals', 'default', created.id);
    expect(archived).toMatchObject({ id: created.id, archived: true });
    expect(archived.archivedAt).toBeInstanceOf(Date);
    const after = await stagesApi.getAll('deals', 'default');
    expect(after.results.find((s) => s.id === created.id)?.archived).toBe(true);
  });

  it("gets HubSpot's error body as the client's ApiException", async () => {
    const failure = await hubspot.crm.pipelines.pipelineStagesApi
      .create('deals', 'default', { label: 'No probability', displayOrder: 1, metadata: {} })
      .catch((error: unknown) => error as { code: number; body: Record<string, unknown> });
    expect(failure).toMatchObject({ code: 400, body: { status: 'error', category: 'VALIDATION_ERROR', errors: [{ in: 'metadata.probability' }] } });
  });
});
