import { type HttpResponse, isJsonObject, type ProxyHandler, type ProxyResponse, UnicrmError } from '@unicrm/model';
import type { PipedriveClient, PipedriveQuery } from './client';
import { forwardedHeaders, parseRemoteBody, remoteError, unusableAnswer } from './remote-errors';
import { PIPEDRIVE_PAGE_SIZE } from './stages';

/** A v2 collection name as Pipedrive spells them (`stages`, `pipelines`, `deals`, `persons`, `products`). */
const COLLECTION = /^[a-z][a-z_]{0,63}$/;

function answerHeaders(response: HttpResponse): Record<string, string> {
  const headers = forwardedHeaders(response);
  const type = response.headers['content-type'];
  if (type !== undefined) headers['content-type'] = Array.isArray(type) ? (type[0] as string) : type;
  return headers;
}

/**
 * `/proxy/<collection>[/<id>]` on Pipedrive: `{api_domain}/api/v2/<collection>[/<id>]` with the account's credentials
 * (refreshed by core for OAuth accounts). A list (`GET` without id) is paged with `limit`/`cursor` and its `data` and
 * `additional_data.next_cursor` handed to core for the list envelope (forward only: Pipedrive has no previous cursor);
 * anything else answers Pipedrive's body as it came. Query parameters are forwarded; request headers are not.
 */
export function pipedriveProxy(clientOf: (context: Record<string, unknown>) => PipedriveClient): ProxyHandler {
  return {
    pageSize: PIPEDRIVE_PAGE_SIZE,
    async request(account, request, options): Promise<ProxyResponse> {
      if (!COLLECTION.test(request.resource)) {
        throw UnicrmError.validation([
          { path: 'resource', message: `"${request.resource}" is not a Pipedrive API v2 collection name (e.g. stages, pipelines, deals)` },
        ]);
      }
      const client = clientOf(account.context);
      const path = request.id === undefined ? request.resource : `${request.resource}/${encodeURIComponent(request.id)}`;
      const query: PipedriveQuery = { ...request.query };
      const list = request.method === 'GET' && request.id === undefined;
      if (list && request.page) {
        if (request.page.direction === 'prev') throw UnicrmError.badRequest('Pipedrive pages forward only: it has no previous-page cursor.');
        if (request.page.limit !== undefined) query.limit = request.page.limit;
        if (request.page.cursor !== undefined) query.cursor = request.page.cursor;
      }
      const response = await client.raw(request.method, path, query, request.bodyText, options.signal);
      if (response.status < 200 || response.status > 299) throw remoteError(response);
      if (!list) return { status: response.status, headers: answerHeaders(response), bodyText: response.bodyText };
      const body = parseRemoteBody(response.bodyText);
      if (!isJsonObject(body) || !Array.isArray(body.data)) throw unusableAnswer(response, 'its body is not a list envelope');
      const additional = isJsonObject(body.additional_data) ? body.additional_data : {};
      return {
        status: response.status,
        headers: answerHeaders(response),
        bodyText: response.bodyText,
        list: {
          items: body.data,
          nextCursor: typeof additional.next_cursor === 'string' && additional.next_cursor !== '' ? additional.next_cursor : null,
          prevCursor: null,
        },
      };
    },
  };
}
