import type { ConnectField, ConnectIntegration, ConnectPage, UnicrmCore } from '@unicrm/core';
import type { IntegratedAccount } from '@unicrm/model';
import express, { type Express, type Request, type Response } from 'express';
import { randomBytes } from 'node:crypto';

/*
 * The connect page (issue 17; docs/connect.md): server-rendered HTML at `GET /connect?link_token=…` and its form's
 * `POST /connect`. Only rendering lives here; the flow (tokens, the form's fields from the connector's context schema,
 * the live credential check, the account event) is core's `ConnectService`.
 *
 * Security: the CSP is strict and per answer (`default-src 'none'`, the one style and script allowed by a nonce,
 * `form-action 'self'` plus the redirect URI's origin, `frame-ancestors` only the environment's allowed origins);
 * answers are `no-store`; a submission needs the form's CSRF token (bound to the link token) and, when the browser
 * sends `Origin`, this page's own origin; secrets are POSTed, never put in a URL, never rendered back (a failed
 * submission keeps every other field), never logged (the request line has the path only).
 */

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

const STYLE = `
:root { color-scheme: light; --accent: #2450b2; --error: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #f4f5f7; color: #1c1e21; }
main { max-width: 32rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
.card { background: #fff; border-radius: 12px; padding: 1.5rem; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; }
p.lead { margin: 0 0 1.25rem; color: #4b4f56; }
.choices { display: grid; gap: .75rem; }
.choice { display: block; width: 100%; text-align: left; font: inherit; font-weight: 600; padding: 1rem; border: 1px solid #ccd0d5; border-radius: 8px; background: #fff; cursor: pointer; }
.choice:hover, .choice:focus-visible { border-color: var(--accent); }
.field { margin-bottom: 1.1rem; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
.optional { font-weight: 400; color: #606770; }
input[type=text], input[type=url], input[type=password] { width: 100%; font: inherit; padding: .6rem .7rem; border: 1px solid #8d949e; border-radius: 6px; }
input[aria-invalid=true] { border-color: var(--error); }
.help { font-size: .875rem; color: #4b4f56; margin: .25rem 0 0; }
.field-error { font-size: .875rem; color: var(--error); margin: .25rem 0 0; font-weight: 600; }
.alert { border: 1px solid var(--error); background: #fdecea; color: #5f1410; padding: .75rem 1rem; border-radius: 8px; margin-bottom: 1.25rem; }
.success { border: 1px solid #1e7b34; background: #e7f5ea; color: #0f3d1a; padding: .75rem 1rem; border-radius: 8px; }
button.primary { font: inherit; font-weight: 600; padding: .7rem 1.2rem; border: 0; border-radius: 8px; background: var(--accent); color: #fff; cursor: pointer; width: 100%; }
button:focus-visible, input:focus-visible, a:focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }
a { color: var(--accent); }
.back { display: inline-block; margin-top: 1rem; }
.or { text-align: center; color: #606770; margin: 1.25rem 0; }
footer { margin-top: 1rem; font-size: .8rem; color: #606770; text-align: center; }
`;

/** The script of the success page: tells the opener (pop-up) or parent (iframe), then follows the redirect URI. */
const SUCCESS_SCRIPT = `
(function () {
  var el = document.getElementById('unicrm-result');
  if (!el) return;
  var data = JSON.parse(el.textContent);
  var message = { type: 'unicrm:connected', integrated_account_id: data.integrated_account_id, integration: data.integration, tenant_id: data.tenant_id, status: data.status };
  var targets = [];
  if (window.opener && window.opener !== window) targets.push(window.opener);
  if (window.parent && window.parent !== window) targets.push(window.parent);
  targets.forEach(function (t) { data.origins.forEach(function (o) { try { t.postMessage(message, o); } catch (e) {} }); });
  if (data.redirect) setTimeout(function () { window.location.assign(data.redirect); }, 600);
})();
`;

interface Rendered {
  title: string;
  body: string;
  /** Origins the page may be framed by and may send its form to (besides 'self'). */
  origins: string[];
  /** Further origins a form post may lead to (a provider's consent page, after the 303 of /connect/oauth/start). */
  formTargets?: string[];
  script?: string;
}

