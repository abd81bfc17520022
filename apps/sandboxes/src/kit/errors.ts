import type { JsonObject } from './types';

/**
 * An HTTP answer that is an error: status, JSON body (in the provider's own error shape) and extra headers. Provider
 * routes throw it (or a subclass, e.g. Pipeliner's `PipelinerError`); the kit's error handler sends it as it is.
 */
export class SandboxHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: JsonObject,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body['message'] === 'string' ? (body['message'] as string) : `HTTP ${status}`);
    this.name = 'SandboxHttpError';
  }
}
