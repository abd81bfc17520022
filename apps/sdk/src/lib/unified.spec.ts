import { isUnicrmError, UnicrmError } from '@unicrm/model';
import { responseMeta } from './meta';
import { type Answer, type BatchCall, checkPathSegment, pagedList, proxyMethod, type ProxyCall, type Transport, type UnifiedCall, unifiedResource } from './unified';

// The transport-neutral layer on a scripted transport: what it sends for each method, and how it pages.

/** A transport that records each call and answers from `pages` (keyed by the cursor asked for; '' = first page). */
function scripted(pages: Record<string, Answer>): { send: Transport; calls: (UnifiedCall | ProxyCall | BatchCall)[] } {
  const calls: (UnifiedCall | ProxyCall | BatchCall)[] = [];
  const send: Transport = async (call) => {
    calls.push(call);
    const cursor = (call.query as { next_cursor?: string }).next_cursor ?? '';
    const answer = pages[cursor];
    if (!answer) throw new UnicrmError(400, `no page at "${cursor}"`);
    return { ...answer, body: JSON.parse(JSON.stringify(answer.body)) };
  };
  return { send, calls };
}

const envelope = (ids: string[], next: string | null, prev: string | null = null): Answer => ({
  statusCode: 200,
  body: { result: ids.map((id) => ({ id })), next_cursor: next, prev_cursor: prev, result_count: ids.length },
  headers: {},
  attempts: 1,
});

async function rejection(promise: Promise<unknown>): Promise<UnicrmError> {
  const error = await promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
  if (!isUnicrmError(error)) throw error;
  return error;
}

