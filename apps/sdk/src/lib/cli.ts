import type { UnicrmCore } from '@unicrm/core';
import { BATCH_MAX_ITEMS, isUnicrmError, type StageCreateBody, type StageUpdateBody } from '@unicrm/model';
import qs from 'qs';
import { readFileSync, realpathSync } from 'node:fs';
import { delimiter, isAbsolute, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { countsText, elapsedText, importStages, ImportFileError, type ProgressStream, progressReporter, type RowResult, speedText } from './cli-import';
import { errorLines, keyValueLines, table } from './cli-output';
import { createUnicrmClient } from './remote';
import { responseMeta } from './meta';
import type { IntegratedAccountListQuery, PagedList, PipelineListQuery, StageListQuery, Unicrm, UnifiedRecordQuery, WriteOptions } from './types';
import { SDK_VERSION } from './version';

/** Where the CLI reads and writes; tests pass their own. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Where import progress goes (default: written through `err`, as plain lines). A TTY gets a progress bar. */
  progress?: ProgressStream;
  /**
   * How the user runs this CLI, for the commands its hints print (`Next: <command> stages create ...`); default
   * `unicrm`. The executable finds it with {@link cliCommand}.
   */
  command?: string;
}

/**
 * The command that runs this CLI from where the user is, for its hints: `unicrm` when that name on PATH leads to
 * this very file (the package's `bin`, after `npm link`), `npm run -s unicrm --` under the root package's script,
 * else `node <path of the script>` (relative to `cwd` when below it).
 * @param script the running script (`process.argv[1]`)
 */
export function cliCommand(env: NodeJS.ProcessEnv, script: string | undefined, cwd: string): string {
  if (env.npm_lifecycle_event === 'unicrm') return 'npm run -s unicrm --';
  if (!script) return 'unicrm';
  const real = (path: string) => {
    try {
      return realpathSync(path);
    } catch {
      return undefined;
    }
  };
  const self = real(script) ?? resolve(script);
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const found = real(join(dir, 'unicrm'));
    if (found !== undefined) return found === self ? 'unicrm' : `node ${self}`; // another unicrm comes first on PATH
  }
  const rel = relative(cwd, self);
  return `node ${rel.startsWith('..') || isAbsolute(rel) ? self : rel}`;
}

/** Exit codes: ok, remote or server error, usage error (including input the API rejects with 400, and unknown ids). */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

class UsageError extends Error {}

export const HELP = `unicrm ${SDK_VERSION}: the unified CRM API from the command line

Usage:
  unicrm accounts add pipeliner --service-url <url> --space-id <id> --username <api token> [--password <api password>]
                                [--tenant-id <id>] [--no-validate]
  unicrm accounts add <integration> --context <json, or @file.json> [--tenant-id <id>] [--no-validate]
                                (any integration, e.g. pipedrive: '{"api_domain":"https://acme.pipedrive.com","api_token":"..."}';
                                docs/integrations.md lists each integration's context)
  unicrm accounts list [--tenant-id <id>] [--status active|needs_reauth] [--integration <name>] [--limit <n>]
                       [--cursor <next_cursor>] [--all]
  unicrm accounts get <id>
  unicrm accounts update <id> [--tenant-id <id>] [--service-url <url>] [--space-id <id>] [--username <api token>]
                              [--password <api password>] [--context <json to merge, or @file.json>] [--no-validate]
  unicrm accounts remove <id>
  unicrm links create (--tenant-id <id> | --account <id>) [--integration <name>] [--redirect-uri <uri>]
                       a link for an end customer to connect (or, with --account, reconnect) their CRM in a browser
  unicrm webhooks create --url <target url> [--events <type,type>] [--inactive]   (prints the secret once)
  unicrm webhooks list [--limit <n>] [--cursor <next_cursor>]
  unicrm webhooks get <id> | remove <id> | test <id>
  unicrm webhooks update <id> [--url <target url>] [--events <type,type>] [--active | --inactive]
  unicrm webhooks deliveries <id> [--limit <n>] [--cursor <next_cursor>]    each event sent, its status and attempts
  unicrm pipelines list --account <id> [--name <name>] [--limit <n>] [--cursor <next_cursor>] [--all]
  unicrm pipelines get <id> --account <id>
  unicrm stages list --account <id> [--pipeline <id>] [--name <name>] [--status active|inactive] [--limit <n>]
                     [--cursor <next_cursor>] [--all]
  unicrm stages get <id> --account <id>
  unicrm stages create --account <id> --name <name> [--pipeline <id>] [--position <n>] [--status active]
                       [--remote-data <json>] [--json <whole body as json, or @file.json>] [--idempotency-key <key>]
  unicrm stages update <id> --account <id> [--name <name>] [--position <n>] [--pipeline <id>] [--status active]
                       [--remote-data <json>] [--json <body as json, or @file.json>] [--idempotency-key <key>]
  unicrm stages delete <id> --account <id> [--idempotency-key <key>]
  unicrm stages import <file.csv|file.json> --account <id> [--dry-run] [--concurrency 2] [--batch-size 100]
                       [--failed-out <file>]
  unicrm tokens create --name <name> [--environment <env>] [--expires-in <days>]     (embedded only: the data
  unicrm tokens list                                                                  directory, or the database of
  unicrm tokens revoke <id>                                                           UNICRM_DATABASE_URL)
  unicrm keys rotate [--batch-size 500]     a new data key for the credentials, re-encrypted in batches while the API
                                           serves (SQLite or PostgreSQL); run it again to resume an interrupted one
  unicrm keys rotate --master [--new-key <32 bytes, hex or base64>]    replace the master key (data directory only;
                                           refused while an API serves it)
  unicrm backup <file> [--force]     (data directory only) a consistent copy of the database, also while the API runs
  unicrm restore <file>              (data directory only; refused while an API serves it) replace the database with
                                     a backup; needs the key the backup was written with

Where it runs (every command):
  embedded (default)  the core in this process; accounts in --data-dir <dir> (default UNICRM_DATA_DIR or ./.unicrm,
                      shared with an API started on the same directory)
  --remote <url>      a unicrm server (or UNICRM_URL); the API token comes from UNICRM_API_TOKEN
  --timeout <ms>      how long to wait for an answer (remote: the server; embedded: the provider); default 30000

The pipelines and stages commands (but import) also take the answer's format and a query for the provider:
  --format unified|raw|normalized  --ignore-remote-data  --exclude-fields a,b.c  --remote-query key=value (repeatable)

Lists print one page (--limit records; the integration's default page without it) and, when there is more, the
command for the next page (--cursor <next_cursor>); --all follows the cursors to the last page. A cursor belongs to
its list: run it with the same --account and filters.
stages delete: the providers keep a deleted stage as inactive (stages get <id> shows it; on Pipeliner, stages list
--status inactive lists them); their documented APIs cannot restore it.

Output:
  --output human      key: value lines, tables and short summaries (default)
  --output json       the API's JSON body on stdout, for scripts; errors as the JSON error body on stderr
  -h, --help          this text

stages import: one stage per row. CSV columns (JSON keys): name, pipeline (a pipeline id), position, status,
remote_data (a JSON object; in CSV a quoted JSON text). The rows are written with the batch write
(POST /unified/crm/stages/batch), up to --batch-size rows a request (default and most: 100; on Pipeliner one
batch-modify call each), --concurrency batch requests in flight at once (default 2, at most 64). Each row carries an
Idempotency-Key made of the account, the file, the row number and its content, so running an interrupted import
again (after Ctrl-C or a crash) does not create its rows twice: the summary counts such rows as "already created
earlier (replayed)", apart from the rows created by this run. Rows answered 429, 409, 502, 503 or 504 are tried
again (same key) after Retry-After or a backoff, and the whole import waits as long. Rows that fail are written, with
an "error" column, to --failed-out (default <file>.failed.csv/.json beside the input): fix them and import that
file again.
--dry-run checks every row as its write would be checked (the fields, the integration's rules) and writes nothing;
the invalid rows go to the failed-rows file; exit 0 when every row is valid, else 1.
Ctrl-C stops sending batches and waits for the ones in flight (Ctrl-C again quits at once), then prints how far it got
and the command to run again to resume (the same one); exit 130.
Progress goes to stderr (a bar on a terminal; else a line each tenth of the rows), with rows per second and the time
left; the summary to stdout.

backup and restore: a backup holds the accounts' credentials encrypted with the data directory's key, not the key
(<data dir>/encryption.key, or UNICRM_ENCRYPTION_KEY): keep a copy of the key apart from the backups; a backup
without its key cannot be read. restore keeps the database it replaces as unicrm.sqlite.before-restore-<time>.

The Pipeliner password may come from PIPELINER_PASSWORD instead of --password (keeps it out of the process list).
Exit codes: 0 ok; 1 remote or server error (or some import rows failed or, with --dry-run, are invalid, or the data
directory is in use, or restore lacks the backup's key); 2 usage error, input the API rejects (400), an unknown id
(404), or a file backup or restore cannot use; 130 an import stopped by Ctrl-C. Errors go to stderr with the message and, for Pipeliner's errors, Pipeliner's own answer.`;

