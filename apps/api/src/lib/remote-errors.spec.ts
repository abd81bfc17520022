import type { FaultRule } from '@unicrm/sandboxes';
import { createServer } from 'node:net';
import request from 'supertest';
import { AUTH, type Harness, startHarness } from '../testing/harness';

// Every kind of failure Pipeliner (or the way to it) produces, through POST /unified/crm/stages
// (pipeliner-api.md §4; DESIGN.md §3): status mirrored, truto_is_remote_error, raw_response,
// truto_error_insight, forwarded headers only from the allow-list.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ core: { config: { remoteTimeoutMs: 400 } } });
});
afterAll(() => h.close());
beforeEach(() => h.sandbox.reset());
afterEach(() => expect(h.sandbox.takeContractViolations()).toEqual([]));

const create = (accountId: string, body: object = { name: 'Qualified' }) =>
  request(h.app).post(`/unified/crm/stages?integrated_account_id=${accountId}`).set(AUTH).send(body);

interface Case {
  fault?: FaultRule;
  body?: object;
  status: number;
  message: string | RegExp;
  raw: unknown;
  insight: string[];
  headers?: Record<string, string>;
}

const onCreate = (rule: FaultRule): FaultRule => ({ method: 'POST', path: '/entities/Steps', times: 1, ...rule });
/** The hint on a failure after which the stage may exist (no Idempotency-Key was sent in these cases). */
const MAYBE = ' The stage may have been created: check before retrying, or send an Idempotency-Key so that a retry cannot create it twice.';

const cases: Array<[string, Case]> = [
  ['400 code 117 (invalid JSON, as Pipeliner says it)', {
    fault: onCreate({ status: 400 }), status: 400, message: 'Missing or invalid JSON data.',
    raw: expect.objectContaining({ success: false, http_status: 400, code: 117, name: 'ERROR_PARAMETER_INVALID' }), insight: ['remote_error'],
  }],
  // unicrm's own checks never let a request without a name through (remote_data.name: '' next to a name is a
  // conflict, 400), so the sandbox answers as a space with a required custom field would.
  ['422 code 40000 with a missing field', {
    fault: onCreate({ status: 422, missingField: 'cf_region' }), status: 422, message: "Non-null field 'cf_region' is null or empty.",
    raw: expect.objectContaining({ code: 40000, name: 'ERROR_ENTITY_VALIDATION', field_errors: expect.any(Array) }),
    insight: ['remote_error', 'missing_required_body_fields'],
  }],
  ['422 for a relation to a pipeline that does not exist', {
    body: { name: 'Qualified', pipeline: { id: '99999999-9999-4999-8999-999999999999' } }, status: 422, message: /Relation Step\.pipeline_id=/,
    raw: expect.objectContaining({ code: 40000 }), insight: ['remote_error'],
  }],
  ['404', { fault: onCreate({ status: 404 }), status: 404, message: 'Entity was not found.', raw: expect.objectContaining({ code: 2001 }), insight: ['remote_error'] }],
  ['403', { fault: onCreate({ status: 403 }), status: 403, message: 'Access to this space is forbidden for the application.', raw: expect.objectContaining({ http_status: 403 }), insight: ['remote_error'] }],
  ['429 with Retry-After', {
    fault: onCreate({ status: 429, retryAfter: 12 }), status: 429, message: 'Too many requests. Please retry later.',
    raw: expect.objectContaining({ http_status: 429 }), insight: ['remote_error', 'rate_limit_error'], headers: { 'retry-after': '12' },
  }],
  ['500', { fault: onCreate({ status: 500 }), status: 500, message: 'Internal server error.', raw: expect.objectContaining({ http_status: 500 }), insight: ['remote_error'] }],
  ['503 with Retry-After', {
    fault: onCreate({ status: 503, retryAfter: 3 }), status: 503, message: 'Service is temporarily unavailable. Please retry later.',
    raw: expect.objectContaining({ http_status: 503 }), insight: ['remote_error'], headers: { 'retry-after': '3' },
  }],
  ['an error with a non-JSON (HTML) body', {
    fault: onCreate({ status: 502, body: 'html' }), status: 502, message: 'Pipeliner answered HTTP 502 without an error message',
    raw: expect.stringMatching(/^<!DOCTYPE html>|^<html/i), insight: ['remote_error'],
  }],
  ['an error with an empty body', {
    fault: onCreate({ status: 503, body: 'empty' }), status: 503, message: 'Pipeliner answered HTTP 503 without an error message', raw: '', insight: ['remote_error'],
  }],
  ['a 201 whose body is not JSON', {
    fault: onCreate({ body: 'malformed' }), status: 502, message: `Pipeliner answered HTTP 201 but its body is not a JSON object.${MAYBE}`,
    raw: expect.stringContaining('<<malformed'), insight: ['remote_error'],
  }],
  ['a 201 with an empty body', {
    fault: onCreate({ body: 'empty' }), status: 502, message: `Pipeliner answered HTTP 201 but its body is not a JSON object.${MAYBE}`, raw: '', insight: ['remote_error'],
  }],
  ['a body cut off mid-stream', {
    fault: onCreate({ body: 'truncated' }), status: 502, message: /^The answer from http:\/\/127\.0\.0\.1:\d+ broke off \(\w+\)\. The stage may have been created: check before retrying/, raw: null, insight: ['remote_error'],
  }],
  ['a connection reset without an answer', {
    fault: onCreate({ reset: true }), status: 502, message: /^The connection to http:\/\/127\.0\.0\.1:\d+ broke before an answer came \(\w+\)\. The stage may have been created/, raw: null, insight: ['remote_error'],
  }],
  ['no answer within the timeout', {
    fault: onCreate({ hang: true }), status: 504, message: /^http:\/\/127\.0\.0\.1:\d+ did not answer within 400 ms \(the call's deadline, from waiting for a connection to the answer's last byte\)\. The stage may have been created: check before retrying, or send an Idempotency-Key so that a retry cannot create it twice\.$/, raw: null, insight: ['remote_error'],
  }],
];

