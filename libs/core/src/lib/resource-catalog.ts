import 'reflect-metadata';
import { resourceKey, TOKENS, UnicrmError, type UnifiedResourceDefinition } from '@unicrm/model';
import { injectAll, injectable } from 'tsyringe';

/**
 * Every unified resource registered under `TOKENS.UnifiedResource` (the built-in `crm/stages` and `crm/pipelines`,
 * and any a deployment or test adds), by `model/resource`. The route table serves `/unified/<model>/<resource>` for
 * whatever is here: adding a resource is a registration, not a route (DESIGN.md §6).
 */
@injectable()
export class ResourceCatalog {
  private readonly byKey = new Map<string, UnifiedResourceDefinition>();

  constructor(@injectAll(TOKENS.UnifiedResource) definitions: UnifiedResourceDefinition[]) {
    for (const definition of definitions) this.byKey.set(resourceKey(definition.model, definition.resource), definition);
  }

  /** Every resource, sorted by key. */
  all(): UnifiedResourceDefinition[] {
    return [...this.byKey.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, definition]) => definition);
  }

  /**
   * The resource at `/unified/<model>/<resource>` (names compared in lower case, as paths are).
   * @throws UnicrmError 404 naming the known resources
   */
  get(model: string, resource: string): UnifiedResourceDefinition {
    const definition = this.byKey.get(resourceKey(model.toLowerCase(), resource.toLowerCase()));
    if (!definition) {
      throw UnicrmError.notFound(
        `There is no unified resource ${model}/${resource}. Resources: ${[...this.byKey.keys()].sort().join(', ')}. The API is described at GET /openapi.json.`,
      );
    }
    return definition;
  }
}
