/**
 * The Pipedrive sandbox module: an emulator of Pipedrive's API v2 (stages and pipelines) and its OAuth token endpoint,
 * on the sandbox kit. Behaviour and every decision: docs/pipedrive-sandbox.md.
 */
export { startPipedriveSandbox } from './server';
export type { PipedriveSandboxOptions, RunningPipedriveSandbox } from './server';
export { PIPEDRIVE_DEFAULTS, pipedriveSandbox } from './module';
export type { PipedriveInstance, PipedriveOptions } from './module';
export { PIPEDRIVE_SEED } from './store';
export { PIPEDRIVE_CONTRACT_PROFILE, PIPEDRIVE_OPENAPI_RELATIVE_PATH, loadPipedriveContract } from './contract';
export {
  PIPEDRIVE_PLAN_LIMITS,
  PIPEDRIVE_PLANS,
  PIPEDRIVE_RATE_LIMITS,
  PIPEDRIVE_TOKENS_PER_SEAT,
  pipedriveBurst,
  pipedriveDailyBudget,
  pipedriveRateLimits,
  pipedriveTokenCost,
} from './rate-limits';
export type { PipedrivePlan, PipedriveRateLimitSettings } from './rate-limits';
