/**
 * The sandbox kit: what every provider sandbox shares (docs/sandboxes.md). A loopback HTTP server, fault injection
 * (`X-Sandbox-Fault`, `/__sandbox/faults`, `injectFault`), the request log, contract checks of every request and
 * answer against the provider's OpenAPI 3.0/3.1 document, and the provider module interface.
 */
export { startProviderSandbox, listenOnLoopback, envFlag } from './server';
export type { ProviderSandboxOptions, RunningProviderSandbox, SandboxRateLimits } from './server';
export { MAX_REFUSALS_KEPT, RateLimitController, rateLimitFromEnv, rateLimitVariable, WindowLimiter } from './rate-limit';
export type {
  Clock,
  ProviderRateLimits,
  RateClassification,
  RateDecision,
  RateLimitRequest,
  RateLimitSnapshot,
  RateRefusal,
  RateWindow,
  RateWindowState,
} from './rate-limit';
export type {
  AnyProviderModule,
  ProviderDescription,
  ProviderErrors,
  ProviderInstance,
  ProviderModule,
  ProviderSetting,
} from './provider';
export { SandboxHttpError } from './errors';
export { sendEmpty, sendJson } from './http';
export { ADMIN_PREFIX, BODY_LIMIT } from './app';
export { FAULT_HEADER, parseFaultRule, ruleMatches } from './faults';
export type { FaultAnswer, FaultRenderer, FaultRuleOptions } from './faults';
export type { FaultRule, JsonObject, RecordedRequest } from './types';
export { OpenApiContract, formatContractViolation, normaliseMediaType } from './contract/openapi-contract';
export type {
  ContractLocation,
  ContractProfile,
  ContractRequest,
  ContractResponse,
  ContractViolation,
  ExtraQueryParameter,
  OpenApiDocument,
} from './contract/openapi-contract';
export { findFileAbove, readOpenApiDocument } from './contract/load';
export { parseNameTree } from './contract/schema';
export type { EntityView, NameTree, Relation, SchemaObject } from './contract/schema';
export { runSandboxes, selectModules, UsageError } from './cli';
