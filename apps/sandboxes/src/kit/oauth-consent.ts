import { timingSafeEqual } from 'node:crypto';
import type { Request, Response, Router } from 'express';

/** What a provider's consent page shows and checks (docs/sandboxes.md "OAuth consent pages"). */
export interface ConsentPageOptions {
  /** The page's heading, e.g. `HubSpot sandbox`. */
  title: string;
  /** The question above the buttons; `{client}` is replaced by the app's client id (escaped) and `{scope}` by its scope. */
  question: string;
  /** Labels of the two buttons, e.g. `Allow and install` and `Deny`. */
  allow: string;
  deny: string;
  /** The only client id accepted. */
  clientId: string;
  /** The code an Allow answers (the sandbox's token endpoint exchanges only this one). */
  authorizationCode: () => string;
  /** Whether `scope` is required (HubSpot refuses an authorize URL without it; Pipedrive grants the app's own). */
  requireScope: boolean;
  /** Called with the `scope` of every page shown, for tests. */
  onShown?: (scope: string) => void;
}

/** Constant-time equality of two strings (client ids compared as secrets would be). */
export function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Mounts a provider's OAuth 2 consent page (RFC 6749 §4.1) on `router`:
 * - `GET /oauth/authorize?response_type=code&client_id&redirect_uri[&scope]&state`: 400 for an unknown client, no
 *   redirect URI, another response type, or (when required) no scope; else the page, asking to allow the app;
 * - `POST /oauth/authorize` (the page's form): back to `redirect_uri` with `code` (Allow) or `error=access_denied`
 *   (Deny), and the `state` it was given.
 * The body is read raw by the kit (`express.raw`), so the form is parsed here.
 */
export function mountConsentPage(router: Router, options: ConsentPageOptions): void {
  router.get('/oauth/authorize', (req: Request, res: Response) => {
    const q = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const clientId = q.get('client_id') ?? '';
    const redirectUri = q.get('redirect_uri') ?? '';
    const scope = q.get('scope') ?? '';
    if (!sameText(clientId, options.clientId) || !URL.canParse(redirectUri) || q.get('response_type') !== 'code' || (options.requireScope && scope.trim() === '')) {
      res
        .status(400)
        .type('html')
        .send(`<!doctype html><title>Invalid request</title><h1>Invalid OAuth request</h1><p>Unknown client_id, no redirect_uri, response_type is not code${options.requireScope ? ', or no scope' : ''}.</p>`);
      return;
    }
    options.onShown?.(scope);
    const question = escapeHtml(options.question).replace('{client}', `<strong>${escapeHtml(clientId)}</strong>`).replace('{scope}', `<code>${escapeHtml(scope)}</code>`);
    res.type('html').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(options.title)}: allow access</title></head>
<body><main><h1>${escapeHtml(options.title)}</h1><p>${question}</p>
<form method="post" action="/oauth/authorize">
<input type="hidden" name="redirect_uri" value="${escapeHtml(redirectUri)}"><input type="hidden" name="state" value="${escapeHtml(q.get('state') ?? '')}">
<button type="submit" name="decision" value="allow">${escapeHtml(options.allow)}</button> <button type="submit" name="decision" value="deny">${escapeHtml(options.deny)}</button>
</form></main></body></html>`);
  });

  router.post('/oauth/authorize', (req: Request, res: Response) => {
    const form = new URLSearchParams(Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '');
    const redirectUri = form.get('redirect_uri') ?? '';
    if (!URL.canParse(redirectUri)) {
      res.status(400).type('html').send('<!doctype html><title>Invalid request</title><h1>No redirect_uri</h1>');
      return;
    }
    const target = new URL(redirectUri);
    if (form.get('decision') === 'allow') target.searchParams.set('code', options.authorizationCode());
    else target.searchParams.set('error', 'access_denied');
    target.searchParams.set('state', form.get('state') ?? '');
    res.redirect(302, target.toString());
  });
}
