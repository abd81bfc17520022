import {
  deletedRelationIssue,
  type FieldIssue,
  invalidFieldIssue,
  type JsonObject,
  missingFieldIssue,
  missingRelationIssue,
  readOnlyFieldIssue,
} from './errors';
import { isUuid } from './ids';
import type { SandboxStore } from './store';

/**
 * Validation of create/update bodies (pipeliner-api.md §2.2, §3, §6). Problems are collected as
 * {@link FieldIssue}s and answered together as one 422 `ERROR_ENTITY_VALIDATION` (§4).
 * Unknown keys and server-set keys (`id`, `created`, `modified`, `is_deleted`, `is_delete_protected`,
 * `revision`, relation URIs) are ignored (sandbox choice).
 */

/** `validation-level` bit: "allows to override readonly fields" (§6). */
export const VALIDATION_OVERRIDE_READONLY = 8;
/** `validation-level` bit: "allows to set entity on deleted relationship" (§6). */
export const VALIDATION_ALLOW_DELETED_RELATION = 16;

/** Writable Step fields present in a body (spec `createStepInput` / `updateStepInput`). */
export interface StepValues {
  name?: string;
  description?: string | null;
  percent?: number | null;
  timeframe?: number | null;
  has_readonly_form?: boolean;
  has_version_increment?: boolean;
  lead_process_id?: string | null;
  quote_process_id?: string | null;
  documents?: string[];
  step_checklists?: string[];
}

export interface ParsedStepInput {
  values: StepValues;
  /** Present when the body set the read-only `pipeline_id` (allowed only with bit 8). */
  pipelineId?: string | null;
  /** Present when the body set the read-only `sort_order` (allowed only with bit 8). */
  sortOrder?: number;
  issues: FieldIssue[];
}

export interface StepInputOptions {
  mode: 'create' | 'update';
  validationLevel: number;
  store: SandboxStore;
  /** False for items of `Pipeline.steps`, where the parent and the array order decide placement. */
  allowPlacement: boolean;
}

const has = (body: JsonObject, key: string): boolean => Object.prototype.hasOwnProperty.call(body, key);
const isBlank = (value: unknown): boolean => value === undefined || value === null || (typeof value === 'string' && value.trim() === '');

/**
 * The longest name the sandbox stores, in Unicode code points (sandbox choice). Pipeliner documents no limit; its
 * API is SQLAlchemy models, where a name column is conventionally `varchar(255)`. The connector applies the same
 * limit before sending, so the two agree (docs/pipeliner-sandbox.md "Deliberate guesses").
 */
export const NAME_MAX_LENGTH = 255;

/** Largest `sort_order`: Pipeliner types it `int32` (2³¹−1). */
export const SORT_ORDER_MAX = 2 ** 31 - 1;

/**
 * Text a UTF-8 database cannot store: a NUL (PostgreSQL's text types refuse U+0000) or an unpaired surrogate
 * (no UTF-8 encoding exists for one). Sandbox choice, as Pipeliner's answer to either was never captured.
 */
const UNPAIRED_SURROGATE = /\p{Cs}/u;
const unstorable = (text: string) => text.includes('\u0000') || UNPAIRED_SURROGATE.test(text);

/** Code points of a string, stopping once past `max`. */
function longerThan(text: string, max: number): boolean {
  if (text.length <= max) return false;
  let count = 0;
  for (const _ of text) if (++count > max) return true;
  return false;
}

function readName(body: JsonObject, mode: 'create' | 'update', issues: FieldIssue[]): string | undefined {
  if (mode === 'update' && !has(body, 'name')) return undefined;
  const value = body['name'];
  if (isBlank(value)) {
    issues.push(missingFieldIssue('name'));
    return undefined;
  }
  if (typeof value !== 'string') {
    issues.push(invalidFieldIssue('name', 'a string'));
    return undefined;
  }
  if (unstorable(value)) {
    issues.push(invalidFieldIssue('name', 'text without NUL characters or unpaired surrogates'));
    return undefined;
  }
  if (longerThan(value, NAME_MAX_LENGTH)) {
    issues.push(invalidFieldIssue('name', `at most ${NAME_MAX_LENGTH} characters`));
    return undefined;
  }
  return value;
}

