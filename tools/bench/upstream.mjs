// A minimal canned Pipeliner for the benchmark (tools/bench/README.md, docs/benchmarks.md).
//
// It answers the calls unicrm's Pipeliner connector makes in the benchmark's scenarios, with Pipeliner's shapes as
// the sandbox renders them:
//   POST {base}/Steps             -> 201 {"success":true,"data":<Step>}  (the body's fields stored and echoed back)
//   GET  {base}/Steps?first=N     -> 200 the list envelope {"success","total","page_info","data"} of N full Steps
//                                    (N 1..100, default 30; `after` takes the page's end_cursor), of LISTED_STEPS
//   GET  {base}/Steps/{id}        -> 200 {"success":true,"data":<Step>}  (one of the listed Steps; else 404)
//   GET  {base}/Pipelines/{id}    -> 200 {"success":true,"data":{"id","name"}}  (any query, e.g. load-only=id,name)
//   GET  {base}/Pipelines         -> 200 the list envelope with the one pipeline (unicrm's credential check on connect)
// where base = /api/v100/rest/spaces/{space}/entities. Basic auth is checked (a string compare). It keeps no state
// that calls change, so it costs the same on every call. For a create it does the work any real upstream does: read
// the whole body, parse it, serialise an answer. The listed Steps never change (a space nobody edits), so their
// answers are serialised once, at start, and a list or get only writes those bytes, as a cache in front of a real
// upstream would. It is a floor for the upstream, so that what the benchmark sees is the gateway.
//
// Run as a child process of bench.mjs: `node upstream.mjs <port>`; prints `{"port":n}` on stdout once listening.
// Listens on 127.0.0.1 only.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

export const SPACE = 'bench_space';
export const USERNAME = 'bench-api-token';
export const PASSWORD = 'bench-api-password';
export const PIPELINE_ID = '00000000-5a1e-4000-8000-000000000001';
export const PIPELINE_NAME = 'Sales Pipeline';
/** How many Steps the space holds for lists and gets (a page of 100 has a next page). */
export const LISTED_STEPS = 250;
/** Pipeliner's page sizes (pipeliner-api.md §4: `first` defaults to 30, at most 100). */
export const PAGE_SIZE = { default: 30, max: 100 };
/** The id of the `i`-th listed Step (0-based): UUIDs that sort in list order, as Pipeliner's default order is by id. */
export const stepIdOf = (i) => `00000000-57e9-4000-8000-${String(i + 1).padStart(12, '0')}`;
/** The Step the `get` scenario reads. */
export const GET_STEP_ID = stepIdOf(0);
const AUTHORIZATION = `Basic ${Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64')}`;
const BASE = `/api/v100/rest/spaces/${SPACE}/entities/`;

/** Pipeliner's date format (`2024-07-09 12:51:48.050073+00:00`). */
function pipelinerDate(date) {
  return `${date.toISOString().replace('T', ' ').replace('Z', '')}000+00:00`;
}

