import type { ContractViolation } from '../kit/contract/openapi-contract';
import { type ProviderSandboxOptions, type SandboxRateLimits, startProviderSandbox } from '../kit/server';
import type { FaultRule, RecordedRequest } from '../kit/types';
import { type PipedriveInstance, type PipedriveOptions, pipedriveSandbox } from './module';

/** Options of {@link startPipedriveSandbox}: the kit's (`port` default 8200, `contract`, `faults`, ...) and Pipedrive's. */
export type PipedriveSandboxOptions = ProviderSandboxOptions & PipedriveOptions;

/** A started Pipedrive sandbox. */
export interface RunningPipedriveSandbox {
  /** The `api_domain` of an account, e.g. 'http://127.0.0.1:8200'. */
  url: string;
  /** Its OAuth token endpoint (`token_url` of an OAuth account). */
  tokenUrl: string;
  instance: PipedriveInstance;
  requests: RecordedRequest[];
  /**
   * Issues OAuth tokens as the token endpoint would, expiring after `seconds` (negative: already expired), for an
   * OAuth account's context.
   */
  issueTokens(seconds?: number): { access_token: string; refresh_token: string; expires_at: string };
  /** Refresh requests that reached `/oauth/token`, refused ones included. */
  refreshRequests(): number;
  injectFault(rule: FaultRule): void;
  clearFaults(): void;
  /** Its rate limits (off unless switched on): `set`, `snapshot`, `clear` (docs/pipedrive-sandbox.md "Rate limits"). */
  rateLimits: SandboxRateLimits;
  contractViolations(): ContractViolation[];
  takeContractViolations(): ContractViolation[];
  reset(): void;
  close(): Promise<void>;
}

/**
 * Starts a Pipedrive emulator (docs/pipedrive-sandbox.md) on loopback: the Pipedrive module on the kit.
 * @throws Error for a non-loopback host or a port that cannot be bound
 */
export async function startPipedriveSandbox(options: PipedriveSandboxOptions = {}): Promise<RunningPipedriveSandbox> {
  const sandbox = await startProviderSandbox(pipedriveSandbox, options);
  return {
    url: sandbox.url,
    tokenUrl: `${sandbox.url}/oauth/token`,
    instance: sandbox.instance,
    requests: sandbox.requests,
    issueTokens: (seconds = sandbox.instance.config.accessTokenSeconds) => sandbox.instance.tokens.issue(seconds),
    refreshRequests: () => sandbox.instance.tokens.refreshRequests,
    injectFault: sandbox.injectFault,
    clearFaults: sandbox.clearFaults,
    rateLimits: sandbox.rateLimits,
    contractViolations: sandbox.contractViolations,
    takeContractViolations: sandbox.takeContractViolations,
    reset: sandbox.reset,
    close: sandbox.close,
  };
}
