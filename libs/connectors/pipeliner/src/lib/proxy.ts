import { type HttpResponse, isJsonObject, type ProxyHandler, type ProxyResponse, UnicrmError } from '@unicrm/model';
import type { PipelinerClient, PipelinerQuery } from './client';
import { forwardedHeaders, parseRemoteBody, remoteError, unusableAnswer } from './remote-errors';
import { PIPELINER_PAGE_SIZE } from './stages';

/** An entity collection name as Pipeliner spells them (`Steps`, `Pipelines`, `Accounts`, `OpportunityTypes`). */
const ENTITY = /^[A-Z][A-Za-z0-9]{0,63}$/;
/** Request headers of the caller's that reach Pipeliner: the one Pipeliner documents (pipeliner-api.md §5 `Timezone`). */
const FORWARDED_REQUEST_HEADERS = ['timezone'];

/** The headers of Pipeliner's answer sent back to a proxy caller: its type and the rate-limit ones. */
function answerHeaders(response: HttpResponse): Record<string, string> {
  const headers = forwardedHeaders(response);
  const type = response.headers['content-type'];
  if (type !== undefined) headers['content-type'] = Array.isArray(type) ? (type[0] as string) : type;
  return headers;
}

/**
 * `/proxy/<Entity>[/<id>]` on Pipeliner (truto-contract.md §5.4): the account's space API,
 * `{service_url}/api/v100/rest/spaces/{space_id}/entities/<Entity>[/<id>]`, with its credentials. A list
 * (`GET` without id) is paged with `first`/`after` (`last`/`before` backwards) and its `data` and `page_info` handed
 * to core for the list envelope; anything else answers Pipeliner's body as it came. `<id>` may also be a batch action
 * (`POST /proxy/Steps/batch-modify`). Query parameters are forwarded, headers only `Timezone`.
 */
export function pipelinerProxy(clientOf: (context: Record<string, unknown>) => PipelinerClient): ProxyHandler {
  return {
    pageSize: PIPELINER_PAGE_SIZE,
    async request(account, request, options): Promise<ProxyResponse> {
      if (!ENTITY.test(request.resource)) {
        throw UnicrmError.validation([
          { path: 'resource', message: `"${request.resource}" is not a Pipeliner entity collection name (e.g. Steps, Pipelines, Accounts)` },
        ]);
      }
      const client = clientOf(account.context);
      const path = request.id === undefined ? request.resource : `${request.resource}/${encodeURIComponent(request.id)}`;
      const headers: Record<string, string> = {};
      for (const name of FORWARDED_REQUEST_HEADERS) if (request.headers[name] !== undefined) headers[name] = request.headers[name] as string;
      const query: PipelinerQuery = { ...request.query };
      const list = request.method === 'GET' && request.id === undefined;
      if (list && request.page) {
        const { limit, cursor, direction } = request.page;
        if (direction === 'prev' && cursor !== undefined) Object.assign(query, { last: limit, before: cursor });
        else Object.assign(query, limit !== undefined && { first: limit }, cursor !== undefined && { after: cursor });
      }
      const response = await client.raw(request.method, path, query, request.bodyText, headers, options.signal);
      if (response.status < 200 || response.status > 299) throw remoteError(response);
      if (!list) return { status: response.status, headers: answerHeaders(response), bodyText: response.bodyText };
      const body = parseRemoteBody(response.bodyText);
      if (!isJsonObject(body) || !Array.isArray(body.data)) throw unusableAnswer(response, 'its body is not a list envelope');
      const info = isJsonObject(body.page_info) ? body.page_info : {};
      return {
        status: response.status,
        headers: answerHeaders(response),
        bodyText: response.bodyText,
        list: {
          items: body.data,
          nextCursor: info.has_next_page === true && typeof info.end_cursor === 'string' ? info.end_cursor : null,
          prevCursor: info.has_previous_page === true && typeof info.start_cursor === 'string' ? info.start_cursor : null,
        },
      };
    },
  };
}
