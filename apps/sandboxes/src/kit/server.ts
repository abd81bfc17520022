import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ContractRecorder, createKitApp } from './app';
import { type ContractViolation, OpenApiContract } from './contract/openapi-contract';
import { FaultController } from './faults';
import type { ProviderDescription, ProviderInstance, ProviderModule } from './provider';
import { type Clock, RateLimitController, type RateLimitRequest, type RateLimitSnapshot, rateLimitFromEnv } from './rate-limit';
import type { FaultRule, RecordedRequest } from './types';

/** The kit's options of {@link startProviderSandbox}, the same for every provider. */
export interface ProviderSandboxOptions {
  /** TCP port; default the module's `defaultPort`; 0 = an ephemeral port. */
  port?: number;
  /** Listen address; default '127.0.0.1'. Only loopback addresses are accepted. */
  host?: string;
  /**
   * Allow remote fault injection (`X-Sandbox-Fault` header, `/__sandbox/faults`); default false, true when
   * `<PREFIX>_FAULTS` is `1`/`true`/`yes`/`on` (Pipeliner: `PIPELINER_SANDBOX_FAULTS`). `injectFault` always works.
   */
  faults?: boolean;
  /** Keep a log of received requests in `requests`; default true. */
  logRequests?: boolean;
  /**
   * Check every request and answer against the provider's OpenAPI document; violations are kept for
   * `contractViolations()`. `true` uses the module's `contract()`; an {@link OpenApiContract} is used as given.
   * Default false.
   */
  contract?: boolean | OpenApiContract;
  /** Also called with each contract violation as it happens (e.g. to log it). */
  onContractViolation?: (violation: ContractViolation) => void;
  /**
   * Enforce the provider's rate limits (docs/sandboxes.md "Rate limits"): `true` with the module's documented numbers,
   * an object of overrides (`{ max: 10, windowMs: 1000 }`, the module's settings), a number as the shorthand of
   * `{ max: n }` (the burst window's limit). Default: `<PREFIX>_RATE_LIMIT` (with its `_RATE_LIMIT_<KEY>` overrides),
   * off when unset. Switchable later with `rateLimits.set` or `POST /__sandbox/rate-limit`.
   */
  rateLimit?: RateLimitRequest;
  /** The limiter's clock in epoch ms (tests); default `Date.now`. */
  rateLimitClock?: Clock;
}

/** A sandbox's rate limits, switched and read in process. */
export interface SandboxRateLimits {
  /**
   * Switches them on (`true`, overrides, or a number as `{ max: n }`) or off (`false`); counters start afresh.
   * @throws Error for settings the module refuses
   */
  set(request: RateLimitRequest): void;
  /** Settings, windows, requests allowed and refused, each refusal's time (what `GET /__sandbox/rate-limit` answers). */
  snapshot(): RateLimitSnapshot;
  /** Clears the counters and statistics (on/off and settings stay). */
  clear(): void;
}

/** A started provider sandbox. */
export interface RunningProviderSandbox<TInstance extends ProviderInstance = ProviderInstance> {
  /** The module's `name` (`pipeliner`). */
  name: string;
  /** Base URL, e.g. 'http://127.0.0.1:8100' (what an account's context points at). */
  url: string;
  /** The bound port (the real one when started on port 0). */
  port: number;
  /** The module's state (its store, seed, credentials). */
  instance: TInstance;
  /** Every request received (admin routes excepted), in order. Cleared in place by `reset()`. */
  requests: RecordedRequest[];
  /** Adds a fault rule for the following requests (works whatever the `faults` option). @throws Error for an invalid rule */
  injectFault(rule: FaultRule): void;
  clearFaults(): void;
  /**
   * Contract violations seen so far (a copy). Kept across `reset()`, so a test that resets mid-way loses none.
   * @throws Error when the sandbox was started without `contract`
   */
  contractViolations(): ContractViolation[];
  /** Like `contractViolations()`, and clears them (use in `afterEach`). @throws Error without `contract` */
  takeContractViolations(): ContractViolation[];
  /** What an integrated account needs to reach this sandbox (the module's `describe` at `url`). */
  describe(): ProviderDescription;
  /** The provider's rate limits. @throws Error (from each method) when the module declares none */
  rateLimits: SandboxRateLimits;
  /**
   * Back to the seed; requests and faults cleared; held requests (latency, hang) ended; rate-limit counters cleared
   * (on/off and settings stay). Contract violations are kept.
   */
  reset(): void;
  /** Stops listening and ends every open connection, hung ones included. Idempotent. */
  close(): Promise<void>;
}

