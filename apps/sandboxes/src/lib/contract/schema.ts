import { READ_ONLY_KEYWORD } from './ajv';

/**
 * OpenAPI 3.0 schema objects of Pipeliner's document turned into JSON Schema that ajv 8 compiles
 * (docs/pipeliner-sandbox.md "Contract tests"). Every rule here is a documented decision:
 *
 * - `$ref: '#/components/schemas/X'` is inlined (the document has no cycles; a cycle throws).
 * - `nullable: true` becomes a type union with `'null'` (and `null` joins an `enum`).
 * - A schema with `properties` and no `type` is an object (`Error`, `Step`, ... have no `type`, and without one
 *   a string would satisfy them, which breaks `oneOf: [uuid, Error]`).
 * - OpenAPI-only keywords (`example`, `readOnly`, `writeOnly`, `nullable`, `xml`, `externalDocs`) are dropped.
 * - Answers: a property outside `required` may be `null` (Pipeliner answers empty values as `null`; its document never
 *   says `nullable`). `expand` turns a relation into the related entity, `load-only` keeps `required` to the loaded
 *   fields, and un-expanded `Pipeline.steps` are URIs.
 * - Requests: read-only properties (of the input schema, or of the entity it writes) are never required; they are
 *   accepted with their entity type only when `validation-level` has bit 8, and rejected otherwise.
 */

/** A JSON Schema (or OpenAPI schema object) as plain data. */
export type SchemaObject = Record<string, unknown>;

/** A tree of dotted names, as `expand` and `load-only` give them (`pipeline.steps` -> pipeline -> steps). */
export type NameTree = Map<string, NameTree>;

/** What an answer holds for one entity: the relations expanded and, when given, the fields loaded. */
export interface EntityView {
  expand: NameTree;
  /** Undefined: every field (no `load-only`). */
  loadOnly?: NameTree;
}

/** A relation of an entity that `expand` can turn into the related entity. */
interface Relation {
  entity: string;
  many?: boolean;
  /** The schema of the un-expanded relation, when the document's own is not it. */
  unexpanded?: SchemaObject;
}

/**
 * Expandable relations between the document's entities. `Step.pipeline` is documented as "Relation to Pipeline. By
 * default it is returned as URI ... Using parameter 'expand', it will return full entity". `Pipeline.steps` is typed
 * as `batchStepInput` objects, an input schema reused in the output (even expanded Steps could not match it: their
 * `documents` are URIs, not `{id}` objects), so un-expanded it is validated as URIs, like every other relation of the
 * document, and expanded as Steps (pipeliner-api.md §3, sandbox guess 8).
 */
const RELATIONS: Record<string, Record<string, Relation>> = {
  Step: { pipeline: { entity: 'Pipeline' } },
  Pipeline: {
    steps: { entity: 'Step', many: true, unexpanded: { type: 'array', items: { type: 'string', format: 'uri' } } },
  },
};

const DROPPED_KEYWORDS = new Set(['example', 'readOnly', 'writeOnly', 'nullable', 'xml', 'externalDocs']);
const SCHEMA_REF = /^#\/components\/schemas\/([^/]+)$/;

const isObject = (value: unknown): value is SchemaObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Parses a comma list of dotted names (`id,name,pipeline.name`) into a tree. */
export function parseNameTree(text: string | null | undefined): NameTree | undefined {
  if (text === null || text === undefined) return undefined;
  const root: NameTree = new Map();
  for (const item of text.split(',')) {
    let node = root;
    for (const part of item.trim().split('.')) {
      if (part === '') break;
      let next = node.get(part);
      if (!next) {
        next = new Map();
        node.set(part, next);
      }
      node = next;
    }
  }
  return root;
}

/** A stable text of a tree, for cache keys. */
export function nameTreeKey(tree: NameTree | undefined): string {
  if (!tree) return '*';
  return [...tree.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, sub]) => (sub.size ? `${name}(${nameTreeKey(sub)})` : name))
    .join(',');
}

