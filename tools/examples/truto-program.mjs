// A program written for Truto's unified API, as Truto's TypeScript SDK talks to it: a Bearer token, query objects
// encoded with qs (indices format: truto_exclude_fields[0]=...), JSON bodies, lists paged by passing `next_cursor`
// back until it is null. Nothing in it knows unicrm: point TRUTO_BASE_URL at unicrm (or at Truto) and it runs.
//
//   TRUTO_BASE_URL=http://127.0.0.1:8000 TRUTO_TOKEN=local-dev-token ACCOUNT=<integrated account id> \
//     node tools/examples/truto-program.mjs
//
// It lists the pipelines, creates a stage in the first, lists every stage page by page, reads the new one, renames
// it, moves it to the front, deletes it, and prints one line per step. Exit code 1 on the first failure.
import qs from 'qs';

const base = process.env.TRUTO_BASE_URL ?? 'https://api.truto.one';
const token = process.env.TRUTO_TOKEN;
const account = process.env.ACCOUNT;
if (!token || !account) {
  console.error('set TRUTO_TOKEN and ACCOUNT (and TRUTO_BASE_URL)');
  process.exit(2);
}

/** One call, as Truto's SDK makes it: `qs.stringify` of the query (indices), Bearer token, JSON in and out. */
async function call(method, path, query, body) {
  const url = `${base}${path}?${qs.stringify(query)}`;
  const response = await fetch(url, {
    method,
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', ...(body && { 'Content-Type': 'application/json' }) },
    body: body && JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

/** Every record of a list: follows `next_cursor` until it is null, as Truto's SDK's cursor does. */
async function listAll(resource, query) {
  const records = [];
  let cursor;
  let pages = 0;
  do {
    const page = await call('GET', `/unified/crm/${resource}`, { ...query, ...(cursor && { next_cursor: cursor }) });
    records.push(...page.result);
    cursor = page.next_cursor;
    pages++;
  } while (cursor);
  return { records, pages };
}

const common = { integrated_account_id: account, truto_exclude_fields: ['remote_data'] };
try {
  const pipelines = await listAll('pipelines', common);
  const pipeline = pipelines.records[0];
  console.log(`pipelines: ${pipelines.records.map((p) => `${p.name} (${p.stages?.length ?? 0} stages)`).join(', ')}`);

  const stage = await call('POST', '/unified/crm/stages', common, { name: 'Truto program stage', pipeline: { id: pipeline.id } });
  console.log(`created: ${stage.id} "${stage.name}" at position ${stage.position} in "${stage.pipeline?.name}"`);

  const stages = await listAll('stages', { ...common, limit: 2, pipeline: { id: pipeline.id } });
  console.log(`listed: ${stages.records.length} stages of "${pipeline.name}" in ${stages.pages} pages; the new one ${stages.records.some((s) => s.id === stage.id) ? 'among them' : 'MISSING'}`);

  const read = await call('GET', `/unified/crm/stages/${stage.id}`, common);
  console.log(`read: "${read.name}", ${read.status}`);

  const renamed = await call('PATCH', `/unified/crm/stages/${stage.id}`, common, { name: 'Truto program stage (renamed)' });
  console.log(`renamed: "${renamed.name}"`);

  const moved = await call('PATCH', `/unified/crm/stages/${stage.id}`, common, { position: 0 });
  console.log(`reordered: position ${moved.position}`);

  const deleted = await call('DELETE', `/unified/crm/stages/${stage.id}`, common);
  console.log(`deleted: ${deleted.id}, ${deleted.status}`);
} catch (error) {
  console.error(`failed: ${error.message}`);
  process.exit(1);
}
