import { type HttpResponse, type HttpTransport, type PipelinerContext, isJsonObject, TtlCache } from '@unicrm/model';
import qs from 'qs';
import { parseRemoteBody, remoteError, unusableAnswer } from './remote-errors';

/** Pipeliner entity collections this connector uses (pipeliner-api.md §2–3). */
export type PipelinerEntity = 'Steps' | 'Pipelines';

/** Query parameters of a Pipeliner call: scalars, arrays and nested objects (bracket-encoded). */
export type PipelinerQuery = Record<string, unknown>;

/** `page_info` of Pipeliner's list envelope (pipeliner-api.md §4); absent with legacy limit/offset paging. */
export interface PipelinerPageInfo {
  start_cursor: string | null;
  end_cursor: string | null;
  has_previous_page: boolean;
  has_next_page: boolean;
}

/** A successful list answer: the records, the page info and the answer as Pipeliner sent it. */
export interface ListAnswer {
  data: unknown[];
  pageInfo: PipelinerPageInfo | undefined;
  response: HttpResponse;
  body: Record<string, unknown>;
}

/** A successful single-entity answer: the entity and the answer as Pipeliner sent it. */
export interface EntityAnswer {
  entity: Record<string, unknown>;
  response: HttpResponse;
  body: unknown;
}

/** The query of a pipeline-name read: only the two fields it needs (pipeliner-api.md §6 `load-only`). */
export const PIPELINE_NAME_QUERY: PipelinerQuery = Object.freeze({ 'load-only': 'id,name' });

/**
 * Pipeline-name reads in flight, per transport (so per core: several cores in one process share nothing),
 * keyed by credentials and URL. An entry lives only while its request is in flight.
 */
const pipelineNamesInFlight = new WeakMap<HttpTransport, Map<string, Promise<string | undefined>>>();

/** `promise`, or the reason of `signal` if it aborts first. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}

// Keys keep their brackets readable (`filter[name]`), everything else is percent-encoded.
const encodeKey = (text: string) => encodeURIComponent(text).replace(/%5B/gi, '[').replace(/%5D/gi, ']');

/**
 * Serialises Pipeliner query parameters: nested objects as bracket keys (`filter[name]=x`, the
 * deepObject style Pipeliner documents in pipeliner-api.md §6), arrays as `key[]=x`.
 */
export function pipelinerQueryString(query: PipelinerQuery): string {
  if (Object.isFrozen(query)) {
    const known = frozenQueryStrings.get(query);
    if (known !== undefined) return known;
    const text = serialiseQuery(query);
    frozenQueryStrings.set(query, text);
    return text;
  }
  return serialiseQuery(query);
}

/** The strings of frozen (constant) queries, such as {@link PIPELINE_NAME_QUERY}: made once. */
const frozenQueryStrings = new WeakMap<PipelinerQuery, string>();

/** Keys and values that every encoder leaves as they are (RFC 3986 unreserved characters). */
const UNRESERVED = /^[A-Za-z0-9._~-]*$/;

function serialiseQuery(query: PipelinerQuery): string {
  // Most calls have no parameters, or a few plain ones (`validation-level=8`): written without qs, same text.
  let text = '';
  for (const key in query) {
    if (!Object.prototype.hasOwnProperty.call(query, key)) continue;
    const value = query[key];
    if (value === undefined) continue;
    const plain = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
    if (plain === undefined || key === '' || !UNRESERVED.test(key) || !UNRESERVED.test(plain)) return qsString(query);
    text += `${text ? '&' : ''}${key}=${plain}`;
  }
  return text;
}

function qsString(query: PipelinerQuery): string {
  return qs.stringify(query, {
    arrayFormat: 'brackets',
    encoder: (text, defaultEncoder, charset, type) =>
      type === 'key' ? encodeKey(String(text)) : defaultEncoder(text, defaultEncoder, charset),
  });
}

/** How long a pipeline's name is shown without reading it again, in ms: a rename in Pipeliner shows within this time. */
export const PIPELINE_NAME_TTL_MS = 60_000;

/**
 * Pipeline names known per space (`service_url`, `space_id`, pipeline id), kept {@link PIPELINE_NAME_TTL_MS}; at most
 * 10 000. One per connector, so a list of stages costs one read per pipeline a minute instead of one per stage.
 */
export class PipelineNameCache {
  private readonly cache: TtlCache<{ name?: string }>;

  constructor(ttlMs = PIPELINE_NAME_TTL_MS, now?: () => number) {
    this.cache = new TtlCache(ttlMs, 10_000, now);
  }

  /** The cache key of a pipeline of a space. */
  static key(context: PipelinerContext, pipelineId: string): string {
    return `${context.service_url}\n${context.space_id}\n${pipelineId.toLowerCase()}`;
  }

  /** The known name (`{}` when the pipeline has none), or undefined when not known or expired. */
  peek(key: string): { name?: string } | undefined {
    return this.cache.peek(key);
  }

