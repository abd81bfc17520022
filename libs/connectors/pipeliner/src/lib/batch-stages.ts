import { type BatchMethod, type BatchWriteOutcome, type Logger, type Stage, type StageCreateBody, UnicrmError, isJsonObject } from '@unicrm/model';
import type { PipelinerClient, PipelinerQuery } from './client';
import { checkCreatedInPipeline, VALIDATION_LEVEL_OVERRIDE_READONLY } from './create-stage';
import { stepCreateRequest } from './mappers';
import { remoteError, unusableAnswer } from './remote-errors';
import { unifySteps } from './stages';

/**
 * The most Steps unicrm sends in one `batch-modify`. Pipeliner documents no limit (pipeliner-api.md §2.1, §7); 100 is
 * the size of its largest list page (docs/pipeliner.md §7, "Batch writes").
 */
export const PIPELINER_BATCH_MAX_ITEMS = 100;

/** `rollback-method=1`: Pipeliner saves the valid items and answers an `Error` for each failed one (pipeliner-api.md §6). */
const ROLLBACK_FAILED_ONLY = 1;

/**
 * Stage creates through Pipeliner's bulk endpoint (issue 18; docs/pipeliner.md "Batch writes"):
 * 1. `POST /entities/Steps/batch-modify?rollback-method=1&validation-level=8` with up to
 *    {@link PIPELINER_BATCH_MAX_ITEMS} desunified Steps (the same bodies as single creates), `remote_query` winning;
 * 2. each answer entry is the new Step's id, or an `Error` object mirrored as that item's remote error (its
 *    `http_status`, else 422);
 * 3. unless the caller asked for `return=minimal`, each created Step is read back (`GET /entities/Steps/{id}`), checked
 *    to sit in its pipeline as a single create is, and unified with its pipeline's name.
 */
export function pipelinerStageBatch(clientOf: (context: Record<string, unknown>) => PipelinerClient, logger: Logger): BatchMethod {
  return {
    retrySafe: false,
    description: `POST /entities/Steps/batch-modify (rollback-method=1, validation-level=8), up to ${PIPELINER_BATCH_MAX_ITEMS} Steps a call; then GET each created Step, unless Prefer: return=minimal`,
    maxItems: PIPELINER_BATCH_MAX_ITEMS,
    methods: ['create'],
    async write(account, writes, options): Promise<BatchWriteOutcome[]> {
      const client = clientOf(account.context);
      const requests = writes.map((write) => stepCreateRequest(write.body as StageCreateBody));
      const query: PipelinerQuery = { 'rollback-method': ROLLBACK_FAILED_ONLY };
      if (requests.some((request) => request.pipeline_id !== undefined || request.sort_order !== undefined)) {
        query['validation-level'] = VALIDATION_LEVEL_OVERRIDE_READONLY;
      }
      Object.assign(query, options.remoteQuery);
      const answer = await client.batchModify('Steps', `[${requests.map((request) => request.json).join(',')}]`, query, options.signal);
      if (answer.data.length !== writes.length) {
        throw unusableAnswer(answer.response, `it answered ${answer.data.length} results for ${writes.length} Steps`);
      }
      return Promise.all(
        answer.data.map(async (entry, at): Promise<BatchWriteOutcome> => {
          const remote = { status: answer.response.status, bodyText: JSON.stringify(entry), body: entry };
          if (typeof entry !== 'string') {
            const status = isJsonObject(entry) && typeof entry.http_status === 'number' && entry.http_status >= 400 && entry.http_status <= 599 ? entry.http_status : 422;
            return { ok: false, error: remoteError({ status, headers: {}, bodyText: JSON.stringify(entry) }) };
          }
          if (options.representation === 'minimal') return { ok: true, result: { unified: { id: entry }, remote } };
          let read: Awaited<ReturnType<PipelinerClient['get']>>;
          try {
            read = await client.get('Steps', entry, {}, options.signal);
          } catch (error) {
            if (!(error instanceof UnicrmError)) throw error;
            // The Step exists: a failed read must not fail the item and invite a retry that would create it again.
            logger.warn({ req_id: options.requestId, step_id: entry, status: error.statusCode }, 'step created by batch-modify, but it could not be read back');
            return { ok: true, result: { unified: { id: entry }, remote } };
          }
          const requested = requests[at]?.pipeline_id;
          try {
            if (typeof requested === 'string') await checkCreatedInPipeline(client, read, requested, options, logger);
          } catch (error) {
            if (error instanceof UnicrmError) return { ok: false, error };
            throw error;
          }
          const [stage] = await unifySteps(client, [read.entity], options, logger);
          return { ok: true, result: { unified: stage as Stage, remote: { status: read.response.status, bodyText: read.response.bodyText, body: read.body } } };
        }),
      );
    },
  };
}
