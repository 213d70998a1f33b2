/**
 * `npm run config-docs`: writes docs/configuration.md, the reference of every
 * field of brainstem.json, from the zod schemas themselves (their `.describe()`
 * texts and defaults), so the reference cannot drift from the code.
 * test/config-docs.test.ts fails when the committed file is out of date.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { configSchemas, defaultModes } from '../src/config.js';
import { toolsConfigSchemas } from '../src/tools/config.js';

export const CONFIG_DOCS_PATH = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));

/** The part of JSON Schema that zod 4 writes for these schemas. */
interface Schema {
  type?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: Schema | boolean;
  propertyNames?: Schema;
  items?: Schema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
}

interface Row {
  field: string;
  type: string;
  default: string;
  what: string;
}

const jsonSchema = (schema: z.ZodType): Schema =>
  z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Schema;

/** Every field under `schema`, depth first, named by its dotted path (`<id>` for a map key). */
function rows(schema: Schema, prefix: string, required: boolean, out: Row[]): Row[] {
  const what = schema.description;
  if (prefix && what === undefined) throw new Error(`config field ${prefix} has no .describe() text`);
  const object = objectOf(schema);
  if (prefix) {
    out.push({
      field: `\`${prefix}\``,
      type: typeOf(schema),
      default: defaultOf(schema, required, object !== undefined),
      what: what ?? '',
    });
  }
  if (object?.properties) {
    const req = new Set(object.required ?? []);
    for (const [key, child] of Object.entries(object.properties)) {
      rows(child, prefix ? `${prefix}.${key}` : key, req.has(key), out);
    }
  }
  const entry = mapEntry(object ?? schema);
  if (entry && objectOf(entry)?.properties) {
    const inner = objectOf(entry) as Schema;
    const req = new Set(inner.required ?? []);
    for (const [key, child] of Object.entries(inner.properties ?? {})) {
      rows(child, `${prefix}.<${keyName(prefix)}>.${key}`, req.has(key), out);
    }
  }
  return out;
}

/** The object a field holds (also when it may be `false` instead), if it holds one with fields. */
function objectOf(s: Schema): Schema | undefined {
  if (s.type === 'object' && s.properties) return s;
  return s.anyOf?.find((x) => x.type === 'object' && x.properties);
}

/** The value schema of a map field (`modes`, `llama.models`, `tools.shortcuts`…). */
function mapEntry(s: Schema): Schema | undefined {
  if (s.type !== 'object' || s.properties || typeof s.additionalProperties !== 'object') return undefined;
  return s.additionalProperties;
}

function keyName(prefix: string): string {
  if (prefix === 'modes') return 'id';
  if (prefix.endsWith('shortcuts')) return 'word';
  return 'name';
}

function typeOf(s: Schema): string {
  if (s.anyOf) return s.anyOf.map(typeOf).join(' or ');
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' \\| ');
  switch (s.type) {
    case 'string':
      return stringType(s);
    case 'boolean':
      return 'boolean';
    case 'integer':
    case 'number':
      return `${s.type === 'integer' ? 'integer' : 'number'}${range(s)}`;
    case 'array': {
      const item = s.items ?? {};
      if (item.type === 'array') return 'list of argv';
      if (isArgv(s)) return 'argv (list of strings)';
      return `list of ${plural(typeOf(item))}`;
    }
    case 'object': {
      if (s.properties) return 'object';
      const entry = mapEntry(s);
      if (!entry) return 'object';
      if (objectOf(entry)) return `map of ${typeOf(entry)}`;
      return `map of ${plural(typeOf(entry))}`;
    }
    default:
      return 'any JSON';
  }
}

/** What a string field holds, by the check zod wrote for it. */
function stringType(s: Schema): string {
  if (s.format === 'uri') return 'URL';
  if (s.format === 'date-time') return 'ISO date-time';
  // A leading slash in the pattern: a path (the front's prefix), not a name.
  if (s.pattern?.startsWith('^\\/')) return 'path';
  return s.pattern ? 'name' : 'string';
}

const isArgv = (s: Schema) => s.type === 'array' && s.items?.type === 'string' && s.minItems === 1;