/** `schema` that also accepts `null` (OpenAPI 3.0 `nullable: true`). */
export function makeNullable(schema: SchemaObject): SchemaObject {
  const out: SchemaObject = { ...schema };
  if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  if (typeof out.type === 'string') {
    out.type = out.type === 'null' ? 'null' : [out.type, 'null'];
    return out;
  }
  if (Array.isArray(out.type)) {
    if (!out.type.includes('null')) out.type = [...out.type, 'null'];
    return out;
  }
  // No type: null already passes unless a combinator rules it out.
  if (out.oneOf || out.anyOf || out.allOf || out.not) return { anyOf: [out, { type: 'null' }] };
  return out;
}

/** Undoes {@link makeNullable}: `schema` without `null`. */
export function withoutNull(schema: SchemaObject): SchemaObject {
  if (Array.isArray(schema.anyOf) && schema.anyOf.length === 2 && isObject(schema.anyOf[1]) && schema.anyOf[1].type === 'null') {
    return schema.anyOf[0] as SchemaObject;
  }
  const out: SchemaObject = { ...schema };
  if (Array.isArray(out.enum)) out.enum = out.enum.filter((value) => value !== null);
  if (Array.isArray(out.type)) {
    const types = out.type.filter((type) => type !== 'null');
    out.type = types.length === 1 ? types[0] : types;
  }
  return out;
}

/** How a request body is converted. */
export interface RequestMode {
  side: 'request';
  /** `validation-level` has bit 8: read-only fields may be written. */
  allowReadOnly: boolean;
}

/** How an answer body is converted. */
export interface ResponseMode {
  side: 'response';
  /** The view of the first entity reached through a `$ref` (the envelope's `data`). */
  view: EntityView;
}

type Mode = RequestMode | ResponseMode;

/** Converts the document's schemas (see the module comment for the rules). */
export class SchemaConverter {
  constructor(private readonly components: Record<string, SchemaObject>) {}

