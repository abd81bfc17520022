import type { Response } from 'express';
import type { FaultRule, JsonObject } from './types';

/**
 * Writing answers for every provider sandbox: JSON answers, empty answers, and the body corruptions of faults. Every
 * answer of a sandbox goes through here, so a pending body fault applies to it and the contract checks see it.
 */

/** Kinds of body corruption a fault can apply (see faults.ts). */
export type BodyFault = NonNullable<FaultRule['body']>;

const BODY_FAULT_KEY = 'sandboxBodyFault';
const RESPONSE_CHECK_KEY = 'sandboxResponseCheck';
const JSON_TYPE_KEY = 'sandboxJsonType';

/** The `Content-Type` of JSON answers when the provider module names none. */
export const DEFAULT_JSON_CONTENT_TYPE = 'application/json';

/**
 * Called with every answer as sent: status, `Content-Type`, and body text (undefined for an answer without a body);
 * used by the contract checks.
 */
export type ResponseCheck = (status: number, contentType: string | undefined, text: string | undefined) => void;

/** Sets the `Content-Type` that {@link sendJson} writes for this answer (the provider's, e.g. with a charset). */
export function setJsonContentType(res: Response, contentType: string): void {
  res.locals[JSON_TYPE_KEY] = contentType;
}

/** Registers a check that {@link sendJson} runs on the answer, unless a body fault corrupts it. */
export function setResponseCheck(res: Response, check: ResponseCheck): void {
  res.locals[RESPONSE_CHECK_KEY] = check;
}

/** Marks the response so that {@link sendJson} corrupts its body. */
export function setBodyFault(res: Response, kind: BodyFault): void {
  res.locals[BODY_FAULT_KEY] = kind;
}

/**
 * Sends a JSON answer (`body` is any JSON value: an object, or an array for providers whose lists are bare arrays)
 * with the provider's JSON `Content-Type` (default `application/json`, no charset, as Pipeliner's Flask stack sends).
 * A pending body fault corrupts it; otherwise a registered response check (contract tests) sees it first.
 */
export function sendJson(res: Response, status: number, body: JsonObject | unknown[], headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  const fault = res.locals[BODY_FAULT_KEY] as BodyFault | undefined;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  if (fault) {
    sendCorrupted(res, status, text, fault);
    return;
  }
  const contentType = (res.locals[JSON_TYPE_KEY] as string | undefined) ?? DEFAULT_JSON_CONTENT_TYPE;
  (res.locals[RESPONSE_CHECK_KEY] as ResponseCheck | undefined)?.(status, contentType, text);
  const bytes = Buffer.from(text, 'utf8');
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', String(bytes.length));
  res.end(bytes);
}

/**
 * Sends an answer without a body (e.g. `204 No Content`). A pending body fault does not apply (there is no body to
 * corrupt); a registered response check sees it with an undefined body.
 */
export function sendEmpty(res: Response, status: number, headers: Record<string, string> = {}): void {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  (res.locals[RESPONSE_CHECK_KEY] as ResponseCheck | undefined)?.(status, undefined, undefined);
  res.statusCode = status;
  if (status !== 204 && status !== 304) res.setHeader('Content-Length', '0');
  res.end();
}

const REASONS: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/**
 * Writes `text` corrupted as `kind`:
 * - `malformed`: the provider's JSON content type, body cut in half plus garbage (never parses);
 * - `truncated`: `Content-Length` of the full body, only the first half sent, then the socket ends;
 * - `empty`: the provider's JSON content type, zero-length body;
 * - `html`: an HTML error page (as a proxy in front of the API would send) with `text/html`.
 */
export function sendCorrupted(res: Response, status: number, text: string, kind: BodyFault): void {
  res.statusCode = status;
  const full = Buffer.from(text, 'utf8');
  const jsonType = (res.locals[JSON_TYPE_KEY] as string | undefined) ?? DEFAULT_JSON_CONTENT_TYPE;
  switch (kind) {
    case 'malformed': {
      const bytes = Buffer.from(`${text.slice(0, Math.ceil(text.length / 2))}<<malformed`, 'utf8');
      res.setHeader('Content-Type', jsonType);
      res.setHeader('Content-Length', String(bytes.length));
      res.end(bytes);
      return;
    }
    case 'truncated': {
      res.setHeader('Content-Type', jsonType);
      res.setHeader('Content-Length', String(full.length));
      res.write(full.subarray(0, Math.floor(full.length / 2)), () => res.socket?.destroySoon());
      return;
    }
    case 'empty':
      res.setHeader('Content-Type', jsonType);
      res.setHeader('Content-Length', '0');
      res.end();
      return;
    case 'html': {
      const title = `${status} ${REASONS[status] ?? 'Error'}`;
      const bytes = Buffer.from(
        `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`,
        'utf8',
      );
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.setHeader('Content-Length', String(bytes.length));
      res.end(bytes);
      return;
    }
  }
}
