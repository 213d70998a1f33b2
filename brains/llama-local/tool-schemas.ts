import type { ToolDefinition } from '../types.js';

/**
 * The client's tools in a form llama-server can take.
 *
 * With `--jinja`, llama-server compiles the JSON Schemas of all the tools of
 * a request into one grammar for the tool call, and refuses the whole request
 * (HTTP 400 "failed to parse grammar", before the model reads a word) when
 * one schema has a string length or an item count of 2000 or more (its
 * grammar parser's limit on repetitions) or a `pattern` it cannot compile
 * (an unanchored one, or any in a nested object, depending on the build).
 * OpenClaw's own `cron` tool has a `maxLength` of 65536, so one such tool
 * would leave the local model with no answer at all.
 *
 * Such a keyword is taken out of the schema and said in the description of
 * what it constrained, so the model still reads the limit, and the client,
 * which checks a call's arguments against its own schema, still enforces it.
 * Nothing else changes: names, types, enums and the other limits stay.
 */

/** llama.cpp's MAX_REPETITION_THRESHOLD: a bound this large or larger fails the grammar. */
const REPETITION_LIMIT = 2000;

const BOUNDS = {
  minLength: (n: unknown) => `at least ${n} characters`,
  maxLength: (n: unknown) => `at most ${n} characters`,
  minItems: (n: unknown) => `at least ${n} items`,
  maxItems: (n: unknown) => `at most ${n} items`,
} as const;

/** Keywords whose value is a map of schemas (by property or definition name). */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);
/** Keywords whose value is a schema or a list of schemas. */
const SCHEMA_CHILDREN = new Set([
  'items',
  'prefixItems',
  'additionalItems',
  'additionalProperties',
  'unevaluatedProperties',
  'unevaluatedItems',
  'contains',
  'propertyNames',
  'anyOf',
  'oneOf',
  'allOf',
  'not',
  'if',
  'then',
  'else',
]);

export interface GrammarSafeTools {
  tools: ToolDefinition[];
  /** What was moved into a description, e.g. `cron: job.trigger.script maxLength 65536`. */
  moved: string[];
}

export function grammarSafeTools(tools: ToolDefinition[]): GrammarSafeTools {
  const moved: string[] = [];
  const out = tools.map((tool) => {
    const params = tool.function.parameters;
    if (!params) return tool;
    const note = (path: string, what: string) =>
      moved.push(`${tool.function.name}: ${path ? `${path} ` : ''}${what}`);
    const cleaned = clean(params, '', note);
    if (cleaned === params) return tool;
    return { ...tool, function: { ...tool.function, parameters: cleaned as Record<string, unknown> } };
  });
  return { tools: out, moved };
}

/** The schema node without what llama-server cannot compile; the same object when nothing changed. */
function clean(node: unknown, path: string, note: (path: string, what: string) => void): unknown {
  if (Array.isArray(node)) {
    const items = node.map((n) => clean(n, path, note));
    return items.some((n, i) => n !== node[i]) ? items : node;
  }
  if (typeof node !== 'object' || node === null) return node;
  const schema = node as Record<string, unknown>;
  let changed = false;
  const said: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'pattern' && typeof value === 'string') {
      said.push(`matching the pattern ${value}`);
      note(path, `pattern ${value}`);
      changed = true;
      continue;
    }
    if (Object.hasOwn(BOUNDS, key) && typeof value === 'number' && value >= REPETITION_LIMIT) {
      said.push(BOUNDS[key as keyof typeof BOUNDS](value));
      note(path, `${key} ${value}`);
      changed = true;
      continue;
    }
    let next = value;
    if (SCHEMA_MAPS.has(key) && typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const entries = Object.entries(value).map(([name, sub]) => {
        const at =
          key === 'properties'
            ? path
              ? `${path}.${name}`
              : name
            : `${path}${path ? '.' : ''}${key}.${name}`;
        return [name, clean(sub, at, note)] as const;
      });
      if (entries.some(([name, sub]) => sub !== (value as Record<string, unknown>)[name])) {
        next = Object.fromEntries(entries);
      }
    } else if (SCHEMA_CHILDREN.has(key)) {
      next = clean(value, key === 'items' ? `${path}[]` : path, note);
    }
    if (next !== value) changed = true;
    out[key] = next;
  }
  if (!changed) return node;
  if (said.length > 0) {
    const limits = `(${said.join('; ')})`;
    out.description =
      typeof schema.description === 'string' && schema.description
        ? `${schema.description} ${limits}`
        : limits;
  }
  return out;
}
