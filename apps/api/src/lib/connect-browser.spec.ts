/**
 * The connect page in a real browser (issue 17 item 4): Debian's chromium (`/usr/bin/chromium`) driven by
 * playwright-core, headless, against the API listening on loopback, the Pipeliner sandbox, and a webhook receiver on
 * loopback. Without chromium this suite is skipped with a line saying so, except when `UNICRM_REQUIRE_BROWSER=1`
 * (CI, `.ci/run`): then it fails. `UNICRM_SCREENSHOTS_DIR=docs/images` writes the screenshots of docs/connect.md.
 */
import { createUnicrmCore, type UnicrmCore } from '@unicrm/core';
import { type RunningPipedriveSandbox, type RunningSandbox, startPipedriveSandbox, startSandbox } from '@unicrm/sandboxes';
import Database from 'better-sqlite3';
import { createHash, createHmac } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { type Browser, chromium, type Page } from 'playwright-core';
import { createApp, type UnicrmApp } from './app';
import { createHttpServer } from './server';

const CHROMIUM = process.env.UNICRM_CHROMIUM ?? '/usr/bin/chromium';
const REQUIRED = process.env.UNICRM_REQUIRE_BROWSER === '1';
const TOKEN = 'browser-test-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

/** A webhook receiver on loopback that can be taken down and brought back on the same port. */
class Receiver {
  readonly received: Array<{ body: string; signature: string | undefined }> = [];
  private server: Server | undefined;
  port = 0;

