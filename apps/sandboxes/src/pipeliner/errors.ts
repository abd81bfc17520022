import { SandboxHttpError } from '../kit/errors';
import type { JsonObject } from '../kit/types';
import { fieldId } from './ids';

/**
 * Pipeliner's error bodies (pipeliner-api.md §4). Key order follows the captured responses:
 * `code, name, message, [extras...], http_status, success`.
 * Codes marked "sandbox choice" were never captured from the real service; docs/pipeliner-sandbox.md lists them.
 */

export type { JsonObject };

/** An HTTP answer that is an error in Pipeliner's shape: status, JSON body and extra headers. Thrown by handlers, rendered once by the kit. */
export class PipelinerError extends SandboxHttpError {
  constructor(status: number, body: JsonObject, headers: Record<string, string> = {}) {
    super(status, body, headers);
    this.name = 'PipelinerError';
  }
}

/** The spec's `Error` shape `{code, name, message, ...extras, http_status, success:false}`. */
export function errorBody(status: number, code: number, name: string, message: string, extras: JsonObject = {}): JsonObject {
  return { code, name, message, ...extras, http_status: status, success: false };
}

/** 400 code 117 `ERROR_PARAMETER_INVALID` "Missing or invalid JSON data." (§4, captured). */
export function invalidJsonError(): PipelinerError {
  return new PipelinerError(400, errorBody(400, 117, 'ERROR_PARAMETER_INVALID', 'Missing or invalid JSON data.'));
}

/** 400 code 117 `ERROR_PARAMETER_INVALID` with a message naming the bad query parameter (sandbox wording). */
export function invalidParameterError(message: string): PipelinerError {
  return new PipelinerError(400, errorBody(400, 117, 'ERROR_PARAMETER_INVALID', message));
}

/** 404 code 2006 `ERROR_UNKNOWN_TYPE` "cannot determine entity type from X" (§4, captured). */
export function unknownTypeError(entityInPath: string): PipelinerError {
  return new PipelinerError(
    404,
    errorBody(404, 2006, 'ERROR_UNKNOWN_TYPE', `cannot determine entity type from ${entityInPath}`),
  );
}

/** Body of the bare (non-Pipeliner-envelope) 404 for a URL that matches no route (§4, captured). */
export const ROUTE_NOT_FOUND_BODY: JsonObject = {
  status: 404,
  message:
    'The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.',
  errorcode: null,
  traceback: null,
};

/** The bare 404 for an unknown route (§4). */
export function routeNotFoundError(): PipelinerError {
  return new PipelinerError(404, { ...ROUTE_NOT_FOUND_BODY });
}

/** The bare 405 for a known URL with a method it does not serve (sandbox inference from the bare 404's shape). */
export function methodNotAllowedError(allowed: string[]): PipelinerError {
  return new PipelinerError(
    405,
    { status: 405, message: 'The method is not allowed for the requested URL.', errorcode: null, traceback: null },
    { Allow: allowed.join(', ') },
  );
}

/** 404 for an unknown or deleted id: code 2001 `ERROR_ENTITY_NOT_FOUND` (sandbox choice; §8 question 7). */
export function entityNotFoundError(entityName: string, id: string): PipelinerError {
  return new PipelinerError(404, entityNotFoundBody(entityName, id));
}

/** The body of {@link entityNotFoundError}, also used as an item of batch results. */
export function entityNotFoundBody(entityName: string, id: string): JsonObject {
  return errorBody(404, 2001, 'ERROR_ENTITY_NOT_FOUND', `Entity '${entityName}' with id '${id}' was not found.`);
}

/**
 * 401 for missing or wrong Basic credentials, or credentials used on another space:
 * code 110 `ERROR_UNAUTHORIZED` (sandbox choice, §8 question 5) with `WWW-Authenticate: Basic realm="restapi"`.
 */
export function unauthorizedError(message: string): PipelinerError {
  return new PipelinerError(401, errorBody(401, 110, 'ERROR_UNAUTHORIZED', message), {
    'WWW-Authenticate': 'Basic realm="restapi"',
  });
}

/** Bodies answered by status faults (sandbox choice; the real 403/429/5xx bodies were never captured, §4). */
const FAULT_ERRORS: Record<number, [number, string, string]> = {
  400: [117, 'ERROR_PARAMETER_INVALID', 'Missing or invalid JSON data.'],
  401: [110, 'ERROR_UNAUTHORIZED', 'Invalid API credentials.'],
  403: [111, 'ERROR_FORBIDDEN', 'Access to this space is forbidden for the application.'],
  404: [2001, 'ERROR_ENTITY_NOT_FOUND', 'Entity was not found.'],
  409: [112, 'ERROR_CONFLICT', 'The entity was changed by another request.'],
  422: [40000, 'ERROR_ENTITY_VALIDATION', '\nEntity validation failed.'],
  429: [130, 'ERROR_RATE_LIMIT_EXCEEDED', 'Too many requests. Please retry later.'],
  500: [100, 'ERROR_INTERNAL', 'Internal server error.'],
  502: [132, 'ERROR_BAD_GATEWAY', 'Bad gateway.'],
  503: [131, 'ERROR_SERVICE_UNAVAILABLE', 'Service is temporarily unavailable. Please retry later.'],
  504: [133, 'ERROR_GATEWAY_TIMEOUT', 'Gateway timeout.'],
};

