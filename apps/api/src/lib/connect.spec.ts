/**
 * Link tokens, the connect page's security and the webhook admin API over HTTP (issue 17), with supertest against the
 * real app and the Pipeliner sandbox. The browser flows are in connect-browser.spec.ts.
 */
import { createUnicrmCore } from '@unicrm/core';
import Database from 'better-sqlite3';
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import request from 'supertest';
import { type RunningHubSpotSandbox, type RunningPipedriveSandbox, startHubSpotSandbox, startPipedriveSandbox } from '@unicrm/sandboxes';
import { AUTH, type Harness, startHarness } from '../testing/harness';

const REDIRECT = 'https://app.example.com/crm/connected';

/** The hidden inputs of a connect form. */
function formFields(html: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const match of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields[match[1] as string] = (match[2] as string).replace(/&amp;/g, '&');
  return fields;
}

describe('link tokens and the connect page', () => {
  let h: Harness;
  let staging: string;
  beforeAll(async () => {
    h = await startHarness({ core: { config: { connectRedirectUris: { default: [REDIRECT] } } } });
    staging = (await h.core.tokens.issue({ name: 'staging', environment: 'staging' })).token;
  });
  afterAll(async () => h.close());

  const sandboxFields = () => ({
    ctx_service_url: h.sandbox.serviceUrl,
    ctx_space_id: h.sandbox.spaceId,
    ctx_username: h.sandbox.username,
    ctx_password: h.sandbox.password,
  });
  const newLink = async (body: Record<string, unknown> = { tenant_id: 'acme' }, auth: Record<string, string> = AUTH) => {
    const res = await request(h.app).post('/link-token').set(auth).send(body);
    expect(res.status).toBe(201);
    return res.body as { link_token: string; url: string; expires_at: string };
  };
  const openForm = async (token: string) => {
    const res = await request(h.app).get(`/connect?link_token=${encodeURIComponent(token)}&integration=pipeliner`);
    expect(res.status).toBe(200);
    return formFields(res.text);
  };

  it('answers { link_token, expires_at, url }: short-lived, for this host, stored as a hash only', async () => {
    const before = Date.now();
    const res = await request(h.app).post('/link-token').set(AUTH).set('host', 'crm.example.test:8443').send({ tenant_id: 'acme' });
    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(['expires_at', 'link_token', 'url']);
    expect(res.body.url).toBe(`http://crm.example.test:8443/connect?link_token=${res.body.link_token}`);
    const ttl = Date.parse(res.body.expires_at) - before;
    expect(ttl).toBeGreaterThan(14 * 60_000);
    expect(ttl).toBeLessThanOrEqual(15 * 60_000 + 5_000);
    const db = new Database(join(h.core.config.dataDir, 'unicrm.sqlite'), { readonly: true });
    const rows = db.prepare('SELECT * FROM link_tokens').all() as Array<Record<string, unknown>>;
    db.close();
    expect(JSON.stringify(rows)).not.toContain(res.body.link_token);
    expect(rows.some((r) => Buffer.compare(r.token_hash as Buffer, createHash('sha256').update(res.body.link_token).digest()) === 0)).toBe(true);
  });

  it('refuses bodies Truto would not send, unknown accounts, other environments and redirect URIs not on the list', async () => {
    const post = (body: unknown, auth: Record<string, string> = AUTH) => request(h.app).post('/link-token').set(auth).send(body as object);
    expect((await post({})).status).toBe(400);
    expect((await post({ tenant_id: 'a', integrated_account_id: h.accountId })).status).toBe(400);
    expect((await post({ tenant_id: 'a', extra: 1 })).status).toBe(400);
    expect((await post({ tenant_id: 'a', integration: 'nope' })).body.details.failures[0].path).toBe('integration');
    expect((await post({ integrated_account_id: '00000000-0000-4000-8000-000000000000' })).status).toBe(404);
    // The account is the default environment's: a staging token cannot make a link for it.
    expect((await post({ integrated_account_id: h.accountId }, { authorization: `Bearer ${staging}` })).status).toBe(404);
    const badRedirect = await post({ tenant_id: 'a', redirect_uri: 'https://evil.example/steal' });
    expect(badRedirect.status).toBe(400);
    expect(badRedirect.body.details.failures[0]).toMatchObject({ path: 'redirect_uri' });
    expect((await post({ tenant_id: 'a', redirect_uri: `${REDIRECT}/more` })).status).toBe(400);
    expect((await post({ tenant_id: 'a', redirect_uri: REDIRECT }, { authorization: `Bearer ${staging}` })).status).toBe(400);
    expect((await post({ tenant_id: 'a', redirect_uri: REDIRECT })).status).toBe(201);
    expect((await request(h.app).post('/link-token').send({ tenant_id: 'a' })).status).toBe(401);
  });

  it('makes the account in the environment of the token that made the link', async () => {
    const link = await newLink({ tenant_id: 'stage-co' }, { authorization: `Bearer ${staging}` });
    const form = await openForm(link.link_token);
    const res = await request(h.app).post('/connect').type('form').send({ ...form, ...sandboxFields() });
    expect(res.status).toBe(200);
    const list = await request(h.app).get('/integrated-account?tenant_id=stage-co').set({ authorization: `Bearer ${staging}` });
    expect(list.body.result).toHaveLength(1);
    expect(list.body.result[0].environment_id).toBe('staging');
    expect((await request(h.app).get('/integrated-account?tenant_id=stage-co').set(AUTH)).body.result).toHaveLength(0);
  });

  it('serves the page under a strict CSP with a fresh nonce, no-store, and no framing unless the environment allows an origin', async () => {
    const link = await newLink();
    const res = await request(h.app).get(`/connect?link_token=${link.link_token}`);
    expect(res.status).toBe(200);
    const csp = res.headers['content-security-policy'] as string;
    const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeDefined();
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`script-src 'nonce-${nonce}'`);
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain(`form-action 'self' https://app.example.com`);
    expect(csp).toContain('frame-ancestors https://app.example.com');
    expect(res.text).toContain(`<style nonce="${nonce}">`);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-frame-options']).toBeUndefined();
    const again = await request(h.app).get(`/connect?link_token=${link.link_token}`);
    expect(/'nonce-([^']+)'/.exec(again.headers['content-security-policy'] as string)?.[1]).not.toBe(nonce);
    // An environment with no allowed origin: the page cannot be framed at all.
    const other = await newLink({ tenant_id: 'x' }, { authorization: `Bearer ${staging}` });
    const staged = await request(h.app).get(`/connect?link_token=${other.link_token}`);
    expect(staged.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(staged.headers['x-frame-options']).toBe('SAMEORIGIN');
  });

  it('builds the form from the connector context schema: labels, help, password fields for secrets', async () => {
    const link = await newLink();
    const res = await request(h.app).get(`/connect?link_token=${link.link_token}&integration=pipedrive`);
    expect(res.text).toContain('<label for="f-api_domain">Company domain</label>');
    expect(res.text).toMatch(/<input id="f-api_token" name="ctx_api_token" type="password"/);
    expect(res.text).toContain('Personal preferences');
    const choose = await request(h.app).get(`/connect?link_token=${link.link_token}`);
    expect(choose.text).toContain('value="pipeliner">Pipeliner</button>');
    expect(choose.text).toContain('value="pipedrive">Pipedrive</button>');
  });

  it('refuses a submission without its CSRF token or from another origin (nothing connected, the link still usable)', async () => {
    const link = await newLink({ tenant_id: 'csrf-co' });
    const form = await openForm(link.link_token);
    const noCsrf = await request(h.app).post('/connect').type('form').send({ ...form, csrf_token: 'x', ...sandboxFields() });
    expect(noCsrf.status).toBe(403);
    const otherToken = await newLink({ tenant_id: 'csrf-co' });
    const wrongBinding = await request(h.app).post('/connect').type('form').send({ ...form, link_token: otherToken.link_token, ...sandboxFields() });
    expect(wrongBinding.status).toBe(403);
    const foreign = await request(h.app).post('/connect').set('origin', 'https://evil.example').type('form').send({ ...form, ...sandboxFields() });
    expect(foreign.status).toBe(403);
    expect((await request(h.app).get('/integrated-account?tenant_id=csrf-co').set(AUTH)).body.result).toHaveLength(0);
    const ok = await request(h.app).post('/connect').set('origin', `http://${'127.0.0.1'}`).set('host', '127.0.0.1').type('form').send({ ...form, ...sandboxFields() });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('Pipeliner is connected');
    // The redirect URI is on the page, with the outcome; the secrets are not, and neither are they in any log line.
    expect(ok.text).not.toContain(h.sandbox.password);
    expect(JSON.stringify(h.logs)).not.toContain(h.sandbox.password);
    expect(JSON.stringify(h.logs)).not.toContain(link.link_token);
  });

  it('sends the customer on to the redirect URI with the outcome, and tells the opener', async () => {
    const link = await newLink({ tenant_id: 'redir-co', redirect_uri: REDIRECT });
    const form = await openForm(link.link_token);
    const res = await request(h.app).post('/connect').type('form').send({ ...form, ...sandboxFields() });
    expect(res.status).toBe(200);
    const data = JSON.parse(/<script type="application\/json" id="unicrm-result">(.*?)<\/script>/s.exec(res.text)?.[1] ?? '{}');
    const account = (await request(h.app).get('/integrated-account?tenant_id=redir-co').set(AUTH)).body.result[0];
    expect(data).toEqual({
      integrated_account_id: account.id,
      integration: 'pipeliner',
      tenant_id: 'redir-co',
      status: 'active',
      redirect: `${REDIRECT}?integrated_account_id=${account.id}&integration=pipeliner&status=connected`,
      origins: ['https://app.example.com'],
    });
  });

  it('says what is wrong with a form that is too large or has too many fields (its own limits, not the JSON ones)', async () => {
    const big = await request(h.app).post('/connect').type('form').send({ link_token: 'x', filler: 'a'.repeat(70_000) });
    expect(big.status).toBe(413);
    expect(big.body.message).toBe('The body is larger than 64 KiB.');
    const many = await request(h.app)
      .post('/connect')
      .type('form')
      .send(Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`f${i}`, '1'])));
    expect(many.status).toBe(413);
    expect(many.body.message).toBe('The form has too many fields.');
    const json = await request(h.app).post('/link-token').set(AUTH).set('content-type', 'application/json').send(`{"tenant_id":"${'a'.repeat(1_100_000)}"}`);
    expect(json.status).toBe(413);
    expect(json.body.message).toBe('The body is larger than 1 MiB.');
  });

  it('answers field errors from the connector under each field, keeping what was typed (never a secret)', async () => {
    const link = await newLink({ tenant_id: 'fields-co' });
    const form = await openForm(link.link_token);
    const res = await request(h.app)
      .post('/connect')
      .type('form')
      .send({ ...form, ...sandboxFields(), ctx_service_url: 'http://10.0.0.5', ctx_space_id: 'my space' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('Some fields need a correction.');
    expect(res.text).toMatch(/id="f-service_url-error">must use https/);
    expect(res.text).toContain('value="my space"');
    expect(res.text).not.toContain(h.sandbox.password);
  });
});

