import 'reflect-metadata';
import { type GetMethod, UnicrmError } from '@unicrm/model';
import { parseUnifiedQuery } from '@unicrm/query';
import { injectable } from 'tsyringe';
import { type UnifiedRequest, type UnifiedResponse, UnifiedTargets } from './unified-target';

/**
 * Checks the id of a record in a path: 1-512 characters, no control characters, and not `.` or `..` (a connector puts
 * the id in a path segment of the provider's URL, where a dot segment would name another resource: found by a review,
 * `/unified/crm/stages/%2e%2e` reached Pipedrive's `/api/v2/`). @throws UnicrmError 400
 */
export function checkRecordId(id: string | undefined): string {
  const control = (text: string) => [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
  if (id === undefined || id.length === 0 || id.length > 512 || control(id) || id === '.' || id === '..') {
    throw UnicrmError.validation([{ path: 'id', message: 'must be the id of a record: 1 to 512 characters, no control characters, not . or ..' }]);
  }
  return id;
}

/**
 * The get use case, for any unified resource: `GET /unified/<model>/<resource>/:id` (Truto's Get Stage / Get
 * Pipeline). The record in the requested format, 200; the provider's 404 is mirrored.
 */
@injectable()
export class GetUseCase {
  constructor(private readonly targets: UnifiedTargets) {}

  /** @throws UnicrmError 400, 401, 404 (resource, account, or the provider's), 501, remote errors, 502, 504 */
  async execute(request: UnifiedRequest): Promise<UnifiedResponse> {
    const definition = this.targets.definition(request);
    const query = parseUnifiedQuery(request.query);
    const id = checkRecordId(request.id);
    const target = await this.targets.resolve(definition, request.environmentId, query.integrated_account_id, 'get', request.requestId);
    const method: GetMethod = target.method;
    return this.targets.operation(target.account, request, query.remote_query, async ({ options, remote }) =>
      this.targets.answer(definition, await remote((account) => method.get(account, id, options)), query, 200),
    );
  }
}