/** Pipeliner-shaped `Error` body for an injected status (any status; unknown ones get code 199 `ERROR_SANDBOX_FAULT`). */
export function faultErrorBody(status: number): JsonObject {
  const [code, name, message] = FAULT_ERRORS[status] ?? [199, 'ERROR_SANDBOX_FAULT', `Injected fault (HTTP ${status}).`];
  return errorBody(status, code, name, message);
}

/** One problem with one field of an entity, collected during validation. */
export interface FieldIssue {
  field: string;
  code: number;
  name: string;
  message: string;
  /** Also listed in `entity_errors` (Pipeliner does so for a missing plain field, §4). */
  entityLevel?: boolean;
}

/** 119 `ERROR_PARAMETER_MISSING` "Non-null field 'x' is null or empty." (§4, captured). */
export function missingFieldIssue(field: string): FieldIssue {
  return {
    field,
    code: 119,
    name: 'ERROR_PARAMETER_MISSING',
    message: `Non-null field '${field}' is null or empty.`,
    entityLevel: true,
  };
}

/** 117 `ERROR_PARAMETER_INVALID` for a value of the wrong type (sandbox wording). */
export function invalidFieldIssue(field: string, expected: string): FieldIssue {
  return {
    field,
    code: 117,
    name: 'ERROR_PARAMETER_INVALID',
    message: `Invalid value of field '${field}': expected ${expected}.`,
  };
}

/** A read-only field sent without `validation-level` bit 8: code 122 `ERROR_FIELD_IS_READONLY` (sandbox choice, §6). */
export function readOnlyFieldIssue(entityName: string, field: string): FieldIssue {
  return {
    field,
    code: 122,
    name: 'ERROR_FIELD_IS_READONLY',
    message: `Field '${entityName}.${field}' is read-only. Use validation-level=8 to override read-only fields.`,
  };
}

/** 120 `ERROR_RELATIONS_DOESNT_EXIST` in the wording documented by Pipeliner's bulk page (S6). */
export function missingRelationIssue(entityName: string, field: string, id: string, target: string): FieldIssue {
  return {
    field,
    code: 120,
    name: 'ERROR_RELATIONS_DOESNT_EXIST',
    message: `[${field}] Relation ${entityName}.${field}=${id} to ${target} doesn't exist!`,
  };
}

/** 120 for a relation to a soft-deleted entity without `validation-level` bit 16 (sandbox wording). */
export function deletedRelationIssue(entityName: string, field: string, id: string, target: string): FieldIssue {
  return {
    field,
    code: 120,
    name: 'ERROR_RELATIONS_DOESNT_EXIST',
    message: `[${field}] Relation ${entityName}.${field}=${id} to ${target} is deleted! Use validation-level=16 to allow it.`,
  };
}

/**
 * The 422 `ERROR_ENTITY_VALIDATION` body (code 40000) exactly as captured (§4): message = "\n" + one line per
 * problem; `entity_errors` for entity-level problems; `field_errors` grouped per field with code 40002.
 */
export function validationErrorBody(
  entityName: string,
  entityId: string,
  issues: FieldIssue[],
  entityIndex: number | null = null,
): JsonObject {
  const byField = new Map<string, FieldIssue[]>();
  for (const issue of issues) {
    const list = byField.get(issue.field) ?? [];
    list.push(issue);
    byField.set(issue.field, list);
  }
  const fieldErrors = [...byField.entries()].map(([field, list]) => {
    const id = fieldId(entityName, field);
    return {
      field_id: id,
      field_name: field,
      name: 'ERROR_FIELD_VALIDATION',
      code: 40002,
      errors: list.map((issue) => ({
        code: issue.code,
        name: issue.name,
        message: issue.message,
        field_id: id,
        field_name: field,
      })),
    };
  });
  return errorBody(422, 40000, 'ERROR_ENTITY_VALIDATION', `\n${issues.map((issue) => issue.message).join('\n')}`, {
    entity_id: entityId,
    entity_name: entityName,
    entity_errors: issues
      .filter((issue) => issue.entityLevel)
      .map((issue) => ({ code: issue.code, name: issue.name, message: issue.message })),
    field_errors: fieldErrors,
    step_checklist_errors: [],
    entity_index: entityIndex,
  });
}

/** A thrown 422 (see {@link validationErrorBody}). */
export function validationError(
  entityName: string,
  entityId: string,
  issues: FieldIssue[],
  entityIndex: number | null = null,
): PipelinerError {
  return new PipelinerError(422, validationErrorBody(entityName, entityId, issues, entityIndex));
}

/** 422 for deleting an `is_delete_protected` entity (sandbox choice: code 40000 with an entity error 2010). */
export function deleteProtectedError(entityName: string, id: string, entityIndex: number | null = null): PipelinerError {
  const message = `Entity '${entityName}' with id '${id}' is protected against delete.`;
  return new PipelinerError(
    422,
    errorBody(422, 40000, 'ERROR_ENTITY_VALIDATION', `\n${message}`, {
      entity_id: id,
      entity_name: entityName,
      entity_errors: [{ code: 2010, name: 'ERROR_ENTITY_DELETE_PROTECTED', message }],
      field_errors: [],
      step_checklist_errors: [],
      entity_index: entityIndex,
    }),
  );
}
