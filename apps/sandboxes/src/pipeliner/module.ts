import { randomUUID } from 'node:crypto';
import type { ProviderInstance, ProviderModule } from '../kit/provider';
import { loadPipelinerContract } from './contract';
import {
  errorBody,
  faultErrorBody,
  invalidParameterError,
  missingFieldIssue,
  PipelinerError,
  routeNotFoundError,
  validationErrorBody,
} from './errors';
import { pipelinerRateLimits } from './rate-limits';
import { type RenderContext, renderPipeline, renderStep } from './render';
import { entitiesRouter, type SpaceConfig } from './routes';
import { builtInSeed, loadSeedFile, parseSeed, SANDBOX_SEED_IDS } from './seed';
import { SandboxStore } from './store';
import type { Pipeline, SandboxSeed, Step } from './types';

/** The Pipeliner module's own options (the kit's are in `ProviderSandboxOptions`). */
export interface PipelinerOptions {
  /** Basic-auth user name ("API token"); default 'sandbox-api-token'. */
  username?: string;
  /** Basic-auth password ("API password"); default 'sandbox-api-password'. */
  password?: string;
  /** The one space served; default 'sandbox_space'. */
  spaceId?: string;
  /** A seed object, or the path of a JSON seed file; default: the built-in seed (SANDBOX_SEED_IDS). */
  seed?: SandboxSeed | string;
}

/** One Pipeliner sandbox's state: its space, credentials and store. */
export interface PipelinerInstance extends ProviderInstance {
  config: SpaceConfig;
  store: SandboxStore;
  /** The seed file, when one was given by path. */
  seedPath?: string;
  /** Current Steps as Pipeliner outputs them (un-expanded, UTC, relation URIs on `url`), soft-deleted ones included. */
  steps(url: string): Step[];
  /** Current Pipelines as Pipeliner outputs them (un-expanded, UTC), soft-deleted ones included. */
  pipelines(url: string): Pipeline[];
}

/** Defaults of the Pipeliner sandbox's credentials and space. */
export const PIPELINER_DEFAULTS = { username: 'sandbox-api-token', password: 'sandbox-api-password', spaceId: 'sandbox_space' } as const;

function resolveSeed(seed: SandboxSeed | string | undefined): SandboxSeed {
  if (seed === undefined) return builtInSeed();
  if (typeof seed === 'string') return loadSeedFile(seed);
  return parseSeed(seed);
}

/** `Step` for a path under `/entities/Steps`, `Pipeline` under `/entities/Pipelines`: the `entity_name` of a 422. */
function entityNameOf(path: string): string {
  const collection = /\/entities\/([A-Za-z]+)/.exec(path)?.[1] ?? 'Entity';
  return collection.endsWith('s') ? collection.slice(0, -1) : collection;
}

/**
 * The Pipeliner module: Steps and Pipelines of one space (docs/pipeliner-sandbox.md), on the kit's server, faults,
 * request log and contract checks. Variables: `PIPELINER_SANDBOX_PORT` (8100), `_USERNAME`, `_PASSWORD`, `_SPACE_ID`,
 * `_SEED` (the kit reads `_PORT`, `_FAULTS`, `_LOG_REQUESTS`, `_CONTRACT`, and `_RATE_LIMIT` with the overrides of
 * {@link pipelinerRateLimits}: limits the sandbox assumes, Pipeliner documents none).
 */