function send(res: Response, status: number, page: Rendered, nonce: string): void {
  const origins = page.origins.join(' ');
  const targets = [...new Set([...page.origins, ...(page.formTargets ?? [])])].join(' ');
  res.setHeader(
    'Content-Security-Policy',
    [
      "default-src 'none'",
      `style-src 'nonce-${nonce}'`,
      `script-src 'nonce-${nonce}'`,
      "img-src 'self' data:",
      `form-action 'self'${targets ? ` ${targets}` : ''}`,
      "base-uri 'none'",
      `frame-ancestors ${origins || "'none'"}`,
    ].join('; '),
  );
  // helmet's X-Frame-Options would forbid the iframe use the CSP allows; frame-ancestors supersedes it.
  if (page.origins.length > 0) res.removeHeader('X-Frame-Options');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.status(status).type('html').send(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(page.title)}</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
<main>
<div class="card">
${page.body}
</div>
<footer>Your credentials are sent over this connection only, stored encrypted, and never shown again.</footer>
</main>
${page.script ? `<script nonce="${nonce}">${page.script}</script>` : ''}
</body>
</html>`);
}

function finalPage(status: 'expired' | 'used' | 'unknown'): Rendered {
  const text = {
    expired: ['This link has expired', 'Links to connect an account are valid for a short time. Ask for a new one.'],
    used: ['This link was already used', 'An account was connected with this link. Ask for a new link to connect again.'],
    unknown: ['This link is not valid', 'Check that you opened the whole link, or ask for a new one.'],
  }[status];
  return { title: text[0], origins: [], body: `<h1>${escapeHtml(text[0])}</h1><p class="lead" role="alert">${escapeHtml(text[1])}</p>` };
}

function choosePage(linkToken: string, page: Extract<ConnectPage, { status: 'ready' }>, origins: string[]): Rendered {
  if (page.integrations.length === 0) {
    return { title: 'No CRM to connect', origins, body: '<h1>No CRM to connect</h1><p class="lead">This service offers no CRM that can be connected here.</p>' };
  }
  const buttons = page.integrations
    .map((i) => `<button class="choice" type="submit" name="integration" value="${escapeHtml(i.name)}">${escapeHtml(i.displayName)}</button>`)
    .join('\n');
  return {
    title: 'Connect your CRM',
    origins,
    body: `<h1>Connect your CRM</h1>
<p class="lead">Choose the CRM your company uses.</p>
<form method="get" action="/connect">
<input type="hidden" name="link_token" value="${escapeHtml(linkToken)}">
<div class="choices" role="group" aria-label="CRMs">${buttons}</div>
</form>`,
  };
}

function fieldHtml(field: ConnectField, value: string | undefined, error: string | undefined): string {
  const id = `f-${field.name}`;
  const described = [field.help ? `${id}-help` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  const type = field.type;
  const autocomplete = type === 'password' ? 'off' : type === 'url' ? 'url' : 'off';
  return `<div class="field">
<label for="${id}">${escapeHtml(field.label)}${field.required ? '' : ' <span class="optional">(optional)</span>'}</label>
<input id="${id}" name="ctx_${escapeHtml(field.name)}" type="${type}" autocomplete="${autocomplete}" spellcheck="false" autocapitalize="off"${field.required ? ' required' : ''}${
    value !== undefined && type !== 'password' ? ` value="${escapeHtml(value)}"` : ''
  }${described ? ` aria-describedby="${described}"` : ''}${error ? ' aria-invalid="true"' : ''}>
${field.help ? `<p class="help" id="${id}-help">${escapeHtml(field.help)}</p>` : ''}
${error ? `<p class="field-error" id="${id}-error">${escapeHtml(error)}</p>` : ''}
</div>`;
}

function formPage(
  linkToken: string,
  csrf: string,
  integration: ConnectIntegration,
  page: Extract<ConnectPage, { status: 'ready' }>,
  origins: string[],
  state: { values?: Record<string, string>; message?: string; fieldErrors?: Record<string, string> } = {},
): Rendered {
  const fields = integration.fields.map((f) => fieldHtml(f, state.values?.[f.name] ?? f.value, state.fieldErrors?.[f.name])).join('\n');
  const reconnect = page.reconnect !== undefined;
  const back =
    !reconnect && page.integrations.length > 1 ? `<a class="back" href="/connect?link_token=${encodeURIComponent(linkToken)}">Choose another CRM</a>` : '';
  const oauth = integration.oauth
    ? `<form method="post" action="/connect/oauth/start">
<input type="hidden" name="link_token" value="${escapeHtml(linkToken)}">
<input type="hidden" name="csrf_token" value="${escapeHtml(csrf)}">
<input type="hidden" name="integration" value="${escapeHtml(integration.name)}">
<button class="primary" type="submit">Continue with ${escapeHtml(integration.displayName)}</button>
</form>
<p class="or">or enter the details yourself</p>`
    : '';
  return {
    title: `Connect ${integration.displayName}`,
    origins,
    ...(integration.oauth && { formTargets: [integration.oauth.authorizeOrigin] }),
    body: `<h1>${reconnect ? 'Reconnect' : 'Connect'} ${escapeHtml(integration.displayName)}</h1>
<p class="lead">${
      reconnect
        ? `Your ${escapeHtml(integration.displayName)} connection needs new credentials. Enter them to reconnect.`
        : `Enter your ${escapeHtml(integration.displayName)} details. They are checked with ${escapeHtml(integration.displayName)} before anything is saved.`
    }</p>
${state.message ? `<div class="alert" role="alert" id="form-error" tabindex="-1">${escapeHtml(state.message)}</div>` : ''}
${oauth}
<form method="post" action="/connect" novalidate>
<input type="hidden" name="link_token" value="${escapeHtml(linkToken)}">
<input type="hidden" name="csrf_token" value="${escapeHtml(csrf)}">
<input type="hidden" name="integration" value="${escapeHtml(integration.name)}">
${fields}
<button class="primary" type="submit">${reconnect ? 'Reconnect' : 'Connect'}</button>
</form>
${back}`,
  };
}

function successPage(account: IntegratedAccount, displayName: string, redirect: string | null, origins: string[]): Rendered {
  const data = {
    integrated_account_id: account.id,
    integration: account.integration.name,
    tenant_id: account.tenant_id,
    status: account.status,
    redirect,
    origins: origins.length > 0 ? origins : [],
  };
  // JSON inside <script type="application/json">: "<" escaped so the text cannot close the element.
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return {
    title: `${displayName} connected`,
    origins,
    body: `<h1>${escapeHtml(displayName)} is connected</h1>
<div class="success" role="status">Your ${escapeHtml(displayName)} account is connected. You can close this window.</div>
${redirect ? `<p><a href="${escapeHtml(redirect)}">Continue</a></p>` : ''}
<script type="application/json" id="unicrm-result">${json}</script>`,
    script: SUCCESS_SCRIPT,
  };
}

/** The redirect URI with the outcome in its query (`integrated_account_id`, `status`). */
function redirectWith(uri: string, account: IntegratedAccount): string {
  const url = new URL(uri);
  url.searchParams.set('integrated_account_id', account.id);
  url.searchParams.set('integration', account.integration.name);
  url.searchParams.set('status', 'connected');
  return url.toString();
}

/** The origin this page is served at, as the browser sees it (for the `Origin` check). */
function ownOrigin(req: Request, core: UnicrmCore): string[] {
  const origins = [`${req.protocol}://${req.get('host')}`];
  if (core.config.publicUrl) origins.push(new URL(core.config.publicUrl).origin);
  return origins;
}

