import type { Response } from 'express';
import type { JsonObject } from './errors';
import type { FaultRule } from './types';

/** Kinds of body corruption a fault can apply (see faults.ts). */
export type BodyFault = NonNullable<FaultRule['body']>;

const BODY_FAULT_KEY = 'sandboxBodyFault';
const RESPONSE_CHECK_KEY = 'sandboxResponseCheck';

/** Called with every JSON answer as sent (status and body text); used by the contract checks. */
export type ResponseCheck = (status: number, text: string) => void;

/** Registers a check that {@link sendJson} runs on the answer, unless a body fault corrupts it. */
export function setResponseCheck(res: Response, check: ResponseCheck): void {
  res.locals[RESPONSE_CHECK_KEY] = check;
}

/** Marks the response so that {@link sendJson} corrupts its body. */
export function setBodyFault(res: Response, kind: BodyFault): void {
  res.locals[BODY_FAULT_KEY] = kind;
}

/**
 * Sends a JSON answer with `Content-Type: application/json` (no charset, as Pipeliner's Flask stack does).
 * Every answer of the sandbox goes through here, so a pending body fault is applied to it, and a registered
 * response check (contract tests) sees every answer that is not deliberately corrupted.
 */
export function sendJson(res: Response, status: number, body: JsonObject, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  const fault = res.locals[BODY_FAULT_KEY] as BodyFault | undefined;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  if (fault) {
    sendCorrupted(res, status, text, fault);
    return;
  }
  (res.locals[RESPONSE_CHECK_KEY] as ResponseCheck | undefined)?.(status, text);
  const bytes = Buffer.from(text, 'utf8');
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', String(bytes.length));
  res.end(bytes);
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
 * - `malformed`: JSON content type, body cut in half plus garbage (never parses);
 * - `truncated`: `Content-Length` of the full body, only the first half sent, then the socket ends;
 * - `empty`: JSON content type, zero-length body;
 * - `html`: an HTML error page (as a proxy in front of the API would send) with `text/html`.
 */
export function sendCorrupted(res: Response, status: number, text: string, kind: BodyFault): void {
  res.statusCode = status;
  const full = Buffer.from(text, 'utf8');
  switch (kind) {
    case 'malformed': {
      const bytes = Buffer.from(`${text.slice(0, Math.ceil(text.length / 2))}<<malformed`, 'utf8');
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('Content-Length', String(bytes.length));
      res.end(bytes);
      return;
    }
    case 'truncated': {
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('Content-Length', String(full.length));
      res.write(full.subarray(0, Math.floor(full.length / 2)), () => res.socket?.destroySoon());
      return;
    }
    case 'empty':
      res.setHeader('Content-Type', 'application/json');
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