function send(res, status, text) {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const error = (status, code, message) => JSON.stringify({ success: false, http_status: status, code, message });

/** A cursor as Pipeliner's look (base64 of a JSON array of the sort key, here the id; pipeliner-api.md §4). */
export const cursorOf = (id) => Buffer.from(JSON.stringify([id])).toString('base64');

/**
 * A Step as Pipeliner outputs it (every field of the spec's Step schema, the sandbox's order), with the create body
 * applied. `id` and `at` (a Date) default to a new id and now.
 */
export function step(serviceUrl, body, id = randomUUID(), at = new Date()) {
  const now = pipelinerDate(at);
  const pipelineId = typeof body.pipeline_id === 'string' ? body.pipeline_id : PIPELINE_ID;
  const out = {
    is_delete_protected: false,
    id,
    is_deleted: false,
    modified: now,
    created: now,
    lead_process: null,
    pipeline: `${serviceUrl}${BASE}Pipelines/${pipelineId}`,
    quote_process: null,
    description: null,
    has_readonly_form: false,
    has_version_increment: false,
    lead_process_id: null,
    name: body.name,
    percent: null,
    pipeline_id: pipelineId,
    quote_process_id: null,
    sort_order: typeof body.sort_order === 'number' ? body.sort_order : 0,
    timeframe: null,
    revision: 1011,
    documents: [],
    step_checklists: [],
  };
  // Writable fields and custom fields (cf_*) are stored and returned, as Pipeliner does.
  for (const [key, value] of Object.entries(body)) {
    if (key === 'description' || key === 'percent' || key === 'timeframe' || key.startsWith('cf_')) out[key] = value;
  }
  return out;
}

/**
 * The space's listed Steps (LISTED_STEPS of them, in one pipeline, sort_order 1..n, created a minute apart), and
 * their answers serialised once: each Step's get answer, and the first page for each `first`.
 */
function listedSteps(serviceUrl) {
  const start = Date.now() - LISTED_STEPS * 60_000;
  const steps = Array.from({ length: LISTED_STEPS }, (_, i) =>
    step(
      serviceUrl,
      { name: `Stage ${i + 1}`, pipeline_id: PIPELINE_ID, sort_order: i + 1, description: `Step ${i + 1} of the benchmark's pipeline.`, percent: (i * 7) % 101 },
      stepIdOf(i),
      new Date(start + i * 60_000),
    ),
  );
  const index = new Map(steps.map((s, i) => [s.id, i]));
  const getTexts = steps.map((s) => JSON.stringify({ success: true, data: s }));
  return { steps, index, getTexts, firstPages: new Map() };
}

/** Pipeliner's list envelope (§4) of steps[from, from + first): `total`, `page_info` with cursors, `data`. */
export function listEnvelope(steps, from, first) {
  const data = steps.slice(from, from + first);
  const page_info =
    data.length === 0
      ? { start_cursor: null, end_cursor: null, has_previous_page: false, has_next_page: false }
      : { start_cursor: cursorOf(data[0].id), end_cursor: cursorOf(data.at(-1).id), has_previous_page: from > 0, has_next_page: from + first < steps.length };
  return { success: true, total: steps.length, page_info, data };
}

/** The answer of `GET {base}/Steps?...`: [status, JSON text]. Only `first` and `after` are understood. */
function listAnswer(listed, query) {
  const params = new URLSearchParams(query);
  for (const key of params.keys()) {
    if (key !== 'first' && key !== 'after') return [400, error(400, 117, `\nThe bench's canned upstream does not apply ${key}`)];
  }
  const firstText = params.get('first');
  const first = firstText === null ? PAGE_SIZE.default : Number(firstText);
  if (!Number.isInteger(first) || first < 1) return [400, error(400, 117, '\nInvalid first')];
  const size = Math.min(first, PAGE_SIZE.max);
  const after = params.get('after');
  if (after === null) {
    let text = listed.firstPages.get(size);
    if (text === undefined) {
      text = JSON.stringify(listEnvelope(listed.steps, 0, size));
      listed.firstPages.set(size, text);
    }
    return [200, text];
  }
  let id;
  try {
    [id] = JSON.parse(Buffer.from(after, 'base64').toString('utf8'));
  } catch {
    return [400, error(400, 117, '\nInvalid cursor')];
  }
  const at = listed.index.get(id);
  if (at === undefined) return [400, error(400, 117, '\nInvalid cursor')];
  return [200, JSON.stringify(listEnvelope(listed.steps, at + 1, size))];
}

export function startUpstream(port = 0) {
  let serviceUrl = '';
  let listed;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      if (req.headers.authorization !== AUTHORIZATION) {
        return send(res, 401, error(401, 401, '\nInvalid credentials'));
      }
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      if (req.method === 'POST' && path === `${BASE}Steps`) {
        let body;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return send(res, 400, error(400, 40000, '\nMalformed JSON'));
        }
        return send(res, 201, JSON.stringify({ success: true, data: step(serviceUrl, body) }));
      }
      if (req.method === 'GET' && path === `${BASE}Steps`) {
        const [status, text] = listAnswer(listed, q < 0 ? '' : url.slice(q + 1));
        return send(res, status, text);
      }
      if (req.method === 'GET' && path.startsWith(`${BASE}Steps/`)) {
        const at = listed.index.get(path.slice(`${BASE}Steps/`.length));
        if (at === undefined) return send(res, 404, error(404, 404, '\nEntity not found'));
        return send(res, 200, listed.getTexts[at]);
      }
      if (req.method === 'GET' && path === `${BASE}Pipelines`) {
        const page = { start_cursor: null, end_cursor: null, has_next_page: false, has_previous_page: false };
        return send(res, 200, JSON.stringify({ success: true, data: [{ id: PIPELINE_ID, name: PIPELINE_NAME }], page_info: page }));
      }
      if (req.method === 'GET' && path.startsWith(`${BASE}Pipelines/`)) {
        const id = path.slice(`${BASE}Pipelines/`.length);
        if (id !== PIPELINE_ID) return send(res, 404, error(404, 404, '\nEntity not found'));
        return send(res, 200, JSON.stringify({ success: true, data: { id, name: PIPELINE_NAME } }));
      }
      send(res, 404, error(404, 404, `\nNo route ${req.method} ${path}`));
    });
  });
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      serviceUrl = `http://127.0.0.1:${address.port}`;
      listed = listedSteps(serviceUrl);
      resolve({ server, port: address.port, serviceUrl });
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { port } = await startUpstream(Number(process.argv[2] ?? 0));
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.on('SIGTERM', () => process.exit(0));
}
