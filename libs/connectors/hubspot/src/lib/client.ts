import { type HttpResponse, type HttpTransport, isJsonObject, UnicrmError } from '@unicrm/model';
import qs from 'qs';
import { apiBaseUrl, type HubSpotContext } from './context';
import { parseRemoteBody, remoteError, unusableAnswer } from './remote-errors';

/** Query parameters of a HubSpot call (from `remote_query`; nested values bracket-encoded). */
export type HubSpotQuery = Record<string, unknown>;

/** A HubSpot answer with a JSON object body: the object, and the answer as HubSpot sent it. */
export interface HubSpotAnswer {
  body: Record<string, unknown>;
  response: HttpResponse;
}

/** A `{ results: [...] }` answer (HubSpot's `CollectionResponse...NoPaging`): the records and the answer. */
export interface HubSpotResultsAnswer extends HubSpotAnswer {
  results: Record<string, unknown>[];
}

/**
 * Checks an id that goes into a path segment of HubSpot's URL: `.` and `..` are refused (URL parsing would resolve them
 * and the request would leave the resource's path, as a review found on Pipedrive), as is an empty one.
 * @throws UnicrmError 400
 */
export function checkPathSegment(segment: string, what: string): string {
  if (segment === '' || segment === '.' || segment === '..') {
    throw UnicrmError.validation([{ path: what, message: `"${segment}" cannot be a HubSpot id (it must be a non-empty name, not . or ..)` }]);
  }
  return segment;
}

/** Query string: plain keys as is, nested values bracket-encoded (`a[b]=c`), arrays `a[]=x`. */
export function hubspotQueryString(query: HubSpotQuery): string {
  return qs.stringify(query, { arrayFormat: 'brackets', skipNulls: true });
}

/**
 * A thin client of HubSpot's CRM Pipelines API v3 for one account context: `{api_base_url}/crm/v3/pipelines/
 * {objectType}[/{pipelineId}[/stages[/{stageId}]]]`, the access token as `Authorization: Bearer` (a private app's or
 * an OAuth one), JSON in and out. Never retries (the transport's rule); OAuth refresh is core's.
 */
export class HubSpotClient {
  /** `{api_base_url}/crm/v3/pipelines`. */
  readonly base: string;
  /** `{api_base_url}`, for the proxy. */
  readonly origin: string;
  private readonly authorization: string;

  constructor(
    private readonly transport: HttpTransport,
    context: HubSpotContext,
  ) {
    this.origin = apiBaseUrl(context);
    this.base = `${this.origin}/crm/v3/pipelines`;
    this.authorization = `Bearer ${context.access_token}`;
  }

  /**
   * The absolute URL of a path under `/crm/v3/pipelines` (segments checked with {@link checkPathSegment} and encoded
   * here), with the query string. @throws UnicrmError 400 for a `.` or `..` segment
   */
  url(segments: string[], query: HubSpotQuery = {}): string {
    const path = `${this.base}/${segments.map((segment) => encodeURIComponent(checkPathSegment(segment, 'id'))).join('/')}`;
    const search = hubspotQueryString(query);
    return search ? `${path}?${search}` : path;
  }

  headers(withBody: boolean): Record<string, string> {
    const headers: Record<string, string> = { authorization: this.authorization, accept: 'application/json' };
    if (withBody) headers['content-type'] = 'application/json';
    return headers;
  }

  /** `GET /crm/v3/pipelines/{objectType}`: every pipeline with its stages. @throws UnicrmError (remote errors, 502, 504) */
  async pipelines(objectType: string, query: HubSpotQuery, signal?: AbortSignal): Promise<HubSpotResultsAnswer> {
    const answer = await this.send('GET', this.url([objectType], query), undefined, signal);
    if (!Array.isArray(answer.body.results)) throw unusableAnswer(answer.response, 'its body has no `results` list');
    return { ...answer, results: answer.body.results.filter(isJsonObject) };
  }

