import 'reflect-metadata';
import {
  type CallOptions,
  type Connector,
  type ConnectorAccount,
  type CreateResult,
  type HttpTransport,
  type Logger,
  type PipelinerContext,
  PipelinerContextSchema,
  type Stage,
  type StageCreateBody,
  type StagesResource,
  TOKENS,
  UnicrmError,
  zodFailures,
} from '@unicrm/model';
import { inject, injectable } from 'tsyringe';
import { PipelinerClient } from './client';
import { createStage, PipelinerStageCreateBodySchema } from './create-stage';
import { findCreatedStage } from './find-created';
import { checkServiceUrl } from './service-url';

/**
 * The Pipeliner CRM connector (integration `pipeliner`). An account's context is
 * `{ service_url, space_id, username, password }`: Pipeliner's service URL and space id, and the
 * application's "API token"/"API password" used for HTTP Basic auth (pipeliner-api.md §1).
 * Registered under `TOKENS.Connector`.
 */
@injectable()
export class PipelinerConnector implements Connector {
  readonly integration = 'pipeliner';
  readonly category = 'crm';
  readonly secretContextKeys = ['username', 'password'] as const;
  readonly credentialBoundContextKeys = ['service_url'] as const;
  readonly stages: StagesResource;

  constructor(
    @inject(TOKENS.HttpTransport) private readonly transport: HttpTransport,
    @inject(TOKENS.Logger) private readonly logger: Logger,
  ) {
    this.stages = {
      createBodySchema: PipelinerStageCreateBodySchema,
      create: (account, body, options) => this.createStage(account, body, options),
      findCreated: (account, body, since, options) =>
        findCreatedStage(new PipelinerClient(this.transport, account.context as unknown as PipelinerContext), body, since, options, this.logger),
    };
  }

  /**
   * Validates a Pipeliner context: the four keys, strings, `service_url` allowed by {@link checkServiceUrl}.
   * @throws UnicrmError 400 with failures under `context.`
   */
  parseContext(context: unknown): PipelinerContext {
    const result = PipelinerContextSchema.safeParse(context);
    if (!result.success) throw UnicrmError.validation(zodFailures(result.error, 'context'));
    try {
      return { ...result.data, service_url: checkServiceUrl(result.data.service_url) };
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
    const client = new PipelinerClient(this.transport, context as unknown as PipelinerContext);
    await client.list('Pipelines', { first: 1, 'load-only': 'id' }, signal);
  }

  private createStage(account: ConnectorAccount, body: StageCreateBody, options: CallOptions): Promise<CreateResult<Stage>> {
    const client = new PipelinerClient(this.transport, account.context as unknown as PipelinerContext);
    return createStage(client, body, options, this.logger);
  }
}
