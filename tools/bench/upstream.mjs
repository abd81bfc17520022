// A minimal canned Pipeliner for the benchmark (tools/bench/README.md, docs/benchmarks.md).
//
// It answers the two calls unicrm's Pipeliner connector makes, with Pipeliner's shapes as the sandbox renders them:
//   POST {base}/Steps            -> 201 {"success":true,"data":<Step>}  (the body's fields stored and echoed back)
//   GET  {base}/Pipelines/{id}   -> 200 {"success":true,"data":{"id","name"}}
//   GET  {base}/Pipelines        -> 200 the list envelope with the one pipeline (unicrm's credential check on connect)
// where base = /api/v100/rest/spaces/{space}/entities. Basic auth is checked (a string compare). It keeps no state,
// so it costs the same on every call, and it does the work any real upstream does for a create: read the whole body,
// parse it, serialise an answer. It is a floor for the upstream, so that what the benchmark sees is the gateway.
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

/** A Step as Pipeliner outputs it (every field of the spec's Step schema, the sandbox's order), with the create body applied. */
function step(serviceUrl, body) {
  const now = pipelinerDate(new Date());
  const pipelineId = typeof body.pipeline_id === 'string' ? body.pipeline_id : PIPELINE_ID;
  const out = {
    is_delete_protected: false,
    id: randomUUID(),
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

export function startUpstream(port = 0) {
  let serviceUrl = '';
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
      resolve({ server, port: address.port, serviceUrl });
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { port } = await startUpstream(Number(process.argv[2] ?? 0));
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.on('SIGTERM', () => process.exit(0));
}
