import 'reflect-metadata';
import {
  checkOutboundUrl,
  type Clock,
  type Connector,
  type HttpTransport,
  type OAuthApp,
  type IntegratedAccount,
  type LinkToken,
  LinkTokenCreateBodySchema,
  type LinkTokenRecord,
  type LinkTokenStore,
  type Logger,
  TOKENS,
  type UnicrmConfig,
  UnicrmError,
  isJsonObject,
  toJsonSchema,
  zodFailures,
} from '@unicrm/model';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { inject, injectable } from 'tsyringe';
import { IntegratedAccountService } from './accounts';
import type { CoreEnvironment } from './config';
import { CORE_TOKENS } from './core-tokens';
import { ConnectorRegistry } from './registry';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/**
 * How long one submission holds a link token while the credentials are checked (ms): past it, another may try. At
 * least 120 s, and at least three provider calls' deadlines (`UNICRM_REMOTE_TIMEOUT_MS`: a consent flow's code
 * exchange, the credential check, a margin), so a hold never ends while its submission can still connect an account.
 */
const SUBMIT_HOLD_MS = 120_000;
const holdMs = (remoteTimeoutMs: number) => Math.max(SUBMIT_HOLD_MS, 3 * remoteTimeoutMs);

/** One field of a connect form, from a connector's context schema. */
export interface ConnectField {
  /** The context key. */
  name: string;
  /** The label (the property's `title`, else its key). */
  label: string;
  /** Help text under the field (the property's `description`). */
  help?: string;
  /** `password` for a secret key, `url` for a URL, else `text`. */
  type: 'text' | 'url' | 'password';
  required: boolean;
  /** The stored value of a non-secret field, on a reconnect (secrets are never sent back). */
  value?: string;
}

/** An integration offered on a connect page, with its form. */
export interface ConnectIntegration {
  name: string;
  displayName: string;
  fields: ConnectField[];
  /** Set when the customer can connect through the provider's consent page: the page's origin (for the CSP). */
  oauth?: { authorizeOrigin: string };
}

/** Where {@link ConnectService.startOAuth} sends the browser, and the cookie that binds the flow to it. */
export interface OAuthStart {
  /** The provider's authorization URL, with `response_type`, `client_id`, `redirect_uri` and `state`. */
  location: string;
  /** The value of the flow's cookie (an HMAC of the state): the callback requires it from the same browser. */
  cookie: string;
}

/** What the connect page shows for a link token. */
export type ConnectPage =
  | {
      status: 'ready';
      environmentId: string;
      tenantId: string;
      expiresAt: string;
      redirectUri: string | null;
      integrations: ConnectIntegration[];
      /** Set on a reconnect: the account, and its integration (the only one offered). */
      reconnect?: { accountId: string; integration: string; status: string };
    }
  | { status: 'expired' | 'used' | 'unknown' };

/** The outcome of a connect form's submission. */
export type ConnectOutcome =
  | { ok: true; account: IntegratedAccount; redirectUri: string | null; environmentId: string }
  | {
      ok: false;
      /** Why, in plain words (the provider's own reason when it refused the credentials). */
      message: string;
      /** Per field: what is wrong with it. */
      fieldErrors: Record<string, string>;
      /** True when the link can no longer be used (expired, used, unknown): the form is not shown again. */
      final: boolean;
    };

/**
 * Link tokens and the connect flow (issue 17; truto-contract.md §4.3 "Connection flow"): `POST /link-token` makes a
 * short-lived, single-use token (only its SHA-256 is stored) bound to the environment of the API token that made it;
 * the connect page shows a form per integration, built from the connector's {@link Connector.contextSchema}, and its
 * submission connects (or reconnects) the account through {@link IntegratedAccountService} exactly as
 * `POST|PATCH /integrated-account` do: the context checked by the connector, the credentials by the provider, the
 * account event written with the account.
 */
