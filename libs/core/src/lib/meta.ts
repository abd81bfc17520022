import 'reflect-metadata';
import {
  type ConnectorResource,
  resourceKey,
  toJsonSchema,
  UNIFIED_METHOD_ROUTES,
  UNIFIED_METHODS,
  UnicrmError,
  type UnifiedMethod,
  UnifiedListQueryParametersSchema,
  UnifiedQueryParametersSchema,
  type UnifiedResourceDefinition,
} from '@unicrm/model';
import { parseUnifiedQuery } from '@unicrm/query';
import { injectable } from 'tsyringe';
import { IntegratedAccountService } from './accounts';
import { ConnectorRegistry } from './registry';
import { ResourceCatalog } from './resource-catalog';

/** What `GET /unified/<model>/<resource>/meta/<method>` answers (truto-contract.md §5.5, Truto's meta endpoints). */
export interface MethodMeta {
  unified_model: string;
  resource: string;
  method: UnifiedMethod;
  integration: string;
  /** What the method does at the provider. */
  description: string;
  /** True when the method may simply be sent again after a failure that left its outcome unknown. */
  retry_safe: boolean;
  /** Where the operation is described: the OpenAPI document's JSON pointer. */
  documentation_link: string;
  /** JSON Schema (2020-12) of the record answered. */
  schema: Record<string, unknown>;
  /** JSON Schema of the query parameters (for a list: with the filters this integration applies). */
  query_schema: Record<string, unknown>;
  /** JSON Schema of the body as this integration accepts it (create and update). */
  request_body_schema?: Record<string, unknown>;
  /** Page sizes of a list: the default and the largest. */
  page_size?: { default: number; max: number };
}

/** A meta request: the method, and the account (`integrated_account_id` in the query) or an integration by name. */
export interface MetaRequest {
  environmentId: string;
  model: string;
  resource: string;
  method: string;
  /** The query: `integrated_account_id`, unless `integration` names the integration. */
  query: string | Record<string, unknown>;
  /** `/unified/<model>/<resource>/<integration>/meta/<method>`: the integration's meta without an account. */
  integration?: string;
  requestId?: string;
}

/**
 * The meta of a unified method for one integration: the schemas SDKs and UIs build forms from. The body and filter
 * schemas are the connector's own, so they say what that integration requires and applies.
 */
@injectable()
export class MetaUseCase {
  constructor(
    private readonly catalog: ResourceCatalog,
    private readonly accounts: IntegratedAccountService,
    private readonly registry: ConnectorRegistry,
  ) {}

  /**
   * @throws UnicrmError 400 (query, unknown method or integration), 404 (resource, account), 501 (the integration
   *   does not serve the method)
   */
  async execute(request: MetaRequest): Promise<MethodMeta> {
    const definition = this.catalog.get(request.model, request.resource);
    const method = request.method.toLowerCase() as UnifiedMethod;
    if (!(UNIFIED_METHODS as readonly string[]).includes(method)) {
      throw UnicrmError.validation([{ path: 'method', message: `must be one of: ${UNIFIED_METHODS.join(', ')}` }]);
    }
    let integration: string;
    if (request.integration !== undefined) {
      integration = request.integration.toLowerCase();
    } else {
      const { integrated_account_id } = parseUnifiedQuery(request.query);
      integration = (await this.accounts.load(request.environmentId, integrated_account_id, request.requestId)).integration;
    }
    const connector = this.registry.get(integration);
    const declared = connector.resources[resourceKey(definition.model, definition.resource)]?.[method];
    if (!declared) throw new UnicrmError(501, `The ${integration} integration cannot ${method} ${definition.resource}.`);
    return this.describe(definition, method, integration, declared);
  }

  private describe(definition: UnifiedResourceDefinition, method: UnifiedMethod, integration: string, declared: NonNullable<ConnectorResource[UnifiedMethod]>): MethodMeta {
    const route = UNIFIED_METHOD_ROUTES[method];
    const path = `/unified/${definition.model}/${definition.resource}${route.withId ? '/{id}' : ''}`;
    const meta: MethodMeta = {
      unified_model: definition.model,
      resource: definition.resource,
      method,
      integration,
      description: declared.description,
      retry_safe: declared.retrySafe,
      documentation_link: `/openapi.json#/paths/${path.replace(/~/g, '~0').replace(/\//g, '~1')}/${route.http.toLowerCase()}`,
      schema: toJsonSchema(definition.schema, 'output'),
      query_schema: toJsonSchema(UnifiedQueryParametersSchema, 'input'),
    };
    if ('filterSchema' in declared) {
      const common = toJsonSchema(UnifiedListQueryParametersSchema, 'input') as { properties: Record<string, unknown>; required?: string[] };
      const filters = toJsonSchema(declared.filterSchema, 'input') as { properties?: Record<string, unknown> };
      meta.query_schema = { ...common, properties: { ...common.properties, ...filters.properties }, additionalProperties: false };
      meta.page_size = { ...declared.pageSize };
    }
    if ('bodySchema' in declared) meta.request_body_schema = toJsonSchema(declared.bodySchema, 'input');
    return meta;
  }
}