describe('a submission whose provider is slow (UNICRM_REMOTE_TIMEOUT_MS above the 120 s hold)', () => {
  // The provider may take up to the remote deadline to answer the credential check: a hold that ended first would let
  // a second submission of the same link connect a second account meanwhile.
  const remoteTimeoutMs = 300_000;
  let h: Harness;
  let provider: Server;
  let providerUrl: string;
  const waiting: Array<() => void> = [];
  let arrived!: Promise<void>;
  let arrive: () => void;
  beforeAll(async () => {
    h = await startHarness({ core: { config: { remoteTimeoutMs } } });
    arrived = new Promise((resolve) => (arrive = resolve));
    // A provider that holds every request until the test lets it answer (401: nothing is connected).
    provider = createServer((_req, res) => {
      arrive();
      waiting.push(() => res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"no"}'));
    });
    await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
    providerUrl = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const answer of waiting) answer();
    provider.closeAllConnections();
    await new Promise((resolve) => provider.close(resolve));
    await h.close();
  });

  it('holds the link for longer than the provider may take to answer', async () => {
    const link = (await request(h.app).post('/link-token').set(AUTH).send({ tenant_id: 'slow-co' })).body as { link_token: string };
    const page = await request(h.app).get(`/connect?link_token=${encodeURIComponent(link.link_token)}&integration=pipeliner`);
    const form = formFields(page.text);
    const started = Date.now();
    const submission = request(h.app)
      .post('/connect')
      .type('form')
      .send({ ...form, ctx_service_url: providerUrl, ctx_space_id: 's', ctx_username: 'u', ctx_password: 'p' })
      .then((res) => res);
    await arrived;
    const db = new Database(join(h.core.config.dataDir, 'unicrm.sqlite'), { readonly: true });
    const heldUntil = db.prepare('SELECT held_until FROM link_tokens WHERE token_hash = ?').pluck().get(createHash('sha256').update(link.link_token).digest()) as string;
    db.close();
    expect(Date.parse(heldUntil) - started).toBeGreaterThan(remoteTimeoutMs);
    for (const answer of waiting.splice(0)) answer();
    const res = await submission;
    expect(res.status).toBe(422);
    expect(res.text).toContain('did not accept these credentials');
  });
});

