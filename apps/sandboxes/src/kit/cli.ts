import { type ContractViolation, formatContractViolation } from './contract/openapi-contract';
import type { AnyProviderModule } from './provider';
import { rateLimitFromEnv, rateLimitVariable, type RateWindow } from './rate-limit';
import { envFlag, type RunningProviderSandbox, startProviderSandbox } from './server';

/**
 * `npm run sandbox [-- <name>...]`: starts the named provider sandboxes (every registered one without a name), each
 * on its own port from its environment, and prints for each what to put in an integrated account (docs/sandboxes.md).
 */

/** The message of anything thrown (errors from `node:net` may come from another realm, so no `instanceof Error`). */
function messageOf(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(error);
}

/** A mistake in the command line (unknown name or option): exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Where the command line reads and writes. */
export interface CliIo {
  env: NodeJS.ProcessEnv;
  stdout(text: string): void;
  stderr(text: string): void;
}

/** The started sandboxes, and how to stop them all. */
export interface RunningSandboxes {
  sandboxes: RunningProviderSandbox[];
  /** Stops every sandbox (ends hung requests too). */
  close(): Promise<void>;
}

/**
 * The modules `names` select, in the registry's order; every module when `names` is empty. Names are
 * case-insensitive; a repeated name counts once.
 * @throws UsageError naming the unknown names and listing the known ones
 */
export function selectModules(names: readonly string[], modules: readonly AnyProviderModule[]): AnyProviderModule[] {
  if (names.length === 0) return [...modules];
  const wanted = new Set(names.map((name) => name.trim().toLowerCase()));
  const known = new Set(modules.map((module) => module.name));
  const unknown = [...wanted].filter((name) => !known.has(name));
  if (unknown.length > 0) {
    const list = unknown.map((name) => `'${name}'`).join(', ');
    throw new UsageError(`Unknown sandbox ${list}. Known sandboxes: ${modules.map((module) => module.name).join(', ')}.`);
  }
  return modules.filter((module) => wanted.has(module.name));
}

/**
 * The port of a module from `<PREFIX>_PORT` (default its `defaultPort`; `0` = ephemeral).
 * @throws Error when the variable is not a port number
 */
export function portFromEnv(module: AnyProviderModule, env: NodeJS.ProcessEnv): number {
  const name = `${module.envPrefix}_PORT`;
  const text = env[name];
  if (text === undefined || text.trim() === '') return module.defaultPort;
  const port = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${name} must be a port number (0-65535), got '${text}'.`);
  }
  return port;
}

/** The usage text, with every module's variables and defaults. */
export function helpText(modules: readonly AnyProviderModule[]): string {
  const lines = [
    'usage: npm run sandbox [-- <name>...]      (or: node dist/apps/sandboxes/src/main.js [<name>...])',
    '',
    `Starts the named provider sandboxes (all without a name) on loopback and prints, for each, what to put in an`,
    `integrated account's context. Known sandboxes: ${modules.map((module) => module.name).join(', ')}.`,
    '',
  ];
  for (const module of modules) {
    const p = module.envPrefix;
    lines.push(`${module.name}: ${module.title} (${module.summary})`);
    const rows: Array<[string, string, string]> = [
      [`${p}_PORT`, String(module.defaultPort), 'TCP port (0 = ephemeral)'],
      ...module.settings.map((setting): [string, string, string] => [setting.name, setting.default, setting.meaning]),
      [`${p}_FAULTS`, 'off', '1 allows X-Sandbox-Fault and /__sandbox/faults'],
      [`${p}_LOG_REQUESTS`, 'off', '1 keeps every request in memory'],
      [`${p}_CONTRACT`, 'off', "1 checks every exchange against the provider's OpenAPI document (violations on stderr)"],
    ];
    const limits = module.rateLimits;
    if (limits) {
      rows.push([`${p}_RATE_LIMIT`, 'off', "1 enforces the provider's rate limits (settings below; GET/POST /__sandbox/rate-limit)"]);
      for (const [key, fallback] of Object.entries(limits.defaults as Record<string, unknown>)) {
        rows.push([rateLimitVariable(p, key), fallback === null ? 'derived' : String(fallback), (limits.meanings as Record<string, string>)[key] ?? key]);
      }
    }
    const width = Math.max(...rows.map(([name]) => name.length));
    for (const [name, fallback, meaning] of rows) lines.push(`  ${name.padEnd(width)}  ${meaning} (default: ${fallback})`);
    lines.push('');
  }
  return lines.join('\n');
}

