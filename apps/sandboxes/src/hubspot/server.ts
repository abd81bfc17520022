import type { ContractViolation } from '../kit/contract/openapi-contract';
import { type ProviderSandboxOptions, type SandboxRateLimits, startProviderSandbox } from '../kit/server';
import type { FaultRule, RecordedRequest } from '../kit/types';
import { type HubSpotInstance, type HubSpotOptions, hubspotSandbox } from './module';

/** Options of {@link startHubSpotSandbox}: the kit's (`port` default 8300, `contract`, `faults`, ...) and HubSpot's. */
export type HubSpotSandboxOptions = ProviderSandboxOptions & HubSpotOptions;

/** A started HubSpot sandbox. */
export interface RunningHubSpotSandbox {
  /** The `api_base_url` of an account, e.g. 'http://127.0.0.1:8300'. */
  url: string;
  /** Its OAuth token endpoint (`{url}/oauth/v1/token`, where an OAuth account's refresh goes by default). */
  tokenUrl: string;
  instance: HubSpotInstance;
  requests: RecordedRequest[];
  /**
   * Issues OAuth tokens as the token endpoint would, expiring after `seconds` (negative: already expired), for an
   * OAuth account's context.
   */
  issueTokens(seconds?: number): { access_token: string; refresh_token: string; expires_at: string };
  /** Refresh requests that reached `/oauth/v1/token`, refused ones included. */
  refreshRequests(): number;
  injectFault(rule: FaultRule): void;
  clearFaults(): void;
  /** Its rate limits (off unless switched on): `set`, `snapshot`, `clear` (docs/hubspot-sandbox.md "Rate limits"). */
  rateLimits: SandboxRateLimits;
  contractViolations(): ContractViolation[];
  takeContractViolations(): ContractViolation[];
  reset(): void;
  close(): Promise<void>;
}

/**
 * Starts a HubSpot emulator (docs/hubspot-sandbox.md) on loopback: the HubSpot module on the kit.
 * @throws Error for a non-loopback host or a port that cannot be bound
 */
export async function startHubSpotSandbox(options: HubSpotSandboxOptions = {}): Promise<RunningHubSpotSandbox> {
  const sandbox = await startProviderSandbox(hubspotSandbox, options);
  return {
    url: sandbox.url,
    tokenUrl: `${sandbox.url}/oauth/v1/token`,
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
