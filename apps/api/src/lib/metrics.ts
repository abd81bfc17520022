import type { UnicrmCore } from '@unicrm/core';
import type { MetricsObserver, RequestObservation } from '@unicrm/model';
import type { IncomingMessage } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the front door records of one request for its metrics: its route template and what the core observed. */
export interface RequestTrace {
  /** The route template (`/unified/:model/:resource`), set by the router that served it. */
  route?: string;
  observed: RequestObservation;
}

const TRACE = Symbol('unicrm.trace');

/** The trace of a request (made on first use). */
export function traceOf(req: IncomingMessage): RequestTrace {
  const holder = req as IncomingMessage & { [TRACE]?: RequestTrace };
  let trace = holder[TRACE];
  if (!trace) {
    trace = { observed: {} };
    holder[TRACE] = trace;
  }
  return trace;
}

/** The API's Prometheus metrics (prom-client), fed by the front door and by the core's {@link MetricsObserver}. */
export interface ApiMetrics {
  readonly registry: Registry;
  /** One answered (or aborted) request. */
  request(req: IncomingMessage, statusCode: number | undefined): void;
  /** One request refused by unicrm's own rate limit (`token`, `account`). */
  rateLimited(limit: 'token' | 'account'): void;
  /** Detaches from the core and empties the registry. */
  close(): void;
}

/**
 * Creates the metrics of one API (issue 14 item 6; docs/deployment.md "Metrics"), in a registry of its own:
 * - `unicrm_http_requests_total{route, method, status, integration}`: route templates only (an unmatched path is
 *   `unrouted`, as is one refused before routing: 401, 429), so the label values stay few; `integration` is empty until the core knew the account's;
 * - `unicrm_provider_request_duration_seconds{integration, outcome}`: connector calls (`ok`, a provider status, `error`);
 * - `unicrm_rate_limit_rejections_total{limit}`, `unicrm_idempotency_total{event}` (`replayed`, `conflict`),
 *   `unicrm_cache_lookups_total{cache, result}` (`hit`, `miss`);
 * - `unicrm_db_pool_connections{state}` (`total`, `idle`) and `unicrm_db_pool_waiting` on PostgreSQL;
 * - prom-client's default process and Node.js metrics.
 */
export function createApiMetrics(core: UnicrmCore): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({ name: 'unicrm_http_requests_total', help: 'HTTP requests answered, by route template, method, status and integration.', labelNames: ['route', 'method', 'status', 'integration'], registers: [registry] });
  const provider = new Histogram({
    name: 'unicrm_provider_request_duration_seconds',
    help: 'Calls to providers by integration and outcome (ok, the provider status of an error answer, or error).',
    labelNames: ['integration', 'outcome'],
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const rejections = new Counter({ name: 'unicrm_rate_limit_rejections_total', help: "Requests refused by unicrm's own rate limits, by limit.", labelNames: ['limit'], registers: [registry] });
  const idempotency = new Counter({ name: 'unicrm_idempotency_total', help: 'Idempotency-Key answers replayed, and conflicts (409: held or settling).', labelNames: ['event'], registers: [registry] });
  const cache = new Counter({ name: 'unicrm_cache_lookups_total', help: 'Lookups in the account and token caches, by result.', labelNames: ['cache', 'result'], registers: [registry] });
  if (core.poolStats() !== undefined) {
    new Gauge({
      name: 'unicrm_db_pool_connections',
      help: 'PostgreSQL connections of this node, by state.',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const stats = core.poolStats();
        this.set({ state: 'total' }, stats?.total ?? 0);
        this.set({ state: 'idle' }, stats?.idle ?? 0);
      },
    });
    new Gauge({
      name: 'unicrm_db_pool_waiting',
      help: 'Calls waiting for a PostgreSQL connection of this node.',
      registers: [registry],
      collect() {
        this.set(core.poolStats()?.waiting ?? 0);
      },
    });
  }
  const observer: MetricsObserver = {
    providerCall: (integration, outcome, seconds) => provider.observe({ integration, outcome }, seconds),
    idempotency: (event) => idempotency.inc({ event }),
    cache: (name, hit) => cache.inc({ cache: name, result: hit ? 'hit' : 'miss' }),
  };
  const detach = core.metrics.attach(observer);
  return {
    registry,
    request(req, statusCode) {
      const trace = (req as IncomingMessage & { [TRACE]?: RequestTrace })[TRACE];
      const expressRoute = (req as IncomingMessage & { route?: { path?: unknown } }).route?.path;
      const route = trace?.route ?? (typeof expressRoute === 'string' ? expressRoute : 'unrouted');
      requests.inc({ route, method: req.method ?? '', status: statusCode === undefined ? 'aborted' : String(statusCode), integration: trace?.observed.integration ?? '' });
    },
    rateLimited: (limit) => rejections.inc({ limit }),
    close() {
      detach();
      registry.clear();
    },
  };
}
