import 'reflect-metadata';
import {
  checkOutboundUrl,
  type Connector,
  type ConnectorResource,
  type HttpTransport,
  type Logger,
  type PipelinerContext,
  PipelinerContextSchema,
  type ProxyHandler,
  TOKENS,
  UnicrmError,
  zodFailures,
} from '@unicrm/model';
import { inject, injectable } from 'tsyringe';
import { PipelineNameCache, PipelinerClient } from './client';
import { pipelinerPipelines } from './pipelines';
import { pipelinerProxy } from './proxy';
import { pipelinerStages } from './stages';

/**
 * The Pipeliner CRM connector (integration `pipeliner`). An account's context is
 * `{ service_url, space_id, username, password }`: Pipeliner's service URL and space id, and the
 * application's "API token"/"API password" used for HTTP Basic auth (pipeliner-api.md §1).
 * It declares `crm/stages` (list, get, create, update, delete; Pipeliner Steps), `crm/pipelines` (list, get) and the
 * proxy to Pipeliner's entity API. Registered under `TOKENS.Connector`.
 */
@injectable()
export class PipelinerConnector implements Connector {
  readonly integration = 'pipeliner';
  readonly displayName = 'Pipeliner';
  readonly category = 'crm';
  readonly secretContextKeys = ['username', 'password'] as const;
  readonly credentialBoundContextKeys = ['service_url'] as const;
  /** The connect page's form (docs/connect.md): service URL, space id, API token and password. */
  readonly contextSchema = PipelinerContextSchema;
  readonly resources: Readonly<Record<string, ConnectorResource>>;
  readonly proxy: ProxyHandler;
  /** Pipeline names of every account's space, shared by the stage methods (PIPELINE_NAME_TTL_MS). */
  private readonly pipelineNames = new PipelineNameCache();
  /**
   * The client of each account context object. Core hands the connector the same (frozen) context object for as long
   * as the account is unchanged, so a client (its base URL and Basic credentials) is made once per account version,
   * not once per call; a changed account is a new object, and the old one's client goes with it.
   */
  private readonly clients = new WeakMap<object, PipelinerClient>();

  constructor(
    @inject(TOKENS.HttpTransport) private readonly transport: HttpTransport,
    @inject(TOKENS.Logger) logger: Logger,
  ) {
    const clientOf = (context: Record<string, unknown>) => this.client(context);
    this.resources = {
      'crm/stages': pipelinerStages(clientOf, logger),
      'crm/pipelines': pipelinerPipelines(clientOf),
    };
    this.proxy = pipelinerProxy(clientOf);
  }

  private client(context: Record<string, unknown>): PipelinerClient {
    let client = this.clients.get(context);
    if (!client) {
      client = new PipelinerClient(this.transport, context as unknown as PipelinerContext, this.pipelineNames);
      this.clients.set(context, client);
    }
    return client;
  }

  /**
   * Validates a Pipeliner context: the four keys, strings, `service_url` allowed by the outbound policy
   * ({@link checkOutboundUrl}).
   * @throws UnicrmError 400 with failures under `context.`
   */
  parseContext(context: unknown): PipelinerContext {
    const result = PipelinerContextSchema.safeParse(context);
    if (!result.success) throw UnicrmError.validation(zodFailures(result.error, 'context'));
    try {
      return { ...result.data, service_url: checkOutboundUrl(result.data.service_url) };
    } catch (error) {
      throw UnicrmError.validation([{ path: 'context.service_url', message: (error as Error).message }]);
    }
  }

  /**
   * One cheap authenticated call, `GET /entities/Pipelines?first=1&load-only=id` (pipeliner-api.md §3, §6):
   * proves the service URL, space id and API token/password work.
   * @throws UnicrmError: Pipeliner's 401 for rejected credentials, other remote errors, 502, 504
   */
  async verifyCredentials(context: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
    await new PipelinerClient(this.transport, context as unknown as PipelinerContext).list('Pipelines', { first: 1, 'load-only': 'id' }, signal);
  }
}
