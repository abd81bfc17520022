import type { Router } from 'express';
import type { OpenApiContract } from './contract/openapi-contract';
import type { SandboxHttpError } from './errors';
import type { FaultRenderer } from './faults';
import type { ProviderRateLimits } from './rate-limit';

/**
 * The provider module interface: what one CRM's sandbox gives the kit (docs/sandboxes.md "The provider module").
 * The kit owns the server, faults, the request log and the contract checks; a module owns its routes, its state,
 * its error shapes, its OpenAPI document and what an integrated account's context needs to reach it.
 */

/** The provider's error shapes, for the answers the kit itself makes. */
export interface ProviderErrors {
  /** Status of the provider's validation failures: the only status a `missingField` fault goes with (Pipeliner 422). */
  validationStatus: number;
  /** The answer to a status fault (any status 200-599, with `missingField` at `validationStatus`), in the provider's shape. */
  fault: FaultRenderer;
  /** A request that no route of the module answered: the provider's 404 for an unknown URL. */
  notFound(request: { method: string; path: string }): SandboxHttpError;
  /**
   * A request the kit refuses before the module sees it: an invalid `X-Sandbox-Fault` header, an invalid rule sent to
   * `POST /__sandbox/faults`, an unreadable body. `message` says what is wrong. The provider's 400.
   */
  badRequest(message: string): SandboxHttpError;
  /** A body over the kit's limit (`limit` as written, e.g. '5mb'): the provider's 413. */
  tooLarge(limit: string): SandboxHttpError;
  /** An unexpected error (a bug of the sandbox): the provider's 500. */
  internal(error: unknown): SandboxHttpError;
}

/** One environment variable of a module, for `--help` and docs. */
export interface ProviderSetting {
  /** e.g. `PIPELINER_SANDBOX_USERNAME`. */
  name: string;
  /** The value used when it is unset, as text (`built-in seed`, `sandbox-api-token`). */
  default: string;
  /** What it sets. */
  meaning: string;
}

/** What to put in an integrated account to reach a running sandbox, and what else to print about it. */
export interface ProviderDescription {
  /** The `integration` of the integrated account (`pipeliner`). */
  integration: string;
  /** The account's `context`, ready to send as it is. */
  context: Record<string, string>;
  /** Labelled lines printed under the sandbox's name, in order (e.g. `service URL`, `"Sales Pipeline" id`). */
  details: Array<{ label: string; value: string; note?: string }>;
  /** Commands to try against the sandbox, printed under "Try:". */
  examples?: string[];
}

/** One sandbox's state, made by {@link ProviderModule.create}. */
export interface ProviderInstance {
  /**
   * The provider's routes, mounted at the root after the kit's admin routes and fault handling. Handlers answer with
   * the kit's `sendJson` / `sendEmpty` and throw {@link SandboxHttpError}s in the provider's error shape; a request
   * no route answers gets `ProviderErrors.notFound`.
   */
  router: Router;
  /** Back to the seed. The kit clears the request log and fault rules and ends held requests itself. */
  reset(): void;
  /** What an integrated account needs to reach this sandbox at `url` (`http://127.0.0.1:8100`). */
  describe(url: string): ProviderDescription;
}

/**
 * A provider's sandbox, as the kit runs it. `TOptions` are the module's own options (credentials, seed...), merged
 * with the kit's in `startProviderSandbox(module, options)`.
 */
export interface ProviderModule<TOptions extends object = object, TInstance extends ProviderInstance = ProviderInstance> {
  /** Lower-case name: the argument of `npm run sandbox -- <name>` and the registry key (`pipeliner`). */
  readonly name: string;
  /** Human name, in messages (`Pipeliner`). */
  readonly title: string;
  /** One line on what is emulated, printed at start. */
  readonly summary: string;
  /** Port of `npm run sandbox` when `<PREFIX>_PORT` is unset (Pipeliner 8100, Pipedrive 8200, HubSpot 8300). */
  readonly defaultPort: number;
  /**
   * Prefix of the module's environment variables (`PIPELINER_SANDBOX`). The kit reads `<PREFIX>_PORT`,
   * `<PREFIX>_FAULTS`, `<PREFIX>_LOG_REQUESTS` and `<PREFIX>_CONTRACT`; the module reads its own in `optionsFromEnv`.
   */
  readonly envPrefix: string;
  /** The module's own variables (credentials, seed...), with their defaults, for `--help` and docs. */
  readonly settings: readonly ProviderSetting[];
  /**
   * Paths the module serves that are not part of the provider's API document, so the contract checks skip them (e.g.
   * Pipedrive's OAuth token endpoint, which lives on another host than the API). Default: none.
   */
  readonly outsideContract?: RegExp;
  /** `Content-Type` of its JSON answers; default `application/json`. */
  readonly jsonContentType?: string;
  /** Its error shapes. */
  readonly errors: ProviderErrors;
  /**
   * Its rate limits: windows, costs, headers and 429 (docs/sandboxes.md "Rate limits"). Enforced only when switched
   * on (`rateLimit` option, `<PREFIX>_RATE_LIMIT=1`, `POST /__sandbox/rate-limit`). Default: none.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly rateLimits?: ProviderRateLimits<any, TInstance>;
  /** Its own options from the environment, for `npm run sandbox`. @throws Error for an invalid value */
  optionsFromEnv(env: NodeJS.ProcessEnv): TOptions;
  /**
   * The checks of its OpenAPI document, for `contract: true` (the module finds and loads its own document; compile it
   * once per process). @throws Error when the document cannot be read or compiled
   */
  contract(): OpenApiContract;
  /** A new sandbox state from its options (seed read and checked). @throws Error for invalid options or seed */
  create(options: TOptions): TInstance;
}

/** Any provider module, whatever its options (for registries and the command line). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyProviderModule = ProviderModule<any, ProviderInstance>;