export const pipelinerSandbox: ProviderModule<PipelinerOptions, PipelinerInstance> = {
  name: 'pipeliner',
  title: 'Pipeliner',
  summary: 'an emulator of Pipeliner CRM, Steps and Pipelines',
  defaultPort: 8100,
  envPrefix: 'PIPELINER_SANDBOX',
  settings: [
    { name: 'PIPELINER_SANDBOX_USERNAME', default: PIPELINER_DEFAULTS.username, meaning: 'Basic-auth user name (Pipeliner\'s "API token")' },
    { name: 'PIPELINER_SANDBOX_PASSWORD', default: PIPELINER_DEFAULTS.password, meaning: 'Basic-auth password ("API password")' },
    { name: 'PIPELINER_SANDBOX_SPACE_ID', default: PIPELINER_DEFAULTS.spaceId, meaning: 'the one space served' },
    { name: 'PIPELINER_SANDBOX_SEED', default: 'built-in seed', meaning: 'path of a JSON seed file' },
  ],
  // Pipeliner's Flask stack answers `application/json` without a charset; the kit's default.
  rateLimits: pipelinerRateLimits,
  errors: {
    validationStatus: 422,
    fault: (rule, request) => ({
      body:
        rule.missingField === undefined
          ? faultErrorBody(rule.status)
          : validationErrorBody(entityNameOf(request.path), randomUUID(), [missingFieldIssue(rule.missingField)]),
    }),
    // The bare 404 of an unknown URL (pipeliner-api.md §4).
    notFound: () => routeNotFoundError(),
    badRequest: (message) => invalidParameterError(message),
    tooLarge: (limit) => new PipelinerError(413, errorBody(413, 117, 'ERROR_PARAMETER_INVALID', `Request body is larger than ${limit}.`)),
    internal: () => new PipelinerError(500, faultErrorBody(500)),
  },
  optionsFromEnv: (env) => ({
    username: env['PIPELINER_SANDBOX_USERNAME'] || undefined,
    password: env['PIPELINER_SANDBOX_PASSWORD'] || undefined,
    spaceId: env['PIPELINER_SANDBOX_SPACE_ID'] || undefined,
    seed: env['PIPELINER_SANDBOX_SEED'] || undefined,
  }),
  contract: () => loadPipelinerContract(),
  create: (options) => {
    const config: SpaceConfig = {
      username: options.username ?? PIPELINER_DEFAULTS.username,
      password: options.password ?? PIPELINER_DEFAULTS.password,
      spaceId: options.spaceId ?? PIPELINER_DEFAULTS.spaceId,
    };
    const store = new SandboxStore(resolveSeed(options.seed));
    const renderCtx = (url: string): RenderContext => ({ baseUrl: url, spaceId: config.spaceId, store });
    return {
      config,
      store,
      seedPath: typeof options.seed === 'string' ? options.seed : undefined,
      router: entitiesRouter(store, config),
      reset: () => store.reset(),
      steps: (url) => store.allSteps().map((step) => renderStep(step, renderCtx(url)) as unknown as Step),
      pipelines: (url) => store.allPipelines().map((pipeline) => renderPipeline(pipeline, renderCtx(url)) as unknown as Pipeline),
      describe(url) {
        const sales = store.allPipelines().find((pipeline) => pipeline.name === 'Sales Pipeline' && !pipeline.is_deleted);
        const salesId = sales?.id ?? SANDBOX_SEED_IDS.salesPipelineId;
        const seedPath = typeof options.seed === 'string' ? options.seed : undefined;
        const seedText = seedPath ?? (options.seed === undefined ? 'built-in' : 'given in the options');
        const base = `${url}/api/v100/rest/spaces/${config.spaceId}`;
        return {
          integration: 'pipeliner',
          context: { service_url: url, space_id: config.spaceId, username: config.username, password: config.password },
          details: [
            { label: 'service URL', value: url },
            { label: 'space id', value: config.spaceId },
            { label: 'username', value: config.username, note: 'API token' },
            { label: 'password', value: config.password, note: 'API password' },
            { label: '"Sales Pipeline" id', value: sales?.id ?? '(not in this seed)' },
            { label: 'seed', value: seedText },
          ],
          examples: [
            `curl -g -u '${config.username}:${config.password}' '${base}/entities/Steps?filter[pipeline_id]=${salesId}&order-by=sort_order'`,
          ],
        };
      },
    };
  },
};