  /** The name, from the cache or `read` (shared by concurrent callers). */
  get(key: string, read: () => Promise<string | undefined>): Promise<string | undefined> {
    return this.cache.get(key, async () => ({ name: await read() })).then((entry) => entry.name);
  }

  /** Records a name seen in an answer. */
  remember(key: string, name: string | undefined): void {
    this.cache.set(key, name === undefined ? {} : { name });
  }
}

/**
 * A thin client of Pipeliner's REST API for one integrated account: URL layout
 * `{service_url}/api/v100/rest/spaces/{space_id}/entities/{Entity}[/{id}]` and HTTP Basic auth
 * (pipeliner-api.md §1), JSON in and out. Connection reuse is the transport's (one keep-alive pool
 * per service URL). Never retries.
 */
export class PipelinerClient {
  private readonly base: string;
  private readonly authorization: string;

  /**
   * @param names where pipeline names are kept between calls (the connector's); without it every
   *   {@link pipelineName} reads
   */
  constructor(
    private readonly transport: HttpTransport,
    private readonly context: PipelinerContext,
    private readonly names?: PipelineNameCache,
  ) {
    this.base = `${context.service_url.replace(/\/+$/, '')}/api/v100/rest/spaces/${encodeURIComponent(context.space_id)}/entities`;
    this.authorization = `Basic ${Buffer.from(`${context.username}:${context.password}`, 'utf8').toString('base64')}`;
  }

  /** The absolute URL of an entity collection or record, with the query string. */
  url(entity: PipelinerEntity, id?: string, query: PipelinerQuery = {}): string {
    const path = id === undefined ? `${this.base}/${entity}` : `${this.base}/${entity}/${encodeURIComponent(id)}`;
    const search = pipelinerQueryString(query);
    return search ? `${path}?${search}` : path;
  }

  /**
   * `POST /entities/{entity}`: creates a record. `body` is an object, or its JSON text (sent as is).
   * @throws UnicrmError (remote errors, 502, 504)
   */
  create(entity: PipelinerEntity, body: Record<string, unknown> | string, query: PipelinerQuery, signal?: AbortSignal): Promise<EntityAnswer> {
    return this.send('POST', this.url(entity, undefined, query), typeof body === 'string' ? body : JSON.stringify(body), signal);
  }

  /** `GET /entities/{entity}/{id}`. @throws UnicrmError (remote errors, 502, 504) */
  get(entity: PipelinerEntity, id: string, query: PipelinerQuery = {}, signal?: AbortSignal): Promise<EntityAnswer> {
    return this.send('GET', this.url(entity, id, query), undefined, signal);
  }

  /** `PATCH /entities/{entity}/{id}`: changes fields of a record (pipeliner-api.md §2.1). @throws UnicrmError (remote errors, 502, 504) */
  update(entity: PipelinerEntity, id: string, body: Record<string, unknown> | string, query: PipelinerQuery, signal?: AbortSignal): Promise<EntityAnswer> {
    return this.send('PATCH', this.url(entity, id, query), typeof body === 'string' ? body : JSON.stringify(body), signal);
  }

  /**
   * `DELETE /entities/{entity}/{id}`: soft-deletes a record; Pipeliner answers `{ success: true, data: "<id>" }` (§2.1, §5).
   * @throws UnicrmError (remote errors, among them 404 for an unknown or deleted id; 502, 504)
   */
  async remove(entity: PipelinerEntity, id: string, query: PipelinerQuery, signal?: AbortSignal): Promise<{ response: HttpResponse; body: unknown }> {
    const response = await this.transport.request({ method: 'DELETE', url: this.url(entity, id, query), headers: this.headers(false), signal });
    if (response.status < 200 || response.status > 299) throw remoteError(response);
    const body = parseRemoteBody(response.bodyText);
    if (!isJsonObject(body)) throw unusableAnswer(response, 'its body is not a JSON object');
    return { response, body };
  }

  /**
   * `POST /entities/{entity}/batch-modify` (pipeliner-api.md §2.1): `items` is the JSON text of an array of
   * `batch<Entity>Input` objects (an item without `id` is a create). Pipeliner answers `{ success, data: [...] }`, one
   * entry per item in order: the written id, or an `Error` object (with `rollback-method=1`, §6).
   * @returns the entries and the answer as Pipeliner sent it
   * @throws UnicrmError (remote errors of the call as a whole, 502 for an answer without a `data` array, 504)
   */
  async batchModify(entity: PipelinerEntity, items: string, query: PipelinerQuery, signal?: AbortSignal): Promise<{ data: unknown[]; response: HttpResponse; body: unknown }> {
    const search = pipelinerQueryString(query);
    const url = `${this.base}/${entity}/batch-modify${search ? `?${search}` : ''}`;
    const response = await this.transport.request({ method: 'POST', url, headers: this.headers(true), body: items, signal });
    if (response.status < 200 || response.status > 299) throw remoteError(response);
    const parsed = parseRemoteBody(response.bodyText);
    if (!isJsonObject(parsed) || !Array.isArray(parsed.data)) throw unusableAnswer(response, 'its body has no `data` array');
    return { data: parsed.data, response, body: parsed };
  }

