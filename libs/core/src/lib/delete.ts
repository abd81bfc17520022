import 'reflect-metadata';
import { type DeleteMethod } from '@unicrm/model';
import { parseUnifiedQuery } from '@unicrm/query';
import { injectable } from 'tsyringe';
import { checkRecordId } from './get';
import { IdempotencyGuard } from './idempotency';
import { type UnifiedRequest, type UnifiedResponse, UnifiedTargets } from './unified-target';

/**
 * The delete use case, for any unified resource: `DELETE /unified/<model>/<resource>/:id` (Truto's Delete Stage,
 * which documents the record's fields as its answer): 200 with the deleted record as the provider now shows it (`raw`:
 * the provider's answer to the delete). Under the Idempotency-Key guard like the other writes.
 */
@injectable()
export class DeleteUseCase {
  constructor(private readonly targets: UnifiedTargets) {}

  /** @throws UnicrmError 400, 401, 404 (also the provider's, for a record already deleted), 409/422, 501, remote errors, 502, 504 */
  async execute(request: UnifiedRequest): Promise<UnifiedResponse> {
    const definition = this.targets.definition(request);
    if (request.idempotencyKey !== undefined) IdempotencyGuard.parseKey(request.idempotencyKey);
    const query = parseUnifiedQuery(request.query);
    const id = checkRecordId(request.id);
    const target = await this.targets.resolve(definition, request.environmentId, query.integrated_account_id, 'delete', request.requestId);
    const method: DeleteMethod = target.method;
    return this.targets.operation(target.account, request, query.remote_query, ({ options, remote }) =>
      this.targets.write(
        target,
        request,
        { method: 'DELETE', path: `/unified/${definition.model}/${definition.resource}/${id}` },
        () => ({ query: { ...query, integrated_account_id: target.account.id } }),
        () => remote((account) => method.delete(account, id, options)).then((result) => this.targets.answer(definition, result, query, 200)),
      ),
    ) as Promise<UnifiedResponse>;
  }
}
