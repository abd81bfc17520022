import { randomUUID } from 'node:crypto';
import { SandboxHttpError } from '../kit/errors';
import type { JsonObject } from '../kit/types';

/** One validation detail of HubSpot's error body (`errors[]`: the spec's ErrorDetail). */
export interface HubSpotErrorDetail {
  message: string;
  in?: string;
  code?: string;
}

/**
 * HubSpot's error body (its spec's `Error`, with the `status: "error"` real answers carry): `status`, `message`,
 * `correlationId` (a new UUID per answer), `category`, and `errors[]` / `context` / `subCategory` when given.
 */
export function hubspotErrorBody(message: string, category: string, extra: { errors?: HubSpotErrorDetail[]; context?: Record<string, string[]>; subCategory?: string } = {}): JsonObject {
  return { status: 'error', message, correlationId: randomUUID(), category, ...extra };
}

/** The category HubSpot gives an error status, for status faults and the kit's own answers. */
export const CATEGORIES: Record<number, [string, string]> = {
  400: ['VALIDATION_ERROR', 'Invalid input'],
  401: ['INVALID_AUTHENTICATION', 'Authentication credentials not found.'],
  403: ['MISSING_SCOPES', 'This app hasn\'t been granted all required scopes to make this call.'],
  404: ['OBJECT_NOT_FOUND', 'resource not found'],
  405: ['VALIDATION_ERROR', 'Method not allowed'],
  409: ['CONFLICT', 'Conflict'],
  413: ['VALIDATION_ERROR', 'Request entity too large'],
  415: ['VALIDATION_ERROR', 'Unsupported media type'],
  423: ['LOCKED', 'Locked'],
  429: ['RATE_LIMITS', 'You have reached your ten_secondly_rolling limit.'],
  500: ['INTERNAL_ERROR', 'internal error'],
  502: ['BAD_GATEWAY', 'Bad gateway'],
  503: ['SERVICE_UNAVAILABLE', 'Service unavailable'],
  504: ['GATEWAY_TIMEOUT', 'Gateway timeout'],
};

/** HubSpot's category and message for a status. */
export const categoryFor = (status: number): [string, string] => CATEGORIES[status] ?? ['ERROR', `HTTP ${status}`];

/** An error answer in HubSpot's shape. */
export class HubSpotError extends SandboxHttpError {
  constructor(status: number, message: string, category = categoryFor(status)[0], extra: Parameters<typeof hubspotErrorBody>[2] = {}, headers: Record<string, string> = {}) {
    super(status, hubspotErrorBody(message, category, extra), headers);
    this.name = 'HubSpotError';
  }
}

/** HubSpot's 400 for invalid input, with its details. */
export function validationError(message: string, details: HubSpotErrorDetail[] = []): HubSpotError {
  return new HubSpotError(400, message, 'VALIDATION_ERROR', details.length > 0 ? { errors: details } : {});
}