type OptionSpec = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;
type Values = Record<string, string | boolean | string[] | undefined>;

const GLOBAL_OPTIONS: OptionSpec = {
  'data-dir': { type: 'string' },
  remote: { type: 'string' },
  timeout: { type: 'string' },
  output: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

function parse(args: string[], options: OptionSpec): { values: Values; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, options: { ...options, ...GLOBAL_OPTIONS }, allowPositionals: true, strict: true });
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

function optional(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

function positiveInt(values: Values, name: string, fallback: number | undefined, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const text = optional(values, name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > max) {
    throw new UsageError(`--${name} must be a whole number from 1${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}, not "${text}"`);
  }
  return value;
}

function jsonOption(text: string | undefined, name: string): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let source = text;
  if (text.startsWith('@')) {
    try {
      source = readFileSync(text.slice(1), 'utf8');
    } catch (error) {
      throw new UsageError(`--${name} ${text}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
  }
  try {
    const value = JSON.parse(source) as unknown;
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

/** One CLI run: the chosen transport (opened on first use) and the output mode. */
class Session {
  output: 'human' | 'json' = 'human';
  /** The command the hints print (see {@link CliIo.command}). */
  readonly command: string;
  /** The arguments of this run, as given (for the command that resumes an interrupted import). */
  argv: string[] = [];
  remote = false;
  private client?: Unicrm;
  private adminCore?: UnicrmCore;
  private open: () => Promise<Unicrm> = () => Promise.reject(new Error('Session.configure was not called'));

  constructor(private readonly io: CliIo) {
    this.command = io.command ?? 'unicrm';
  }

  private configureOutput(values: Values): void {
    const output = optional(values, 'output') ?? 'human';
    if (output !== 'human' && output !== 'json') throw new UsageError(`--output must be human or json, not "${output}"`);
    this.output = output;
  }

  /** Reads the global options of a parsed command and picks the transport. */
  configure(values: Values): void {
    this.configureOutput(values);
    const explicitRemote = optional(values, 'remote');
    const dataDir = optional(values, 'data-dir');
    if (explicitRemote !== undefined && dataDir !== undefined) {
      throw new UsageError('--remote and --data-dir do not go together: --data-dir is for the embedded mode');
    }
    // An explicit --data-dir wins over UNICRM_URL.
    const url = explicitRemote ?? (dataDir === undefined ? this.io.env.UNICRM_URL || undefined : undefined);
    const timeoutMs = positiveInt(values, 'timeout', undefined);
    if (url !== undefined) {
      const token = this.io.env.UNICRM_API_TOKEN;
      if (!token) throw new UsageError(`the remote mode (${url}) needs UNICRM_API_TOKEN: the API token of that server`);
      try {
        // The CLI retries import rows itself (same key, with a line per retry), so the client's own retries are off.
        this.client = createUnicrmClient({ baseUrl: url, token, timeoutMs, userAgent: `unicrm-cli/${SDK_VERSION}`, retry: false });
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      this.remote = true;
    } else {
      // Loaded on first use: the remote mode never loads the core (SQLite, connectors).
      this.open = async () => {
        const { createUnicrm } = await import('./embedded.js');
        return createUnicrm({ dataDir, logLevel: this.io.env.UNICRM_LOG_LEVEL || undefined, remoteTimeoutMs: timeoutMs });
      };
    }
  }

  /**
   * For the commands that work on the data directory itself (tokens, keys, backup, restore): the `--data-dir` given,
   * if any (else `UNICRM_DATA_DIR` applies). UNICRM_URL is ignored (with a note); --remote is a usage error.
   */
  dataDirectory(values: Values, what: string): string | undefined {
    this.configureOutput(values);
    if (optional(values, 'remote') !== undefined) {
      throw new UsageError(`${what} works on the data directory, not through the API: use --data-dir (or UNICRM_DATA_DIR) on the server's machine`);
    }
    const dataDir = optional(values, 'data-dir');
    if (dataDir === undefined && this.io.env.UNICRM_URL) {
      this.io.err(`note: ${what} works on the data directory (${this.io.env.UNICRM_DATA_DIR || './.unicrm'}), not on UNICRM_URL`);
    }
    return dataDir;
  }

  /** For the commands that work on the data directory itself (tokens, keys): the core, opened on it. */
  async core(values: Values, what: string): Promise<UnicrmCore> {
    const dataDir = this.dataDirectory(values, what);
    const { openCore } = await import('./embedded.js');
    this.adminCore = openCore({ dataDir, logLevel: this.io.env.UNICRM_LOG_LEVEL || undefined });
    return this.adminCore;
  }

  /** The SDK, embedded or remote (the embedded core is opened on first use). */
  async unicrm(): Promise<Unicrm> {
    this.client ??= await this.open();
    return this.client;
  }

  async close(): Promise<void> {
    await this.client?.close();
    await this.adminCore?.close();
  }
}

/** What a command prints: the JSON value for `--output json`, and its human text. */
interface Result {
  json: unknown;
  human: string;
  code?: number;
}

function accountContextFlags(values: Values, io: CliIo): Record<string, unknown> {
  const context: Record<string, unknown> = {};
  const map: [string, string][] = [
    ['service-url', 'service_url'],
    ['space-id', 'space_id'],
    ['username', 'username'],
    ['password', 'password'],
  ];
  for (const [flag, key] of map) {
    const value = optional(values, flag);
    if (value !== undefined) context[key] = value;
  }
  if (context.password === undefined && io.env.PIPELINER_PASSWORD && (context.username !== undefined || context.service_url !== undefined)) {
    context.password = io.env.PIPELINER_PASSWORD;
  }
  return context;
}

const ACCOUNT_FLAGS: OptionSpec = {
  context: { type: 'string' },
  'service-url': { type: 'string' },
  'space-id': { type: 'string' },
  username: { type: 'string' },
  password: { type: 'string' },
  'tenant-id': { type: 'string' },
  'no-validate': { type: 'boolean' },
};

const ACCOUNT_COLUMNS = ['id', 'tenant_id', 'integration', 'status', 'created_at'];
/** A row of `accounts list`; an account unicrm cannot use says so beside its status (`accounts get` says why). */
const accountRow = (a: { id: string; tenant_id: string; integration: { name: string }; status: string; is_usable?: boolean; created_at: string }) => [
  a.id,
  a.tenant_id,
  a.integration.name,
  a.is_usable === false ? `${a.status}, unusable` : a.status,
  a.created_at,
];

/** `links create`: a link token and its URL (docs/connect.md). */
async function links(session: Session, args: string[]): Promise<Result> {
  const [action, ...rest] = args;
  if (action !== 'create') throw new UsageError(`unknown command "links ${action ?? ''}": use create`);
  const { values, positionals } = parse(rest, {
    'tenant-id': { type: 'string' },
    account: { type: 'string' },
    integration: { type: 'string' },
    'redirect-uri': { type: 'string' },
  });
  session.configure(values);
  if (positionals.length > 0) throw new UsageError(`links create takes flags only, not "${positionals[0]}"`);
  const tenant = optional(values, 'tenant-id');
  const account = optional(values, 'account');
  if ((tenant === undefined) === (account === undefined)) throw new UsageError('links create takes --tenant-id <id> (a new connection) or --account <id> (a reconnect)');
  const integration = optional(values, 'integration');
  const redirect = optional(values, 'redirect-uri');
  const link = await (await session.unicrm()).linkTokens.create({
    ...(tenant !== undefined && { tenant_id: tenant }),
    ...(account !== undefined && { integrated_account_id: account }),
    ...(integration !== undefined && { integration }),
    ...(redirect !== undefined && { redirect_uri: redirect }),
  });
  return {
    json: link,
    human: [`Open this link in a browser (single use, until ${link.expires_at}):`, `  ${link.url}`].join('\n'),
  };
}

const WEBHOOK_COLUMNS = ['id', 'target_url', 'event_types', 'is_active', 'created_at'];
const webhookRow = (w: { id: string; target_url: string; event_types: string[]; is_active: boolean; created_at: string }) => [
  w.id,
  w.target_url,
  w.event_types.length === 0 ? '(all)' : w.event_types.join(','),
  String(w.is_active),
  w.created_at,
];

/** `webhooks create|list|get|update|remove|test|deliveries` (docs/connect.md). */
async function webhooks(session: Session, args: string[]): Promise<Result> {
  const [action, ...rest] = args;
  const events = (text: string | undefined) =>
    text === undefined ? undefined : (text.split(',').map((t) => t.trim()).filter((t) => t !== '') as NonNullable<Parameters<Unicrm['webhooks']['create']>[0]['event_types']>);
  if (action === 'create') {
    const { values, positionals } = parse(rest, { url: { type: 'string' }, events: { type: 'string' }, inactive: { type: 'boolean' } });
    session.configure(values);
    if (positionals.length > 0) throw new UsageError(`webhooks create takes flags only, not "${positionals[0]}"`);
    const types = events(optional(values, 'events'));
    const webhook = await (await session.unicrm()).webhooks.create({
      target_url: required(values, 'url'),
      ...(types !== undefined && { event_types: types }),
      ...(values.inactive === true && { is_active: false }),
    });
    return {
      json: webhook,
      human: [keyValueLines(webhook), '', 'Keep the secret: it is shown only now. Each POST carries X-Truto-Signature: format=sha256,v=<hex HMAC-SHA256 of the body with it>.'].join('\n'),
    };
  }
  if (action === 'list') {
    const { values, positionals } = parse(rest, { limit: { type: 'string' }, cursor: { type: 'string' } });
    session.configure(values);
    if (positionals.length > 0) throw new UsageError(`webhooks list takes flags only, not "${positionals[0]}"`);
    const limit = positiveInt(values, 'limit', undefined, 500);
    const page = await (await session.unicrm()).webhooks.list({ ...(limit !== undefined && { limit }), ...(values.cursor !== undefined && { next_cursor: String(values.cursor) }) });
    const lines = [page.result.length === 0 ? 'No webhooks.' : table(WEBHOOK_COLUMNS, page.result.map(webhookRow))];
    if (page.next_cursor) lines.push('', `More: ${session.command} webhooks list --cursor ${page.next_cursor}`);
    return { json: page, human: lines.join('\n') };
  }
  if (action === 'update') {
    const { values, positionals } = parse(rest, { url: { type: 'string' }, events: { type: 'string' }, active: { type: 'boolean' }, inactive: { type: 'boolean' } });
    session.configure(values);
    const id = positionals[0];
    if (!id) throw new UsageError('webhooks update takes a webhook id');
    if (values.active === true && values.inactive === true) throw new UsageError('webhooks update takes --active or --inactive, not both');
    const types = events(optional(values, 'events'));
    const url = optional(values, 'url');
    const body = {
      ...(url !== undefined && { target_url: url }),
      ...(types !== undefined && { event_types: types }),
      ...(values.active === true && { is_active: true }),
      ...(values.inactive === true && { is_active: false }),
    };
    if (Object.keys(body).length === 0) throw new UsageError('webhooks update needs something to change: --url, --events, --active or --inactive');
    const webhook = await (await session.unicrm()).webhooks.update(id, body);
    return { json: webhook, human: keyValueLines(webhook) };
  }
  if (action === 'get' || action === 'remove' || action === 'test' || action === 'deliveries') {
    const { values, positionals } = parse(rest, action === 'deliveries' ? { limit: { type: 'string' }, cursor: { type: 'string' } } : {});
    session.configure(values);
    const id = positionals[0];
    if (!id) throw new UsageError(`webhooks ${action} takes a webhook id`);
    const unicrm = await session.unicrm();
    if (action === 'get') {
      const webhook = await unicrm.webhooks.get(id);
      return { json: webhook, human: keyValueLines(webhook) };
    }
    if (action === 'remove') {
      const removed = await unicrm.webhooks.delete(id);
      return { json: removed, human: `Removed webhook ${removed.id}.` };
    }
    if (action === 'test') {
      const queued = await unicrm.webhooks.test(id);
      return { json: queued, human: `Queued test event ${queued.id}; see it with: ${session.command} webhooks deliveries ${id}` };
    }
    const limit = positiveInt(values, 'limit', undefined, 500);
    const page = await unicrm.webhooks.deliveries(id, { ...(limit !== undefined && { limit }), ...(values.cursor !== undefined && { next_cursor: String(values.cursor) }) });
    const rows = page.result.map((d) => {
      const last = d.attempts[d.attempts.length - 1];
      return [d.id, d.event, d.status, String(d.attempts.length), last ? (last.status_code !== null ? String(last.status_code) : (last.error ?? '')) : '', d.created_at];
    });
    const lines = [rows.length === 0 ? 'No deliveries.' : table(['event_id', 'event', 'status', 'attempts', 'last_answer', 'created_at'], rows)];
    if (page.next_cursor) lines.push('', `More: ${session.command} webhooks deliveries ${id} --cursor ${page.next_cursor}`);
    return { json: page, human: lines.join('\n') };
  }
  throw new UsageError(`unknown command "webhooks ${action ?? ''}": use create, list, get, update, remove, test or deliveries`);
}

async function accounts(session: Session, args: string[], io: CliIo): Promise<Result> {
  const [action, ...rest] = args;
  if (action === 'add') {
    const { values, positionals } = parse(rest, ACCOUNT_FLAGS);
    session.configure(values);
    const integration = positionals[0];
    if (!integration) {
      throw new UsageError(`accounts add takes the integration name: ${session.command} accounts add pipeliner --service-url ..., or ${session.command} accounts add <integration> --context <json>`);
    }
    const given = optional(values, 'context');
    let context: Record<string, unknown>;
    if (given !== undefined) {
      // Any integration: the context as the API takes it (docs/integrations.md); Pipeliner's flags may add to it.
      context = { ...jsonOption(given, 'context'), ...accountContextFlags(values, io) };
    } else if (integration === 'pipeliner') {
      const password = optional(values, 'password') ?? io.env.PIPELINER_PASSWORD;
      if (!password) throw new UsageError('--password (or PIPELINER_PASSWORD) is required');
      context = { service_url: required(values, 'service-url'), space_id: required(values, 'space-id'), username: required(values, 'username'), password };
    } else {
      throw new UsageError(`accounts add ${integration} takes its context: --context '<json>' or --context @file.json (docs/integrations.md lists what each integration needs)`);
    }
    const account = await (await session.unicrm()).accounts.create({
      integration,
      tenant_id: optional(values, 'tenant-id') ?? 'default',
      context,
      ...(values['no-validate'] === true && { validate: false }),
    });
    return {
      json: account,
      human: [
        keyValueLines(account),
        '',
        `Next: ${session.command} pipelines list --account ${account.id}      (the pipelines and their ids)`,
        `Then: ${session.command} stages create --account ${account.id} --pipeline <pipeline id> --name "Qualified"`,
      ].join('\n'),
    };
  }
  if (action === 'update') {
    const { values, positionals } = parse(rest, ACCOUNT_FLAGS);
    session.configure(values);
    const id = positionals[0];
    if (!id) throw new UsageError('accounts update takes an account id');
    const body: { tenant_id?: string; context?: Record<string, unknown>; validate?: boolean } = {};
    const tenant = optional(values, 'tenant-id');
    if (tenant !== undefined) body.tenant_id = tenant;
    const given = optional(values, 'context');
    const context = { ...jsonOption(given, 'context'), ...accountContextFlags(values, io) };
    if (Object.keys(context).length > 0) body.context = context;
    if (Object.keys(body).length === 0) throw new UsageError('accounts update needs something to change: --tenant-id, --context, --service-url, --space-id, --username or --password');
    if (values['no-validate'] === true) body.validate = false;
    const account = await (await session.unicrm()).accounts.update(id, body);
    return { json: account, human: keyValueLines(account) };
  }
  if (action === 'get' || action === 'remove') {
    const { values, positionals } = parse(rest, {});
    session.configure(values);
    const id = positionals[0];
    if (!id) throw new UsageError(`accounts ${action} takes an account id`);
    if (action === 'get') {
      const account = await (await session.unicrm()).accounts.get(id);
      return { json: account, human: keyValueLines(account) };
    }
    const removed = await (await session.unicrm()).accounts.delete(id);
    return { json: removed, human: `Removed integrated account ${removed.id}.` };
  }
  if (action === 'list') {
    const { values, positionals } = parse(rest, {
      'tenant-id': { type: 'string' },
      status: { type: 'string' },
      integration: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      all: { type: 'boolean' },
    });
    session.configure(values);
    if (positionals.length > 0) throw new UsageError(`accounts list takes flags only, not "${positionals[0]}"`);
    const query: IntegratedAccountListQuery = {};
    if (values['tenant-id'] !== undefined) query.tenant_id = String(values['tenant-id']);
    if (values.status !== undefined) query.status = values.status as IntegratedAccountListQuery['status'];
    if (values.integration !== undefined) query.integration = String(values.integration);
    const limit = positiveInt(values, 'limit', undefined, 500);
    if (limit !== undefined) query.limit = limit;
    if (values.cursor !== undefined) query.next_cursor = String(values.cursor);
    let page = await (await session.unicrm()).accounts.list(query);
    const accounts = [...page.result];
    // --all follows next_cursor to the last page.
    while (values.all === true && page.next_cursor) {
      page = await (await session.unicrm()).accounts.list({ ...query, next_cursor: page.next_cursor });
      accounts.push(...page.result);
    }
    const json = values.all === true ? { result: accounts, next_cursor: null, limit: page.limit } : page;
    const lines = [accounts.length === 0 ? 'No integrated accounts.' : table(ACCOUNT_COLUMNS, accounts.map(accountRow))];
    if (json.next_cursor) lines.push('', `More: ${session.command} accounts list --cursor ${json.next_cursor} (or --all)`);
    return { json, human: lines.join('\n') };
  }
  throw new UsageError(`unknown command "accounts ${action ?? ''}": use add, list, get, update or remove`);
}

/** The flags of the answer's format and of the provider's query, on every stages and pipelines command (as on create). */
const FORMAT_FLAGS: OptionSpec = {
  format: { type: 'string' },
  'ignore-remote-data': { type: 'boolean' },
  'exclude-fields': { type: 'string' },
  'remote-query': { type: 'string', multiple: true },
};

/** The flags of a stage body (create, update). */
const STAGE_BODY_FLAGS: OptionSpec = {
  name: { type: 'string' },
  pipeline: { type: 'string' },
  position: { type: 'string' },
  status: { type: 'string' },
  'remote-data': { type: 'string' },
  json: { type: 'string' },
};

/** `--account` and the format flags as a query on one record (or the base of a list's). */
function recordQuery(values: Values): UnifiedRecordQuery {
  const query: UnifiedRecordQuery = { integrated_account_id: required(values, 'account') };
  if (values.format !== undefined) query.truto_response_format = values.format as UnifiedRecordQuery['truto_response_format'];
  if (values['ignore-remote-data']) query.truto_ignore_remote_data = true;
  if (values['exclude-fields'] !== undefined) query.truto_exclude_fields = String(values['exclude-fields']).split(',');
  const rq = remoteQuery((values['remote-query'] as string[] | undefined) ?? []);
  if (rq) query.remote_query = rq;
  return query;
}

/** A stage body from `--json` (inline or @file) and the field flags, which win over it. */
function stageBody(values: Values): Record<string, unknown> {
  const body: Record<string, unknown> = jsonOption(optional(values, 'json'), 'json') ?? {};
  if (values.name !== undefined) body.name = values.name;
  if (values.pipeline !== undefined) body.pipeline = { id: values.pipeline };
  if (values.position !== undefined) {
    const position = Number(values.position);
    if (values.position === '' || !Number.isFinite(position)) throw new UsageError('--position must be a number');
    body.position = position;
  }
  if (values.status !== undefined) body.status = values.status;
  const remoteData = jsonOption(optional(values, 'remote-data'), 'remote-data');
  if (remoteData) body.remote_data = remoteData;
  return body;
}

function writeOptions(values: Values): WriteOptions | undefined {
  const key = optional(values, 'idempotency-key');
  return key === undefined ? undefined : { idempotencyKey: key };
}

/** The one id a `get`, `update` or `delete` takes. */
function recordId(positionals: string[], command: string): string {
  if (positionals.length === 0) throw new UsageError(`${command} takes an id: ${command} <id> --account <account id>`);
  if (positionals.length > 1) throw new UsageError(`${command} takes one id, not ${positionals.length} (quote a name with spaces)`);
  return positionals[0] as string;
}

/** An argument as a POSIX shell reads it back (for the commands the hints print). */
function shellWord(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The command's arguments without `--cursor <c>` and `--all`, for the "More:" hint (its filters bind the cursor). */
function withoutPaging(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--cursor') i++;
    else if (arg !== '--all' && !arg.startsWith('--cursor=')) out.push(arg);
  }
  return out;
}

/** A table cell: empty for a missing value (`normalized` answers null). */
const cell = (value: unknown) => (value === undefined || value === null ? '' : String(value));

/** How a list prints: what it lists, its table, and how to run it again. */
interface ListView {
  /** `stages`, `pipelines`: the command group, and the word for "No ...". */
  noun: string;
  columns: string[];
  row: (record: Record<string, unknown>) => string[];
  /** The arguments after `unicrm` that ran it (for the hint). */
  args: string[];
}

/**
 * Runs a list command: one page (`first()`), or with `--all` every page. Human output: a table of the records and,
 * when there is a next page, "More: <the same command> --cursor <next_cursor>"; the `raw` format prints the
 * provider's page as JSON (the SDK cannot make a table of it). `--output json`: the API's body (with `--all`, one
 * envelope of every record; `raw --all`: the array of the provider's pages).
 */
async function listCommand(session: Session, list: PagedList<unknown, unknown>, all: boolean, raw: boolean, view: ListView): Promise<Result> {
  const pages: unknown[] = [];
  if (all) for await (const page of list) pages.push(page);
  else pages.push(await list.first());
  const last = pages[pages.length - 1];
  const next = all ? null : (responseMeta(last)?.nextCursor ?? null);
  const records = raw ? [] : pages.flatMap((page) => {
    const result = (page as { result?: unknown }).result;
    return (Array.isArray(result) ? result : Object.values(result ?? {})) as Record<string, unknown>[];
  });
  let json: unknown = last;
  if (all) json = raw ? pages : { result: records, next_cursor: null, prev_cursor: null, result_count: records.length };
  const lines: string[] = [];
  if (raw) lines.push(...pages.map((page) => JSON.stringify(page, null, 2)));
  else lines.push(records.length === 0 ? `No ${view.noun}.` : table(view.columns, records.map(view.row)));
  if (next !== null) {
    const again = [...withoutPaging(view.args), '--cursor', next].map(shellWord).join(' ');
    lines.push('', `More: ${session.command} ${again} (or --all)`);
  }
  return { json, human: lines.join('\n') };
}

const STAGE_COLUMNS = ['id', 'name', 'position', 'status', 'pipeline'];
const stageRow = (stage: Record<string, unknown>) => {
  const pipeline = stage.pipeline as { id?: unknown; name?: unknown } | null | undefined;
  return [cell(stage.id), cell(stage.name), cell(stage.position), cell(stage.status), cell(pipeline?.name ?? pipeline?.id)];
};
const PIPELINE_COLUMNS = ['id', 'name', 'stages', 'stage names'];
const pipelineStages = (pipeline: Record<string, unknown>) => (Array.isArray(pipeline.stages) ? (pipeline.stages as Record<string, unknown>[]) : undefined);
const pipelineRow = (pipeline: Record<string, unknown>) => {
  const stages = pipelineStages(pipeline);
  return [cell(pipeline.id), cell(pipeline.name), stages === undefined ? '' : String(stages.length), (stages ?? []).map((s) => cell(s.name)).join(', ')];
};

/** One pipeline for people: its fields as key: value lines, then its stages as a table, in their order. */
function pipelineLines(pipeline: Record<string, unknown>): string {
  const stages = pipelineStages(pipeline);
  const { stages: _stages, ...fields } = pipeline;
  const lines = [keyValueLines(stages === undefined ? pipeline : { ...fields, stages: stages.length })];
  if (stages !== undefined && stages.length > 0) {
    lines.push('', table(['position', 'stage id', 'name', 'status'], stages.map((s, i) => [String(i), cell(s.id), cell(s.name), cell(s.status)])));
  }
  return lines.join('\n');
}

async function createStage(session: Session, rest: string[]): Promise<Result> {
  const { values, positionals } = parse(rest, { account: { type: 'string' }, ...STAGE_BODY_FLAGS, ...FORMAT_FLAGS, 'idempotency-key': { type: 'string' } });
  session.configure(values);
  if (positionals.length > 0) throw new UsageError(`stages create takes flags only, not "${positionals[0]}" (quote a name with spaces)`);
  const body = stageBody(values);
  const query = recordQuery(values);
  const stage = await (await session.unicrm()).crm.stages.create(query, body as StageCreateBody, writeOptions(values));
  return { json: stage, human: keyValueLines(stage) };
}

async function listStages(session: Session, rest: string[]): Promise<Result> {
  const { values, positionals } = parse(rest, {
    account: { type: 'string' },
    pipeline: { type: 'string' },
    name: { type: 'string' },
    status: { type: 'string' },
    limit: { type: 'string' },
    cursor: { type: 'string' },
    all: { type: 'boolean' },
    ...FORMAT_FLAGS,
  });
  session.configure(values);
  if (positionals.length > 0) throw new UsageError(`stages list takes flags only, not "${positionals[0]}" (quote a name with spaces)`);
  const query: StageListQuery = recordQuery(values);
  if (values.pipeline !== undefined) query.pipeline = { id: String(values.pipeline) };
  if (values.name !== undefined) query.name = String(values.name);
  if (values.status !== undefined) query.status = values.status as StageListQuery['status'];
  const limit = positiveInt(values, 'limit', undefined);
  if (limit !== undefined) query.limit = limit;
  if (values.cursor !== undefined) query.next_cursor = String(values.cursor);
  const list = (await session.unicrm()).crm.stages.list(query) as PagedList<unknown, unknown>;
  return listCommand(session, list, values.all === true, query.truto_response_format === 'raw', {
    noun: 'stages',
    columns: STAGE_COLUMNS,
    row: stageRow,
    args: ['stages', 'list', ...rest],
  });
}

async function getStage(session: Session, rest: string[]): Promise<Result> {
  const { values, positionals } = parse(rest, { account: { type: 'string' }, ...FORMAT_FLAGS });
  session.configure(values);
  const id = recordId(positionals, 'stages get');
  const stage = await (await session.unicrm()).crm.stages.get(id, recordQuery(values));
  return { json: stage, human: keyValueLines(stage) };
}

async function updateStage(session: Session, rest: string[]): Promise<Result> {
  const { values, positionals } = parse(rest, { account: { type: 'string' }, ...STAGE_BODY_FLAGS, ...FORMAT_FLAGS, 'idempotency-key': { type: 'string' } });
  session.configure(values);
  const id = recordId(positionals, 'stages update');
  const body = stageBody(values);
  if (Object.keys(body).length === 0) {
    throw new UsageError('stages update needs something to change: --name, --position, --pipeline, --status, --remote-data or --json');
  }
  const query = recordQuery(values);
  const stage = await (await session.unicrm()).crm.stages.update(id, query, body as StageUpdateBody, writeOptions(values));
  return { json: stage, human: keyValueLines(stage) };
}

async function deleteStage(session: Session, rest: string[]): Promise<Result> {
  const { values, positionals } = parse(rest, { account: { type: 'string' }, ...FORMAT_FLAGS, 'idempotency-key': { type: 'string' } });
  session.configure(values);
  const id = recordId(positionals, 'stages delete');
  const query = recordQuery(values);
  const stage = await (await session.unicrm()).crm.stages.delete(id, query, writeOptions(values));
  const lines = [keyValueLines(stage), '', `Deleted stage ${id}.`];
  if ((stage as { status?: unknown }).status === 'inactive') {
    lines[2] += ` The provider keeps it as inactive: ${session.command} stages get ${shellWord(id)} --account ${shellWord(query.integrated_account_id)} shows it.`;
  }
  return { json: stage, human: lines.join('\n') };
}

async function pipelines(session: Session, args: string[]): Promise<Result> {
  const [action, ...rest] = args;
  if (action === 'list') {
    const { values, positionals } = parse(rest, {
      account: { type: 'string' },
      name: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      all: { type: 'boolean' },
      ...FORMAT_FLAGS,
    });
    session.configure(values);
    if (positionals.length > 0) throw new UsageError(`pipelines list takes flags only, not "${positionals[0]}" (quote a name with spaces)`);
    const query: PipelineListQuery = recordQuery(values);
    if (values.name !== undefined) query.name = String(values.name);
    const limit = positiveInt(values, 'limit', undefined);
    if (limit !== undefined) query.limit = limit;
    if (values.cursor !== undefined) query.next_cursor = String(values.cursor);
    const list = (await session.unicrm()).crm.pipelines.list(query) as PagedList<unknown, unknown>;
    return listCommand(session, list, values.all === true, query.truto_response_format === 'raw', {
      noun: 'pipelines',
      columns: PIPELINE_COLUMNS,
      row: pipelineRow,
      args: ['pipelines', 'list', ...rest],
    });
  }
  if (action === 'get') {
    const { values, positionals } = parse(rest, { account: { type: 'string' }, ...FORMAT_FLAGS });
    session.configure(values);
    const id = recordId(positionals, 'pipelines get');
    const query = recordQuery(values);
    const pipeline = await (await session.unicrm()).crm.pipelines.get(id, query);
    const human = query.truto_response_format === 'raw' ? keyValueLines(pipeline) : pipelineLines(pipeline as Record<string, unknown>);
    return { json: pipeline, human };
  }
  throw new UsageError(`unknown command "pipelines ${action ?? ''}": use list or get`);
}

/** Exit code of an import stopped by Ctrl-C (128 + SIGINT), as shells report a command ended by it. */
export const EXIT_INTERRUPTED = 130;

/**
 * `stages import`: the rows of a file written with the batch write ({@link importStages}); `--dry-run` checks them.
 * Ctrl-C (SIGINT) stops sending new batches and waits for the ones in flight (a second Ctrl-C quits at once), then
 * prints how far it got and the command that resumes it (the same one), and exits 130.
 */
async function importCommand(session: Session, rest: string[], io: CliIo): Promise<Result> {
  const { values, positionals } = parse(rest, {
    account: { type: 'string' },
    concurrency: { type: 'string' },
    'batch-size': { type: 'string' },
    'failed-out': { type: 'string' },
    'dry-run': { type: 'boolean' },
  });
  session.configure(values);
  const file = positionals[0];
  if (!file) throw new UsageError(`stages import takes a file: ${session.command} stages import stages.csv --account <id>`);
  if (positionals.length > 1) throw new UsageError(`stages import takes one file, not ${positionals.length}`);
  const account = required(values, 'account');
  const concurrency = positiveInt(values, 'concurrency', 2, 64) as number;
  const batchSize = positiveInt(values, 'batch-size', BATCH_MAX_ITEMS, BATCH_MAX_ITEMS) as number;
  const dryRun = values['dry-run'] === true;

  // Fail fast, before reading a single row, when the token or the account does not work.
  const unicrm = await session.unicrm();
  await unicrm.accounts.get(account);
  const progress = progressReporter(io.progress ?? { isTTY: false, write: (chunk) => (io.err(chunk.replace(/\n$/, '')), true) });
  const resume = `${session.command} ${session.argv.map(shellWord).join(' ')}`;
  const stop = new AbortController();
  const onInterrupt = () => {
    if (!stop.signal.aborted) {
      progress.notice('Stopping: no new batches; waiting for the ones in flight (Ctrl-C again quits at once).');
      stop.abort();
      return;
    }
    // The bar gives the terminal its cursor back before the process ends.
    progress.stop();
    io.err(`\nQuit at once: the batches in flight may or may not have been written. Resume with the same command (nothing is written twice):\n  ${resume}`);
    process.exit(EXIT_INTERRUPTED);
  };
  process.on('SIGINT', onInterrupt);
  let summary;
  try {
    summary = await importStages(unicrm, {
      file,
      account,
      concurrency,
      batchSize,
      dryRun,
      failedOut: optional(values, 'failed-out'),
      progress,
      signal: stop.signal,
    });
  } catch (error) {
    if (error instanceof ImportFileError) throw new UsageError(error.message);
    throw error;
  } finally {
    process.off('SIGINT', onInterrupt);
  }
  const failures = summary.results.filter((r): r is Extract<RowResult, { ok: false }> => !r.ok);
  const done = summary.total - summary.not_sent;
  const took = `${elapsedText(summary.elapsed_ms)} (${speedText(done, done, summary.elapsed_ms).split(',')[0]}), ${plural(summary.batches, 'batch request')}`;
  const lines = dryRun
    ? [`Checked ${file} for ${account}: ${countsText(summary, true)} (${summary.total} rows); nothing was written.`, `Took ${took}.`]
    : [`Imported ${file} into ${account}: ${countsText(summary)} (${summary.total} rows).`, `Took ${took}.`];
  if (summary.aborted) lines.push(`Stopped early: ${summary.aborted}`);
  if (summary.interrupted) {
    lines.push(
      '',
      `Interrupted: ${done} of ${summary.total} rows done, ${summary.not_sent} not sent.`,
      `To resume, run the same command again${isAbsolute(file) ? '' : ` (from ${process.cwd()})`}; ${
        dryRun ? 'it checks every row again' : 'rows already written are replayed, never written twice'
      }:`,
      `  ${resume}`,
    );
  }
  if (failures.length > 0) {
    const shown = failures.slice(0, 10).map((r) => [String(r.row), r.error]);
    lines.push('', table(['row', 'error'], shown));
    if (failures.length > shown.length) lines.push(`... and ${failures.length - shown.length} more`);
    lines.push(
      '',
      dryRun
        ? `Invalid rows written to ${summary.failed_out}, each with its error. Fix them in ${file}, then check again or import it: ${session.command} stages import ${file} --account ${account}`
        : summary.unfinished === 0
          ? `Failed rows: ${summary.failed_out}. Fix them, then: ${session.command} stages import ${summary.failed_out} --account ${account}`
          : `Failed rows: ${summary.failed_out}. ${summary.unfinished} of them ended on a temporary error (429, 409 or 5xx after every try): their write ` +
            'may be under way or done (a 409: an earlier run of this import is still writing them). Run the same command again in a minute ' +
            `or two to finish them (rows already written are replayed, never written twice)${
              failures.length > summary.unfinished ? `, after fixing the other ${failures.length - summary.unfinished} in ${file} (a fixed row is created anew)` : ''
            }; importing them from ${summary.failed_out} would write them under new keys.`,
    );
  }
  const common = {
    file: summary.file,
    account: summary.account,
    dry_run: summary.dry_run,
    total: summary.total,
  };
  const tail = {
    failed_out: summary.failed_out,
    aborted: summary.aborted,
    interrupted: summary.interrupted,
    not_sent: summary.not_sent,
    unfinished: summary.unfinished,
    batches: summary.batches,
    elapsed_ms: summary.elapsed_ms,
    errors: failures.map((r) => ({ row: r.row, error: r.error })),
  };
  return {
    json: dryRun
      ? { ...common, valid: summary.valid, invalid: summary.failed, ...tail }
      : {
          ...common,
          created: summary.created,
          replayed: summary.replayed,
          failed: summary.failed,
          ...tail,
          stages: summary.results.flatMap((r) => (r.ok && 'id' in r ? [{ row: r.row, id: r.id, replayed: r.replayed }] : [])),
        },
    human: lines.join('\n'),
    code: summary.interrupted ? EXIT_INTERRUPTED : summary.failed > 0 ? EXIT.failed : EXIT.ok,
  };
}

async function stages(session: Session, args: string[], io: CliIo): Promise<Result> {
  const [action, ...rest] = args;
  if (action === 'list') return listStages(session, rest);
  if (action === 'get') return getStage(session, rest);
  if (action === 'create') return createStage(session, rest);
  if (action === 'update') return updateStage(session, rest);
  if (action === 'delete') return deleteStage(session, rest);
  if (action === 'import') return importCommand(session, rest, io);
  throw new UsageError(`unknown command "stages ${action ?? ''}": use list, get, create, update, delete or import`);
}

async function tokens(session: Session, args: string[]): Promise<Result> {
  const [action, ...rest] = args;
  if (action === 'create') {
    const { values } = parse(rest, { name: { type: 'string' }, environment: { type: 'string' }, 'expires-in': { type: 'string' } });
    const name = required(values, 'name');
    const expires = optional(values, 'expires-in');
    const days = expires === undefined ? undefined : Number(expires);
    if (days !== undefined && (expires === '' || !Number.isFinite(days) || days <= 0)) {
      throw new UsageError(`--expires-in must be a positive number of days, not "${expires}"`);
    }
    const core = await session.core(values, 'tokens create');
    const { token, record } = await core.tokens.issue({ name, environment: optional(values, 'environment'), expiresInDays: days });
    const json = { token, id: record.id, name: record.name, environment: record.environmentId, created_at: record.createdAt, expires_at: record.expiresAt };
    const human = [
      keyValueLines({ ...json, expires_at: record.expiresAt ?? 'never' }),
      '',
      'The token is shown only this once: keep it. Send it as Authorization: Bearer <token> (or UNICRM_API_TOKEN for this CLI).',
    ].join('\n');
    return { json, human };
  }
  if (action === 'list') {
    const { values } = parse(rest, {});
    const list = await (await session.core(values, 'tokens list')).tokens.list();
    const json = list.map((t) => ({
      id: t.id,
      name: t.name,
      environment: t.environmentId,
      status: t.status,
      created_at: t.createdAt,
      expires_at: t.expiresAt,
      revoked_at: t.revokedAt,
    }));
    const human =
      json.length === 0
        ? 'No stored API tokens (a UNICRM_API_TOKEN value is not stored, so not listed).'
        : table(
            ['id', 'name', 'environment', 'status', 'created_at', 'expires_at'],
            json.map((t) => [t.id, t.name, t.environment, t.status, t.created_at, t.expires_at ?? 'never']),
          );
    return { json, human };
  }
  if (action === 'revoke') {
    const { values, positionals } = parse(rest, {});
    const id = positionals[0];
    if (!id) throw new UsageError(`tokens revoke takes a token id (see ${session.command} tokens list)`);
    await (await session.core(values, 'tokens revoke')).tokens.revoke(id);
    return { json: { id, revoked: true }, human: `Revoked API token ${id}: it is refused from the next request on.` };
  }
  throw new UsageError(`unknown command "tokens ${action ?? ''}": use create, list or revoke`);
}

async function keys(session: Session, args: string[], io: CliIo): Promise<Result> {
  const [action, ...rest] = args;
  if (action !== 'rotate') throw new UsageError(`unknown command "keys ${action ?? ''}": use rotate`);
  const { values } = parse(rest, { 'new-key': { type: 'string' }, master: { type: 'boolean' }, 'batch-size': { type: 'string' } });
  const newKey = optional(values, 'new-key');
  const master = values.master === true;
  if (newKey !== undefined && !master) throw new UsageError('--new-key replaces the master key: keys rotate --master --new-key <key>');
  const batchText = optional(values, 'batch-size');
  if (batchText !== undefined && master) throw new UsageError('--batch-size is for the data key rotation (keys rotate without --master)');
  const batchSize = batchText === undefined ? undefined : Number(batchText);
  if (batchSize !== undefined && !(Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= 10_000)) {
    throw new UsageError(`--batch-size must be a whole number from 1 to 10000, not "${batchText}"`);
  }
  const core = await session.core(values, 'keys rotate');
  if (!master) {
    const rotation = await core.rotateDataKey({
      batchSize,
      onProgress: ({ resealed, total }) => io.err(`re-encrypted ${resealed} of ${total} integrated account${total === 1 ? '' : 's'}`),
    });
    const lines = [
      `${rotation.resumed ? 'Finished the interrupted rotation to' : 'Rotated to'} data key ${rotation.activeKid}: re-encrypted ${plural(rotation.resealed, 'integrated account')}` +
        (rotation.retired.length > 0 ? `; retired ${rotation.retired.join(', ')}.` : '.'),
    ];
    if (rotation.unreadable.length > 0) {
      lines.push(
        `warning: ${plural(rotation.unreadable.length, 'integrated account')} could not be opened with any key and ${rotation.unreadable.length === 1 ? 'was' : 'were'} left as ${rotation.unreadable.length === 1 ? 'it is' : 'they are'}: ${rotation.unreadable.join(', ')}.`,
        'The key they name is kept until they are deleted or reconnected; then run keys rotate again.',
      );
    }
    return { json: rotation, human: lines.join('\n') };
  }
  const { DataDirectoryInUseError } = await import('./embedded.js');
  let result;
  try {
    result = core.rotateEncryptionKey(newKey);
  } catch (error) {
    // An API serving the directory: exit 1 with the message naming it (not a usage error).
    if (isUnicrmError(error) || error instanceof DataDirectoryInUseError) throw error;
    throw new UsageError((error as Error).message);
  }
  const lines = [
    `Replaced the master key: wrapped ${plural(result.dataKeys, 'data key')} again` +
      (result.accounts > 0 ? ` and re-encrypted ${plural(result.accounts, 'integrated account')} written before the keyring` : '') +
      `; the new key is in ${result.keyLocation}.`,
  ];
  if (newKey !== undefined) lines.push('Set UNICRM_ENCRYPTION_KEY to the new key before starting the API again.');
  return { json: result, human: lines.join('\n') };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** What a backup or restore says about the key it does not contain. */
function keyLines(result: { keyLocation: string; keyFound: boolean }, verb: string): string[] {
  const where = result.keyLocation === 'UNICRM_ENCRYPTION_KEY' ? 'the key in UNICRM_ENCRYPTION_KEY' : `the key in ${result.keyLocation}`;
  if (!result.keyFound) {
    return [`warning: no encryption key was found (${result.keyLocation}): the credentials in it cannot be read without the key they were written with.`];
  }
  return [
    `The credentials in it are encrypted with ${where}, which ${verb} not in the backup: keep a copy of that key apart from`,
    'your backups. A backup without its key cannot be read; a backup kept with its key gives away every credential.',
  ];
}

/** `unicrm backup <file>` and `unicrm restore <file>`: exit 2 for a file they cannot use, 1 when the directory is in use or the key is missing. */
async function backupOrRestore(session: Session, command: 'backup' | 'restore', args: string[], io: CliIo): Promise<Result> {
  const { values, positionals } = parse(args, command === 'backup' ? { force: { type: 'boolean' } } : {});
  const dataDir = session.dataDirectory(values, command);
  const file = positionals[0];
  if (!file) throw new UsageError(`${command} takes a file: ${session.command} ${command} unicrm-backup.sqlite`);
  if (positionals.length > 1) throw new UsageError(`${command} takes one file, not ${positionals.length}`);
  const data = await import('./embedded.js');
  const options = { env: io.env, dataDir };
  try {
    if (command === 'backup') {
      const result = await data.backupDataDirectory(file, { ...options, overwrite: values.force === true });
      const human = [
        `Backed up ${result.dataDir} to ${result.file} (${plural(result.accounts, 'integrated account')}, ${plural(result.apiTokens, 'API token')}, ${result.bytes} bytes).`,
        ...keyLines(result, 'is'),
      ];
      return { json: result, human: human.join('\n') };
    }
    const result = await data.restoreDataDirectory(file, options);
    const human = [
      `Restored ${file} into ${result.dataDir} (${plural(result.accounts, 'integrated account')}, ${plural(result.apiTokens, 'API token')}); its key check opens with ${result.keyLocation}.`,
      result.previous ? `The database it replaced is kept as ${result.previous}; delete it once you no longer need it.` : 'There was no database before.',
      'Start the API again on this data directory.',
    ];
    return { json: result, human: human.join('\n') };
  } catch (error) {
    if (error instanceof data.DataFileError) throw new UsageError(error.message);
    throw error;
  }
}

/**
 * Runs the `unicrm` CLI on the SDK: embedded by default, remote with `--remote <url>` or `UNICRM_URL` (token from
 * `UNICRM_API_TOKEN`). Prints human output (or the JSON body with `--output json`) on stdout; errors on stderr with
 * the message and, for remote errors, the provider's own answer.
 * @param argv the arguments after `unicrm`
 * @returns the exit code: 0 ok, 1 remote or server error (or failed import rows), 2 usage error (also 400 and 404
 *   answers), 130 an import stopped by Ctrl-C
 */
/**
 * The global options (`--remote URL`, `--data-dir DIR`, `--timeout MS`, `--output FORMAT`) may come before the
 * command too (`unicrm --remote URL accounts list`), as the help says they apply to every command: moved after it.
 */
function globalOptionsLast(argv: string[]): string[] {
  let at = 0;
  while (at < argv.length) {
    const arg = argv[at] as string;
    const name = arg.startsWith('--') ? arg.slice(2).split('=')[0] : undefined;
    const spec = name && name !== 'help' ? GLOBAL_OPTIONS[name] : undefined;
    if (!spec) break;
    at += spec.type === 'string' && !arg.includes('=') ? 2 : 1;
  }
  return [...argv.slice(at), ...argv.slice(0, at)];
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [group, ...rest] = globalOptionsLast(argv);
  if (!group || group === '-h' || group === '--help' || group === 'help' || rest.includes('--help') || rest.includes('-h')) {
    const command = io.command ?? 'unicrm';
    io.out(
      command === 'unicrm'
        ? HELP
        : HELP.replace('\n\nUsage:', `\n\n"unicrm" below is "${command}" here; "npm link" in the repository puts unicrm on PATH.\n\nUsage:`),
    );
    return group ? EXIT.ok : EXIT.usage;
  }
  if (group === '--version' || group === 'version') {
    io.out(SDK_VERSION);
    return EXIT.ok;
  }
  const session = new Session(io);
  session.argv = argv;
  try {
    let result: Result;
    if (group === 'accounts') result = await accounts(session, rest, io);
    else if (group === 'stages') result = await stages(session, rest, io);
    else if (group === 'pipelines') result = await pipelines(session, rest);
    else if (group === 'tokens') result = await tokens(session, rest);
    else if (group === 'links') result = await links(session, rest);
    else if (group === 'webhooks') result = await webhooks(session, rest);
    else if (group === 'keys') result = await keys(session, rest, io);
    else if (group === 'backup' || group === 'restore') result = await backupOrRestore(session, group, rest, io);
    else throw new UsageError(`unknown command "${group}": use accounts, links, webhooks, pipelines, stages, tokens, keys, backup or restore`);
    io.out(session.output === 'json' ? JSON.stringify(result.json, null, 2) : result.human);
    return result.code ?? EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`usage error: ${error.message}\nRun "${session.command} --help" for the commands.`);
      return EXIT.usage;
    }
    if (isUnicrmError(error)) {
      io.err(session.output === 'json' ? JSON.stringify(error.body) : errorLines(error, session.remote));
      return error.statusCode === 400 || error.statusCode === 404 ? EXIT.usage : EXIT.failed;
    }
    io.err(`error: ${(error as Error).message}`);
    return EXIT.failed;
  } finally {
    await session.close();
  }
}
