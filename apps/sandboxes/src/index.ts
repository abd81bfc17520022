/**
 * @unicrm/sandboxes: a local emulator of Pipeliner CRM's REST API (Steps and Pipelines), for
 * development, HTTP tests, demos and benchmarks. Behaviour and every deliberate guess: docs/pipeliner-sandbox.md.
 */
export { startSandbox } from './lib/server';
export type { RunningSandbox, SandboxOptions } from './lib/server';
export { SANDBOX_SEED_IDS, builtInSeed } from './lib/seed';
export type {
  FaultRule,
  Pipeline,
  RecordedRequest,
  SandboxSeed,
  SeedPipeline,
  SeedStep,
  Step,
} from './lib/types';
export { PIPELINER_DATE_RE, formatPipelinerDate } from './lib/dates';
export {
  OpenApiContract,
  PIPELINER_OPENAPI_RELATIVE_PATH,
  findPipelinerOpenApi,
  formatContractViolation,
  loadPipelinerContract,
} from './lib/contract/openapi-contract';
export type {
  ContractLocation,
  ContractOptions,
  ContractRequest,
  ContractResponse,
  ContractViolation,
  OpenApiDocument,
} from './lib/contract/openapi-contract';
