import 'reflect-metadata';
import { type Connector, TOKENS, UnicrmError } from '@unicrm/model';
import { injectAll, injectable } from 'tsyringe';

/**
 * Every connector registered under `TOKENS.Connector`, by integration name (DESIGN.md §1). Adding a
 * CRM registers one more connector; no handler changes.
 */
@injectable()
export class ConnectorRegistry {
  private readonly byIntegration = new Map<string, Connector>();

  constructor(@injectAll(TOKENS.Connector) connectors: Connector[]) {
    for (const connector of connectors) this.byIntegration.set(connector.integration, connector);
  }

  /** Integration names, sorted. */
  names(): string[] {
    return [...this.byIntegration.keys()].sort();
  }

  /** The connector of an integration, or undefined when none is registered. */
  byName(integration: string): Connector | undefined {
    return this.byIntegration.get(integration);
  }

  /**
   * The connector of an integration a caller named.
   * @throws UnicrmError 400 naming the known integrations
   */
  get(integration: string): Connector {
    const connector = this.byIntegration.get(integration);
    if (!connector) {
      throw UnicrmError.validation(
        [{ path: 'integration', message: `unknown integration "${integration}"; known: ${this.names().join(', ')}` }],
      );
    }
    return connector;
  }
}
