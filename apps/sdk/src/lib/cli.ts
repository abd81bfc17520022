import { isUnicrmError, type StageCreateBody } from '@unicrm/model';
import qs from 'qs';
import { parseArgs } from 'node:util';
import { createUnicrm, type StageCreateQuery, type Unicrm } from './embedded';

/** Where the CLI writes; tests pass their own. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
}

/** Exit codes: ok, remote or server error, usage error. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

class UsageError extends Error {}

export const HELP = `unicrm: the unified CRM API, from the command line (embedded: no server needed)

Usage:
  unicrm accounts add pipeliner --service-url <url> --space-id <id> --username <api token> [--password <api password>] [--tenant-id <id>]
  unicrm accounts get <id>
  unicrm accounts remove <id>
  unicrm stages create --account <id> --name <name> [--pipeline <id>] [--position <n>] [--status active]
                       [--remote-data <json>] [--json <whole body as json>]
                       [--format unified|raw|normalized] [--ignore-remote-data] [--exclude-fields a,b.c]
                       [--remote-query key=value]...

Options for every command:
  --data-dir <dir>   where accounts live (default: UNICRM_DATA_DIR or ./.unicrm, shared with the API)
  -h, --help         this text

The password may come from PIPELINER_PASSWORD instead of --password (keeps it out of the process list).
Output is JSON on stdout. Exit codes: 0 ok, 1 remote or server error, 2 usage error.`;

type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;
type Values = Record<string, string | boolean | string[] | undefined>;

function parse(args: string[], options: OptionSpec): { values: Values; positionals: string[] } {
  try {
    const parsed = parseArgs({
      args,
      options: { ...options, 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: parsed.values as Values, positionals: parsed.positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function required(values: Values, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

function jsonOption(text: string | undefined, name: string): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch {
    throw new UsageError(`--${name} must be a JSON object, e.g. '{"percent": 50}'`);
  }
}

/** `key=value` pairs (bracket keys allowed: `filter[name]=x`) into a remote_query object, with qs. */
function remoteQuery(pairs: string[]): Record<string, unknown> | undefined {
  if (pairs.length === 0) return undefined;
  const encoded = pairs.map((pair) => {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--remote-query takes key=value, not "${pair}"`);
    const key = pair.slice(0, at);
    const bracket = key.indexOf('[');
    const head = bracket < 0 ? key : key.slice(0, bracket);
    const rest = bracket < 0 ? '' : key.slice(bracket);
    return `remote_query[${encodeURIComponent(head)}]${rest}=${encodeURIComponent(pair.slice(at + 1))}`;
  });
  return qs.parse(encoded.join('&')).remote_query as Record<string, unknown>;
}

async function accounts(unicrm: () => Unicrm, args: string[], io: CliIo): Promise<unknown> {
  const [action, ...rest] = args;
  if (action === 'add') {
    const { values, positionals } = parse(rest, {
      'service-url': { type: 'string' },
      'space-id': { type: 'string' },
      username: { type: 'string' },
      password: { type: 'string' },
      'tenant-id': { type: 'string' },
    });
    const integration = positionals[0];
    if (integration !== 'pipeliner') throw new UsageError('accounts add takes the integration name: unicrm accounts add pipeliner ...');
    const password = (values.password as string | undefined) ?? io.env.PIPELINER_PASSWORD;
    if (!password) throw new UsageError('--password (or PIPELINER_PASSWORD) is required');
    return unicrm().accounts.create({
      integration,
      tenant_id: (values['tenant-id'] as string | undefined) ?? 'default',
      context: {
        service_url: required(values, 'service-url'),
        space_id: required(values, 'space-id'),
        username: required(values, 'username'),
        password,
      },
    });
  }
  if (action === 'get' || action === 'remove') {
    const { positionals } = parse(rest, {});
    const id = positionals[0];
    if (!id) throw new UsageError(`accounts ${action} takes an account id`);
    return action === 'get' ? unicrm().accounts.get(id) : unicrm().accounts.delete(id);
  }
  throw new UsageError(`unknown command "accounts ${action ?? ''}": use add, get or remove`);
}

async function stages(unicrm: () => Unicrm, args: string[]): Promise<unknown> {
  const [action, ...rest] = args;
  if (action !== 'create') throw new UsageError(`unknown command "stages ${action ?? ''}": use create`);
  const { values } = parse(rest, {
    account: { type: 'string' },
    name: { type: 'string' },
    pipeline: { type: 'string' },
    position: { type: 'string' },
    status: { type: 'string' },
    'remote-data': { type: 'string' },
    json: { type: 'string' },
    format: { type: 'string' },
    'ignore-remote-data': { type: 'boolean' },
    'exclude-fields': { type: 'string' },
    'remote-query': { type: 'string', multiple: true },
  });
  const body: Record<string, unknown> = jsonOption(values.json as string | undefined, 'json') ?? {};
  if (values.name !== undefined) body.name = values.name;
  if (values.pipeline !== undefined) body.pipeline = { id: values.pipeline };
  if (values.position !== undefined) {
    const position = Number(values.position);
    if (values.position === '' || !Number.isFinite(position)) throw new UsageError('--position must be a number');
    body.position = position;
  }
  if (values.status !== undefined) body.status = values.status;
  const remoteData = jsonOption(values['remote-data'] as string | undefined, 'remote-data');
  if (remoteData) body.remote_data = remoteData;

  const query: StageCreateQuery = { integrated_account_id: required(values, 'account') };
  if (values.format !== undefined) query.truto_response_format = values.format as StageCreateQuery['truto_response_format'];
  if (values['ignore-remote-data']) query.truto_ignore_remote_data = true;
  if (values['exclude-fields'] !== undefined) query.truto_exclude_fields = String(values['exclude-fields']).split(',');
  const rq = remoteQuery((values['remote-query'] as string[] | undefined) ?? []);
  if (rq) query.remote_query = rq;
  return unicrm().crm.stages.create(query, body as StageCreateBody);
}

/**
 * Runs the `unicrm` CLI on the embedded SDK. Prints JSON results on stdout, errors on stderr
 * (with the provider's own message for remote errors).
 * @returns the exit code: 0 ok, 1 remote or server error, 2 usage error
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [group, ...rest] = argv;
  if (!group || group === '-h' || group === '--help' || group === 'help' || rest.includes('--help') || rest.includes('-h')) {
    io.out(HELP);
    return group ? EXIT.ok : EXIT.usage;
  }
  let client: Unicrm | undefined;
  const dataDirAt = rest.indexOf('--data-dir');
  const dataDir = dataDirAt >= 0 ? rest[dataDirAt + 1] : undefined;
  const unicrm = () => (client ??= createUnicrm({ dataDir, logLevel: io.env.UNICRM_LOG_LEVEL }));
  try {
    let result: unknown;
    if (group === 'accounts') result = await accounts(unicrm, rest, io);
    else if (group === 'stages') result = await stages(unicrm, rest);
    else throw new UsageError(`unknown command "${group}": use accounts or stages`);
    io.out(JSON.stringify(result, null, 2));
    return EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`usage error: ${error.message}\nRun "unicrm --help" for the commands.`);
      return EXIT.usage;
    }
    if (isUnicrmError(error)) {
      const lines = [`error ${error.statusCode} ${error.body.error}: ${error.message}`];
      for (const failure of error.body.details?.failures ?? []) lines.push(`  ${failure.path || '(body)'}: ${failure.message}`);
      if (error.isRemote && error.body.raw_response !== undefined) {
        lines.push(`remote answer: ${typeof error.body.raw_response === 'string' ? error.body.raw_response : JSON.stringify(error.body.raw_response)}`);
      }
      io.err(lines.join('\n'));
      return error.statusCode === 400 || error.statusCode === 404 ? EXIT.usage : EXIT.failed;
    }
    io.err(`error: ${(error as Error).message}`);
    return EXIT.failed;
  } finally {
    await client?.close();
  }
}