describe('the consent flow (OAuth) of the connect page', () => {
  let h: Harness;
  let pipedrive: RunningPipedriveSandbox;
  beforeAll(async () => {
    pipedrive = await startPipedriveSandbox({ port: 0 });
    const { clientId, clientSecret } = pipedrive.instance.config;
    h = await startHarness({
      core: { config: { oauthApps: { pipedrive: { clientId, clientSecret, authorizeUrl: `${pipedrive.url}/oauth/authorize`, tokenUrl: pipedrive.tokenUrl } } } },
    });
  });
  afterAll(async () => {
    await h.close();
    await pipedrive.close();
  });

  /** Starts a flow for a new link: the provider URL it redirects to, its state, and the cookie it set. */
  const start = async (tenant: string) => {
    const link = (await request(h.app).post('/link-token').set(AUTH).send({ tenant_id: tenant })).body as { link_token: string };
    const page = await request(h.app).get(`/connect?link_token=${link.link_token}&integration=pipedrive`);
    expect(page.headers['content-security-policy']).toContain(`form-action 'self' ${pipedrive.url}`);
    const form = formFields(page.text.slice(page.text.indexOf('action="/connect/oauth/start"')));
    const res = await request(h.app).post('/connect/oauth/start').set('host', '127.0.0.1:9999').type('form').send(form);
    expect(res.status).toBe(303);
    const location = new URL(res.headers.location as string);
    expect(`${location.origin}${location.pathname}`).toBe(`${pipedrive.url}/oauth/authorize`);
    expect(location.searchParams.get('redirect_uri')).toBe('http://127.0.0.1:9999/connect/oauth/callback');
    expect(location.searchParams.get('client_id')).toBe(pipedrive.instance.config.clientId);
    const cookie = String((res.headers['set-cookie'] as unknown as string[])[0]).split(';')[0] as string;
    expect(res.headers['set-cookie']?.[0]).toMatch(/; Path=\/connect\/oauth; HttpOnly; SameSite=Lax; Max-Age=900$/);
    return { state: location.searchParams.get('state') as string, cookie, link };
  };
  const callback = (query: string, cookie?: string) => {
    const req = request(h.app).get(`/connect/oauth/callback?${query}`).set('host', '127.0.0.1:9999');
    return cookie ? req.set('cookie', cookie) : req;
  };
  const CODE = () => pipedrive.instance.config.authorizationCode;

  it('refuses a return without the flow cookie, with a state it did not make, or with a wrong code; then connects once', async () => {
    const { state, cookie } = await start('oauth-co');
    const noCookie = await callback(`code=${CODE()}&state=${state}`);
    expect(noCookie.status).toBe(400);
    expect(noCookie.text).toContain('started in another browser');
    const forged = await callback(`code=${CODE()}&state=${'x'.repeat(43)}`, cookie);
    expect(forged.status).toBe(400);
    expect(forged.text).toContain('did not come from a connect link');
    const wrongCode = await callback(`code=nope&state=${state}`, cookie);
    expect(wrongCode.status).toBe(422);
    expect(wrongCode.text).toContain('Pipedrive did not accept the sign-in: Invalid authorization code.');
    expect((await request(h.app).get('/integrated-account?tenant_id=oauth-co').set(AUTH)).body.result).toHaveLength(0);
    const ok = await callback(`code=${CODE()}&state=${state}`, cookie);
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('Pipedrive is connected');
    const accounts = (await request(h.app).get('/integrated-account?tenant_id=oauth-co').set(AUTH)).body.result;
    expect(accounts).toHaveLength(1);
    // The same return again: the link is used.
    const replay = await callback(`code=${CODE()}&state=${state}`, cookie);
    expect(replay.status).toBe(400);
    expect(replay.text).toContain('already used');
  });

  it("a newer flow replaces the older one's state", async () => {
    const first = await start('oauth-twice');
    const link = first.link;
    const page = await request(h.app).get(`/connect?link_token=${link.link_token}&integration=pipedrive`);
    const form = formFields(page.text.slice(page.text.indexOf('action="/connect/oauth/start"')));
    const second = await request(h.app).post('/connect/oauth/start').type('form').send(form);
    expect(second.status).toBe(303);
    const stale = await callback(`code=${CODE()}&state=${first.state}`, first.cookie);
    expect(stale.status).toBe(400);
  });

  it('offers no consent flow without a configured app, and refuses to start one', async () => {
    const plain = await startHarness();
    try {
      const link = (await request(plain.app).post('/link-token').set(AUTH).send({ tenant_id: 'x' })).body as { link_token: string };
      const page = await request(plain.app).get(`/connect?link_token=${link.link_token}&integration=pipedrive`);
      expect(page.text).not.toContain('Continue with Pipedrive');
      const form = formFields(page.text);
      const res = await request(plain.app).post('/connect/oauth/start').type('form').send(form);
      expect(res.status).toBe(400);
    } finally {
      await plain.close();
    }
  });
});