function plural(type: string): string {
  if (type === 'argv (list of strings)') return 'argv';
  return /^(string|name|URL|integer|number|boolean|object)/.test(type) ? type.replace(/^(\w+)/, '$1s') : type;
}

/** The bounds a user can meet; zod's ±MAX_SAFE_INTEGER for `.int()` says nothing. */
function range(s: Schema): string {
  const max = s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER ? s.maximum : undefined;
  const min = s.minimum !== undefined && s.minimum > Number.MIN_SAFE_INTEGER ? s.minimum : undefined;
  if (s.exclusiveMinimum !== undefined) {
    return max !== undefined ? ` > ${s.exclusiveMinimum}, ≤ ${max}` : ` > ${s.exclusiveMinimum}`;
  }
  if (min !== undefined && max !== undefined) return ` ${min}–${max}`;
  if (min !== undefined) return ` ≥ ${min}`;
  return max !== undefined ? ` ≤ ${max}` : '';
}

function defaultOf(s: Schema, required: boolean, holdsFields: boolean): string {
  if (required) return 'required';
  if (s.default === undefined) return 'unset';
  // An object's default is the defaults of its fields, listed with them.
  return holdsFields ? '' : `\`${JSON.stringify(s.default)}\``;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(list: Row[]): string {
  const lines = ['| field | type | default | what it does |', '|---|---|---|---|'];
  for (const r of list) lines.push(`| ${r.field} | ${r.type} | ${r.default} | ${cell(r.what)} |`);
  return lines.join('\n');
}

/** The whole reference, as written to docs/configuration.md. */
export function renderConfigDocs(): string {
  const main = jsonSchema(configSchemas().configSchema);
  const tools = jsonSchema(toolsConfigSchemas().toolsConfigSchema);
  const all = rows(main, '', false, []);
  // The `tools` section is parsed by the tools part with its own schema: its fields are listed from there.
  const toolRows = rows({ ...tools, description: '' }, 'tools', false, []).slice(1);
  const top = all.filter((r) => !r.field.includes('.'));
  const sections: string[] = [];
  for (const head of top) {
    const name = head.field.replace(/`/g, '');
    const inside = all.filter((r) => r.field.startsWith(`\`${name}.`));
    if (inside.length === 0 && name !== 'tools') continue;
    sections.push(`## ${head.field}\n\n${head.what}\n\n${table(name === 'tools' ? toolRows : inside)}`);
  }
  const scalars = top.filter(
    (r) => !all.some((x) => x.field.startsWith(`${r.field.slice(0, -1)}.`)) && r.field !== '`tools`',
  );
  const modes = Object.entries(defaultModes()).map(([id, m]) => ({
    field: `\`${id}\``,
    type: `\`${m.kind}\``,
    default: (m.aliases ?? []).map((a) => `\`${a}\``).join(', '),
    what: `${m.description ?? ''}${m.allowedTools?.length ? `; allowedTools: ${m.allowedTools.join(', ')}` : ''}`,
  }));
  return `${[
    '# Configuration reference',
    'Generated by `npm run config-docs` from the zod schemas in `src/config.ts` and `src/tools/config.ts` (their `.describe()` texts and defaults); do not edit it by hand: `npm test` fails when it is out of date.',
    '`brainstem.json` (path in `BRAINSTEM_CONFIG`, default `./brainstem.json`) holds one JSON object. Every field is optional; an unknown or wrong field stops start-up with one line per problem, naming the field. Environment variables, named below, override the file. Relative paths are resolved against the working directory, those under `tools` against the directory of the config file.',
    `## Top level\n\n${table(scalars)}`,
    ...sections,
    `## Built-in modes\n\nThey exist without any configuration; \`modes.<id>\` with one of these ids replaces it whole.\n\n${table(modes).replace('| field | type | default | what it does |', '| id | kind | aliases | what it is |')}`,
  ].join('\n\n')}\n`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(CONFIG_DOCS_PATH, renderConfigDocs());
  console.log(`wrote ${path.relative(process.cwd(), CONFIG_DOCS_PATH)}`);
}