function readNullableInt(body: JsonObject, field: string, issues: FieldIssue[]): number | null | undefined {
  if (!has(body, field)) return undefined;
  const value = body[field];
  if (value === null) return null;
  if (typeof value === 'number' && Number.isInteger(value) && Math.abs(value) <= 2 ** 31 - 1) return value;
  issues.push(invalidFieldIssue(field, 'an integer'));
  return undefined;
}

function readBoolean(body: JsonObject, field: string, issues: FieldIssue[]): boolean | undefined {
  if (!has(body, field)) return undefined;
  const value = body[field];
  if (typeof value === 'boolean') return value;
  issues.push(invalidFieldIssue(field, 'a boolean'));
  return undefined;
}

function readNullableUuid(body: JsonObject, field: string, issues: FieldIssue[]): string | null | undefined {
  if (!has(body, field)) return undefined;
  const value = body[field];
  if (value === null) return null;
  if (isUuid(value)) return value.toLowerCase();
  issues.push(invalidFieldIssue(field, 'a UUID or null'));
  return undefined;
}

const TRAILING_UUID = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/?$/i;

/** A related id given as a UUID or as a relation URI ending with one (the spec types input `id`s as URIs). */
function relatedId(item: unknown): string | null {
  const value = typeof item === 'object' && item !== null ? (item as JsonObject)['id'] : item;
  if (typeof value !== 'string') return null;
  const match = TRAILING_UUID.exec(value.trim());
  return match && (isUuid(value.trim()) || /^https?:\/\//i.test(value.trim())) ? match[1].toLowerCase() : null;
}

/** `documents` / `step_checklists`: an array of `{id}` objects (spec input shape), ids or URIs (output shape). */
function readIdList(body: JsonObject, field: string, issues: FieldIssue[]): string[] | undefined {
  if (!has(body, field)) return undefined;
  const value = body[field];
  const ids = Array.isArray(value) ? value.map(relatedId) : null;
  if (ids && ids.every((id): id is string => id !== null)) return ids;
  issues.push(invalidFieldIssue(field, 'an array of {"id": <uuid or URI>} objects'));
  return undefined;
}

/**
 * Parses a Step create/update body. `pipeline_id` and `sort_order` are read-only (2024 spec, §2.2): without
 * `validation-level` bit 8 they are rejected; with it they are accepted, and `pipeline_id` must name an existing
 * pipeline (a deleted one only with bit 16).
 */
export function parseStepInput(body: JsonObject, options: StepInputOptions): ParsedStepInput {
  const issues: FieldIssue[] = [];
  const values: StepValues = {};
  const name = readName(body, options.mode, issues);
  if (name !== undefined) values.name = name;
  if (has(body, 'description')) {
    const description = body['description'];
    if (typeof description === 'string' && unstorable(description)) {
      issues.push(invalidFieldIssue('description', 'text without NUL characters or unpaired surrogates'));
    } else if (description === null || typeof description === 'string') values.description = description;
    else issues.push(invalidFieldIssue('description', 'a string or null'));
  }
  const percent = readNullableInt(body, 'percent', issues);
  if (percent !== undefined) values.percent = percent;
  const timeframe = readNullableInt(body, 'timeframe', issues);
  if (timeframe !== undefined) values.timeframe = timeframe;
  for (const field of ['has_readonly_form', 'has_version_increment'] as const) {
    const flag = readBoolean(body, field, issues);
    if (flag !== undefined) values[field] = flag;
  }
  for (const field of ['lead_process_id', 'quote_process_id'] as const) {
    const id = readNullableUuid(body, field, issues);
    if (id !== undefined) values[field] = id;
  }
  for (const field of ['documents', 'step_checklists'] as const) {
    const ids = readIdList(body, field, issues);
    if (ids !== undefined) values[field] = ids;
  }

  const parsed: ParsedStepInput = { values, issues };
  if (!options.allowPlacement) return parsed;
  const override = (options.validationLevel & VALIDATION_OVERRIDE_READONLY) !== 0;
  if (has(body, 'pipeline_id')) {
    if (!override) {
      issues.push(readOnlyFieldIssue('Step', 'pipeline_id'));
    } else {
      const pipelineId = readNullableUuid(body, 'pipeline_id', issues);
      if (pipelineId) {
        const pipeline = options.store.pipeline(pipelineId);
        if (!pipeline) issues.push(missingRelationIssue('Step', 'pipeline_id', pipelineId, 'Pipeline'));
        else if (pipeline.is_deleted && (options.validationLevel & VALIDATION_ALLOW_DELETED_RELATION) === 0) {
          issues.push(deletedRelationIssue('Step', 'pipeline_id', pipelineId, 'Pipeline'));
        }
      }
      if (pipelineId !== undefined) parsed.pipelineId = pipelineId;
    }
  }
  if (has(body, 'sort_order')) {
    if (!override) {
      issues.push(readOnlyFieldIssue('Step', 'sort_order'));
    } else {
      const value = body['sort_order'];
      if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= SORT_ORDER_MAX) parsed.sortOrder = value;
      else issues.push(invalidFieldIssue('sort_order', `an integer from 0 to ${SORT_ORDER_MAX}`));
    }
  }
  return parsed;
}