@injectable()
export class ConnectService {
  constructor(
    @inject(TOKENS.LinkTokenStore) private readonly store: LinkTokenStore,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Config) private readonly config: UnicrmConfig & CoreEnvironment,
    private readonly registry: ConnectorRegistry,
    private readonly accounts: IntegratedAccountService,
    @inject(CORE_TOKENS.ConnectKey) private readonly key: Buffer,
    @inject(TOKENS.HttpTransport) private readonly transport: HttpTransport,
  ) {}

  /** The OAuth app of an integration whose connector has a consent flow and whose app is configured, or undefined. */
  private oauthApp(connector: Connector): OAuthApp | undefined {
    const configured = this.config.oauthApps?.[connector.integration];
    if (!connector.oauthConsent || !configured) return undefined;
    return {
      clientId: configured.clientId,
      clientSecret: configured.clientSecret,
      authorizeUrl: configured.authorizeUrl ?? connector.oauthConsent.authorizeUrl,
      tokenUrl: configured.tokenUrl ?? connector.oauthConsent.tokenUrl,
      scopes: configured.scopes ?? connector.oauthConsent.scopes ?? [],
    };
  }

  /** The cookie value that binds a consent flow's `state` to the browser that started it. */
  private stateCookie(state: string): string {
    return createHmac('sha256', this.key).update('connect-oauth-state:').update(state).digest('base64url');
  }

  /**
   * Starts the provider's consent flow for a link (OAuth 2 authorization code grant): a fresh `state` (only its SHA-256
   * is stored, with the link), bound to this browser by a cookie the API sets.
   * @param redirectUri this API's callback, `<public URL>/connect/oauth/callback` (sent again with the code)
   * @returns where to send the browser and the cookie's value, or an outcome to show (a link that cannot be used)
   */
  async startOAuth(token: string, integration: string, redirectUri: string): Promise<OAuthStart | Extract<ConnectOutcome, { ok: false }>> {
    const found = await this.lookup(token);
    if (found.status !== 'ready') return { ok: false, message: this.finalMessage(found.status), fieldErrors: {}, final: true };
    const offered = this.offered(found.record).find((i) => i.name === integration);
    const connector = this.registry.byName(integration);
    const app = connector && this.oauthApp(connector);
    if (!offered || !app) return { ok: false, message: 'This CRM cannot be connected by signing in here; use the form.', fieldErrors: {}, final: false };
    const state = randomBytes(32).toString('base64url');
    if (!(await this.store.startOAuth(sha256(token), sha256(state), integration))) {
      return { ok: false, message: this.finalMessage('used'), fieldErrors: {}, final: true };
    }
    const location = new URL(app.authorizeUrl);
    location.searchParams.set('response_type', 'code');
    location.searchParams.set('client_id', app.clientId);
    location.searchParams.set('redirect_uri', redirectUri);
    if (app.scopes.length > 0) location.searchParams.set('scope', app.scopes.join(' '));
    location.searchParams.set('state', state);
    return { location: location.toString(), cookie: this.stateCookie(state) };
  }

  /**
   * The provider's return to `redirectUri`: checks `state` (a flow this unicrm started, from this browser: `cookie`),
   * exchanges the code at the provider's token endpoint (through the outbound policy), and connects (or reconnects) the
   * account with the tokens, checked live like any context.
   * @param query the callback's query: `code` and `state`, or `error` (`access_denied`) and `state`
   */
  async finishOAuth(query: { code?: string; state?: string; error?: string; error_description?: string }, cookie: string | undefined, redirectUri: string): Promise<ConnectOutcome> {
    const refused = (message: string, final = true): ConnectOutcome => ({ ok: false, message, fieldErrors: {}, final });
    if (typeof query.state !== 'string' || query.state.length < 20 || query.state.length > 200) return refused('This sign-in did not come from a connect link. Open your link again.');
    const flow = await this.store.findByOAuthState(sha256(query.state));
    if (!flow) return refused('This sign-in did not come from a connect link, or was replaced by a newer one. Open your link again.');
    const expected = Buffer.from(this.stateCookie(query.state));
    if (cookie === undefined || Buffer.byteLength(cookie) !== expected.length || !timingSafeEqual(Buffer.from(cookie), expected)) {
      return refused('This sign-in was started in another browser. Open your link again in this one.');
    }
    const { record, tokenHash, integration } = flow;
    if (record.usedAt !== null) return refused(this.finalMessage('used'));
    if (record.expiresAt <= this.clock.now().toISOString()) return refused(this.finalMessage('expired'));
    const connector = this.registry.get(integration);
    const app = this.oauthApp(connector);
    if (!app || !connector.oauthConsent) return refused('This CRM can no longer be connected by signing in here.');
    if (query.error !== undefined || typeof query.code !== 'string' || query.code === '') {
      const why = query.error === 'access_denied' ? 'access was not allowed' : (query.error_description ?? query.error ?? 'no authorization code came back');
      return refused(`${connector.displayName} did not connect: ${why}. Open your link again to retry.`, false);
    }
    const now = this.clock.now();
    if (!(await this.store.hold(tokenHash, now.toISOString(), new Date(now.getTime() + holdMs(this.config.remoteTimeoutMs)).toISOString()))) {
      return refused('This link is being used in another window; wait a moment and try again.', false);
    }
    try {
      const request = connector.oauthConsent.codeRequest(query.code, redirectUri, app);
      const answer = await this.transport.request({
        method: 'POST',
        url: checkOutboundUrl(request.url, { example: 'https://oauth.example.com/token' }),
        headers: request.headers,
        body: request.body,
        signal: AbortSignal.timeout(this.config.remoteTimeoutMs),
      });
      let body: unknown;
      try {
        body = JSON.parse(answer.bodyText);
      } catch {
        body = answer.bodyText;
      }
      if (answer.status < 200 || answer.status >= 300) {
        await this.store.release(tokenHash);
        return refused(`${connector.displayName} did not accept the sign-in: ${remoteReason(body) ?? `it answered ${answer.status}`}. Open your link again to retry.`, false);
      }
      const context = connector.oauthConsent.contextOf(body, app, this.clock.now());
      let account: IntegratedAccount;
      if (record.integratedAccountId === null) {
        account = await this.accounts.create(record.environmentId, { integration, tenant_id: record.tenantId, context });
      } else {
        // A reconnect replaces the whole context: keys of the old one that the new one lacks are dropped (null).
        const stored = await this.accounts.get(record.environmentId, record.integratedAccountId);
        const cleared = Object.fromEntries([...Object.keys(stored.context), ...connector.secretContextKeys].filter((k) => !(k in context)).map((k) => [k, null]));
        account = await this.accounts.update(record.environmentId, record.integratedAccountId, { context: { ...cleared, ...context } });
      }
      await this.store.markUsed(tokenHash, this.clock.now().toISOString());
      this.logger.info({ integrated_account_id: account.id, integration, oauth: true }, 'account connected through a link token');
      return { ok: true, account, redirectUri: record.redirectUri, environmentId: record.environmentId };
    } catch (error) {
      await this.store.release(tokenHash).catch(() => undefined);
      if (error instanceof UnicrmError) return { ...this.explain(error, connector), ok: false, final: false };
      this.logger.warn({ integration, err: (error as Error).message }, 'OAuth code exchange answer unusable');
      return refused(`${connector.displayName} answered the sign-in with something unicrm cannot use. Open your link again to retry.`, false);
    }
  }

  /**
   * The CSRF token of a connect form: HMAC-SHA256 of the link token's hash under a key derived from the encryption key
   * (the same on every node). The form carries it; a submission without it is refused. Stateless, so it works in a
   * pop-up and in a third-party iframe, where cookies may not be sent.
   */
  csrfToken(linkToken: string): string {
    return createHmac('sha256', this.key).update('connect-csrf:').update(sha256(String(linkToken))).digest('base64url');
  }

  /** True when `value` is {@link csrfToken} of `linkToken` (constant-time comparison). */
  checkCsrf(linkToken: string, value: unknown): boolean {
    if (typeof value !== 'string') return false;
    const expected = Buffer.from(this.csrfToken(linkToken));
    const given = Buffer.from(value);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** An integration's name for people (`Pipedrive`), or its name when no connector has it. */
  displayName(integration: string): string {
    return this.registry.byName(integration)?.displayName ?? integration;
  }

  /** The origins of an environment's allowed redirect URIs: who may frame the connect page and receive its postMessage. */
  allowedOrigins(environmentId: string): string[] {
    return [...new Set((this.config.connectRedirectUris[environmentId] ?? []).map((uri) => new URL(uri).origin))];
  }

  /**
   * `POST /link-token`: `{ tenant_id }` (a new connection) or `{ integrated_account_id }` (a reconnect), optional
   * `integration` and `redirect_uri` (must be on the environment's allow-list, `UNICRM_CONNECT_REDIRECT_URIS`).
   * @param baseUrl the address browsers reach this API at (for `url`)
   * @returns `{ link_token, expires_at, url }`
   * @throws UnicrmError 400 (bad body, unknown integration, a redirect_uri not allowed), 404 (unknown account)
   */
  async createLinkToken(environmentId: string, body: unknown, baseUrl: string): Promise<LinkToken> {
    if (!isJsonObject(body)) throw UnicrmError.badRequest('The body must be a JSON object.');
    const parsed = LinkTokenCreateBodySchema.safeParse(body);
    if (!parsed.success) throw UnicrmError.validation(zodFailures(parsed.error));
    const { tenant_id, integrated_account_id, integration, redirect_uri } = parsed.data;
    let tenantId = tenant_id as string;
    let only = integration ?? null;
    if (integrated_account_id !== undefined) {
      const account = await this.accounts.get(environmentId, integrated_account_id);
      tenantId = account.tenant_id;
      only = account.integration.name;
      if (integration !== undefined && integration !== only) {
        throw UnicrmError.validation([{ path: 'integration', message: `the account belongs to ${only}` }]);
      }
    }
    if (only !== null) {
      const connector = this.registry.get(only);
      if (!connector.contextSchema) throw UnicrmError.validation([{ path: 'integration', message: `${only} has no connect form` }]);
    }
    if (redirect_uri !== undefined) {
      const allowed = this.config.connectRedirectUris[environmentId] ?? [];
      if (!allowed.includes(redirect_uri)) {
        throw UnicrmError.validation([
          {
            path: 'redirect_uri',
            message:
              allowed.length === 0
                ? `no redirect_uri is allowed in environment ${environmentId} (UNICRM_CONNECT_REDIRECT_URIS lists none)`
                : `is not one of environment ${environmentId}'s allowed redirect URIs (UNICRM_CONNECT_REDIRECT_URIS)`,
          },
        ]);
      }
    }
    const token = randomBytes(32).toString('base64url');
    const now = this.clock.now();
    const record: LinkTokenRecord = {
      environmentId,
      tenantId,
      integratedAccountId: integrated_account_id ?? null,
      integration: only,
      redirectUri: redirect_uri ?? null,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + this.config.linkTokenTtlMs).toISOString(),
      usedAt: null,
    };
    await this.store.add(record, sha256(token));
    await this.store.prune(new Date(now.getTime() - 86_400_000).toISOString()).catch(() => 0);
    return { link_token: token, expires_at: record.expiresAt, url: `${baseUrl.replace(/\/+$/, '')}/connect?link_token=${encodeURIComponent(token)}` };
  }

  /** What the connect page shows for `token` (nothing is consumed by looking). */
  async page(token: string): Promise<ConnectPage> {
    const found = await this.lookup(token);
    if (found.status !== 'ready') return { status: found.status };
    const record = found.record;
    const integrations = this.offered(record);
    let reconnect: { accountId: string; integration: string; status: string } | undefined;
    if (record.integratedAccountId !== null) {
      const account = await this.accounts.get(record.environmentId, record.integratedAccountId).catch(() => undefined);
      if (!account) return { status: 'unknown' };
      reconnect = { accountId: account.id, integration: account.integration.name, status: account.status };
      for (const integration of integrations) {
        for (const field of integration.fields) {
          const value = account.context[field.name];
          if (field.type !== 'password' && typeof value === 'string') field.value = value;
        }
      }
    }
    return {
      status: 'ready',
      environmentId: record.environmentId,
      tenantId: record.tenantId,
      expiresAt: record.expiresAt,
      redirectUri: record.redirectUri,
      integrations,
      ...(reconnect && { reconnect }),
    };
  }

  /**
   * A connect form's submission: connects (or reconnects) the account with the typed context, checked live as
   * `POST /integrated-account` checks it, then marks the token used. A failure leaves the token usable (until it expires)
   * so that the customer can correct the form.
   * @param fields the form's values by context key (empty optional fields are left out)
   */
  async submit(token: string, integration: string, fields: Record<string, string>): Promise<ConnectOutcome> {
    const found = await this.lookup(token);
    if (found.status !== 'ready') return { ok: false, message: this.finalMessage(found.status), fieldErrors: {}, final: true };
    const record = found.record;
    const offered = this.offered(record).find((i) => i.name === integration);
    if (!offered) return { ok: false, message: 'Choose one of the CRMs offered on this page.', fieldErrors: {}, final: false };
    const hash = sha256(token);
    const now = this.clock.now();
    if (!(await this.store.hold(hash, now.toISOString(), new Date(now.getTime() + holdMs(this.config.remoteTimeoutMs)).toISOString()))) {
      const again = await this.lookup(token);
      if (again.status !== 'ready') return { ok: false, message: this.finalMessage(again.status), fieldErrors: {}, final: true };
      return { ok: false, message: 'This link is being used in another window; wait a moment and try again.', fieldErrors: {}, final: false };
    }
    const context: Record<string, unknown> = {};
    for (const field of offered.fields) {
      const value = (fields[field.name] ?? '').trim();
      if (value !== '' || field.required) context[field.name] = field.type === 'password' ? (fields[field.name] ?? '') : value;
    }
    try {
      const account =
        record.integratedAccountId === null
          ? await this.accounts.create(record.environmentId, { integration, tenant_id: record.tenantId, context })
          : await this.accounts.update(record.environmentId, record.integratedAccountId, { context });
      await this.store.markUsed(hash, this.clock.now().toISOString());
      this.logger.info({ integrated_account_id: account.id, integration, reconnect: record.integratedAccountId !== null }, 'account connected through a link token');
      return { ok: true, account, redirectUri: record.redirectUri, environmentId: record.environmentId };
    } catch (error) {
      await this.store.release(hash).catch(() => undefined);
      if (!(error instanceof UnicrmError)) throw error;
      return { ok: false, ...this.explain(error, this.registry.get(integration)), final: false };
    }
  }

  /** The error of a submission in plain words, with what is wrong with each field. */
  private explain(error: UnicrmError, connector: Connector): { message: string; fieldErrors: Record<string, string> } {
    const fieldErrors: Record<string, string> = {};
    const failures = (error.body as { details?: { failures?: Array<{ path: string; message: string }> } }).details?.failures ?? [];
    for (const failure of failures) {
      const key = failure.path.replace(/^context\./, '').split('.')[0] as string;
      fieldErrors[key] = failure.message;
    }
    if (failures.length > 0) return { message: 'Some fields need a correction.', fieldErrors };
    if (error.statusCode === 422) {
      const remote = (error.body as { raw_response?: unknown }).raw_response;
      const reason = remoteReason(remote) ?? error.message;
      return { message: `${connector.displayName} did not accept these credentials: ${reason}`, fieldErrors };
    }
    if (error.statusCode === 502 || error.statusCode === 504) {
      return { message: `${connector.displayName} could not be reached (${error.message}). Check the address and try again.`, fieldErrors };
    }
    if (error.statusCode >= 500) return { message: 'The account could not be connected because of an error on our side; try again later.', fieldErrors };
    return { message: error.message, fieldErrors };
  }

  private finalMessage(status: 'expired' | 'used' | 'unknown'): string {
    switch (status) {
      case 'expired':
        return 'This link has expired. Ask for a new one.';
      case 'used':
        return 'This link was already used to connect an account. Ask for a new one to connect again.';
      case 'unknown':
        return 'This link is not valid. Ask for a new one.';
    }
  }

  /** The token's record and whether it can be used now. */
  private async lookup(token: string): Promise<{ status: 'ready'; record: LinkTokenRecord } | { status: 'expired' | 'used' | 'unknown' }> {
    if (typeof token !== 'string' || token.length < 20 || token.length > 200) return { status: 'unknown' };
    const record = await this.store.find(sha256(token));
    if (!record) return { status: 'unknown' };
    if (record.usedAt !== null) return { status: 'used' };
    if (record.expiresAt <= this.clock.now().toISOString()) return { status: 'expired' };
    return { status: 'ready', record };
  }

  /** The integrations a token offers (its own one, or every one with a connect form), each with its form. */
  private offered(record: LinkTokenRecord): ConnectIntegration[] {
    const names = record.integration !== null ? [record.integration] : this.registry.names();
    return names.flatMap((name) => {
      const connector = this.registry.byName(name);
      if (!connector?.contextSchema) return [];
      const app = this.oauthApp(connector);
      return [{ name, displayName: connector.displayName, fields: connectFields(connector), ...(app && { oauth: { authorizeOrigin: new URL(app.authorizeUrl).origin } }) }];
    });
  }
}