  /** `GET /crm/v3/pipelines/{objectType}/{pipelineId}`: one pipeline with its stages. @throws UnicrmError (404 mirrored, ...) */
  pipeline(objectType: string, pipelineId: string, query: HubSpotQuery, signal?: AbortSignal): Promise<HubSpotAnswer> {
    return this.record('GET', this.url([objectType, pipelineId], query), undefined, signal);
  }

  /** `GET .../{pipelineId}/stages/{stageId}`. @throws UnicrmError (404 mirrored, ...) */
  stage(objectType: string, pipelineId: string, stageId: string, query: HubSpotQuery, signal?: AbortSignal): Promise<HubSpotAnswer> {
    return this.record('GET', this.url([objectType, pipelineId, 'stages', stageId], query), undefined, signal);
  }

  /** `POST .../{pipelineId}/stages` (201 with the stage). @throws UnicrmError (remote errors, 502, 504) */
  createStage(objectType: string, pipelineId: string, body: Record<string, unknown>, query: HubSpotQuery, signal?: AbortSignal): Promise<HubSpotAnswer> {
    return this.record('POST', this.url([objectType, pipelineId, 'stages'], query), JSON.stringify(body), signal);
  }

  /** `PATCH .../{pipelineId}/stages/{stageId}` (200 with the stage). @throws UnicrmError (remote errors, 502, 504) */
  updateStage(objectType: string, pipelineId: string, stageId: string, body: Record<string, unknown>, query: HubSpotQuery, signal?: AbortSignal): Promise<HubSpotAnswer> {
    return this.record('PATCH', this.url([objectType, pipelineId, 'stages', stageId], query), JSON.stringify(body), signal);
  }

  /**
   * `DELETE .../{pipelineId}/stages/{stageId}`: HubSpot archives the stage and answers 204 without a body.
   * @returns HubSpot's answer
   * @throws UnicrmError (404 for an unknown or already archived stage, other remote errors, 502, 504)
   */
  async archiveStage(objectType: string, pipelineId: string, stageId: string, query: HubSpotQuery, signal?: AbortSignal): Promise<HttpResponse> {
    const response = await this.transport.request({ method: 'DELETE', url: this.url([objectType, pipelineId, 'stages', stageId], query), headers: this.headers(false), signal });
    if (response.status < 200 || response.status > 299) throw remoteError(response);
    return response;
  }

  /**
   * Any request under `{api_base_url}/crm/v3/pipelines/` for the proxy (`path` already encoded); the answer as it came.
   * @throws UnicrmError 502, 504 (the transport's)
   */
  raw(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, query: HubSpotQuery, body: string | undefined, signal?: AbortSignal): Promise<HttpResponse> {
    const search = hubspotQueryString(query);
    return this.transport.request({ method, url: `${this.base}/${path}${search ? `?${search}` : ''}`, headers: this.headers(body !== undefined), body, signal });
  }

  /** A call whose answer is one record with a string `id`. */
  private async record(method: 'GET' | 'POST' | 'PATCH', url: string, body: string | undefined, signal?: AbortSignal): Promise<HubSpotAnswer> {
    const answer = await this.send(method, url, body, signal);
    if (typeof answer.body.id !== 'string') throw unusableAnswer(answer.response, 'its body has no record (no string `id`)');
    return answer;
  }

  private async send(method: 'GET' | 'POST' | 'PATCH', url: string, body: string | undefined, signal?: AbortSignal): Promise<HubSpotAnswer> {
    const response = await this.transport.request({ method, url, headers: this.headers(body !== undefined), body, signal });
    if (response.status < 200 || response.status > 299) throw remoteError(response);
    const parsed = parseRemoteBody(response.bodyText);
    if (!isJsonObject(parsed)) throw unusableAnswer(response, 'its body is not a JSON object');
    return { body: parsed, response };
  }
}