describe('webhooks admin API', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h.close());

  it('creates (secret shown once), lists with a cursor, gets, updates and deletes in the token environment', async () => {
    const created = await request(h.app).post('/webhook').set(AUTH).send({ target_url: 'https://hooks.example/unicrm?src=crm', event_types: ['integrated_account:created'] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ target_url: 'https://hooks.example/unicrm?src=crm', event_types: ['integrated_account:created'], is_active: true, environment_id: 'default' });
    expect(created.body.secret).toMatch(/^[0-9a-f]{64}$/);
    const id = created.body.id as string;
    const got = await request(h.app).get(`/webhook/${id}`).set(AUTH);
    expect(got.body.secret).toBeUndefined();
    await request(h.app).post('/webhook').set(AUTH).send({ target_url: 'https://hooks.example/two', environment_id: 'default' }).expect(201);
    const page1 = await request(h.app).get('/webhook?limit=1').set(AUTH);
    expect(page1.body.result).toHaveLength(1);
    const page2 = await request(h.app).get(`/webhook?limit=1&next_cursor=${page1.body.next_cursor}`).set(AUTH);
    expect(page2.body.result[0].id).not.toBe(page1.body.result[0].id);
    expect(page2.body.next_cursor).toBeNull();
    const patched = await request(h.app).patch(`/webhook/${id}`).set(AUTH).send({ is_active: false, event_types: [] });
    expect(patched.body).toMatchObject({ is_active: false, event_types: [] });
    expect((await request(h.app).delete(`/webhook/${id}`).set(AUTH)).body).toEqual({ id });
    expect((await request(h.app).get(`/webhook/${id}`).set(AUTH)).status).toBe(404);
  });

  it('applies the outbound policy and the environment rule to what it is given', async () => {
    const post = (body: object) => request(h.app).post('/webhook').set(AUTH).send(body);
    for (const target_url of ['http://hooks.example/in', 'https://169.254.169.254/latest', 'https://user:pw@hooks.example/in', 'not a url']) {
      const res = await post({ target_url });
      expect(res.status).toBe(400);
      expect(res.body.details.failures[0].path).toBe('target_url');
    }
    expect((await post({ target_url: 'https://hooks.example/in', environment_id: 'production' })).body.details.failures[0].path).toBe('environment_id');
    expect((await post({ target_url: 'https://hooks.example/in', event_types: ['stage:created'] })).status).toBe(400);
    expect((await request(h.app).post('/webhook/test').set(AUTH).send({ id: '00000000-0000-4000-8000-000000000000' })).status).toBe(404);
    expect((await request(h.app).get('/webhook/not-an-id/deliveries').set(AUTH)).status).toBe(404);
  });
});