/** `burst 190 per 10 s` / `daily 150000 per 24 h` */
function describeWindow(window: RateWindow): string {
  const span = window.windowMs % 3_600_000 === 0 ? `${window.windowMs / 3_600_000} h` : window.windowMs % 1000 === 0 ? `${window.windowMs / 1000} s` : `${window.windowMs} ms`;
  return `${window.name} ${window.max} per ${span}`;
}

/** The block printed for one running sandbox: its details, the account to create, the kit's switches, examples. */
export function describeRunning(module: AnyProviderModule, sandbox: RunningProviderSandbox, env: NodeJS.ProcessEnv): string {
  const description = sandbox.describe();
  const p = module.envPrefix;
  const rows: Array<{ label: string; value: string; note?: string }> = [
    ...description.details,
    { label: 'faults', value: envFlag(env[`${p}_FAULTS`]) ? 'on (X-Sandbox-Fault header, /__sandbox/faults)' : `off (${p}_FAULTS=1 turns them on)` },
    { label: 'contract', value: envFlag(env[`${p}_CONTRACT`]) ? "on (violations of the provider's OpenAPI document on stderr)" : 'off' },
  ];
  if (module.rateLimits) {
    const state = sandbox.rateLimits.snapshot();
    rows.push({
      label: 'rate limits',
      value: state.on ? `on: ${state.windows.map(describeWindow).join(', ')} (GET ${sandbox.url}/__sandbox/rate-limit)` : `off (${p}_RATE_LIMIT=1 turns them on)`,
    });
  }
  const width = Math.max(...rows.map((row) => row.label.length));
  const lines = [`${module.title} sandbox (${module.summary})`];
  for (const row of rows) lines.push(`  ${row.label.padEnd(width)} : ${row.value}${row.note ? `   (${row.note})` : ''}`);
  lines.push(
    '',
    `  Integrated account (POST /integrated-account): integration "${description.integration}", context:`,
    `    ${JSON.stringify(description.context)}`,
  );
  if (description.examples?.length) lines.push('', '  Try:', ...description.examples.map((example) => `    ${example}`));
  return lines.join('\n');
}

/**
 * Starts one module from the environment: `<PREFIX>_PORT`, `_FAULTS`, `_LOG_REQUESTS` (the log is for tests, off
 * here so a long run does not grow), `_CONTRACT` (violations written to `stderr` as they happen), `_RATE_LIMIT` and
 * its `_RATE_LIMIT_<KEY>` overrides, and the module's own variables.
 * @throws Error for an invalid variable, an invalid seed, or a port that cannot be bound
 */
export async function startFromEnv(module: AnyProviderModule, io: CliIo): Promise<RunningProviderSandbox> {
  const p = module.envPrefix;
  const port = portFromEnv(module, io.env);
  const contract = envFlag(io.env[`${p}_CONTRACT`]);
  return startProviderSandbox(module, {
    ...module.optionsFromEnv(io.env),
    port,
    faults: envFlag(io.env[`${p}_FAULTS`]),
    logRequests: envFlag(io.env[`${p}_LOG_REQUESTS`]),
    contract,
    ...(module.rateLimits ? { rateLimit: rateLimitFromEnv(p, module.rateLimits, io.env) } : {}),
    onContractViolation: (violation: ContractViolation) => io.stderr(`contract violation (${module.name}): ${formatContractViolation(violation)}\n`),
  });
}

/**
 * The command line: `--help` prints the usage (and starts nothing: undefined); otherwise starts the selected
 * sandboxes one after the other and prints each. When one fails to start, the ones already started are stopped.
 * @throws UsageError for an unknown name or option; Error (naming the sandbox) when one fails to start
 */
export async function runSandboxes(args: readonly string[], modules: readonly AnyProviderModule[], io: CliIo): Promise<RunningSandboxes | undefined> {
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout(`${helpText(modules)}\n`);
    return undefined;
  }
  const option = args.find((arg) => arg.startsWith('-'));
  if (option !== undefined) throw new UsageError(`Unknown option '${option}'. Usage: npm run sandbox [-- <name>...]; --help lists the variables.`);
  const selected = selectModules(args, modules);
  const sandboxes: RunningProviderSandbox[] = [];
  const close = async () => {
    await Promise.all(sandboxes.map((sandbox) => sandbox.close()));
  };
  for (const module of selected) {
    try {
      sandboxes.push(await startFromEnv(module, io));
    } catch (error) {
      await close();
      throw new Error(`The ${module.title} sandbox failed to start: ${messageOf(error)}`);
    }
  }
  const blocks = selected.map((module, index) => describeRunning(module, sandboxes[index], io.env));
  const names = selected.map((module) => module.title).join(', ');
  io.stdout(`Sandboxes running: ${names}.\n\n${blocks.join('\n\n')}\n\nStop with Ctrl-C.\n`);
  return { sandboxes, close };
}
