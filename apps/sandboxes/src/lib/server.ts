import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ContractRecorder, createApp } from './app';
import { type ContractViolation, loadPipelinerContract, OpenApiContract } from './contract/openapi-contract';
import { FaultController } from './faults';
import { type RenderContext, renderPipeline, renderStep } from './render';
import { builtInSeed, loadSeedFile, parseSeed } from './seed';
import { SandboxStore } from './store';
import type { FaultRule, Pipeline, RecordedRequest, SandboxSeed, Step } from './types';

/** Options of {@link startSandbox}. */
export interface SandboxOptions {
  /** TCP port; default 8100; 0 = an ephemeral port. */
  port?: number;
  /** Listen address; default '127.0.0.1'. Only loopback addresses are accepted. */
  host?: string;
  /** Basic-auth user name ("API token"); default 'sandbox-api-token'. */
  username?: string;
  /** Basic-auth password ("API password"); default 'sandbox-api-password'. */
  password?: string;
  /** The one space served; default 'sandbox_space'. */
  spaceId?: string;
  /** A seed object, or the path of a JSON seed file; default: the built-in seed (SANDBOX_SEED_IDS). */
  seed?: SandboxSeed | string;
  /** Allow remote fault injection (X-Sandbox-Fault header, /__sandbox/faults); default false, true when PIPELINER_SANDBOX_FAULTS=1. */
  faults?: boolean;
  /** Keep a log of received requests in `RunningSandbox.requests`; default true. */
  logRequests?: boolean;
  /**
   * Check every request and answer against Pipeliner's OpenAPI document (docs/pipeliner-sandbox.md "Contract
   * tests"); violations are kept for `contractViolations()`. `true` uses the committed copy of the document (compiled
   * once per process); a contract from `loadPipelinerContract(...)` is used as given. Default false.
   */
  contract?: boolean | OpenApiContract;
  /** Also called with each contract violation as it happens (e.g. to log it). */
  onContractViolation?: (violation: ContractViolation) => void;
}

/** A started sandbox. */
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

const LOOPBACK = /^(127(?:\.\d{1,3}){3}|::1|localhost)$/i;

function envFlag(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}

function resolveSeed(seed: SandboxSeed | string | undefined): SandboxSeed {
  if (seed === undefined) return builtInSeed();
  if (typeof seed === 'string') return loadSeedFile(seed);
  return parseSeed(seed);
}

/**
 * Starts a Pipeliner emulator (Steps and Pipelines, pipeliner-api.md) on loopback.
 * @throws Error for a non-loopback host, an invalid seed, or a port that cannot be bound.
 */
export async function startSandbox(options: SandboxOptions = {}): Promise<RunningSandbox> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.test(host)) throw new Error(`The Pipeliner sandbox listens on loopback only; refusing host '${host}'.`);
  const config = {
    username: options.username ?? 'sandbox-api-token',
    password: options.password ?? 'sandbox-api-password',
    spaceId: options.spaceId ?? 'sandbox_space',
  };
  const store = new SandboxStore(resolveSeed(options.seed));
  const faults = new FaultController();
  const requests: RecordedRequest[] = [];
  const violations: ContractViolation[] = [];
  let contract: ContractRecorder | undefined;
  if (options.contract) {
    const onViolation = options.onContractViolation;
    contract = {
      contract: options.contract instanceof OpenApiContract ? options.contract : loadPipelinerContract(),
      record: (found) => {
        violations.push(...found);
        if (onViolation) for (const violation of found) onViolation(violation);
      },
    };
  }
  const contractOn = () => {
    if (!contract) throw new Error('Contract checks are off: start the sandbox with { contract: true }.');
  };
  const app = createApp({
    store,
    config,
    faults,
    faultsEnabled: options.faults ?? envFlag(process.env['PIPELINER_SANDBOX_FAULTS']),
    requests,
    logRequests: options.logRequests ?? true,
    contract,
  });

  const server: Server = createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8100, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const serviceUrl = `http://${urlHost}:${address.port}`;
  const renderCtx: RenderContext = { baseUrl: serviceUrl, spaceId: config.spaceId, store };

  let closed: Promise<void> | undefined;
  return {
    serviceUrl,
    ...config,
    requests,
    steps: () => store.allSteps().map((step) => renderStep(step, renderCtx) as unknown as Step),
    pipelines: () => store.allPipelines().map((pipeline) => renderPipeline(pipeline, renderCtx) as unknown as Pipeline),
    injectFault: (rule) => faults.add(rule),
    clearFaults: () => faults.clear(),
    contractViolations: () => {
      contractOn();
      return [...violations];
    },
    takeContractViolations: () => {
      contractOn();
      return violations.splice(0, violations.length);
    },
    reset: () => {
      store.reset();
      faults.clear();
      faults.releaseAll();
      requests.length = 0;
    },
    close: () => {
      closed ??= new Promise<void>((resolve, reject) => {
        faults.releaseAll();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
