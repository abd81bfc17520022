import { READ_ONLY_KEYWORD } from './ajv';

/**
 * OpenAPI schema objects turned into JSON Schema that ajv 8 compiles (docs/sandboxes.md "Contract checks"). Every
 * rule here is a documented decision:
 *
 * - A local `$ref` (`#/components/schemas/X`, or any `#/...` pointer into the document) is inlined; a cycle throws,
 *   and so does a reference to another file. In OpenAPI 3.0 the siblings of a `$ref` are ignored (as 3.0 says); in
 *   3.1 they apply too (`allOf` of the target and the siblings).
 * - OpenAPI 3.0: `nullable: true` becomes a type union with `'null'` (and `null` joins an `enum`); boolean
 *   `exclusiveMinimum` / `exclusiveMaximum` become the numeric form. OpenAPI 3.1 schemas are JSON Schema 2020-12 as
 *   they are.
 * - A schema with `properties` and no `type` is an object (without one a string would satisfy it).
 * - Annotations ajv does not know (`example`, `xml`, `externalDocs`, `discriminator`, `x-*` extensions, ...) are
 *   dropped, and so are `readOnly` / `writeOnly`, applied as below.
 * - Answers: a `writeOnly` property is never required. With the profile's `optionalMayBeNull` (Pipeliner), a property
 *   outside `required` may also be `null`. A profile's relations turn into the related entity when the request's
 *   view expands them, and its `loadOnly` keeps `required` to the loaded fields.
 * - Requests: a `readOnly` property (of the input schema, or of the entity the profile says it writes) is never
 *   required; it is accepted with its own type when the request may write read-only fields, and rejected otherwise.
 */

/** A JSON Schema (or OpenAPI schema object) as plain data. */
export type SchemaObject = Record<string, unknown>;

/** A tree of dotted names, as Pipeliner's `expand` and `load-only` give them (`pipeline.steps` -> pipeline -> steps). */
export type NameTree = Map<string, NameTree>;

/** What an answer holds for one entity: the relations expanded and, when given, the fields loaded. */
export interface EntityView {
  expand: NameTree;
  /** Undefined: every field. */
  loadOnly?: NameTree;
}

/** A relation of an entity that a view can expand into the related entity (both are component schemas). */
export interface Relation {
  entity: string;
  many?: boolean;
  /** The schema of the un-expanded relation, when the document's own is not it. */
  unexpanded?: SchemaObject;
}

/** How the converter reads a document: its dialect and the provider's rules. */
export interface SchemaProfile {
  /** `3.0` or `3.1`, from the document's `openapi`. */
  dialect: '3.0' | '3.1';
  /** Answers: a property outside `required` may be `null` (the provider answers empty values as null). Default false. */
  optionalMayBeNull?: boolean;
  /** Expandable relations by component schema name, then property name. Default none. */
  relations?: Record<string, Record<string, Relation>>;
  /** The entity schema an input schema writes (`createStepInput` -> `Step`), whose read-only fields it inherits. */
  inputEntity?(componentName: string): string | undefined;
}

const DROPPED_KEYWORDS = new Set([
  'example',
  'readOnly',
  'writeOnly',
  'nullable',
  'xml',
  'externalDocs',
  'discriminator',
  '$schema',
  '$id',
  '$anchor',
  '$dynamicAnchor',
]);
/** Keywords whose value is a map of names to schemas. */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'dependentSchemas', '$defs', 'definitions']);
/** Keywords whose value is one schema. */
const SCHEMA_VALUES = new Set([
  'items',
  'additionalItems',
  'additionalProperties',
  'not',
  'if',
  'then',
  'else',
  'contains',
  'propertyNames',
  'unevaluatedItems',
  'unevaluatedProperties',
]);
/** Keywords whose value is a list of schemas. */
const SCHEMA_LISTS = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems']);
/** `$ref` siblings that are only annotations (3.1). */
const REF_ANNOTATIONS = new Set(['$ref', 'description', 'summary', 'title', 'example', 'examples', 'deprecated']);
const COMPONENT_SCHEMA = /^#\/components\/schemas\/([^/]+)$/;

