import 'reflect-metadata';
import { type Connector, TOKENS, UnicrmError, type UnifiedResourceDefinition } from '@unicrm/model';
import request from 'supertest';
import { z } from 'zod';
import { AUTH, type Harness, startHarness } from '../testing/harness';

/**
 * Issue 13: a new unified resource and a connector that serves it, added by two DI registrations in this test: no
 * change to apps/, to the route table or to core. It is reached over HTTP like the built-in ones.
 */
const WidgetSchema = z.object({ id: z.string(), label: z.string().optional(), remote_data: z.record(z.string(), z.unknown()).optional() }).meta({ id: 'Widget' });
const widgets: UnifiedResourceDefinition = {
  model: 'crm',
  resource: 'widgets',
  noun: 'widget',
  schema: WidgetSchema,
  shape: { id: true, label: true },
  createBody: z.strictObject({ label: z.string().optional() }),
  listFilters: z.strictObject({ label: z.string().optional() }),
  component: 'Widget',
  methods: ['list', 'get', 'create'],
};

const records = [
  { uid: 'w1', title: 'Gear' },
  { uid: 'w2', title: 'Sprocket' },
  { uid: 'w3', title: 'Cog' },
];
const unify = (record: { uid: string; title: string }) => ({ id: record.uid, label: record.title, remote_data: record });
const remote = (body: unknown) => ({ status: 200, bodyText: JSON.stringify(body), body });

const widgetCrm: Connector = {
  integration: 'widgetcrm',
  displayName: 'WidgetCRM',
  category: 'crm',
  secretContextKeys: ['key'],
  parseContext: (context) => z.object({ key: z.string() }).parse(context),
  resources: {
    'crm/widgets': {
      list: {
        retrySafe: true,
        description: 'GET /widgets',
        filterSchema: z.strictObject({ label: z.string().optional() }),
        pageSize: { default: 2, max: 2 },
        async list(_account, filters, page) {
          const all = records.filter((r) => filters.label === undefined || r.title === filters.label);
          const start = page.cursor === undefined ? 0 : Number(page.cursor);
          const slice = all.slice(start, start + page.limit);
          const next = start + page.limit < all.length ? String(start + page.limit) : null;
          return { items: slice.map(unify), remote: remote({ widgets: slice }), nextCursor: next, prevCursor: null };
        },
      },
      get: {
        retrySafe: true,
        description: 'GET /widgets/{id}',
        async get(_account, id) {
          const found = records.find((r) => r.uid === id);
          if (!found) throw new UnicrmError(404, `No widget ${id}.`, { truto_is_remote_error: true, raw_response: { error: 'not found' } });
          return { unified: unify(found), remote: remote({ widget: found }) };
        },
      },
      create: {
        retrySafe: false,
        description: 'POST /widgets',
        bodySchema: z.object({ label: z.string({ error: 'is required by WidgetCRM' }) }),
        async create(_account, body) {
          const record = { uid: 'w9', title: String(body.label) };
          return { unified: unify(record), remote: remote({ widget: record }) };
        },
      },
    },
  },
};

let h: Harness;
let account: string;
beforeAll(async () => {
  h = await startHarness({
    core: {
      register: (c) => {
        c.register(TOKENS.UnifiedResource, { useValue: widgets });
        c.register(TOKENS.Connector, { useValue: widgetCrm });
      },
    },
  });
  const res = await request(h.app).post('/integrated-account').set(AUTH).send({ integration: 'widgetcrm', tenant_id: 't', context: { key: 'k' } });
  account = res.body.id;
});
afterAll(() => h.close());

describe('a resource added by registration only', () => {
  it('lists, pages, gets and creates widgets over HTTP', async () => {
    const first = await request(h.app).get(`/unified/crm/widgets?integrated_account_id=${account}&truto_ignore_remote_data=true`).set(AUTH);
    expect(first.status).toBe(200);
    expect(first.body.result).toEqual([{ id: 'w1', label: 'Gear' }, { id: 'w2', label: 'Sprocket' }]);
    const next = await request(h.app).get(`/unified/crm/widgets?integrated_account_id=${account}&truto_ignore_remote_data=true&next_cursor=${encodeURIComponent(first.body.next_cursor)}`).set(AUTH);
    expect(next.body).toEqual({ result: [{ id: 'w3', label: 'Cog' }], next_cursor: null, prev_cursor: null, result_count: 1 });
    const one = await request(h.app).get(`/unified/crm/widgets/w2?integrated_account_id=${account}&truto_response_format=normalized`).set(AUTH);
    expect(one.body).toEqual({ id: 'w2', label: 'Sprocket' });
    const created = await request(h.app).post(`/unified/crm/widgets?integrated_account_id=${account}`).set(AUTH).send({ label: 'Nut' });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ id: 'w9', label: 'Nut', remote_data: { uid: 'w9', title: 'Nut' } });
  });

  it("applies the unified schema, then the integration's, and answers 501 for what the connector does not declare", async () => {
    const unknownField = await request(h.app).post(`/unified/crm/widgets?integrated_account_id=${account}`).set(AUTH).send({ colour: 'red' });
    expect(unknownField.body.details.failures).toEqual([{ path: 'colour', message: 'unknown field' }]);
    const missing = await request(h.app).post(`/unified/crm/widgets?integrated_account_id=${account}`).set(AUTH).send({});
    expect(missing.body).toMatchObject({ message: 'Invalid body for WidgetCRM: label is required by WidgetCRM', truto_error_insight: { missing_required_body_fields: { value: ['label'] } } });
    const update = await request(h.app).patch(`/unified/crm/widgets/w1?integrated_account_id=${account}`).set(AUTH).send({});
    expect(update.status).toBe(501);
    expect(update.body.message).toBe('The widgetcrm integration cannot update widgets.');
    const filter = await request(h.app).get(`/unified/crm/widgets?integrated_account_id=${account}&colour=red`).set(AUTH);
    expect(filter.body.details.failures[0].message).toContain('WidgetCRM filters by label');
  });

  it('answers 501 for a built-in resource the connector does not serve, and Pipeliner 501 for widgets', async () => {
    const stages = await request(h.app).get(`/unified/crm/stages?integrated_account_id=${account}`).set(AUTH);
    expect(stages.status).toBe(501);
    expect(stages.body.message).toBe('The widgetcrm integration cannot list stages.');
    const pipeliner = await request(h.app).get(`/unified/crm/widgets?integrated_account_id=${h.accountId}`).set(AUTH);
    expect(pipeliner.body.message).toBe('The pipeliner integration cannot list widgets.');
  });

  it('describes the resource in the meta endpoint and the OpenAPI document', async () => {
    const meta = await request(h.app).get(`/unified/crm/widgets/meta/list?integrated_account_id=${account}`).set(AUTH);
    expect(meta.body).toMatchObject({ resource: 'widgets', integration: 'widgetcrm', page_size: { default: 2, max: 2 } });
    expect(meta.body.query_schema.properties.label).toEqual({ type: 'string' });
    const doc = await request(h.app).get('/openapi.json').set(AUTH);
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/unified/crm/widgets', '/unified/crm/widgets/{id}', '/unified/crm/widgets/meta/{method}']));
    expect(doc.body.paths['/unified/crm/widgets/{id}'].patch).toBeUndefined();
    expect(doc.body.components.schemas.Widget.properties.label).toEqual({ type: 'string' });
  });
});