/** One item of `Pipeline.steps` (spec `batchStepInput`): with `id` it updates that step, without it creates one. */
export interface ParsedPipelineStep {
  id?: string;
  input: ParsedStepInput;
}

export interface ParsedPipelineInput {
  values: { name?: string; color?: number };
  steps?: ParsedPipelineStep[];
  issues: FieldIssue[];
}

/**
 * Parses a Pipeline create/update body. Create requires `name`, `color` and a non-empty `steps` array
 * (spec `createPipelineInput.required`); on update, a step item's `id` must name a step of this pipeline.
 * @param pipelineId the updated pipeline (update only).
 */
export function parsePipelineInput(
  body: JsonObject,
  options: { mode: 'create' | 'update'; validationLevel: number; store: SandboxStore; pipelineId?: string },
): ParsedPipelineInput {
  const issues: FieldIssue[] = [];
  const parsed: ParsedPipelineInput = { values: {}, issues };
  const name = readName(body, options.mode, issues);
  if (name !== undefined) parsed.values.name = name;

  if (options.mode === 'create' || has(body, 'color')) {
    const color = body['color'];
    if (color === undefined || color === null) issues.push(missingFieldIssue('color'));
    else if (typeof color === 'number' && Number.isInteger(color)) parsed.values.color = color;
    else issues.push(invalidFieldIssue('color', 'an integer (24-bit RGB)'));
  }

  if (options.mode === 'create' || has(body, 'steps')) {
    const steps = body['steps'];
    if (steps === undefined || steps === null || (options.mode === 'create' && Array.isArray(steps) && steps.length === 0)) {
      issues.push(missingFieldIssue('steps'));
    } else if (!Array.isArray(steps)) {
      issues.push(invalidFieldIssue('steps', 'an array of Step objects'));
    } else {
      parsed.steps = [];
      steps.forEach((item: unknown, index) => {
        const where = `[steps][${index}]`;
        if (typeof item !== 'object' || item === null || Array.isArray(item)) {
          issues.push({ ...invalidFieldIssue('steps', 'an array of Step objects'), message: `${where} Invalid value: expected a Step object.` });
          return;
        }
        const stepBody = item as JsonObject;
        const id = stepBody['id'];
        let stepId: string | undefined;
        if (id !== undefined && id !== null) {
          const step = isUuid(id) ? options.store.step(id) : undefined;
          if (!step || step.is_deleted || !options.pipelineId || step.pipeline_id !== options.pipelineId) {
            issues.push({
              field: 'steps',
              code: 120,
              name: 'ERROR_RELATIONS_DOESNT_EXIST',
              message: `${where} Step ${String(id)} doesn't exist in this Pipeline!`,
            });
            return;
          }
          stepId = step.id;
        }
        const input = parseStepInput(stepBody, {
          mode: stepId ? 'update' : 'create',
          validationLevel: options.validationLevel,
          store: options.store,
          allowPlacement: false,
        });
        for (const issue of input.issues) {
          issues.push({ field: 'steps', code: issue.code, name: issue.name, message: `${where} ${issue.message}` });
        }
        parsed.steps?.push({ id: stepId, input });
      });
    }
  }
  return parsed;
}
