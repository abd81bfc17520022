import 'reflect-metadata';
import { StageSchema, toJsonSchema, UnifiedQueryParametersSchema, UnicrmError } from '@unicrm/model';
import { parseUnifiedQuery } from '@unicrm/query';
import { injectable } from 'tsyringe';
import { IntegratedAccountService } from './accounts';
import { ConnectorRegistry } from './registry';

/** What `GET /unified/crm/stages/meta/create` answers (truto-contract.md §5.5, Truto's meta endpoints). */
export interface StageCreateMeta {
  unified_model: 'crm';
  resource: 'stages';
  method: 'create';
  integration: string;
  /** Where the operation is described: the OpenAPI document's JSON pointer. */
  documentation_link: string;
  /** JSON Schema (2020-12) of the unified Stage answered. */
  schema: Record<string, unknown>;
  /** JSON Schema of the query parameters. */
  query_schema: Record<string, unknown>;
  /** JSON Schema of the body as this account's integration accepts it (its required fields and values). */
  request_body_schema: Record<string, unknown>;
}

/**
 * The meta of `POST /unified/crm/stages` for one integrated account: the schemas SDKs and UIs build
 * forms from. The body schema is the connector's own, so it says what that integration requires.
 */
@injectable()
export class StageMetaUseCase {
  constructor(
    private readonly accounts: IntegratedAccountService,
    private readonly registry: ConnectorRegistry,
  ) {}

  /**
   * @param query the raw query string (needs `integrated_account_id`)
   * @param requestId the request's id, for log lines (`req_id`)
   * @throws UnicrmError 400 (query), 404 (account), 501 (the integration cannot create stages)
   */
  execute(environmentId: string, query: string | Record<string, unknown>, requestId?: string): StageCreateMeta {
    const { integrated_account_id } = parseUnifiedQuery(query);
    const account = this.accounts.load(environmentId, integrated_account_id, requestId);
    const stages = this.registry.get(account.integration).stages;
    if (!stages) throw new UnicrmError(501, `The ${account.integration} integration cannot create stages.`);
    return {
      unified_model: 'crm',
      resource: 'stages',
      method: 'create',
      integration: account.integration,
      documentation_link: '/openapi.json#/paths/~1unified~1crm~1stages/post',
      schema: toJsonSchema(StageSchema, 'output'),
      query_schema: toJsonSchema(UnifiedQueryParametersSchema, 'input'),
      request_body_schema: toJsonSchema(stages.createBodySchema, 'input'),
    };
  }
}
