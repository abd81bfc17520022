import { SandboxHttpError } from '../kit/errors';
import type { JsonObject } from '../kit/types';

/** What Pipedrive's error bodies point at (pipedrive-api.md §2.6). */
export const ERROR_INFO = 'Please check developers.pipedrive.com';

/**
 * Pipedrive's error body (pipedrive-api.md §2.6): `{ success: false, error, error_info, data: null, additional_data:
 * null }`. The sandbox adds no v2-specific extras (such as a `code`): none is documented (docs/pipedrive-sandbox.md).
 */
export function pipedriveErrorBody(message: string): JsonObject {
  return { success: false, error: message, error_info: ERROR_INFO, data: null, additional_data: null };
}

/** An error answer in Pipedrive's shape. */
export class PipedriveError extends SandboxHttpError {
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(status, pipedriveErrorBody(message), headers);
    this.name = 'PipedriveError';
  }
}

/** Pipedrive's wording per status, for status faults and the kit's own answers. */
export const STATUS_MESSAGES: Record<number, string> = {
  400: 'Bad request',
  401: 'unauthorized access',
  402: 'Company account is not open (possible reason: trial expired, payment details not entered)',
  403: 'You do not have permission to perform this action',
  404: 'Not found',
  405: 'Method not allowed',
  410: 'Gone',
  413: 'Request entity too large',
  415: 'Feature is not enabled',
  422: 'Unprocessable entity',
  429: 'Request over limit',
  500: 'Internal server error',
  501: 'Not implemented',
  503: 'Service unavailable',
};

export const messageFor = (status: number) => STATUS_MESSAGES[status] ?? `HTTP ${status}`;