  /**
   * `GET /entities/{entity}` (a list), checked to be Pipeliner's list envelope (§4).
   * @throws UnicrmError (remote errors, 502, 504)
   */
  async list(entity: PipelinerEntity, query: PipelinerQuery = {}, signal?: AbortSignal): Promise<ListAnswer> {
    const response = await this.transport.request({ method: 'GET', url: this.url(entity, undefined, query), headers: this.headers(false), signal });
    if (response.status < 200 || response.status > 299) throw remoteError(response);
    const parsed = parseRemoteBody(response.bodyText);
    if (!isJsonObject(parsed) || !Array.isArray(parsed.data)) throw unusableAnswer(response, 'its body is not a list envelope');
    const info = parsed.page_info;
    const pageInfo = isJsonObject(info) ? (info as unknown as PipelinerPageInfo) : undefined;
    return { data: parsed.data, pageInfo, response, body: parsed };
  }

  /**
   * Any request to the space's entity API, for the proxy: `{service_url}/api/v100/rest/spaces/{space_id}/entities/` +
   * `path` (already encoded) + query; the answer as it came, whatever its status.
   * @throws UnicrmError 502, 504 (the transport's)
   */
  raw(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, query: PipelinerQuery, body: string | undefined, headers: Record<string, string>, signal?: AbortSignal): Promise<HttpResponse> {
    const search = pipelinerQueryString(query);
    const url = `${this.base}/${path}${search ? `?${search}` : ''}`;
    return this.transport.request({ method, url, headers: { ...headers, ...this.headers(body !== undefined) }, body, signal });
  }

  private headers(withBody: boolean): Record<string, string> {
    const headers: Record<string, string> = { authorization: this.authorization, accept: 'application/json' };
    if (withBody) headers['content-type'] = 'application/json';
    return headers;
  }

  /**
   * The name of a pipeline: `GET /entities/Pipelines/{id}?load-only=id,name`; undefined when it has no string name.
   * With a {@link PipelineNameCache}, a name known for less than its time to live is answered without a read, and a
   * read's answer is kept. Without one (or once it expired): concurrent reads of the same pipeline with the same credentials share one request while it is in flight
   * (single flight): under load, creates in one pipeline make one read per round trip instead of one each.
   * Nothing is kept once the read settles, so the next call reads again (a renamed pipeline is seen at once),
   * and a failure reaches every caller that shared the read. A caller with an abort `signal` (its operation's
   * deadline) shares the read too, and stops waiting when its signal aborts (rejecting with the signal's reason);
   * the shared read itself is not aborted, so no other caller fails with it (the transport's own per-call deadline
   * bounds it).
   * @throws UnicrmError (remote errors, 502, 504); the signal's reason when it aborts first
   */
  pipelineName(id: string, signal?: AbortSignal): Promise<string | undefined> {
    if (!this.names) return this.readPipelineName(id, signal);
    const key = PipelineNameCache.key(this.context, id);
    const known = this.names.peek(key);
    if (known) return Promise.resolve(known.name);
    if (signal) {
      return this.readPipelineName(id, signal).then((name) => {
        this.names?.remember(key, name);
        return name;
      });
    }
    return this.names.get(key, () => this.readPipelineName(id));
  }

  /** Records the name of a pipeline seen in an answer (an expanded relation, a pipeline read), when names are kept. */
  rememberPipelineName(id: string, name: string | undefined): void {
    this.names?.remember(PipelineNameCache.key(this.context, id), name);
  }

  private readPipelineName(id: string, signal?: AbortSignal): Promise<string | undefined> {
    const url = this.url('Pipelines', id, PIPELINE_NAME_QUERY);
    let flights = pipelineNamesInFlight.get(this.transport);
    if (!flights) {
      flights = new Map();
      pipelineNamesInFlight.set(this.transport, flights);
    }
    const key = `${this.authorization} ${url}`;
    let flight = flights.get(key);
    if (!flight) {
      const inFlight = flights;
      flight = this.send('GET', url, undefined)
        .then((answer) => (typeof answer.entity.name === 'string' ? answer.entity.name : undefined))
        .finally(() => inFlight.delete(key));
      flights.set(key, flight);
    }
    return signal ? untilAborted(flight, signal) : flight;
  }

  private async send(method: 'GET' | 'POST' | 'PATCH', url: string, body: string | undefined, signal?: AbortSignal): Promise<EntityAnswer> {
    const response = await this.transport.request({ method, url, headers: this.headers(body !== undefined), body, signal });
    if (response.status < 200 || response.status > 299) throw remoteError(response);
    const parsed = parseRemoteBody(response.bodyText);
    if (!isJsonObject(parsed)) throw unusableAnswer(response, 'its body is not a JSON object');
    if (!isJsonObject(parsed.data) || typeof parsed.data.id !== 'string') {
      throw unusableAnswer(response, 'its body has no entity in `data`');
    }
    return { entity: parsed.data, response, body: parsed };
  }
}