/** The form fields of a connector's context schema (its JSON Schema's properties, in order). */
export function connectFields(connector: Connector): ConnectField[] {
  if (!connector.contextSchema) return [];
  const schema = toJsonSchema(connector.contextSchema, 'input') as {
    properties?: Record<string, { title?: string; description?: string; format?: string }>;
    required?: string[];
  };
  const secrets = new Set(connector.secretContextKeys);
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties ?? {}).map(([name, property]) => ({
    name,
    label: property.title ?? name,
    ...(property.description !== undefined && { help: property.description }),
    type: secrets.has(name) ? 'password' : property.format === 'uri' ? 'url' : 'text',
    required: required.has(name),
  }));
}

/** The provider's own reason in a remote error's body (`message`, `error`, `errors[0].message`), if it has one. */
function remoteReason(body: unknown): string | undefined {
  if (typeof body === 'string' && body.trim() !== '') return body.trim().slice(0, 300);
  if (!isJsonObject(body)) return undefined;
  for (const key of ['message', 'error_description', 'error', 'detail']) {
    const value = body[key];
    if (typeof value === 'string' && value.trim() !== '') return value.trim().slice(0, 300);
    if (isJsonObject(value) && typeof value.message === 'string') return value.message.slice(0, 300);
  }
  const errors = body.errors;
  if (Array.isArray(errors) && isJsonObject(errors[0]) && typeof errors[0].message === 'string') return errors[0].message.slice(0, 300);
  return undefined;
}
