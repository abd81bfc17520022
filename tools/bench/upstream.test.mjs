// Tests of the canned Pipeliner (upstream.mjs): `node --test tools/bench/`.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { cursorOf, GET_STEP_ID, LISTED_STEPS, PASSWORD, PIPELINE_ID, PIPELINE_NAME, SPACE, startUpstream, stepIdOf, USERNAME } from './upstream.mjs';

const AUTH = `Basic ${Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64')}`;
/** The Step schema and list answer of Pipeliner's OpenAPI document (the subset the connector is generated from). */
const OPENAPI = JSON.parse(readFileSync(new URL('../../libs/connectors/pipeliner/openapi/pipeliner-steps-pipelines.subset.openapi.json', import.meta.url), 'utf8'));
const STEP_SCHEMA = OPENAPI.components.schemas.Step;
const LIST_SCHEMA = OPENAPI.paths['/entities/Steps'].get.responses['200'].content['application/json'].schema;
const PIPELINER_DATE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}\+00:00$/;

let upstream;
let base;
before(async () => {
  upstream = await startUpstream(0);
  base = `${upstream.serviceUrl}/api/v100/rest/spaces/${SPACE}/entities/`;
});
after(() => new Promise((done) => {
  upstream.server.closeAllConnections();
  upstream.server.close(done);
}));

async function get(path, authorization = AUTH) {
  const res = await fetch(base + path, { headers: { authorization } });
  return { status: res.status, body: await res.json() };
}

const typeOf = (value) => (value === null ? 'null' : Array.isArray(value) ? 'array' : Number.isInteger(value) ? 'integer' : typeof value);

/** Every property of the document's Step is there, with its declared type (or null: a writable field not set). */
function assertFullStep(step) {
  for (const [name, schema] of Object.entries(STEP_SCHEMA.properties)) {
    assert.ok(name in step, `Step field ${name} is missing`);
    const type = typeOf(step[name]);
    const declared = schema.type ?? (schema.$ref || schema.allOf ? 'object' : undefined);
    const ok = type === declared || (declared === 'number' && type === 'integer') || (type === 'null' && schema.readOnly !== true);
    assert.ok(ok, `Step field ${name}: ${type}, the document says ${declared}`);
  }
  assert.match(step.created, PIPELINER_DATE);
  assert.match(step.modified, PIPELINER_DATE);
  assert.equal(step.pipeline, `${base}Pipelines/${step.pipeline_id}`);
}

test('a list answers Pipeliner\'s envelope of N full Steps, with total and page_info', async () => {
  const { status, body } = await get('Steps?first=100');
  assert.equal(status, 200);
  assert.deepEqual(Object.keys(body), ['success', 'total', 'page_info', 'data']);
  assert.equal(body.success, true);
  assert.equal(body.total, LISTED_STEPS);
  assert.deepEqual(Object.keys(body.page_info).sort(), Object.keys(LIST_SCHEMA.properties.page_info.properties).sort());
  assert.equal(body.data.length, 100);
  body.data.forEach((step, i) => {
    assertFullStep(step);
    assert.equal(step.id, stepIdOf(i));
    assert.equal(step.pipeline_id, PIPELINE_ID);
    assert.equal(step.sort_order, i + 1);
  });
  assert.deepEqual(body.page_info, { start_cursor: cursorOf(stepIdOf(0)), end_cursor: cursorOf(stepIdOf(99)), has_previous_page: false, has_next_page: true });
  // Pipeliner's cursors: base64 of a JSON array of the sort key (the id).
  assert.deepEqual(JSON.parse(Buffer.from(body.page_info.end_cursor, 'base64').toString()), [stepIdOf(99)]);
});

test('a list pages with after=end_cursor to the end, no step twice or left out; first defaults to 30, at most 100', async () => {
  const seen = [];
  let cursor;
  let pages = 0;
  for (;;) {
    const { status, body } = await get(`Steps?first=100${cursor ? `&after=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(status, 200);
    pages++;
    seen.push(...body.data.map((s) => s.id));
    assert.equal(body.page_info.has_previous_page, pages > 1);
    if (!body.page_info.has_next_page) break;
    cursor = body.page_info.end_cursor;
    assert.ok(pages < 10, 'the walk does not end');
  }
  assert.equal(pages, 3);
  assert.deepEqual(seen, Array.from({ length: LISTED_STEPS }, (_, i) => stepIdOf(i)));
  assert.equal((await get('Steps')).body.data.length, 30);
  assert.equal((await get('Steps?first=500')).body.data.length, 100);
});

test('a list refuses what it does not apply (filters, a bad first, a cursor it did not issue)', async () => {
  for (const query of ['filter%5Bname%5D=x', 'load-only=id', 'first=0', 'first=x', 'after=bm90LWEtY3Vyc29y']) {
    const { status, body } = await get(`Steps?${query}`);
    assert.equal(status, 400, query);
    assert.equal(body.success, false);
  }
});

test('a get answers the listed Step, the same as in the list; an unknown id 404', async () => {
  const { status, body } = await get(`Steps/${GET_STEP_ID}`);
  assert.equal(status, 200);
  assert.equal(body.success, true);
  assertFullStep(body.data);
  assert.deepEqual(body.data, (await get('Steps?first=1')).body.data[0]);
  assert.equal((await get(`Steps/${stepIdOf(LISTED_STEPS)}`)).status, 404);
});

test('the pipeline read (load-only=id,name), the create, and Basic auth', async () => {
  const pipeline = await get(`Pipelines/${PIPELINE_ID}?load-only=id,name`);
  assert.deepEqual(pipeline, { status: 200, body: { success: true, data: { id: PIPELINE_ID, name: PIPELINE_NAME } } });
  const res = await fetch(`${base}Steps?validation-level=8`, {
    method: 'POST',
    headers: { authorization: AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'New', pipeline_id: PIPELINE_ID, sort_order: 2, cf_bench_00001: 'x' }),
  });
  const created = await res.json();
  assert.equal(res.status, 201);
  assertFullStep(created.data);
  assert.equal(created.data.cf_bench_00001, 'x');
  assert.equal((await get('Steps?first=1', 'Basic bm8=')).status, 401);
});
