import type { ContractViolation } from '../kit/contract/openapi-contract';
import { type ProviderSandboxOptions, type SandboxRateLimits, startProviderSandbox } from '../kit/server';
import type { FaultRule, RecordedRequest } from '../kit/types';
import { type PipelinerOptions, pipelinerSandbox } from './module';
import type { Pipeline, Step } from './types';

/**
 * Options of {@link startSandbox}: the kit's (`port` default 8100, `host`, `faults` default from
 * `PIPELINER_SANDBOX_FAULTS`, `logRequests` default true, `contract` — `true` uses the committed copy of Pipeliner's
 * document, compiled once per process, or a contract from `loadPipelinerContract(...)` — and `onContractViolation`)
 * and Pipeliner's (`username`, `password`, `spaceId`, `seed`).
 */
export type SandboxOptions = ProviderSandboxOptions & PipelinerOptions;

/** A started Pipeliner sandbox. */
export interface RunningSandbox {
  /** What a user enters as Pipeliner "service URL", e.g. 'http://127.0.0.1:8100'. */
  serviceUrl: string;
  spaceId: string;
  username: string;
  password: string;
  /** Every request received (admin routes excepted), in order. Cleared in place by `reset()`. */
  requests: RecordedRequest[];
  /** Current Steps as Pipeliner would output them (un-expanded, UTC), soft-deleted ones included. */
  steps(): Step[];
  /** Current Pipelines as Pipeliner would output them (un-expanded, UTC), soft-deleted ones included. */
  pipelines(): Pipeline[];
  /** Adds a fault rule for the following requests (works whatever the `faults` option). Throws on an invalid rule. */
  injectFault(rule: FaultRule): void;
  clearFaults(): void;
  /** Its rate limits (off unless switched on): `set`, `snapshot`, `clear` (docs/pipeliner-sandbox.md "Rate limits"). */
  rateLimits: SandboxRateLimits;
  /**
   * Contract violations seen so far (a copy). Kept across `reset()`, so a test that resets mid-way loses none.
   * @throws Error when the sandbox was started without `contract`
   */
  contractViolations(): ContractViolation[];
  /** Like `contractViolations()`, and clears them (use in `afterEach`). @throws Error without `contract` */
  takeContractViolations(): ContractViolation[];
  /** Back to the seed; requests and faults cleared; hung requests ended. Contract violations are kept. */
  reset(): void;
  /** Stops listening and ends every open connection, hung ones included. */
  close(): Promise<void>;
}

/**
 * Starts a Pipeliner emulator (Steps and Pipelines, docs/pipeliner-sandbox.md) on loopback: the Pipeliner module on
 * the kit's `startProviderSandbox`.
 * @throws Error for a non-loopback host, an invalid seed, or a port that cannot be bound.
 */
export async function startSandbox(options: SandboxOptions = {}): Promise<RunningSandbox> {
  const sandbox = await startProviderSandbox(pipelinerSandbox, options);
  const { config } = sandbox.instance;
  return {
    serviceUrl: sandbox.url,
    ...config,
    requests: sandbox.requests,
    steps: () => sandbox.instance.steps(sandbox.url),
    pipelines: () => sandbox.instance.pipelines(sandbox.url),
    injectFault: sandbox.injectFault,
    clearFaults: sandbox.clearFaults,
    rateLimits: sandbox.rateLimits,
    contractViolations: sandbox.contractViolations,
    takeContractViolations: sandbox.takeContractViolations,
    reset: sandbox.reset,
    close: sandbox.close,
  };
}