describe('remote errors on POST /unified/crm/stages', () => {
  it.each(cases)('%s', async (_name, c) => {
    if (c.fault) h.sandbox.injectFault(c.fault);
    // After a 429 unicrm paces the account until its Retry-After (docs/contract.md "Pacing"): that case gets an
    // account of its own, so the cases after it reach Pipeliner.
    const account = c.status === 429 ? await h.connect() : h.accountId;
    const res = await create(account, c.body);
    expect(res.status).toBe(c.status);
    expect(res.body).toEqual({
      statusCode: c.status,
      error: expect.any(String),
      message: typeof c.message === 'string' ? c.message : expect.stringMatching(c.message),
      truto_is_remote_error: true,
      raw_response: c.raw,
      truto_error_insight: Object.fromEntries(c.insight.map((k) => [k, expect.objectContaining({ description: expect.any(String) })])),
    });
    for (const [name, value] of Object.entries(c.headers ?? {})) expect(res.headers[name]).toBe(value);
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.headers['www-authenticate']).toBeUndefined();
  });

  it('names the missing field of a 422 in truto_error_insight', async () => {
    h.sandbox.injectFault(onCreate({ status: 422, missingField: 'cf_region' }));
    const res = await create(h.accountId, { name: 'Qualified' });
    expect(res.body.truto_error_insight.missing_required_body_fields.value).toEqual(['cf_region']);
  });

  it('answers 502 when Pipeliner refuses the connection', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const id = await h.connect({ service_url: `http://127.0.0.1:${port}` }, false);
    const res = await create(id);
    expect(res.status).toBe(502);
    expect(res.body).toEqual({
      statusCode: 502,
      error: 'Bad Gateway',
      message: `Could not reach http://127.0.0.1:${port} (ECONNREFUSED).`,
      truto_is_remote_error: true,
      raw_response: null,
      truto_error_insight: { remote_error: { description: 'The provider could not be reached or its answer was incomplete.' } },
    });
  });

  it('on a remote 401 marks the account needs_reauth, answers 401 until PATCH sets new credentials', async () => {
    const id = await h.connect({ password: 'wrong-password' }, false);
    const first = await create(id);
    expect(first.status).toBe(401);
    expect(first.body).toMatchObject({ statusCode: 401, truto_is_remote_error: true, raw_response: expect.objectContaining({ http_status: 401 }) });
    expect(first.headers['www-authenticate']).toBeUndefined();

    const again = await create(id);
    expect(again.status).toBe(401);
    expect(again.body.truto_is_remote_error).toBeUndefined();
    expect(again.body.message).toContain('needs re-authentication');
    expect(h.sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(1);

    const account = await request(h.app).get(`/integrated-account/${id}`).set(AUTH);
    expect(account.body).toMatchObject({ status: 'needs_reauth', last_error: expect.stringContaining('401') });
    const patched = await request(h.app).patch(`/integrated-account/${id}`).set(AUTH).send({ context: { password: h.sandbox.password } });
    expect(patched.body).toMatchObject({ status: 'active', last_error: null });
    expect((await create(id)).status).toBe(201);
  });

  it('never retries a create: one POST reached Pipeliner for each failed call', async () => {
    h.sandbox.injectFault(onCreate({ reset: true }));
    await create(h.accountId);
    h.sandbox.injectFault(onCreate({ status: 503 }));
    await create(h.accountId);
    expect(h.sandbox.requests.filter((r) => r.method === 'POST')).toHaveLength(2);
  });
});