const LOOPBACK = /^(127(?:\.\d{1,3}){3}|::1|localhost)$/i;

/** True for `1`, `true`, `yes`, `on` (any case, trimmed): how every sandbox reads an on/off variable. */
export function envFlag(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}

/**
 * Starts an HTTP server on loopback and resolves once it listens. `port` 0 takes an ephemeral port.
 * @returns the server and its base URL (`http://127.0.0.1:<port>`, IPv6 addresses in brackets)
 * @throws Error for a non-loopback host (`... listens on loopback only ...`) or a port that cannot be bound (EADDRINUSE)
 */
export async function listenOnLoopback(
  handler: Parameters<typeof createServer>[1],
  port: number,
  host = '127.0.0.1',
): Promise<{ server: Server; url: string; port: number }> {
  if (!LOOPBACK.test(host)) throw new Error(`A sandbox listens on loopback only; refusing host '${host}'.`);
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { server, url: `http://${urlHost}:${address.port}`, port: address.port };
}

/**
 * Starts one provider's sandbox on loopback: the module's state and routes behind the kit's server, fault
 * injection, request log and (with `contract`) the checks of the module's OpenAPI document.
 * `options` holds the kit's options and the module's own (credentials, seed...), which go to `module.create`.
 * @throws Error for a non-loopback host, invalid module options or seed, a document that does not compile, or a port
 *   that cannot be bound
 */
export async function startProviderSandbox<TOptions extends object, TInstance extends ProviderInstance>(
  module: ProviderModule<TOptions, TInstance>,
  options: ProviderSandboxOptions & TOptions = {} as ProviderSandboxOptions & TOptions,
): Promise<RunningProviderSandbox<TInstance>> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.test(host)) throw new Error(`The ${module.title} sandbox listens on loopback only; refusing host '${host}'.`);
  const instance = module.create(options);
  const faults = new FaultController({ validationStatus: module.errors.validationStatus, render: module.errors.fault });
  const requests: RecordedRequest[] = [];
  const violations: ContractViolation[] = [];
  let contract: ContractRecorder | undefined;
  if (options.contract) {
    const onViolation = options.onContractViolation;
    contract = {
      contract: options.contract instanceof OpenApiContract ? options.contract : module.contract(),
      record: (found) => {
        violations.push(...found);
        if (onViolation) for (const violation of found) onViolation(violation);
      },
    };
  }
  const contractOn = () => {
    if (!contract) throw new Error(`Contract checks are off: start the ${module.title} sandbox with { contract: true }.`);
  };
  let rateLimits: RateLimitController | undefined;
  if (module.rateLimits) {
    rateLimits = new RateLimitController(module.rateLimits, instance, options.rateLimitClock);
    const wanted = options.rateLimit ?? rateLimitFromEnv(module.envPrefix, module.rateLimits, process.env);
    rateLimits.set(wanted);
  } else if (options.rateLimit !== undefined && options.rateLimit !== false) {
    throw new Error(`The ${module.title} sandbox declares no rate limits.`);
  }
  const limits = (): RateLimitController => {
    if (!rateLimits) throw new Error(`The ${module.title} sandbox declares no rate limits.`);
    return rateLimits;
  };
  const app = createKitApp({
    router: instance.router,
    errors: module.errors,
    jsonContentType: module.jsonContentType,
    outsideContract: module.outsideContract,
    faults,
    faultsEnabled: options.faults ?? envFlag(process.env[`${module.envPrefix}_FAULTS`]),
    requests,
    logRequests: options.logRequests ?? true,
    contract,
    rateLimits,
  });
  const { server, url, port } = await listenOnLoopback(app, options.port ?? module.defaultPort, host);

  let closed: Promise<void> | undefined;
  return {
    name: module.name,
    url,
    port,
    instance,
    requests,
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
    describe: () => instance.describe(url),
    rateLimits: {
      set: (request) => limits().set(request),
      snapshot: () => limits().snapshot(),
      clear: () => limits().clear(),
    },
    reset: () => {
      instance.reset();
      rateLimits?.clear();
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
