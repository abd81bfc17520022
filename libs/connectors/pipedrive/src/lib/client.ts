import { type HttpResponse, type HttpTransport, isJsonObject, TtlCache } from '@unicrm/model';
import qs from 'qs';
import { isOAuthContext, type PipedriveContext } from './context';
import { parseRemoteBody, remoteError, unusableAnswer } from './remote-errors';

/** The API v2 collections this connector uses (pipedrive-api.md §2.2). */
export type PipedriveCollection = 'stages' | 'pipelines';

/** Query parameters of a Pipedrive call (scalars; nested objects and arrays as brackets, for remote_query). */
export type PipedriveQuery = Record<string, unknown>;

/** A successful list answer: the records, the next cursor (null at the end) and the answer as Pipedrive sent it. */
export interface PipedriveListAnswer {
  data: Record<string, unknown>[];
  nextCursor: string | null;
  response: HttpResponse;
  body: Record<string, unknown>;
}

/** A successful single-record answer (`{ success, data }`): the record and the answer as Pipedrive sent it. */
export interface PipedriveItemAnswer {
  item: Record<string, unknown>;
  response: HttpResponse;
  body: Record<string, unknown>;
}

/** Query string: plain keys as is, nested values bracket-encoded (`a[b]=c`), arrays `a[]=x`. */
export function pipedriveQueryString(query: PipedriveQuery): string {
  return qs.stringify(query, { arrayFormat: 'brackets', skipNulls: true, encodeValuesOnly: false });
}

/** How long a pipeline's name is shown without reading it again, in ms: a rename in Pipedrive shows within it. */
export const PIPELINE_NAME_TTL_MS = 60_000;
/** How many pipeline names the connector keeps (all companies together). */
export const PIPELINE_NAME_CACHE_SIZE = 10_000;

/**
 * Pipeline names per Pipedrive company (`api_domain`) and pipeline id, kept {@link PIPELINE_NAME_TTL_MS}, at most
 * {@link PIPELINE_NAME_CACHE_SIZE}: a stage answer carries only `pipeline_id` (v2 dropped v1's `pipeline_name`), so a
 * list of stages costs one `GET /api/v2/pipelines/{id}` per pipeline a minute, not one per stage. Concurrent reads of
 * one name share one request.
 */
export class PipelineNameCache {
  private readonly cache: TtlCache<{ name?: string }>;

  constructor(ttlMs = PIPELINE_NAME_TTL_MS, now?: () => number) {
    this.cache = new TtlCache(ttlMs, PIPELINE_NAME_CACHE_SIZE, now);
  }

  /** The cache key of a pipeline of a company. */
  static key(context: PipedriveContext, pipelineId: string): string {
    return `${context.api_domain}\n${pipelineId}`;
  }

  /** The name, from the cache or `read` (shared by concurrent callers). */
  get(key: string, read: () => Promise<string | undefined>): Promise<string | undefined> {
    return this.cache.get(key, async () => ({ name: await read() })).then((entry) => entry.name);
  }

  /** The known entry, or undefined. */
  peek(key: string): { name?: string } | undefined {
    return this.cache.peek(key);
  }

  /** Records a name seen in an answer. */
  remember(key: string, name: string | undefined): void {
    this.cache.set(key, name === undefined ? {} : { name });
  }
}

/**
 * A thin client of Pipedrive's API v2 for one account context: `{api_domain}/api/v2/{collection}[/{id}]`, the API
 * token in `x-api-token` or the OAuth access token as `Authorization: Bearer` (pipedrive-api.md §2.5), JSON in and
 * out. Never retries (the transport's rule); OAuth refresh is core's.
 */
export class PipedriveClient {
  readonly base: string;
  private readonly auth: Record<string, string>;

  constructor(
    private readonly transport: HttpTransport,
    private readonly context: PipedriveContext,
    private readonly names?: PipelineNameCache,
  ) {
    this.base = `${context.api_domain.replace(/\/+$/, '')}/api/v2`;
    this.auth = isOAuthContext(context) ? { authorization: `Bearer ${context.access_token}` } : { 'x-api-token': context.api_token };
  }

  /** The absolute URL of a collection or record, with the query string. */
  url(collection: PipedriveCollection, id?: string, query: PipedriveQuery = {}): string {
    const path = id === undefined ? `${this.base}/${collection}` : `${this.base}/${collection}/${encodeURIComponent(id)}`;
    const search = pipedriveQueryString(query);
    return search ? `${path}?${search}` : path;
  }

  headers(withBody: boolean): Record<string, string> {
    const headers: Record<string, string> = { ...this.auth, accept: 'application/json' };
    if (withBody) headers['content-type'] = 'application/json';
    return headers;
  }

