import 'reflect-metadata';
import {
  type AccountStore,
  type Clock,
  type IntegratedAccount,
  IntegratedAccountCreateBodySchema,
  isJsonObject,
  type StoredAccount,
  TOKENS,
  UnicrmError,
  zodFailures,
} from '@unicrm/model';
import { randomUUID } from 'node:crypto';
import { inject, injectable } from 'tsyringe';
import { z } from 'zod';
import { ConnectorRegistry } from './registry';

/** Body of `PATCH /integrated-account/:id`: a shallow `context` merge and/or a new `tenant_id`. */
const AccountPatchSchema = z.strictObject({
  tenant_id: z.string().trim().min(1).max(256).optional(),
  context: z.record(z.string(), z.unknown()).optional(),
});

function requireObject(body: unknown): Record<string, unknown> {
  if (!isJsonObject(body)) throw UnicrmError.badRequest('The body must be a JSON object.');
  return body;
}

/**
 * The admin side of integrated accounts (DESIGN.md §4; truto-contract.md §4.2–4.3): create, get,
 * update, delete, in the Truto shape with secrets stripped. An account belongs to the environment of
 * the token that made it; other environments never see it (404).
 */
@injectable()
export class IntegratedAccountService {
  constructor(
    @inject(TOKENS.AccountStore) private readonly store: AccountStore,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    private readonly registry: ConnectorRegistry,
  ) {}

  /**
   * Connects an account: `{ integration, tenant_id, context }`, context checked by the integration's connector.
   * @returns the account, secrets stripped
   * @throws UnicrmError 400 naming each bad field or an unknown integration
   */
  create(environmentId: string, body: unknown): IntegratedAccount {
    const parsed = IntegratedAccountCreateBodySchema.safeParse(requireObject(body));
    if (!parsed.success) throw UnicrmError.validation(zodFailures(parsed.error));
    const connector = this.registry.get(parsed.data.integration);
    const context = connector.parseContext(parsed.data.context);
    const now = this.clock.now().toISOString();
    const account: StoredAccount = {
      id: randomUUID(),
      environmentId,
      tenantId: parsed.data.tenant_id,
      integration: connector.integration,
      status: 'active',
      context,
      publicContext: this.publicContext(connector.integration, context),
      lastError: null,
      createdAt: now,
      updatedAt: now,
    };
    this.store.create(account);
    return this.present(account);
  }

  /** @throws UnicrmError 404 when the account does not exist in this environment */
  get(environmentId: string, id: string): IntegratedAccount {
    return this.present(this.load(environmentId, id));
  }

  /**
   * Updates `tenant_id` and/or merges `context` shallowly (truto-contract.md §4.2). The merged context
   * is checked again by the connector; new credentials move a `needs_reauth` account back to `active`.
   * @throws UnicrmError 400, 404
   */
  update(environmentId: string, id: string, body: unknown): IntegratedAccount {
    const parsed = AccountPatchSchema.safeParse(requireObject(body));
    if (!parsed.success) throw UnicrmError.validation(zodFailures(parsed.error));
    const account = this.load(environmentId, id);
    const connector = this.registry.get(account.integration);
    const next: StoredAccount = { ...account, updatedAt: this.clock.now().toISOString() };
    if (parsed.data.tenant_id !== undefined) next.tenantId = parsed.data.tenant_id;
    if (parsed.data.context !== undefined) {
      next.context = connector.parseContext({ ...account.context, ...parsed.data.context });
      next.publicContext = this.publicContext(account.integration, next.context);
      if (account.status !== 'active') {
        next.status = 'active';
        next.lastError = null;
      }
    }
    if (!this.store.update(next)) throw this.notFound(id);
    return this.present(next);
  }

  /** @returns `{ id }` of the deleted account. @throws UnicrmError 404 */
  delete(environmentId: string, id: string): { id: string } {
    if (!this.store.delete(environmentId, this.checkId(id))) throw this.notFound(id);
    return { id };
  }

  /**
   * The stored account, secrets included, for a use case.
   * @throws UnicrmError 404 when the account does not exist in this environment
   */
  load(environmentId: string, id: string): StoredAccount {
    const account = this.store.get(environmentId, this.checkId(id));
    if (!account) throw this.notFound(id);
    return account;
  }

  /** Records that the provider rejected the account's credentials (DESIGN.md §3). */
  markNeedsReauth(account: StoredAccount, reason: string): void {
    this.store.setStatus(account.environmentId, account.id, 'needs_reauth', reason, this.clock.now().toISOString());
  }

  private checkId(id: string): string {
    return id.toLowerCase();
  }

  private notFound(id: string): UnicrmError {
    return UnicrmError.notFound(`Integrated account ${id} not found.`);
  }

  private publicContext(integration: string, context: Record<string, unknown>): Record<string, unknown> {
    const secrets = new Set(this.registry.get(integration).secretContextKeys);
    return Object.fromEntries(Object.entries(context).filter(([key]) => !secrets.has(key)));
  }

  /** The Truto-shaped account, secrets stripped. */
  present(account: StoredAccount): IntegratedAccount {
    const connector = this.registry.get(account.integration);
    return {
      id: account.id,
      tenant_id: account.tenantId,
      environment_id: account.environmentId,
      integration: { name: connector.integration, category: connector.category },
      status: account.status,
      context: account.publicContext,
      last_error: account.lastError,
      created_at: account.createdAt,
      updated_at: account.updatedAt,
    };
  }
}