  async up(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ body: Buffer.concat(chunks).toString('utf8'), signature: req.headers['x-truto-signature'] as string | undefined });
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    await new Promise<void>((done) => (this.server as Server).listen(this.port, '127.0.0.1', done));
    this.port = ((this.server as Server).address() as AddressInfo).port;
  }

  /** Stops listening: deliveries are refused at the TCP level until {@link up}. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
  }

  events(type: string): Array<{ body: Record<string, unknown>; raw: string; signature: string | undefined }> {
    return this.received
      .map((r) => ({ body: JSON.parse(r.body) as Record<string, unknown>, raw: r.body, signature: r.signature }))
      .filter((r) => r.body.event === type);
  }
}

/** Waits until `check` returns a value, polling every 50 ms; fails after `boundMs` (a bound, not a speed). */
async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, boundMs = 20_000): Promise<T> {
  const end = Date.now() + boundMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`not true within ${boundMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const screenshotsDir = process.env.UNICRM_SCREENSHOTS_DIR ? resolve(__dirname, '../../../../', process.env.UNICRM_SCREENSHOTS_DIR) : undefined;
async function shot(page: Page, name: string): Promise<void> {
  if (!screenshotsDir) return;
  mkdirSync(screenshotsDir, { recursive: true });
  await page.screenshot({ path: join(screenshotsDir, `connect-${name}.png`), fullPage: true });
}

const available = existsSync(CHROMIUM);
if (!available && !REQUIRED) {
  console.warn(`connect page browser tests skipped: no chromium at ${CHROMIUM} (apt-get install chromium; CI sets UNICRM_REQUIRE_BROWSER=1)`);
}

(available || REQUIRED ? describe : describe.skip)('connect page in chromium', () => {
  let sandbox: RunningSandbox;
  let pipedrive: RunningPipedriveSandbox;
  let core: UnicrmCore;
  let app: UnicrmApp;
  let server: Server;
  let api: string;
  let browser: Browser;
  let dir: string;
  const receiver = new Receiver();
  let webhook: { id: string; secret: string };
  const cspViolations: string[] = [];

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${api}${path}`, { method, headers: AUTH, ...(body !== undefined && { body: JSON.stringify(body) }) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const linkToken = async (body: Record<string, unknown>) => {
    const res = await call('POST', '/link-token', body);
    expect(res.status).toBe(201);
    return res.body as { link_token: string; url: string; expires_at: string };
  };
  const newPage = async (viewport = { width: 1000, height: 900 }) => {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    return page;
  };
  const verify = (raw: string, signature: string | undefined) =>
    signature === `format=sha256,v=${createHmac('sha256', webhook.secret).update(raw).digest('hex')}`;

  beforeAll(async () => {
    if (!available) throw new Error(`UNICRM_REQUIRE_BROWSER=1 but there is no chromium at ${CHROMIUM}: apt-get install chromium`);
    sandbox = await startSandbox({ port: 0 });
    pipedrive = await startPipedriveSandbox({ port: 0 });
    dir = mkdtempSync(join(tmpdir(), 'unicrm-browser-'));
    core = createUnicrmCore({
      env: {},
      logStream: new Writable({ write: (_c, _e, done) => done() }),
      config: {
        dataDir: dir,
        apiToken: TOKEN,
        rateLimits: { perToken: 0, perAccount: 0, windowMs: 10_000 },
        // Retries close together, so that a receiver that comes back is reached soon (bounds, not timings, below).
        webhooks: { pollMs: 50, timeoutMs: 5_000, retryBaseMs: 100, retryMaxMs: 500, maxAgeMs: 600_000, retentionMs: 2_592_000_000 },
        // Pipedrive's OAuth app, its consent page and token endpoint the sandbox's.
        oauthApps: {
          pipedrive: {
            clientId: pipedrive.instance.config.clientId,
            clientSecret: pipedrive.instance.config.clientSecret,
            authorizeUrl: `${pipedrive.url}/oauth/authorize`,
            tokenUrl: pipedrive.tokenUrl,
          },
        },
      },
    });
    app = createApp(core);
    server = createHttpServer(app);
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    core.webhookDispatcher.start();
    await receiver.up();
    const created = await call('POST', '/webhook', { target_url: `http://127.0.0.1:${receiver.port}/unicrm` });
    expect(created.status).toBe(201);
    webhook = created.body;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-default-apps',
        '--disable-domain-reliability',
        '--disable-sync',
        '--no-first-run',
        '--metrics-recording-only',
        '--disable-features=Translate,OptimizationHints,MediaRouter',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await receiver.down();
    await new Promise<void>((done) => (server ? server.close(() => done()) : done()));
    app?.close();
    await core?.close();
    await sandbox?.close();
    await pipedrive?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let connectedId: string;

  it('connects Pipeliner from a link: choose, type the sandbox credentials, submit; the account exists and a signed integrated_account:created arrives', async () => {
    const link = await linkToken({ tenant_id: 'acme-browser' });
    expect(link.url).toBe(`${api}/connect?link_token=${link.link_token}`);
    const page = await newPage();
    await page.goto(link.url);
    await page.getByRole('heading', { name: 'Connect your CRM' }).waitFor();
    await shot(page, 'choose');
    await page.getByRole('button', { name: 'Pipeliner' }).click();
    await page.getByRole('heading', { name: 'Connect Pipeliner' }).waitFor();
    // Every field has a label (found by it) and help text.
    await page.getByLabel('Service URL').fill(sandbox.serviceUrl);
    await page.getByLabel('Space ID').fill(sandbox.spaceId);
    await page.getByLabel('API token').fill(sandbox.username);
    expect(await page.getByLabel('API password').getAttribute('type')).toBe('password');
    expect(await page.getByLabel('API token').getAttribute('type')).toBe('password');
    await page.getByLabel('API password').fill(sandbox.password);
    await shot(page, 'form');
    // Submitted from the keyboard.
    await page.getByLabel('API password').press('Enter');
    await page.getByRole('heading', { name: 'Pipeliner is connected' }).waitFor();
    await shot(page, 'success');
    const html = await page.content();
    expect(html).not.toContain(sandbox.password);
    expect(html).not.toContain(sandbox.username);
    expect(page.url()).toBe(`${api}/connect`);

    const accounts = await call('GET', '/integrated-account?tenant_id=acme-browser');
    expect(accounts.body.result).toHaveLength(1);
    expect(accounts.body.result[0]).toMatchObject({ integration: { name: 'pipeliner' }, status: 'active', context: { service_url: sandbox.serviceUrl, space_id: sandbox.spaceId } });
    connectedId = accounts.body.result[0].id;
    const event = await eventually(() => receiver.events('integrated_account:created').find((e) => (e.body.payload as { id: string }).id === connectedId));
    expect(event.body).toMatchObject({ event: 'integrated_account:created', environment_id: 'default', webhook_id: webhook.id, payload: { id: connectedId, tenant_id: 'acme-browser' } });
    expect(Object.keys(event.body)).toEqual(['id', 'event', 'payload', 'environment_id', 'webhook_id', 'created_at']);
    expect(verify(event.raw, event.signature)).toBe(true);
    expect(event.raw).not.toContain(sandbox.password);
    await page.context().close();
  });

  it('refuses the link once used', async () => {
    const link = await linkToken({ tenant_id: 'acme-reuse' });
    const page = await newPage();
    await page.goto(`${link.url}&integration=pipeliner`);
    await page.getByLabel('Service URL').fill(sandbox.serviceUrl);
    await page.getByLabel('Space ID').fill(sandbox.spaceId);
    await page.getByLabel('API token').fill(sandbox.username);
    await page.getByLabel('API password').fill(sandbox.password);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.getByRole('heading', { name: 'Pipeliner is connected' }).waitFor();
    // The same link again: refused, and the browser's back-and-resubmit too.
    const again = await page.goto(link.url);
    expect(again?.status()).toBe(410);
    await page.getByRole('heading', { name: 'This link was already used' }).waitFor();
    await shot(page, 'used');
    expect((await call('GET', '/integrated-account?tenant_id=acme-reuse')).body.result).toHaveLength(1);
    await page.context().close();
  });

  it('refuses an expired link', async () => {
    const link = await linkToken({ tenant_id: 'acme-expired' });
    // Its expiry moved into the past in the database (the clock is not faked: only this token's row changes).
    const db = new Database(join(dir, 'unicrm.sqlite'));
    db.prepare('UPDATE link_tokens SET expires_at = ? WHERE token_hash = ?').run('2000-01-01T00:00:00.000Z', createHash('sha256').update(link.link_token).digest());
    db.close();
    const page = await newPage();
    const res = await page.goto(link.url);
    expect(res?.status()).toBe(410);
    await page.getByRole('heading', { name: 'This link has expired' }).waitFor();
    await shot(page, 'expired');
    await page.context().close();
  });

  it("shows Pipeliner's reason for wrong credentials, keeps the other fields (never the secrets), and connects once corrected", async () => {
    const link = await linkToken({ tenant_id: 'acme-wrong' });
    const page = await newPage();
    await page.goto(link.url);
    await page.getByRole('button', { name: 'Pipeliner' }).click();
    await page.getByLabel('Service URL').fill(sandbox.serviceUrl);
    await page.getByLabel('Space ID').fill(sandbox.spaceId);
    await page.getByLabel('API token').fill(sandbox.username);
    await page.getByLabel('API password').fill('not-the-password');
    await page.getByRole('button', { name: 'Connect' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toBe('Pipeliner did not accept these credentials: Invalid API token or API password.');
    expect(await page.getByLabel('Service URL').inputValue()).toBe(sandbox.serviceUrl);
    expect(await page.getByLabel('Space ID').inputValue()).toBe(sandbox.spaceId);
    expect(await page.getByLabel('API token').inputValue()).toBe('');
    expect(await page.getByLabel('API password').inputValue()).toBe('');
    expect(await page.content()).not.toContain('not-the-password');
    await shot(page, 'wrong-credentials');
    expect((await call('GET', '/integrated-account?tenant_id=acme-wrong')).body.result).toHaveLength(0);
    await page.getByLabel('API token').fill(sandbox.username);
    await page.getByLabel('API password').fill(sandbox.password);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.getByRole('heading', { name: 'Pipeliner is connected' }).waitFor();
    expect((await call('GET', '/integrated-account?tenant_id=acme-wrong')).body.result).toHaveLength(1);
    await page.context().close();
  });

  it('reconnects an account in needs_reauth (after a remote 401): straight to its form, stored fields filled in; reactivated', async () => {
    // The customer's password changed at the provider: the stored one now gets a 401, which marks the account.
    expect((await call('PATCH', `/integrated-account/${connectedId}`, { context: { password: 'changed-at-pipeliner' }, validate: false })).status).toBe(200);
    const unified = await call('GET', `/unified/crm/stages?integrated_account_id=${connectedId}`);
    expect(unified.status).toBe(401);
    expect((await call('GET', `/integrated-account/${connectedId}`)).body.status).toBe('needs_reauth');
    const authError = await eventually(() => receiver.events('integrated_account:authentication_error').find((e) => (e.body.payload as { id: string }).id === connectedId));
    expect(authError.body.payload).toMatchObject({ status: 'needs_reauth' });

    const link = await linkToken({ integrated_account_id: connectedId });
    const page = await newPage();
    await page.goto(link.url);
    await page.getByRole('heading', { name: 'Reconnect Pipeliner' }).waitFor();
    expect(await page.getByLabel('Service URL').inputValue()).toBe(sandbox.serviceUrl);
    expect(await page.getByLabel('Space ID').inputValue()).toBe(sandbox.spaceId);
    expect(await page.getByLabel('API password').inputValue()).toBe('');
    await page.getByLabel('API token').fill(sandbox.username);
    await page.getByLabel('API password').fill(sandbox.password);
    await shot(page, 'reconnect');
    await page.getByRole('button', { name: 'Reconnect' }).click();
    await page.getByRole('heading', { name: 'Pipeliner is connected' }).waitFor();
    expect((await call('GET', `/integrated-account/${connectedId}`)).body).toMatchObject({ status: 'active', last_error: null });
    expect((await call('GET', `/unified/crm/stages?integrated_account_id=${connectedId}`)).status).toBe(200);
    const reactivated = await eventually(() => receiver.events('integrated_account:reactivated').find((e) => (e.body.payload as { id: string }).id === connectedId));
    expect(verify(reactivated.raw, reactivated.signature)).toBe(true);
    expect((await call('GET', '/integrated-account?tenant_id=acme-browser')).body.result).toHaveLength(1);
    await page.context().close();
  });

  it("connects Pipedrive through its consent page (OAuth): state checked, code exchanged, tokens stored sealed", async () => {
    const link = await linkToken({ tenant_id: 'acme-oauth' });
    const page = await newPage();
    await page.goto(link.url);
    await page.getByRole('button', { name: 'Pipedrive' }).click();
    await page.getByRole('button', { name: 'Continue with Pipedrive' }).waitFor();
    await shot(page, 'oauth');
    await page.getByRole('button', { name: 'Continue with Pipedrive' }).click();
    // The provider's page (the sandbox's), then back.
    await page.getByRole('button', { name: 'Allow and install' }).click();
    await page.getByRole('heading', { name: 'Pipedrive is connected' }).waitFor();
    expect(page.url()).toMatch(new RegExp(`^${api}/connect/oauth/callback\\?code=`));
    expect(await page.content()).not.toContain('sandbox-access-');
    const accounts = (await call('GET', '/integrated-account?tenant_id=acme-oauth')).body.result;
    expect(accounts).toHaveLength(1);
    expect(accounts[0]).toMatchObject({ integration: { name: 'pipedrive' }, status: 'active', context: { api_domain: pipedrive.url, client_id: pipedrive.instance.config.clientId } });
    expect(Object.keys(accounts[0].context)).not.toContain('access_token');
    expect((await call('GET', `/unified/crm/pipelines?integrated_account_id=${accounts[0].id}`)).status).toBe(200);
    const created = await eventually(() => receiver.events('integrated_account:created').find((e) => (e.body.payload as { id: string }).id === accounts[0].id));
    expect(verify(created.raw, created.signature)).toBe(true);
    // The link is used up.
    expect((await page.goto(link.url))?.status()).toBe(410);
    await page.context().close();
  });

  it('says so when the customer denies access on the consent page, and the link stays usable', async () => {
    const link = await linkToken({ tenant_id: 'acme-deny' });
    const page = await newPage();
    await page.goto(`${link.url}&integration=pipedrive`);
    await page.getByRole('button', { name: 'Continue with Pipedrive' }).click();
    await page.getByRole('button', { name: 'Deny' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toBe('Pipedrive did not connect: access was not allowed. Open your link again to retry.');
    expect((await call('GET', '/integrated-account?tenant_id=acme-deny')).body.result).toHaveLength(0);
    expect((await page.goto(link.url))?.status()).toBe(200);
    await page.context().close();
  });

  it('is readable on a phone: no horizontal scrolling at 390 px', async () => {
    const link = await linkToken({ tenant_id: 'acme-phone' });
    const page = await newPage({ width: 390, height: 844 });
    await page.goto(`${link.url}&integration=pipeliner`);
    await page.getByLabel('Service URL').waitFor();
    // Evaluated in the page (a string: this file is compiled without the DOM's types).
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await shot(page, 'mobile');
    await page.context().close();
  });

  it('delivers an event raised while the receiver is down once it is back (retried, attempts listed)', async () => {
    await receiver.down();
    const test = await call('POST', '/webhook/test', { id: webhook.id });
    expect(test.status).toBe(202);
    // At least two refused attempts while it is down.
    await eventually(async () => {
      const list = await call('GET', `/webhook/${webhook.id}/deliveries`);
      const delivery = (list.body.result as Array<{ id: string; attempts: unknown[] }>).find((d) => d.id === test.body.id);
      return delivery && delivery.attempts.length >= 2 ? true : undefined;
    });
    expect(receiver.events('test').filter((e) => e.body.id === test.body.id)).toHaveLength(0);
    await receiver.up();
    const arrived = await eventually(() => receiver.events('test').find((e) => e.body.id === test.body.id));
    expect(verify(arrived.raw, arrived.signature)).toBe(true);
    const list = await call('GET', `/webhook/${webhook.id}/deliveries`);
    const delivery = (list.body.result as Array<{ id: string; status: string; attempts: Array<{ status_code: number | null; error: string | null }> }>).find(
      (d) => d.id === test.body.id,
    );
    expect(delivery?.status).toBe('delivered');
    const attempts = delivery?.attempts ?? [];
    expect(attempts.length).toBeGreaterThanOrEqual(3);
    expect(attempts.slice(0, -1).every((a) => a.status_code === null && a.error !== null)).toBe(true);
    expect(attempts[attempts.length - 1]).toMatchObject({ status_code: 200, error: null });
    // Delivered once.
    expect(receiver.events('test').filter((e) => e.body.id === test.body.id)).toHaveLength(1);
  });

  it('ran every page under its CSP without a violation', () => {
    expect(cspViolations).toEqual([]);
  });
});
