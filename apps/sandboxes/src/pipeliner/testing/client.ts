import { request } from 'undici';
import type { RunningSandbox } from '../server';

/** An answer of the sandbox as the tests see it. */
export interface TestResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Parsed body (undefined when not JSON). */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface CallOptions {
  body?: unknown;
  /** Raw query string without '?'. */
  query?: string;
  headers?: Record<string, string>;
  /** false = no Authorization header; a pair = those credentials. Default: the sandbox's own. */
  auth?: false | [string, string];
  /** Absolute path instead of one relative to `/api/v100/rest/spaces/{space}/entities/`. */
  rawPath?: boolean;
}

/** Test client bound to one sandbox: `call('GET', 'Steps')` reaches `.../spaces/{space}/entities/Steps`. */
export function client(sandbox: RunningSandbox) {
  return async function call(method: string, path: string, options: CallOptions = {}): Promise<TestResponse> {
    const url = options.rawPath
      ? `${sandbox.serviceUrl}${path}`
      : `${sandbox.serviceUrl}/api/v100/rest/spaces/${sandbox.spaceId}/entities/${path}`;
    const headers: Record<string, string> = { ...options.headers };
    if (options.auth !== false) {
      const [user, password] = options.auth ?? [sandbox.username, sandbox.password];
      headers['authorization'] = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    }
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await request(options.query ? `${url}?${options.query}` : url, { method: method as 'GET', headers, body });
    const text = await res.body.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, headers: res.headers, text, json };
  };
}

/** The Basic `authorization` header value for a sandbox's credentials. */
export function basicAuth(sandbox: RunningSandbox): string {
  return `Basic ${Buffer.from(`${sandbox.username}:${sandbox.password}`).toString('base64')}`;
}