const isObject = (value: unknown): value is SchemaObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Parses a comma list of dotted names (`id,name,pipeline.name`) into a tree; undefined for no text. */
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
  // No type: null already passes unless a combinator (or a const) rules it out.
  if (out.oneOf || out.anyOf || out.allOf || out.not || 'const' in out) return { anyOf: [out, { type: 'null' }] };
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

/** How a request body (or a parameter) is converted. */
export interface RequestMode {
  side: 'request';
  /** The request may write read-only fields (Pipeliner: `validation-level` bit 8). */
  allowReadOnly: boolean;
}

/** How an answer body is converted. */
export interface ResponseMode {
  side: 'response';
  /** The view of the first related entity reached through a `$ref` (the envelope's `data`). */
  view: EntityView;
}

type Mode = RequestMode | ResponseMode;

/** Converts the document's schemas (see the module comment for the rules). */
export class SchemaConverter {
  private readonly components: Record<string, SchemaObject>;

  /** @param document the whole OpenAPI document (local `$ref`s are resolved in it) */
  constructor(
    private readonly document: SchemaObject,
    private readonly profile: SchemaProfile,
  ) {
    const components = isObject(document.components) && isObject(document.components.schemas) ? document.components.schemas : {};
    this.components = components as Record<string, SchemaObject>;
  }

