/**
 * The Pipeliner sandbox module: an emulator of Pipeliner CRM's REST API (Steps and Pipelines) on the sandbox kit.
 * Behaviour and every deliberate guess: docs/pipeliner-sandbox.md.
 */
export { startSandbox } from './server';
export type { RunningSandbox, SandboxOptions } from './server';
export { PIPELINER_DEFAULTS, pipelinerSandbox } from './module';
export type { PipelinerInstance, PipelinerOptions } from './module';
export { SANDBOX_SEED_IDS, builtInSeed } from './seed';
export type { Pipeline, SandboxSeed, SeedPipeline, SeedStep, Step } from './types';
export { PIPELINER_DATE_RE, formatPipelinerDate } from './dates';
export {
  PIPELINER_CONTRACT_PROFILE,
  PIPELINER_OPENAPI_RELATIVE_PATH,
  findPipelinerOpenApi,
  isPipelinerDateTime,
  loadPipelinerContract,
} from './contract';
export type { ContractOptions } from './contract';
export { PIPELINER_RATE_LIMITS, pipelinerRateLimits } from './rate-limits';
export type { PipelinerRateLimitSettings } from './rate-limits';
