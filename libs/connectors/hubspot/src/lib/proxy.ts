import { type HttpResponse, isJsonObject, type ProxyHandler, type ProxyResponse, UnicrmError } from '@unicrm/model';
import { checkPathSegment, type HubSpotClient, type HubSpotQuery } from './client';
import { forwardedHeaders, parseRemoteBody, remoteError, unusableAnswer } from './remote-errors';
import { HUBSPOT_PAGE_SIZE } from './stages';

/** An object type as a path segment (`deals`, `tickets`, `2-123456`). */
const OBJECT_TYPE = /^[A-Za-z0-9_-]{1,100}$/;

function answerHeaders(response: HttpResponse): Record<string, string> {
  const headers = forwardedHeaders(response);
  const type = response.headers['content-type'];
  if (type !== undefined) headers['content-type'] = Array.isArray(type) ? (type[0] as string) : type;
  return headers;
}

/**
 * `/proxy/<objectType>[/<pipelineId>]` on HubSpot: `{api_base_url}/crm/v3/pipelines/<objectType>[/<pipelineId>]` with
 * the account's token (refreshed by core for OAuth accounts). A list (`GET` without id) hands HubSpot's `results` to
 * core for the list envelope, in one page (HubSpot does not page pipelines); anything else answers HubSpot's body as
 * it came. Query parameters are forwarded; request headers are not.
 */
export function hubspotProxy(clientOf: (context: Record<string, unknown>) => HubSpotClient): ProxyHandler {
  return {
    pageSize: HUBSPOT_PAGE_SIZE,
    async request(account, request, options): Promise<ProxyResponse> {
      if (!OBJECT_TYPE.test(request.resource)) {
        throw UnicrmError.validation([
          { path: 'resource', message: `"${request.resource}" is not a HubSpot object type with pipelines (e.g. deals, tickets)` },
        ]);
      }
      const list = request.method === 'GET' && request.id === undefined;
      if (list && request.page?.cursor !== undefined) throw UnicrmError.badRequest('HubSpot answers every pipeline in one page: there is no other page.');
      const client = clientOf(account.context);
      const path = request.id === undefined ? request.resource : `${request.resource}/${encodeURIComponent(checkPathSegment(request.id, 'id'))}`;
      const response = await client.raw(request.method, path, { ...request.query } as HubSpotQuery, request.bodyText, options.signal);
      if (response.status < 200 || response.status > 299) throw remoteError(response);
      if (!list) return { status: response.status, headers: answerHeaders(response), bodyText: response.bodyText };
      const body = parseRemoteBody(response.bodyText);
      if (!isJsonObject(body) || !Array.isArray(body.results)) throw unusableAnswer(response, 'its body has no `results` list');
      return { status: response.status, headers: answerHeaders(response), bodyText: response.bodyText, list: { items: body.results, nextCursor: null, prevCursor: null } };
    },
  };
}
