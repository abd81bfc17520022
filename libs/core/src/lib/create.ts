import 'reflect-metadata';
import { type CreateMethod, UNIFIED_METHOD_ROUTES } from '@unicrm/model';
import { parseUnifiedQuery } from '@unicrm/query';
import { injectable } from 'tsyringe';
import { IdempotencyGuard } from './idempotency';
import { type UnifiedRequest, type UnifiedResponse, UnifiedTargets } from './unified-target';

/**
 * The create use case, for any unified resource: `POST /unified/<model>/<resource>` (create-stages.txt; DESIGN.md §2).
 * Validates the query and the body (the unified schema, then the integration's), loads the integrated account of the
 * caller's environment, lets its connector create the record under the Idempotency-Key guard (an ambiguous create is
 * looked for with the connector's `findCreated` before it is tried again), and answers 201 in the requested format.
 */
@injectable()
export class CreateUseCase {
  constructor(private readonly targets: UnifiedTargets) {}

  /**
   * @returns 201 with the record in the requested format
   * @throws UnicrmError 400 (query, body, integration rules), 401 (account needs re-auth), 404 (resource, account),
   *   409/422 (Idempotency-Key), 501 (the integration cannot create this resource), remote errors mirrored, 502, 504
   */
  async execute(request: UnifiedRequest): Promise<UnifiedResponse> {
    const definition = this.targets.definition(request);
    // The key is checked first, as before any other part of the request.
    if (request.idempotencyKey !== undefined) IdempotencyGuard.parseKey(request.idempotencyKey);
    const query = parseUnifiedQuery(request.query);
    const unifiedBody = this.targets.unifiedBody(definition.createBody, request.body);
    const target = await this.targets.resolve(definition, request.environmentId, query.integrated_account_id, 'create', request.requestId);
    const method: CreateMethod = target.method;
    const body = this.targets.integrationBody(target.connector, method.bodySchema, unifiedBody);
    const status = UNIFIED_METHOD_ROUTES.create.status;
    const findCreated = method.findCreated;
    return this.targets.operation(target.account, request, query.remote_query, ({ options, remote }) =>
      this.targets.write(
        target,
        request,
        { method: 'POST', path: `/unified/${definition.model}/${definition.resource}` },
        () => ({ query: { ...query, integrated_account_id: target.account.id }, body: unifiedBody }),
        () => remote((account) => method.create(account, body, options)).then((result) => this.targets.answer(definition, result, query, status)),
        findCreated &&
          (async (since) => {
            // The lookup asks the provider in its own terms: the caller's remote_query does not apply to it.
            const found = await remote((account) => findCreated.call(method, account, body, since, { ...options, remoteQuery: {} }));
            return found && this.targets.answer(definition, found, query, status);
          }),
      ),
    ) as Promise<UnifiedResponse>;
  }
}