  /** True when the document defines component schema `name`. */
  has(name: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.components, name);
  }

  /** Converts `schema` for one side of the exchange. @throws Error for an unresolvable, remote or cyclic `$ref` */
  convert(schema: unknown, mode: Mode): SchemaObject {
    return this.node(schema, mode, []);
  }

  /**
   * Resolves a local reference. @returns the target and, for `#/components/schemas/X`, the component name
   * @throws Error for a remote reference or a pointer to nothing
   */
  private resolve(ref: string): { target: unknown; component?: string } {
    const component = COMPONENT_SCHEMA.exec(ref);
    if (component) {
      const name = decodeURIComponent(component[1]);
      if (!this.has(name)) throw new Error(`The OpenAPI document has no schema '${name}' (referenced as ${ref}).`);
      return { target: this.components[name], component: name };
    }
    if (!ref.startsWith('#/') && ref !== '#') {
      throw new Error(`Unsupported $ref '${ref}': only references inside the document (#/...) are supported.`);
    }
    let target: unknown = this.document;
    for (const raw of ref.slice(2).split('/').filter((part, index) => index > 0 || part !== '')) {
      const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      target = isObject(target) || Array.isArray(target) ? (target as Record<string, unknown>)[part] : undefined;
    }
    if (target === undefined) throw new Error(`The OpenAPI document has nothing at ${ref}.`);
    return { target };
  }

  private node(schema: unknown, mode: Mode, stack: string[], componentName?: string): SchemaObject {
    if (!isObject(schema)) throw new Error(`Not a schema object: ${JSON.stringify(schema)}`);
    if (typeof schema.$ref === 'string') {
      const ref = schema.$ref;
      const { target, component } = this.resolve(ref);
      const key = component ?? ref;
      if (stack.includes(key)) throw new Error(`Cyclic $ref through ${[...stack, key].join(' -> ')}: the contract inlines references.`);
      const converted =
        component && mode.side === 'response' && this.profile.relations?.[component]
          ? this.entity(component, mode.view, [...stack, key])
          : this.node(target, mode, [...stack, key], component);
      const siblings = Object.keys(schema).filter((name) => !REF_ANNOTATIONS.has(name));
      if (this.profile.dialect === '3.1' && siblings.length > 0) {
        const rest = Object.fromEntries(siblings.map((name) => [name, schema[name]]));
        return { allOf: [converted, this.node(rest, mode, stack)] };
      }
      return converted;
    }
    if (typeof schema.$dynamicRef === 'string') throw new Error(`Unsupported $dynamicRef '${schema.$dynamicRef}'.`);

    const sub = (value: unknown) => (typeof value === 'boolean' ? value : this.node(value, mode, stack));
    const out: SchemaObject = {};
    for (const [key, value] of Object.entries(schema)) {
      if (DROPPED_KEYWORDS.has(key) || key.startsWith('x-')) continue;
      if (SCHEMA_MAPS.has(key) && isObject(value)) {
        out[key] = Object.fromEntries(Object.entries(value).map(([name, item]) => [name, sub(item)]));
      } else if (SCHEMA_VALUES.has(key) && (isObject(value) || typeof value === 'boolean')) {
        out[key] = sub(value);
      } else if (SCHEMA_LISTS.has(key) && Array.isArray(value)) {
        out[key] = value.map(sub);
      } else {
        out[key] = Array.isArray(value) ? [...value] : value;
      }
    }
    if (this.profile.dialect === '3.0') exclusiveBounds(out);
    if (isObject(out.properties) && out.type === undefined) out.type = 'object';
    if (isObject(out.properties) && isObject(schema.properties)) {
      if (mode.side === 'request') this.requestObject(out, schema.properties, mode, stack, componentName);
      else this.responseObject(out, schema.properties);
    }
    return this.profile.dialect === '3.0' && schema.nullable === true ? makeNullable(out) : out;
  }

  /** Answers: `writeOnly` never required; with `optionalMayBeNull`, optional properties may be null. */
  private responseObject(out: SchemaObject, source: SchemaObject): void {
    const properties = out.properties as Record<string, SchemaObject>;
    const required = ((out.required as string[] | undefined) ?? []).filter((name) => !(isObject(source[name]) && source[name].writeOnly === true));
    if (out.required) out.required = required;
    if (!this.profile.optionalMayBeNull) return;
    for (const name of Object.keys(properties)) {
      if (!required.includes(name) && isObject(properties[name])) properties[name] = makeNullable(properties[name]);
    }
  }

  /**
   * Requests: read-only properties of this input schema and of the entity it writes are taken out of `required`,
   * then typed (the request may write them) or rejected.
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
          // The input's own declaration wins (Pipeliner's `batchStepInput.id` is writable there).
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

  /** The entity an input schema writes, when the profile names one the document defines. */
  private entityOfInput(componentName: string): string | undefined {
    const entity = this.profile.inputEntity?.(componentName);
    return entity && this.has(entity) ? entity : undefined;
  }

  /** An entity in an answer, shaped by the view: relations expanded, `required` limited to the loaded fields. */
  private entity(name: string, view: EntityView, stack: string[]): SchemaObject {
    const schema = this.node(this.components[name], { side: 'response', view }, stack, name);
    const properties = (isObject(schema.properties) ? schema.properties : {}) as Record<string, SchemaObject>;
    const required = (schema.required as string[] | undefined) ?? [];
    for (const [field, relation] of Object.entries(this.profile.relations?.[name] ?? {})) {
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
      const nullable = !required.includes(field) && this.profile.optionalMayBeNull;
      properties[field] = nullable ? makeNullable(property) : property;
    }
    if (view.loadOnly) {
      const loaded = view.loadOnly;
      schema.required = required.filter((field) => loaded.has(field));
    }
    return schema;
  }
}

/** OpenAPI 3.0 (draft-04 style) boolean `exclusiveMinimum`/`exclusiveMaximum` to the numeric form ajv compiles. */
function exclusiveBounds(out: SchemaObject): void {
  for (const [exclusive, bound] of [
    ['exclusiveMinimum', 'minimum'],
    ['exclusiveMaximum', 'maximum'],
  ] as const) {
    if (typeof out[exclusive] !== 'boolean') continue;
    if (out[exclusive] === true && typeof out[bound] === 'number') {
      out[exclusive] = out[bound];
      delete out[bound];
    } else {
      delete out[exclusive];
    }
  }
}
