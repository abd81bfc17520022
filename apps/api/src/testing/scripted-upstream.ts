import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the scripted upstream does with a request a rule matches. */
export type UpstreamAction =
  /** Forwards the request (the sandbox acts on it), then holds its answer until {@link HeldRequest.release}. */
  | { hold: true }
  /** Forwards the request, then sends the answer's status and headers at once and its body one byte per `intervalMs`. */
  | { dripMs: number }
  /** Answers this itself; the sandbox never sees the request. */
  | { status: number; headers?: Record<string, string>; body?: unknown };

/** A rule: which requests (all given conditions hold), how many (unlimited when absent), and what to do. */
export type UpstreamRule = UpstreamAction & {
  method?: string;
  /** A substring of the path (query string included). */
  path?: string;
  /** A substring of the request body. */
  bodyIncludes?: string;
  times?: number;
};

/** A request whose answer the upstream holds. */
export interface HeldRequest {
  method: string;
  path: string;
  body: string;
  /** Sends the held answer. */
  release(): void;
}

/**
 * A fake Pipeliner for timing tests (issue 12): a proxy in front of the sandbox that, on the test's command, holds
 * an answer until released, drips it, or answers by itself, so tests order events instead of waiting on clocks.
 * Requests no rule matches pass through unchanged. Accounts are connected with its `serviceUrl`.
 */
export interface ScriptedUpstream {
  readonly serviceUrl: string;
  /** Answers held now, oldest first. */
  readonly held: HeldRequest[];
  /** Requests received so far (method and path). */
  readonly received: Array<{ method: string; path: string; body: string }>;
  script(rule: UpstreamRule): void;
  /** Resolves once `condition` holds (checked on every request and release). */
  until(condition: () => boolean): Promise<void>;
  /** Releases every held answer, ends the drips, stops. */
  close(): Promise<void>;
}

/** Starts a scripted upstream on an ephemeral port in front of `target` (the sandbox's service URL). */
export async function startScriptedUpstream(target: string): Promise<ScriptedUpstream> {
  const targetUrl = new URL(target);
  const rules: UpstreamRule[] = [];
  const held: HeldRequest[] = [];
  const received: ScriptedUpstream['received'] = [];
  const waiters = new Set<{ condition: () => boolean; resolve: () => void }>();
  const timers = new Set<NodeJS.Timeout>();
  const notify = () => {
    for (const waiter of waiters) {
      if (waiter.condition()) {
        waiters.delete(waiter);
        waiter.resolve();
      }
    }
  };

  const take = (method: string, path: string, body: string): UpstreamRule | undefined => {
    const at = rules.findIndex(
      (rule) =>
        (rule.method === undefined || rule.method === method) &&
        (rule.path === undefined || path.includes(rule.path)) &&
        (rule.bodyIncludes === undefined || body.includes(rule.bodyIncludes)),
    );
    const rule = rules[at];
    if (rule?.times !== undefined && --rule.times <= 0) rules.splice(at, 1);
    return rule;
  };

  const forward = (req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: targetUrl.host };
      const outgoing = httpRequest({ host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => resolve({ status: answer.statusCode ?? 502, headers: answer.headers, body: Buffer.concat(chunks) }));
        answer.on('error', reject);
      });
      outgoing.on('error', reject);
      outgoing.end(body);
    });

  const send = (res: ServerResponse, answer: { status: number; headers: IncomingHttpHeaders; body: Buffer }) => {
    const headers = { ...answer.headers, 'content-length': String(answer.body.length) };
    delete headers['transfer-encoding'];
    res.writeHead(answer.status, headers);
    res.end(answer.body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    received.push({ method, path, body: body.toString('utf8') });
    const rule = take(method, path, body.toString('utf8'));
    if (rule && 'status' in rule) {
      const text = JSON.stringify(rule.body ?? { success: false, code: 130, name: 'ERROR_RATE_LIMIT_EXCEEDED', message: 'Too many requests.' });
      res.writeHead(rule.status, { 'content-type': 'application/json', ...rule.headers, 'content-length': String(Buffer.byteLength(text)) });
      res.end(text);
      notify();
      return;
    }
    const answer = await forward(req, body);
    if (rule && 'hold' in rule) {
      const entry: HeldRequest = {
        method,
        path,
        body: body.toString('utf8'),
        release: () => {
          const at = held.indexOf(entry);
          if (at < 0) return;
          held.splice(at, 1);
          if (!res.destroyed) send(res, answer);
          notify();
        },
      };
      held.push(entry);
      res.on('close', () => entry.release());
      notify();
      return;
    }
    if (rule && 'dripMs' in rule) {
      const headers = { ...answer.headers, 'content-length': String(answer.body.length) };
      delete headers['transfer-encoding'];
      res.writeHead(answer.status, headers);
      let next = 0;
      const timer = setInterval(() => {
        if (res.destroyed || next >= answer.body.length) {
          clearInterval(timer);
          timers.delete(timer);
          res.end();
          return;
        }
        res.write(answer.body.subarray(next, next + 1));
        next += 1;
      }, rule.dripMs);
      timers.add(timer);
      notify();
      return;
    }
    send(res, answer);
    notify();
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    serviceUrl: `http://127.0.0.1:${port}`,
    held,
    received,
    script: (rule) => {
      rules.push({ ...rule });
    },
    until: (condition) =>
      new Promise<void>((resolve) => {
        if (condition()) resolve();
        else waiters.add({ condition, resolve });
      }),
    async close() {
      for (const entry of [...held]) entry.release();
      for (const timer of timers) clearInterval(timer);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