  /** True when the document defines component schema `name`. */
  has(name: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.components, name);
  }

  /** Converts `schema` for one side of the exchange. @throws Error for an unknown or cyclic `$ref` */
  convert(schema: unknown, mode: Mode): SchemaObject {
    return this.node(schema, mode, []);
  }

  private component(name: string, stack: string[]): SchemaObject {
    if (!this.has(name)) throw new Error(`Pipeliner's OpenAPI document has no schema '${name}' (referenced as #/components/schemas/${name}).`);
    if (stack.includes(name)) throw new Error(`Cyclic $ref through ${[...stack, name].join(' -> ')}: the contract inlines references.`);
    return this.components[name];
  }

  private node(schema: unknown, mode: Mode, stack: string[], componentName?: string): SchemaObject {
    if (!isObject(schema)) throw new Error(`Not a schema object: ${JSON.stringify(schema)}`);
    if (typeof schema.$ref === 'string') {
      const match = SCHEMA_REF.exec(schema.$ref);
      if (!match) throw new Error(`Unsupported $ref '${schema.$ref}': only #/components/schemas/... is used by Pipeliner's document.`);
      const name = decodeURIComponent(match[1]);
      const target = this.component(name, stack);
      if (mode.side === 'response' && RELATIONS[name]) return this.entity(name, mode.view, [...stack, name]);
      return this.node(target, mode, [...stack, name], name);
    }

    const out: SchemaObject = {};
    for (const [key, value] of Object.entries(schema)) {
      if (DROPPED_KEYWORDS.has(key)) continue;
      if (key === 'properties' && isObject(value)) {
        out.properties = Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, this.node(sub, mode, stack)]));
      } else if ((key === 'items' || key === 'not' || key === 'additionalProperties') && isObject(value)) {
        out[key] = this.node(value, mode, stack);
      } else if ((key === 'allOf' || key === 'anyOf' || key === 'oneOf') && Array.isArray(value)) {
        out[key] = value.map((sub) => this.node(sub, mode, stack));
      } else {
        out[key] = Array.isArray(value) ? [...value] : value;
      }
    }
    if (isObject(out.properties) && out.type === undefined) out.type = 'object';
    if (isObject(out.properties) && isObject(schema.properties)) {
      if (mode.side === 'request') this.requestObject(out, schema.properties, mode, stack, componentName);
      else this.responseObject(out, schema.properties);
    }
    return schema.nullable === true ? makeNullable(out) : out;
  }

  /** Answers: `writeOnly` never required; optional properties may be null (Pipeliner's empty value). */
  private responseObject(out: SchemaObject, source: SchemaObject): void {
    const properties = out.properties as Record<string, SchemaObject>;
    const required = ((out.required as string[] | undefined) ?? []).filter((name) => !(isObject(source[name]) && source[name].writeOnly === true));
    if (out.required) out.required = required;
    for (const name of Object.keys(properties)) {
      if (!required.includes(name)) properties[name] = makeNullable(properties[name]);
    }
  }

  /**
   * Requests: read-only properties of this input schema and of the entity it writes (`createStepInput` -> `Step`)
   * are taken out of `required`, then typed (bit 8) or rejected (no bit 8).
   */
  private requestObject(out: SchemaObject, source: SchemaObject, mode: RequestMode, stack: string[], componentName?: string): void {
    const properties = out.properties as Record<string, SchemaObject>;
    const entityName = componentName ? this.entityOfInput(componentName) : undefined;
    const readOnly = new Map<string, unknown>();
    for (const [name, sub] of Object.entries(source)) if (isObject(sub) && sub.readOnly === true) readOnly.set(name, sub);
    if (entityName) {
      const entityProperties = this.components[entityName].properties;
      if (isObject(entityProperties)) {
        for (const [name, sub] of Object.entries(entityProperties)) {
          // The input's own declaration wins (`batchStepInput.id` is writable there).
          if (isObject(sub) && sub.readOnly === true && !Object.prototype.hasOwnProperty.call(source, name)) readOnly.set(name, sub);
        }
      }
    }
    if (Array.isArray(out.required)) out.required = out.required.filter((name) => !readOnly.has(String(name)));
    const owner = entityName ?? componentName ?? 'body';
    for (const [name, sub] of readOnly) {
      properties[name] = mode.allowReadOnly ? this.node(sub, mode, stack) : { [READ_ONLY_KEYWORD]: `${owner}.${name}` };
    }
  }

  /** `createStepInput` / `updateStepInput` / `batchStepInput` write a `Step`. */
  private entityOfInput(componentName: string): string | undefined {
    const match = /^(?:create|update|batch)(\w+)Input$/.exec(componentName);
    return match && this.has(match[1]) ? match[1] : undefined;
  }

  /** An entity in an answer, shaped by `expand` and `load-only`. */
  private entity(name: string, view: EntityView, stack: string[]): SchemaObject {
    const schema = this.node(this.components[name], { side: 'response', view }, stack, name);
    const properties = schema.properties as Record<string, SchemaObject>;
    const required = (schema.required as string[] | undefined) ?? [];
    for (const [field, relation] of Object.entries(RELATIONS[name] ?? {})) {
      const expand = view.expand.get(field);
      const loadOnly = view.loadOnly?.get(field);
      // A dotted load-only path through a relation (`pipeline.name`) needs the relation expanded.
      const expanded = expand !== undefined || (loadOnly !== undefined && loadOnly.size > 0);
      let property: SchemaObject;
      if (expanded) {
        const related = this.entity(
          relation.entity,
          { expand: expand ?? new Map(), loadOnly: loadOnly && loadOnly.size > 0 ? loadOnly : undefined },
          [...stack, relation.entity],
        );
        property = relation.many ? { type: 'array', items: related } : related;
      } else if (relation.unexpanded) {
        property = structuredClone(relation.unexpanded);
      } else {
        continue;
      }
      properties[field] = required.includes(field) ? property : makeNullable(property);
    }
    if (view.loadOnly) {
      const loaded = view.loadOnly;
      schema.required = required.filter((field) => loaded.has(field));
    }
    return schema;
  }
}
