import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chatRequestSchema } from '../handlers/http/openai-schema.js';
import { parseRunArgs } from '../handlers/telegram/commands/run-args.js';
import { loadConfig } from '../src/config.js';
import { errorCodes } from '../src/errors.js';
import { isToolName, TOOL_INPUTS } from '../src/tools/inputs.js';
import { parseSince } from '../src/usage-summary.js';

/**
 * The README is true to the code, both ways, by reading files only (no
 * service starts): the routes it names are registered and every registered
 * route is named, every environment variable brainstem reads is named and
 * every one of brainstem's own it names is read, the files and data-dir
 * names it gives exist, and the defaults it states are the config's.
 * test/tools-api.test.ts ("what the README names") checks the rest against a
 * running service: config fields, npm scripts, the routes answering, the
 * command tables, the brainstem.json examples.
 */
const root = path.join(import.meta.dirname, '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
const readme = read('README.md');
/** The README with line breaks as spaces: a claim may wrap. */
const flat = readme.replace(/\s+/g, ' ');
/**
 * The text of every code span, in order, as Markdown reads them: a span opened by N backticks ends at
 * the next run of exactly N (``not logged in: run `claude /login` `` is one span), outside code blocks.
 */
const spans = [
  ...readme.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '').matchAll(/(?<!`)(`+)(?!`)([\s\S]+?)(?<!`)\1(?!`)/g),
].map((m) => (m[2] ?? '').replace(/\s+/g, ' ').replace(/^ (.*) $/, '$1'));

/** Every .ts file under `dir` (relative to the repository), recursively. */
function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(?:ts|cjs|mjs)$/.test(e.name))
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)));
}

/** The built-in defaults: no brainstem.json (a checkout may hold one), no variable set. */
const empty = mkdtempSync(path.join(tmpdir(), 'readme-'));
const defaults = loadConfig({ HOME: empty }, empty);

/** The code brainstem runs, and what its owner runs beside it (the bench, the scripts). */
const served = ['src', 'brains', 'handlers'].flatMap(sources);
const tooling = ['scripts', 'bench'].flatMap(sources);

describe('the README and the HTTP routes', () => {
  const METHODS = 'GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS';
  /** `app.get('/v1/models/*', …)` → GET /v1/models/*, from the HTTP face's files. */
  const registered = sources('handlers/http').flatMap((file) =>
    [
      ...read(file).matchAll(/\bapp\.(get|post|put|delete|patch|head|options)(?:<[^(]*>)?\(\s*'([^']+)'/g),
    ].map((m) => ({ method: (m[1] ?? '').toUpperCase(), path: m[2] ?? '', file })),
  );
  /** The Bot API front serves every method of every path under its prefix (handlers/telegram-front/routes.ts). */
  const frontPrefix = defaults.telegram.front.prefix;
  /** A route pattern as a RegExp: `:tool` and `*` take one path segment or more. */
  const pattern = (p: string) =>
    new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:\w+|\\\*|\*/g, '[^?#]+')}$`);
  /** A path as the README writes it, its placeholders (`<tool>`, `{id}`) filled in. */
  const concrete = (p: string) => p.replace(/<[^>]+>|\{[^}]+\}/g, 'x').replace(/[?#].*$/, '');
  const isServed = (method: string | undefined, p: string) =>
    p === frontPrefix ||
    p.startsWith(`${frontPrefix}/`) ||
    registered.some(
      (r) =>
        (method === undefined || r.method === method) &&
        // A bare first segment names the endpoint's base (`/v1`, the provider's baseUrl).
        (pattern(r.path).test(concrete(p)) || (/^\/[\w-]+$/.test(p) && r.path.startsWith(`${p}/`))),
    );

  it('reads the routes it checks', () => {
    expect(registered.map((r) => `${r.method} ${r.path}`)).toEqual(
      expect.arrayContaining(['GET /health', 'POST /v1/chat/completions', 'POST /api/:tool', 'POST /mcp']),
    );
  });

  it('every route the README names, with or without its method, is registered', () => {
    // `GET /props` and `<server>/health` are llama-server's, named where the README tells how brainstem polls it.
    const upstream = new Set(['/props']);
    const withMethod = [...flat.matchAll(new RegExp(`\\b(${METHODS}) \`?(/[^\\s\`,)]*)`, 'g'))]
      .map((m) => ({ method: m[1], path: m[2] ?? '' }))
      .filter((r) => !upstream.has(r.path));
    expect(withMethod.length).toBeGreaterThan(8);
    expect(withMethod.filter((r) => !isServed(r.method, r.path)).map((r) => `${r.method} ${r.path}`)).toEqual(
      [],
    );
    // A bare path of brainstem's own (`/mcp`, `/v1/models`), and a URL on its port (`127.0.0.1:9090/telegram`).
    const port = defaults.server.port;
    const bare = [
      ...spans.filter((s) => /^\/(?:v1|api|mcp|health)(?:[/?]|$)/.test(s)),
      ...[...flat.matchAll(new RegExp(`(?:localhost|127\\.0\\.0\\.1):${port}(/[^\\s\`'"]*)`, 'g'))].map(
        (m) => m[1] ?? '',
      ),
    ].map((s) => s.split(' ')[0] ?? '');
    expect(bare.length).toBeGreaterThan(5);
    expect(bare.filter((p) => !isServed(undefined, p))).toEqual([]);
  });

  it('every registered route is named in the README', () => {
    /** How the README writes a pattern: `:tool` as `<tool>`, a trailing `*` as `{id}`. */
    const written = (p: string) => [p, p.replace(/:(\w+)/g, '<$1>'), p.replace(/\/\*$/, '/{id}')];
    const named = (p: string) =>
      written(p).some((w) => spans.some((s) => s === w || s.startsWith(`${w}?`)) || flat.includes(` ${w}`));
    expect(registered.filter((r) => !named(r.path)).map((r) => `${r.method} ${r.path} (${r.file})`)).toEqual(
      [],
    );
    // And the front, under its default prefix.
    expect(spans).toContain(frontPrefix);
  });
});

describe('the README and the environment', () => {
  /** Variables read as `process.env.X`, `env.X` or `env['X']` in `files`, with where. */
  const readIn = (files: string[]) =>
    new Map(
      files.flatMap((file) =>
        [
          ...read(file).matchAll(
            /\b(?:process\.env|env)(?:\.([A-Z][A-Z0-9_]+)|\[['"]([A-Z][A-Z0-9_]+)['"]\])/g,
          ),
        ].map((m) => [m[1] ?? m[2] ?? '', file] as const),
      ),
    );
  /** Each variable the README names in a code span or a shell line (`BENCH_ONLY=x npm run bench`). */
  const named = new Set([
    ...spans.flatMap((s) => [...s.matchAll(/\b([A-Z][A-Z0-9]*_[A-Z0-9_]+)\b/g)].map((m) => m[1] ?? '')),
    ...[...flat.matchAll(/\b([A-Z][A-Z0-9_]+)=/g)].map((m) => m[1] ?? ''),
  ]);
  /** A variable the README names anywhere, as a word of its own (TMPDIR in the CLI's allow-list). */
  const mentioned = (v: string) => named.has(v) || new RegExp(`(?<![\\w$])${v}(?![\\w])`).test(flat);
  /** What every program reads and no one documents: the system's own. */
  const SYSTEM = new Set(['HOME', 'PATH']);

  it('names every variable brainstem, its scripts and its bench read', () => {
    const read = readIn([...served, ...tooling]);
    expect(read.size).toBeGreaterThan(20);
    // bench/startup.ts's PORT is read by the bare server it spawns as the floor, given by the bench itself.
    const unnamed = [...read]
      .filter(
        ([v, file]) => !mentioned(v) && !SYSTEM.has(v) && !(v === 'PORT' && file === 'bench/startup.ts'),
      )
      .map(([v, file]) => `${v} (${file})`);
    expect(unnamed).toEqual([]);
  });

  it('every variable of brainstem’s own it names is read somewhere', () => {
    // Its own: the prefixes brainstem, its bench, its scripts and its tests use (the others it names
    // are Claude Code's, Node's, OpenClaw's or a user's, passed through or given as examples).
    const own = [...named].filter((v) => /^(?:BRAINSTEM|TELEGRAM|LLAMA|BENCH|OPENCLAW|NODE24)/.test(v));
    expect(own.length).toBeGreaterThan(10);
    const everywhere = [
      ...served,
      ...tooling,
      ...sources('test/helpers'),
      'ecosystem.config.cjs',
      '.ci/run',
    ].map(read);
    expect(own.filter((v) => !everywhere.some((text) => new RegExp(`\\b${v}\\b`).test(text)))).toEqual([]);
  });
});

describe('the README and the HTTP headers', () => {
  it('every `x-…` header it names is one brainstem reads or sends', () => {
    const named = new Set(spans.flatMap((s) => /^(x-[a-z-]+)/.exec(s)?.[1] ?? []));
    expect(named.size).toBeGreaterThan(5);
    const code = served.map(read).join('\n');
    expect([...named].filter((h) => !new RegExp(`['"\`]${h}['"\`:]`).test(code))).toEqual([]);
  });
});

describe('the README and the mode fields one kind refuses', () => {
  it('names the fields src/config.ts refuses on the other kind, and no other', () => {
    const source = read('src/config.ts');
    const list = (name: string) =>
      [...(new RegExp(`const ${name} = \\[([^\\]]*)\\]`).exec(source)?.[1] ?? '').matchAll(/'(\w+)'/g)].map(
        (m) => m[1],
      );
    // `toolFilter` on a Claude mode is refused by a check of its own (crossProblems).
    expect(source).toMatch(/m\.toolFilter && m\.kind !== 'llama'/);
    const said = /read, which would change nothing: (.*?) on a llama mode, (.*?) on a Claude one\./.exec(
      flat,
    );
    const names = (text: string | undefined) =>
      [...(text ?? '').matchAll(/`(\w+)`/g)].map((m) => m[1]).sort();
    expect(names(said?.[1])).toEqual(list('CLAUDE_ONLY').sort());
    expect(names(said?.[2])).toEqual([...list('LLAMA_ONLY'), 'toolFilter'].sort());
  });
});

describe('the README and the tools', () => {
  it('lists every tool `POST /api/<tool>` runs, and counts them right', () => {
    const list = /`POST \/api\/<tool>` runs one \(([^)]*)\)/.exec(flat)?.[1] ?? '';
    const listed = [...list.matchAll(/`(\w+)`/g)].map((m) => m[1] ?? '');
    expect(listed.sort()).toEqual(Object.keys(TOOL_INPUTS).sort());
    const count = /with all (\d+) brainstem tools/.exec(flat)?.[1];
    expect(Number(count)).toBe(Object.keys(TOOL_INPUTS).length);
  });
});

describe('the README and the OpenAI request fields', () => {
  it('its "Request fields" table names every field the endpoint\'s schema knows, and no other', () => {
    const lines = readme.split('\n');
    const start = lines.indexOf('| field | local (llama-server, Ollama) | Claude modes |');
    expect(start).toBeGreaterThan(-1);
    const end = lines.findIndex((l, i) => i > start && !l.startsWith('|'));
    // A row's first cell: `temperature`, `store: true`, `stream_options.include_usage`, a message's `name`…
    const cells = lines.slice(start + 2, end).map((row) => row.split(' | ')[0] ?? '');
    const named = new Set(
      cells.flatMap((c) => [...c.matchAll(/`([a-z_]+(?:\.[a-z_]+)?)(?::[^`]*)?`/g)].map((m) => m[1] ?? '')),
    );
    const shape = chatRequestSchema.shape;
    const options = shape.stream_options.unwrap().unwrap().shape;
    // `stream_options` is named by its keys.
    const fields = [
      ...Object.keys(shape).filter((k) => k !== 'stream_options'),
      ...Object.keys(options).map((k) => `stream_options.${k}`),
    ];
    expect(fields.filter((f) => !named.has(f))).toEqual([]);
    // What a message or a part holds (a message's `name`, `tool` messages and their `tool_call_id`,
    // `text` and `refusal` parts) and a field's values (`response_format`'s types, `verbosity` other than `medium`).
    const inside = new Set([
      'name',
      'content',
      'tool',
      'tool_call_id',
      'text',
      'image_url',
      'file',
      'input_audio',
      'refusal',
      'json_object',
      'json_schema',
      'medium',
    ]);
    expect([...named].filter((n) => !fields.includes(n) && !inside.has(n))).toEqual([]);
  });
});

describe('the README and the Telegram commands’ arguments', () => {
  it('every period its /usage row names is one /usage takes', () => {
    const row = readme.split('\n').find((l) => l.startsWith('| `/usage'));
    const cell = row?.split(' | ')[0] ?? '';
    // `/usage [7d\|30d\|…]`, then the other spellings in their own spans (`30m`, `7j`…).
    const bracket = /`\/usage \[([^\]]*)\]`/.exec(cell)?.[1] ?? '';
    const periods = [
      ...bracket.split('\\|'),
      ...[...cell.matchAll(/`([^`]*)`/g)].map((m) => m[1] ?? '').filter((p) => !p.startsWith('/')),
    ].filter((p) => p !== '');
    expect(periods.length).toBeGreaterThan(10);
    const now = Date.parse('2026-06-15T12:00:00Z');
    expect(periods.filter((p) => !((parseSince(p, now) ?? Number.POSITIVE_INFINITY) <= now))).toEqual([]);
  });

  it('every `/run <tool> …` example it gives is taken by the tool', () => {
    const examples = spans.flatMap((s) => {
      const m = /^\/run (\w+) (.+)$/.exec(s.replace(/<\w+>/g, 'x'));
      return m && isToolName(m[1] ?? '')
        ? [{ tool: m[1] as keyof typeof TOOL_INPUTS, args: m[2] ?? '' }]
        : [];
    });
    expect(examples.length).toBeGreaterThanOrEqual(4);
    const refused = examples.flatMap(({ tool, args }) => {
      const parsed = parseRunArgs(args, 'en');
      if (!parsed.ok) return [`/run ${tool} ${args}: ${parsed.error}`];
      const checked = TOOL_INPUTS[tool](defaults.tools).safeParse(parsed.input);
      return checked.success ? [] : [`/run ${tool} ${args}: ${checked.error.message}`];
    });
    expect(refused).toEqual([]);
  });
});

describe('the README and the error codes', () => {
  it('every `status code` it gives is the status brainstem answers that code with', () => {
    /** `model_not_loaded` → 400, and each OpenAI error type → the statuses it comes with. */
    const statuses = new Map<string, Set<number>>();
    for (const [code, e] of Object.entries(errorCodes)) {
      for (const name of [code.toLowerCase(), e.type])
        statuses.set(name, (statuses.get(name) ?? new Set()).add(e.status));
    }
    // llama-server's own code, quoted where the README says what brainstem makes of it; `400 `initialize``
    // is a count of MCP requests in a benchmark.
    const theirs = new Set(['exceed_context_size_error', 'initialize']);
    const pairs = [...flat.matchAll(/\b([1-5]\d\d) `([a-z_]+)`/g)]
      .map((m) => ({ status: Number(m[1]), code: m[2] ?? '' }))
      .filter((p) => !theirs.has(p.code));
    expect(pairs.length).toBeGreaterThan(5);
    expect(pairs.filter((p) => !statuses.get(p.code)?.has(p.status))).toEqual([]);
  });
});

describe('the README and the files', () => {
  it('every file of the repository it names exists, the layout’s short names included', () => {
    // A path whose first folder is one of the repository's (what runs or builds, not bench/results/,
    // which the bench writes), and the files at its top (`ecosystem.config.cjs`).
    const top = readdirSync(root, { withFileTypes: true }).filter(
      (e) => !['data', 'dist', 'node_modules'].includes(e.name),
    );
    const dirs = top.filter((e) => e.isDirectory()).map((e) => e.name);
    const files = spans.filter(
      (s) =>
        (/^(?:\.?[\w-]+\/)+[\w.-]*$/.test(s) &&
          dirs.includes(s.split('/')[0] ?? '') &&
          !s.startsWith('bench/results/')) ||
        /^[\w-]+\.config\.\w+$/.test(s),
    );
    expect(files.length).toBeGreaterThan(30);
    expect(files.filter((f) => !existsSync(path.join(root, f)))).toEqual([]);

    // The Layout list names files by their short names after their folder (`src/chat/`: `turns.ts`, …).
    const layout = readme.slice(readme.indexOf('\nLayout '));
    const items = layout.split(/\n- /).slice(1);
    expect(items.length).toBeGreaterThan(8);
    const missing: string[] = [];
    for (const item of items) {
      const itemSpans = [...item.replace(/\s+/g, ' ').matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
      let base = '';
      let dir = '';
      for (const s of itemSpans) {
        if (/^(?:[\w-]+\/)+$/.test(s)) {
          // A folder: from the repository's top (the item's own), or one inside the item's folder.
          const fromTop = dirs.includes(s.split('/')[0] ?? '');
          if (fromTop) base = s;
          dir = fromTop ? s : path.join(base, s);
          if (!existsSync(path.join(root, dir))) missing.push(dir);
        } else if (/^[\w-]+\.ts$/.test(s) && !existsSync(path.join(root, dir, s))) {
          missing.push(path.join(dir, s));
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it('every name it gives in the data dir is one the code makes', () => {
    // `data/outbox/telegram_<chat>-<hmac>/` → outbox; `<dataDir>/api-token` → api-token.
    const names = new Set(
      spans.flatMap((s) => [...s.matchAll(/(?:^|\s)(?:data|<dataDir>)\/([\w.-]+)/g)].map((m) => m[1] ?? '')),
    );
    expect(names.size).toBeGreaterThan(5);
    const code = served.map(read).join('\n');
    expect([...names].filter((n) => !code.includes(`'${n}'`) && !code.includes(`\`${n}`))).toEqual([]);
  });
});

describe('the README and the npm scripts', () => {
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };

  it('every `npm run x` names a script, also when the line wraps after `run`', () => {
    const named = [...flat.matchAll(/\bnpm run (?:-s )?([\w-]+)/g)].map((m) => m[1] ?? '');
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((s) => pkg.scripts[s] === undefined)).toEqual([]);
  });

  it('what it says `npm start` runs is the start script', () => {
    const said = spans.find(
      (s) => s.startsWith('node ') && s.endsWith('dist/src/main.js') && s.includes('--'),
    );
    expect(said).toBe(pkg.scripts.start);
    expect(flat).toContain(`its \`prestart\` is \`${pkg.scripts.prestart}\``);
  });
});

describe('the defaults the README states', () => {
  const config = defaults as unknown as Record<string, unknown>;
  const valueAt = (field: string) =>
    field.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], config);
  /** `10 s`, `3 minutes`, `7 days`, `25 MiB`, `256` → a number in the field's own unit (its name's suffix). */
  const amount = (field: string, text: string): number | undefined => {
    const m = /^(\d[\d,.]*)(?: ?(ms|s|min|minutes?|hours?|days?|MiB|KiB|MB))?\b/.exec(text);
    if (!m) return undefined;
    const n = Number((m[1] ?? '').replace(/,/g, ''));
    const ms = {
      ms: 1,
      s: 1000,
      min: 60_000,
      minute: 60_000,
      minutes: 60_000,
      hour: 3_600_000,
      hours: 3_600_000,
    };
    const unit = m[2];
    if (unit === undefined) return n;
    if (unit === 'day' || unit === 'days') return field.endsWith('Hours') ? n * 24 : n * 86_400_000;
    if (unit === 'MiB' || unit === 'MB') return n * 1024 * 1024;
    if (unit === 'KiB') return n * 1024;
    const inMs = n * (ms[unit as keyof typeof ms] ?? Number.NaN);
    return field.endsWith('Ms') ? inMs : field.endsWith('Minutes') ? inMs / 60_000 : inMs;
  };

  it('every `field` (value) and `field`, value matches the config’s default', () => {
    // A mode's fields depend on the mode; they are in docs/configuration.md.
    const stated = [...flat.matchAll(/`([a-z]\w*(?:\.\w+)+)`(?: \(|, )(?:default:? )?([^)`;]{0,30})/g)]
      .filter((m) => !(m[1] ?? '').startsWith('modes.'))
      .flatMap((m) => {
        const field = m[1] ?? '';
        const value = valueAt(field);
        const said = amount(field, m[2] ?? '');
        return typeof value === 'number' && said !== undefined ? [{ field, said, value }] : [];
      });
    expect(stated.length).toBeGreaterThan(20);
    expect(stated.filter((s) => s.said !== s.value)).toEqual([]);
  });

  it('every default of a `| field | default | meaning |` table row matches the config’s', () => {
    const rows = [...readme.matchAll(/^\| `([a-z]\w*(?:\.\w+)+)` \| `?([^|`]+)`? \|/gm)]
      .map((m) => ({ field: m[1] ?? '', said: (m[2] ?? '').trim() }))
      .filter((r) => !r.field.startsWith('modes.') && valueAt(r.field) !== undefined);
    expect(rows.length).toBeGreaterThan(3);
    expect(rows.filter((r) => r.said !== JSON.stringify(valueAt(r.field)).replace(/,/g, ', '))).toEqual([]);
  });
});
