import 'reflect-metadata';
import { type UpdateMethod } from '@unicrm/model';
import { parseUnifiedQuery } from '@unicrm/query';
import { injectable } from 'tsyringe';
import { checkRecordId } from './get';
import { IdempotencyGuard } from './idempotency';
import { type UnifiedRequest, type UnifiedResponse, UnifiedTargets } from './unified-target';

/**
 * The update use case, for any unified resource: `PATCH /unified/<model>/<resource>/:id` (Truto's Update Stage).
 * Validates the body against the unified update schema and the integration's (a field the provider cannot change is
 * a 400 saying so), writes under the Idempotency-Key guard, and answers 200 with the record as the provider now has it.
 */
@injectable()
export class UpdateUseCase {
  constructor(private readonly targets: UnifiedTargets) {}

  /** @throws UnicrmError 400, 401, 404, 409/422 (Idempotency-Key), 501, remote errors mirrored, 502, 504 */
  async execute(request: UnifiedRequest): Promise<UnifiedResponse> {
    const definition = this.targets.definition(request);
    if (request.idempotencyKey !== undefined) IdempotencyGuard.parseKey(request.idempotencyKey);
    const query = parseUnifiedQuery(request.query);
    const id = checkRecordId(request.id);
    const unifiedBody = this.targets.unifiedBody(definition.updateBody, request.body);
    const target = await this.targets.resolve(definition, request.environmentId, query.integrated_account_id, 'update', request.requestId);
    const method: UpdateMethod = target.method;
    const body = this.targets.integrationBody(target.connector, method.bodySchema, unifiedBody);
    return this.targets.operation(target.account, request, query.remote_query, ({ options, remote }) =>
      this.targets.write(
        target,
        request,
        { method: 'PATCH', path: `/unified/${definition.model}/${definition.resource}/${id}` },
        () => ({ query: { ...query, integrated_account_id: target.account.id }, body: unifiedBody }),
        () => remote((account) => method.update(account, id, body, options)).then((result) => this.targets.answer(definition, result, query, 200)),
      ),
    ) as Promise<UnifiedResponse>;
  }
}