describe('the webhook worker', () => {
  /** A receiver that answers each request with the next status of `script` (then 200). */
  async function receiver(script: number[]) {
    const got: Array<{ body: string; signature: string }> = [];
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        got.push({ body: Buffer.concat(chunks).toString('utf8'), signature: String(req.headers['x-truto-signature']) });
        res.writeHead(script.shift() ?? 200).end();
      });
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    return { got, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/in`, close: () => new Promise<void>((done) => server.close(() => done())) };
  }
  const quiet = () => new Writable({ write: (_c, _e, done) => done() });
  async function until<T>(check: () => Promise<T | undefined>, boundMs = 20_000): Promise<T> {
    const end = Date.now() + boundMs;
    for (;;) {
      const value = await check();
      if (value !== undefined) return value;
      if (Date.now() > end) throw new Error(`not true within ${boundMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('retries a failing receiver with backoff and gives the event up once it is older than the maximum age', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'unicrm-worker-'));
    const target = await receiver(Array(1000).fill(500));
    const core = createUnicrmCore({
      env: {},
      logStream: quiet(),
      config: { dataDir: dir, apiToken: 'worker-token-0123456789', webhooks: { pollMs: 20, timeoutMs: 2_000, retryBaseMs: 20, retryMaxMs: 80, maxAgeMs: 400, retentionMs: 2_592_000_000 } },
    });
    try {
      const hook = await core.webhooks.create('default', { target_url: target.url });
      const queued = await core.webhooks.test('default', { id: hook.id });
      core.webhookDispatcher.start();
      const delivery = await until(async () => {
        const page = await core.webhooks.deliveries('default', hook.id, {});
        const d = page.result.find((x) => x.id === queued.id);
        return d?.status === 'failed' ? d : undefined;
      });
      expect(delivery.attempts.length).toBeGreaterThanOrEqual(2);
      expect(delivery.attempts.every((a) => a.status_code === 500 && a.error === 'the receiver answered 500')).toBe(true);
      // Backoff: each gap between attempts is at least the delay before it (20, 40, 80, 80 ... ms).
      const starts = delivery.attempts.map((a) => Date.parse(a.started_at));
      for (let i = 1; i < starts.length; i++) expect((starts[i] as number) - (starts[i - 1] as number)).toBeGreaterThanOrEqual(Math.min(20 * 2 ** (i - 1), 80));
      expect(delivery.next_attempt_at).toBeNull();
      // Every attempt sent the same signed bytes.
      expect(new Set(target.got.map((g) => g.body)).size).toBe(1);
      const expected = `format=sha256,v=${createHmac('sha256', hook.secret as string).update(target.got[0]?.body ?? '').digest('hex')}`;
      expect(target.got.every((g) => g.signature === expected)).toBe(true);
    } finally {
      await core.close();
      await target.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('delivers each event once when two processes run workers on the same data', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'unicrm-worker-'));
    const target = await receiver([]);
    const config = { dataDir: dir, apiToken: 'worker-token-0123456789', webhooks: { pollMs: 10, timeoutMs: 2_000, retryBaseMs: 20, retryMaxMs: 80, maxAgeMs: 60_000, retentionMs: 2_592_000_000 } };
    const one = createUnicrmCore({ env: {}, logStream: quiet(), config });
    const two = createUnicrmCore({ env: {}, logStream: quiet(), config });
    try {
      const hook = await one.webhooks.create('default', { target_url: target.url });
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) ids.push((await (i % 2 ? one : two).webhooks.test('default', { id: hook.id })).id);
      one.webhookDispatcher.start();
      two.webhookDispatcher.start();
      await until(async () => (target.got.length >= 30 ? true : undefined));
      await until(async () => {
        const page = await one.webhooks.deliveries('default', hook.id, { limit: 100 });
        return page.result.every((d) => d.status === 'delivered') ? true : undefined;
      });
      const received = target.got.map((g) => JSON.parse(g.body).id as string);
      expect(received.sort()).toEqual([...ids].sort());
    } finally {
      await one.close();
      await two.close();
      await target.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes integrated_account events for creates, updates and deletes through the admin API', async () => {
    const h = await startHarness({ core: { config: { webhooks: { pollMs: 20, timeoutMs: 2_000, retryBaseMs: 20, retryMaxMs: 80, maxAgeMs: 60_000, retentionMs: 2_592_000_000 } } } });
    const target = await receiver([]);
    try {
      const hook = await request(h.app).post('/webhook').set(AUTH).send({ target_url: target.url, event_types: ['integrated_account:updated', 'integrated_account:deleted'] });
      h.core.webhookDispatcher.start();
      const id = await h.connect();
      await request(h.app).patch(`/integrated-account/${id}`).set(AUTH).send({ tenant_id: 'renamed' }).expect(200);
      await request(h.app).delete(`/integrated-account/${id}`).set(AUTH).expect(200);
      await until(async () => (target.got.length >= 2 ? true : undefined));
      const bodies = target.got.map((g) => JSON.parse(g.body));
      expect(bodies.map((b) => b.event).sort()).toEqual(['integrated_account:deleted', 'integrated_account:updated']);
      expect(bodies.find((b) => b.event === 'integrated_account:updated').payload).toMatchObject({ id, tenant_id: 'renamed' });
      expect(bodies.every((b) => b.webhook_id === hook.body.id)).toBe(true);
      expect(JSON.stringify(bodies)).not.toContain(h.sandbox.password);
    } finally {
      await h.close();
      await target.close();
    }
  });
});