  /** `GET /api/v2/{collection}`: one page. @throws UnicrmError (remote errors, 502, 504) */
  async list(collection: PipedriveCollection, query: PipedriveQuery, signal?: AbortSignal): Promise<PipedriveListAnswer> {
    const response = await this.transport.request({ method: 'GET', url: this.url(collection, undefined, query), headers: this.headers(false), signal });
    if (response.status < 200 || response.status > 299) throw remoteError(response);
    const body = parseRemoteBody(response.bodyText);
    if (!isJsonObject(body) || !Array.isArray(body.data)) throw unusableAnswer(response, 'its body is not a list envelope ({ success, data: [...] })');
    const additional = isJsonObject(body.additional_data) ? body.additional_data : {};
    const next = typeof additional.next_cursor === 'string' && additional.next_cursor !== '' ? additional.next_cursor : null;
    return { data: body.data.filter(isJsonObject), nextCursor: next, response, body };
  }

  /** `GET /api/v2/{collection}/{id}`. @throws UnicrmError (404 mirrored, other remote errors, 502, 504) */
  get(collection: PipedriveCollection, id: string, query: PipedriveQuery = {}, signal?: AbortSignal): Promise<PipedriveItemAnswer> {
    return this.send('GET', this.url(collection, id, query), undefined, signal);
  }

  /** `POST /api/v2/{collection}`. @throws UnicrmError (remote errors, 502, 504) */
  create(collection: PipedriveCollection, body: Record<string, unknown>, query: PipedriveQuery, signal?: AbortSignal): Promise<PipedriveItemAnswer> {
    return this.send('POST', this.url(collection, undefined, query), JSON.stringify(body), signal);
  }

  /** `PATCH /api/v2/{collection}/{id}`. @throws UnicrmError (remote errors, 502, 504) */
  update(collection: PipedriveCollection, id: string, body: Record<string, unknown>, query: PipedriveQuery, signal?: AbortSignal): Promise<PipedriveItemAnswer> {
    return this.send('PATCH', this.url(collection, id, query), JSON.stringify(body), signal);
  }

  /** `DELETE /api/v2/{collection}/{id}`: Pipedrive marks it deleted and answers `{ success, data: { id } }`. @throws UnicrmError */
  remove(collection: PipedriveCollection, id: string, query: PipedriveQuery, signal?: AbortSignal): Promise<PipedriveItemAnswer> {
    return this.send('DELETE', this.url(collection, id, query), undefined, signal);
  }

  /**
   * Any request under `{api_domain}/api/v2/` for the proxy (`path` already encoded); the answer as it came.
   * @throws UnicrmError 502, 504 (the transport's)
   */
  raw(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, query: PipedriveQuery, body: string | undefined, signal?: AbortSignal): Promise<HttpResponse> {
    const search = pipedriveQueryString(query);
    return this.transport.request({ method, url: `${this.base}/${path}${search ? `?${search}` : ''}`, headers: this.headers(body !== undefined), body, signal });
  }

  /**
   * The name of a pipeline (`GET /api/v2/pipelines/{id}`), from the connector's {@link PipelineNameCache} when known;
   * undefined when it has no string name. `signal` aborts the read only when no cache is kept.
   * @throws UnicrmError (remote errors, 502, 504)
   */
  pipelineName(id: string, signal?: AbortSignal): Promise<string | undefined> {
    const read = (until?: AbortSignal) =>
      this.get('pipelines', id, {}, until).then((answer) => (typeof answer.item.name === 'string' ? answer.item.name : undefined));
    if (!this.names) return read(signal);
    // A shared read is not aborted by one caller's deadline (the transport's call deadline bounds it).
    return this.names.get(PipelineNameCache.key(this.context, id), () => read());
  }

  /** Records the name of a pipeline seen in an answer. */
  rememberPipelineName(id: string, name: string | undefined): void {
    this.names?.remember(PipelineNameCache.key(this.context, id), name);
  }

  private async send(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body: string | undefined, signal?: AbortSignal): Promise<PipedriveItemAnswer> {
    const response = await this.transport.request({ method, url, headers: this.headers(body !== undefined), body, signal });
    if (response.status < 200 || response.status > 299) throw remoteError(response);
    const parsed = parseRemoteBody(response.bodyText);
    if (!isJsonObject(parsed)) throw unusableAnswer(response, 'its body is not a JSON object');
    if (!isJsonObject(parsed.data) || typeof parsed.data.id !== 'number') throw unusableAnswer(response, 'its body has no record in `data`');
    return { item: parsed.data, response, body: parsed };
  }
}