/** This API's address as browsers see it: `UNICRM_PUBLIC_URL`, else the request's. */
function baseUrlOf(req: Request, core: UnicrmCore): string {
  return core.config.publicUrl ?? `${req.protocol}://${req.get('host')}`;
}

/** The cookie of a consent flow (binds the provider's return to the browser that left). */
const OAUTH_COOKIE = 'unicrm_connect_oauth';

function cookieOf(req: Request, name: string): string | undefined {
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

/**
 * Mounts `GET /connect` and `POST /connect` on the admin plane, before its authentication (the link token is the
 * credential of these two routes).
 */
export function mountConnectPage(app: Express, core: UnicrmCore): void {
  const form = express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 100 });

  app.get('/connect', async (req, res) => {
    const nonce = randomBytes(16).toString('base64');
    const params = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const linkToken = params.get('link_token') ?? '';
    const page = await core.connect.page(linkToken);
    if (page.status !== 'ready') return send(res, page.status === 'unknown' ? 404 : 410, finalPage(page.status), nonce);
    const origins = core.connect.allowedOrigins(page.environmentId);
    const chosen = page.reconnect?.integration ?? params.get('integration') ?? (page.integrations.length === 1 ? page.integrations[0]?.name : undefined);
    const integration = page.integrations.find((i) => i.name === chosen);
    if (!integration) return send(res, 200, choosePage(linkToken, page, origins), nonce);
    send(res, 200, formPage(linkToken, core.connect.csrfToken(linkToken), integration, page, origins), nonce);
  });

  // The provider's consent flow (docs/connect.md "OAuth"): a form post (CSRF-checked) sends the browser to the provider
  // with a fresh state; the provider sends it back to the callback, which checks the state and the cookie.
  app.post('/connect/oauth/start', form, async (req, res) => {
    const nonce = randomBytes(16).toString('base64');
    const body = (req.body ?? {}) as Record<string, unknown>;
    const linkToken = typeof body.link_token === 'string' ? body.link_token : '';
    const origin = req.get('origin');
    if ((origin !== undefined && origin !== 'null' && !ownOrigin(req, core).includes(origin)) || !core.connect.checkCsrf(linkToken, body.csrf_token)) {
      return send(res, 403, { title: 'Refused', origins: [], body: '<h1>Refused</h1><p class="lead" role="alert">This form was not sent from its page. Open the link again.</p>' }, nonce);
    }
    const integration = typeof body.integration === 'string' ? body.integration : '';
    const started = await core.connect.startOAuth(linkToken, integration, `${baseUrlOf(req, core)}/connect/oauth/callback`);
    if (!('location' in started)) {
      return send(res, started.final ? 410 : 400, { title: 'Cannot continue', origins: [], body: `<h1>Cannot continue</h1><p class="lead" role="alert">${escapeHtml(started.message)}</p>` }, nonce);
    }
    const secure = baseUrlOf(req, core).startsWith('https:') ? '; Secure' : '';
    res.setHeader('Set-Cookie', `${OAUTH_COOKIE}=${started.cookie}; Path=/connect/oauth; HttpOnly; SameSite=Lax; Max-Age=900${secure}`);
    res.setHeader('Cache-Control', 'no-store');
    res.redirect(303, started.location);
  });

  app.get('/connect/oauth/callback', async (req, res) => {
    const nonce = randomBytes(16).toString('base64');
    const params = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const query = Object.fromEntries(['code', 'state', 'error', 'error_description'].flatMap((k) => (params.get(k) !== null ? [[k, params.get(k) as string]] : [])));
    const outcome = await core.connect.finishOAuth(query, cookieOf(req, OAUTH_COOKIE), `${baseUrlOf(req, core)}/connect/oauth/callback`);
    res.setHeader('Set-Cookie', `${OAUTH_COOKIE}=; Path=/connect/oauth; HttpOnly; SameSite=Lax; Max-Age=0`);
    if (outcome.ok) {
      const origins = core.connect.allowedOrigins(outcome.environmentId);
      const redirect = outcome.redirectUri ? redirectWith(outcome.redirectUri, outcome.account) : null;
      const displayName = core.connect.displayName(outcome.account.integration.name);
      return send(res, 200, successPage(outcome.account, displayName, redirect, origins), nonce);
    }
    send(res, outcome.final ? 400 : 422, { title: 'Not connected', origins: [], body: `<h1>Not connected</h1><p class="lead" role="alert">${escapeHtml(outcome.message)}</p>` }, nonce);
  });

  app.post('/connect', form, async (req, res) => {
    const nonce = randomBytes(16).toString('base64');
    const body = (req.body ?? {}) as Record<string, unknown>;
    const linkToken = typeof body.link_token === 'string' ? body.link_token : '';
    const origin = req.get('origin');
    if (origin !== undefined && origin !== 'null' && !ownOrigin(req, core).includes(origin)) {
      return send(res, 403, { title: 'Refused', origins: [], body: '<h1>Refused</h1><p class="lead" role="alert">This form was sent from another site.</p>' }, nonce);
    }
    if (!core.connect.checkCsrf(linkToken, body.csrf_token)) {
      return send(
        res,
        403,
        { title: 'Refused', origins: [], body: '<h1>Refused</h1><p class="lead" role="alert">This form is missing its security token. Open the link again.</p>' },
        nonce,
      );
    }
    const page = await core.connect.page(linkToken);
    if (page.status !== 'ready') return send(res, page.status === 'unknown' ? 404 : 410, finalPage(page.status), nonce);
    const origins = core.connect.allowedOrigins(page.environmentId);
    const integrationName = typeof body.integration === 'string' ? body.integration : '';
    const integration = page.integrations.find((i) => i.name === integrationName);
    if (!integration) return send(res, 200, choosePage(linkToken, page, origins), nonce);
    const values: Record<string, string> = {};
    for (const field of integration.fields) {
      const value = body[`ctx_${field.name}`];
      if (typeof value === 'string') values[field.name] = value;
    }
    const outcome = await core.connect.submit(linkToken, integration.name, values);
    if (outcome.ok) {
      const redirect = outcome.redirectUri ? redirectWith(outcome.redirectUri, outcome.account) : null;
      return send(res, 200, successPage(outcome.account, integration.displayName, redirect, origins), nonce);
    }
    if (outcome.final) return send(res, 410, { title: 'Link not usable', origins: [], body: `<h1>Link not usable</h1><p class="lead" role="alert">${escapeHtml(outcome.message)}</p>` }, nonce);
    // Secrets are not rendered back: every other field keeps what was typed.
    const kept = Object.fromEntries(Object.entries(values).filter(([name]) => integration.fields.find((f) => f.name === name)?.type !== 'password'));
    send(
      res,
      422,
      formPage(linkToken, core.connect.csrfToken(linkToken), integration, page, origins, { values: kept, message: outcome.message, fieldErrors: outcome.fieldErrors }),
      nonce,
    );
  });
}