describe('unifiedResource', () => {
  const query = { integrated_account_id: 'acc' };

  it('lists lazily, a new walk per iteration, following next_cursor to null', async () => {
    const { send, calls } = scripted({ '': envelope(['a', 'b'], 'c1'), c1: envelope(['c'], 'c2', 'p1'), c2: envelope([], null, 'p2') });
    const list = unifiedResource(send, 'crm', 'stages').list({ ...query, limit: 2 });
    expect(calls).toHaveLength(0);
    const walk = async () => {
      const ids: string[][] = [];
      for await (const page of list) ids.push(((page as { result: { id: string }[] }).result ?? []).map((r) => r.id));
      return ids;
    };
    expect(await walk()).toEqual([['a', 'b'], ['c'], []]);
    expect(await walk()).toEqual([['a', 'b'], ['c'], []]);
    expect(calls.map((c) => (c.query as { next_cursor?: string }).next_cursor)).toEqual([undefined, 'c1', 'c2', undefined, 'c1', 'c2']);
    expect(calls[0]).toEqual({ kind: 'unified', model: 'crm', resource: 'stages', method: 'list', query: { ...query, limit: 2 } });
    expect(await list.all()).toEqual([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
  });

  it('starts from the query\'s next_cursor, and first() fetches that one page only', async () => {
    const { send, calls } = scripted({ c1: envelope(['c'], 'c2', 'p1'), c2: envelope(['d'], null, 'p2') });
    const list = unifiedResource(send, 'crm', 'stages').list({ ...query, next_cursor: 'c1' });
    const first = await list.first();
    expect(first).toEqual({ result: [{ id: 'c' }], next_cursor: 'c2', prev_cursor: 'p1', result_count: 1 });
    expect(responseMeta(first)).toEqual({ statusCode: 200, replayed: false, attempts: 1, nextCursor: 'c2', prevCursor: 'p1' });
    expect(calls).toHaveLength(1);
    expect(await list.all()).toEqual([{ id: 'c' }, { id: 'd' }]);
  });

  it('answers the values of keyed pages from all() and items()', async () => {
    const keyed = (records: Record<string, { id: string }>, next: string | null): Answer => ({
      statusCode: 200,
      body: { result: records, next_cursor: next, prev_cursor: null, result_count: Object.keys(records).length },
      headers: {},
      attempts: 1,
    });
    const { send } = scripted({ '': keyed({ x: { id: 'a' }, y: { id: 'b' } }, 'c1'), c1: keyed({ z: { id: 'c' } }, null) });
    const list = unifiedResource(send, 'crm', 'stages').list({ ...query, truto_key_by: 'name' });
    expect(await list.all()).toEqual([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
    const seen: unknown[] = [];
    for await (const item of list.items()) seen.push(item);
    expect(seen).toEqual([{ id: 'a' }, { id: 'b' }, { id: 'c' }]);
  });

  it('pages the raw format by the cursor headers (any letter case); a raw page is its own item', async () => {
    const raw = (data: string[], headers: Record<string, string>): Answer => ({ statusCode: 200, body: { success: true, data }, headers, attempts: 1 });
    const { send, calls } = scripted({ '': raw(['a'], { 'Unicrm-Next-Cursor': 'n1' }), n1: raw(['b'], { 'unicrm-prev-cursor': 'p1' }) });
    const list = unifiedResource(send, 'crm', 'stages').list({ ...query, truto_response_format: 'raw' });
    const pages = await list.all();
    expect(pages).toEqual([{ success: true, data: ['a'] }, { success: true, data: ['b'] }]);
    expect(responseMeta(pages[0])).toMatchObject({ nextCursor: 'n1', prevCursor: null });
    expect(responseMeta(pages[1])).toMatchObject({ nextCursor: null, prevCursor: 'p1' });
    expect(calls).toHaveLength(2);
  });

  it('rejects the iteration when the API answers the cursor it was given', async () => {
    const { send, calls } = scripted({ '': envelope(['a'], 'c1'), c1: envelope(['b'], 'c1') });
    const error = await rejection(unifiedResource(send, 'crm', 'pipelines').list(query).all());
    expect(error.statusCode).toBe(502);
    expect(error.message).toBe('The API answered GET /unified/crm/pipelines with the next_cursor it was given: the list would never end. Stopped.');
    expect(calls).toHaveLength(2);
  });

  it('sends each method with its id, body and key, and marks the answer with its meta', async () => {
    const calls: (UnifiedCall | ProxyCall | BatchCall)[] = [];
    const send: Transport = async (call) => {
      calls.push(call);
      return { statusCode: call.kind === 'unified' && call.method === 'create' ? 201 : 200, body: { id: 'a' }, headers: { 'Idempotent-Replayed': 'true' }, attempts: 2, idempotencyKey: 'k' };
    };
    const stages = unifiedResource(send, 'crm', 'stages');
    const updated = await stages.update('a/b', query, { name: 'x' }, { idempotencyKey: 'k' });
    expect(updated).toEqual({ id: 'a' });
    expect(responseMeta(updated)).toEqual({ statusCode: 200, replayed: true, idempotencyKey: 'k', attempts: 2 });
    await stages.delete('a', query, { idempotencyKey: false });
    await stages.delete('a', query);
    await stages.get('a', query);
    expect(responseMeta(await stages.create(query, { name: 'x' }))?.statusCode).toBe(201);
    expect(calls).toEqual([
      { kind: 'unified', model: 'crm', resource: 'stages', method: 'update', id: 'a/b', query, body: { name: 'x' }, idempotencyKey: 'k' },
      { kind: 'unified', model: 'crm', resource: 'stages', method: 'delete', id: 'a', query, idempotencyKey: false },
      { kind: 'unified', model: 'crm', resource: 'stages', method: 'delete', id: 'a', query },
      { kind: 'unified', model: 'crm', resource: 'stages', method: 'get', id: 'a', query },
      { kind: 'unified', model: 'crm', resource: 'stages', method: 'create', query, body: { name: 'x' } },
    ]);
  });

  it('sends a batch with its items, key and minimal flag, and marks the answer with Preference-Applied', async () => {
    const calls: (UnifiedCall | ProxyCall | BatchCall)[] = [];
    const answer = { result: [{ index: 0, method: 'create', status: 201, result: { id: 'a' } }], succeeded: 1, failed: 0 };
    const send: Transport = async (call) => {
      calls.push(call);
      return { statusCode: 200, body: answer, headers: { 'preference-applied': 'return=minimal' }, attempts: 1, idempotencyKey: 'b' };
    };
    const stages = unifiedResource(send, 'crm', 'stages');
    const items = [{ method: 'create', body: { name: 'x' }, idempotency_key: 'row-1' }];
    const batch = await stages.batch({ ...query, dry_run: true }, items, { idempotencyKey: 'b', minimal: true });
    expect(batch).toEqual(answer);
    expect(responseMeta(batch)).toEqual({ statusCode: 200, replayed: false, idempotencyKey: 'b', attempts: 1, preferenceApplied: 'return=minimal' });
    await stages.batch(query, items);
    await stages.batch(query, items, { idempotencyKey: false, minimal: false });
    expect(calls).toEqual([
      { kind: 'batch', model: 'crm', resource: 'stages', query: { ...query, dry_run: true }, body: { items }, idempotencyKey: 'b', minimal: true },
      { kind: 'batch', model: 'crm', resource: 'stages', query, body: { items } },
      { kind: 'batch', model: 'crm', resource: 'stages', query, body: { items }, idempotencyKey: false },
    ]);
  });
});

describe('checkPathSegment', () => {
  it.each([
    ['id', '', 'must be the id of a record: 1 to 512 characters, no control characters'],
    ['id', undefined, 'must be the id of a record: 1 to 512 characters, no control characters'],
    ['id', '.', 'cannot be ".": a URL path cannot carry it'],
    ['resource', '..', 'cannot be "..": a URL path cannot carry it'],
    ['resource', '', 'must be a non-empty resource name'],
  ] as const)('refuses %s %j with a 400', (name, value, message) => {
    let error: unknown;
    try {
      checkPathSegment(name, value);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnicrmError);
    expect((error as UnicrmError).statusCode).toBe(400);
    expect((error as UnicrmError).body.details?.failures).toEqual([{ path: name, message }]);
  });

  it('takes any other string as it is (the transport encodes it)', () => {
    expect(checkPathSegment('id', 'a/b ?#')).toBe('a/b ?#');
    expect(checkPathSegment('id', '...')).toBe('...');
  });
});

describe('proxyMethod', () => {
  it('sends a proxy call, and refuses a method or a missing id before any call', async () => {
    const calls: (UnifiedCall | ProxyCall | BatchCall)[] = [];
    const proxy = proxyMethod(async (call) => {
      calls.push(call);
      return { statusCode: 204, body: null, headers: {}, attempts: 1 };
    });
    expect(await proxy({ method: 'DELETE', resource: 'Steps', id: 'x', query: { integrated_account_id: 'acc' } })).toBeNull();
    expect(calls).toEqual([{ kind: 'proxy', method: 'DELETE', resource: 'Steps', id: 'x', query: { integrated_account_id: 'acc' } }]);
    const put = await rejection(proxy({ method: 'PUT' as 'GET', resource: 'Steps', query: { integrated_account_id: 'acc' } }));
    expect(put.body.details?.failures).toEqual([{ path: 'method', message: 'must be one of: GET, POST, PATCH, DELETE' }]);
    const noId = await rejection(proxy({ method: 'DELETE', resource: 'Steps', query: { integrated_account_id: 'acc' } }));
    expect(noId.body.details?.failures).toEqual([{ path: 'id', message: 'is required for DELETE' }]);
    expect(calls).toHaveLength(1);
  });
});

describe('pagedList', () => {
  it('fetches nothing until asked, and stops fetching when the loop stops', async () => {
    const asked: (string | undefined)[] = [];
    const list = pagedList<unknown, unknown>(
      async (cursor) => {
        asked.push(cursor);
        return envelope([cursor ?? 'first'], `after-${cursor ?? 'first'}`);
      },
      false,
      'GET /x',
    );
    expect(asked).toEqual([]);
    let n = 0;
    for await (const _item of list.items()) if (++n === 2) break;
    expect(asked).toEqual([undefined, 'after-first']);
  });
});