describe("HubSpot's consent flow on the connect page", () => {
  let h: Harness;
  let hubspot: RunningHubSpotSandbox;
  beforeAll(async () => {
    hubspot = await startHubSpotSandbox({ port: 0 });
    const { clientId, clientSecret } = hubspot.instance.config;
    h = await startHarness({ core: { config: { oauthApps: { hubspot: { clientId, clientSecret, authorizeUrl: `${hubspot.url}/oauth/authorize`, tokenUrl: hubspot.tokenUrl } } } } });
  });
  afterAll(async () => {
    await h.close();
    await hubspot.close();
  });

  it("asks for HubSpot's scopes (HubSpot refuses an authorize URL without them), and connects an account whose API is where the tokens came from", async () => {
    const link = (await request(h.app).post('/link-token').set(AUTH).send({ tenant_id: 'hs-oauth' })).body as { link_token: string };
    const page = await request(h.app).get(`/connect?link_token=${link.link_token}&integration=hubspot`);
    expect(page.status).toBe(200);
    const form = formFields(page.text.slice(page.text.indexOf('action="/connect/oauth/start"')));
    const started = await request(h.app).post('/connect/oauth/start').set('host', '127.0.0.1:9999').type('form').send(form);
    expect(started.status).toBe(303);
    const location = new URL(started.headers.location as string);
    expect(`${location.origin}${location.pathname}`).toBe(`${hubspot.url}/oauth/authorize`);
    expect(location.searchParams.get('scope')).toBe('crm.schemas.deals.read crm.schemas.deals.write tickets');
    const cookie = String((started.headers['set-cookie'] as unknown as string[])[0]).split(';')[0] as string;

    // The sandbox's consent page, as HubSpot's: it shows the scopes; without them it refuses.
    const consent = await fetch(location);
    expect(consent.status).toBe(200);
    expect(await consent.text()).toContain('<code>crm.schemas.deals.read crm.schemas.deals.write tickets</code>');
    const noScope = new URL(location);
    noScope.searchParams.delete('scope');
    expect((await fetch(noScope)).status).toBe(400);
    const allowed = await fetch(`${hubspot.url}/oauth/authorize`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ decision: 'allow', redirect_uri: location.searchParams.get('redirect_uri') as string, state: location.searchParams.get('state') as string }),
      redirect: 'manual',
    });
    expect(allowed.status).toBe(302);
    const back = new URL(allowed.headers.get('location') as string);
    const done = await request(h.app).get(`/connect/oauth/callback?${back.searchParams}`).set('host', '127.0.0.1:9999').set('cookie', cookie);
    expect(done.status).toBe(200);
    expect(done.text).toContain('HubSpot is connected');

    const [account] = (await request(h.app).get('/integrated-account?tenant_id=hs-oauth').set(AUTH)).body.result as Array<{ id: string; context: Record<string, unknown> }>;
    expect(account?.context).toMatchObject({ api_base_url: hubspot.url, client_id: hubspot.instance.config.clientId });
    expect(JSON.stringify(account)).not.toContain(hubspot.instance.config.clientSecret);
    const stages = await request(h.app).get(`/unified/crm/stages?integrated_account_id=${account?.id}`).set(AUTH);
    expect(stages.status).toBe(200);
    expect(stages.body.result).toHaveLength(7);
  });

  it('asks for the scopes of UNICRM_OAUTH_HUBSPOT_SCOPES instead, when set', async () => {
    const { clientId, clientSecret } = hubspot.instance.config;
    const other = await startHarness({
      core: { env: { UNICRM_OAUTH_HUBSPOT_CLIENT_ID: clientId, UNICRM_OAUTH_HUBSPOT_CLIENT_SECRET: clientSecret, UNICRM_OAUTH_HUBSPOT_AUTHORIZE_URL: `${hubspot.url}/oauth/authorize`, UNICRM_OAUTH_HUBSPOT_SCOPES: 'crm.schemas.deals.read, oauth' } },
    });
    try {
      const link = (await request(other.app).post('/link-token').set(AUTH).send({ tenant_id: 'hs-scopes' })).body as { link_token: string };
      const page = await request(other.app).get(`/connect?link_token=${link.link_token}&integration=hubspot`);
      const form = formFields(page.text.slice(page.text.indexOf('action="/connect/oauth/start"')));
      const started = await request(other.app).post('/connect/oauth/start').type('form').send(form);
      expect(new URL(started.headers.location as string).searchParams.get('scope')).toBe('crm.schemas.deals.read oauth');
    } finally {
      await other.close();
    }
  });
});
