import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commandNames } from '../handlers/telegram/commands/table.js';
import { renderConfigDocs } from '../scripts/config-docs.js';
import { loadConfig } from '../src/config.js';

/**
 * The README names only what exists: every config field, npm script, route, variable and command
 * it mentions is read here from the code (no process is started). What each one does is for the
 * tests of that part; this catches a name that was renamed or removed under the README.
 */
const root = path.join(import.meta.dirname, '..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
/** The README's lines, each with its number, for messages that say where to fix it. */
const lines = readme.split('\n').map((text, i) => ({ text, at: `README.md:${i + 1}` }));

const dir = mkdtempSync(path.join(tmpdir(), 'bst-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('README.md', () => {
  it('names only config fields that exist (docs/configuration.md lists them)', () => {
    const fields = new Set(
      renderConfigDocs()
        .split('\n')
        .filter((l) => l.startsWith('| `'))
        .map((l) => l.split('`')[1] ?? ''),
    );
    const sections = new Set([...fields].map((f) => f.split('.')[0]));
    const unknown = lines.flatMap(({ text, at }) =>
      [...text.matchAll(/`([a-zA-Z]\w*(?:\.[\w<>]+)+)`/g)].flatMap(([, name = '']) => {
        // A file (`tools.ts`) or a field of another program (OpenClaw's `agents.defaults…`) is not ours.
        if (/\.(ts|js|cjs|json|md)$/.test(name) || !sections.has(name.split('.')[0] ?? '')) return [];
        const generic = name
          .replace(/^modes\.[^.]+\./, 'modes.<id>.')
          .replace(/^llama\.models\.[^.]+\./, 'llama.models.<name>.')
          .replace(/^tools\.shortcuts\.[^.]+\./, 'tools.shortcuts.<word>.');
        return fields.has(generic) ? [] : [`${at}: ${name}`];
      }),
    );
    expect(unknown).toEqual([]);
  });

  it('runs only npm scripts that package.json has', () => {
    const scripts = Object.keys(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts);
    // `npm run\ndoctor` wraps across a line: read the text with its line breaks as spaces.
    const named = [
      ...readme.replace(/\s+/g, ' ').matchAll(/\bnpm (?:run(?: -s)?|test|start)\b ?([\w-]*)/g),
    ].map(([whole, script]) => (whole.startsWith('npm run') ? script : whole.slice(4).trim()));
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((s) => !scripts.includes(s ?? ''))).toEqual([]);
  });

  it('its brainstem.json examples are configs brainstem starts with', () => {
    const blocks = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map(([, b = '']) => b);
    // A block of one-line alternatives (the transcription backends) is one config a line.
    const configs = blocks.flatMap((b) => (isJson(b) ? [b] : b.split('\n').filter((l) => l.trim())));
    expect(configs.length).toBeGreaterThanOrEqual(4);
    const file = path.join(dir, 'brainstem.json');
    for (const c of configs) {
      writeFileSync(file, c);
      expect(() => loadConfig({ BRAINSTEM_CONFIG: file, HOME: dir }, dir), c).not.toThrow();
    }
  });

  it('names only HTTP routes brainstem registers', () => {
    const http = path.join(root, 'handlers', 'http');
    const routes = readdirSync(http)
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) => [
        ...readFileSync(path.join(http, f), 'utf8').matchAll(
          /app\.(get|post|delete)(?:<[^>]*>)?\(\s*'([^']+)'/g,
        ),
      ])
      .map(([, method = '', route = '']) => ({
        method: method.toUpperCase(),
        pattern: new RegExp(`^${route.replace(/:\w+/g, '[^/]+').replace(/\*/g, '.+')}$`),
      }));
    const named = [...readme.matchAll(/`(GET|POST|DELETE) (\/(?:v1|api|mcp|health)[^\s`?]*)/g)];
    expect(named.length).toBeGreaterThan(5);
    const missing = named
      .map(([, method = '', route = '']) => ({ method, route: route.replace(/<\w+>|\{\w+\}/g, 'x') }))
      .filter(({ method, route }) => !routes.some((r) => r.method === method && r.pattern.test(route)))
      .map(({ method, route }) => `${method} ${route}`);
    expect(missing).toEqual([]);
  });

  it('its table of environment variables holds every variable the config reads, and each changes the config', () => {
    const table = lines
      .map(({ text }) => /^\| `([A-Z_]+)`(?: \/ `([A-Z_]+)`)? \|/.exec(text))
      .flatMap((m) => (m ? [m[1], m[2]].filter((v): v is string => v !== undefined) : []));
    const read = new Set(
      [
        ...readFileSync(path.join(root, 'src', 'config.ts'), 'utf8').matchAll(/\benv\.([A-Z][A-Z0-9_]+)/g),
      ].map(([, v]) => v),
    );
    // The relay of earlier versions is refused, not set: the README says so below the table.
    read.delete('OPENCLAW_GATEWAY_URL');
    read.delete('HOME');
    expect(table.sort()).toEqual([...read].sort());
    // A value each variable takes; the config it gives differs from the one without it.
    const sample: Record<string, string> = {
      BRAINSTEM_CONFIG: path.join(dir, 'other.json'),
      BRAINSTEM_DATA_DIR: path.join(dir, 'elsewhere'),
      BRAINSTEM_HOST: '127.0.0.2',
      BRAINSTEM_PORT: '9191',
      BRAINSTEM_API_TOKEN: 'a-token-of-sixteen-chars',
      TELEGRAM_BOT_TOKEN: '123:abc',
      TELEGRAM_API_ROOT: 'http://127.0.0.1:8999',
      TELEGRAM_ALLOWED_USERS: '42',
      CLAUDE_BIN: '/opt/claude',
      CLAUDE_CREDENTIALS_FILE: path.join(dir, 'creds.json'),
      LLAMA_BASE_URL: 'http://127.0.0.1:8082/v1',
      BRAVE_API_KEY: 'brave-key',
      LOG_LEVEL: 'debug',
    };
    const base = JSON.stringify(loadConfig({ HOME: dir }, dir));
    for (const v of table) {
      expect(sample[v], `a sample value for ${v}`).toBeDefined();
      expect(JSON.stringify(loadConfig({ HOME: dir, [v]: sample[v] }, dir)), v).not.toBe(base);
    }
  });

  it('points only at files of the repository that exist', () => {
    const missing = lines.flatMap(({ text, at }) =>
      [...text.matchAll(/`((?:\.ci|src|brains|handlers|scripts|test|bench|docs)\/[^`\s<…*]+)`/g)]
        .map(([, file = '']) => file)
        // What the bench writes when it runs is not in the repository.
        .filter((file) => !file.startsWith('bench/results/') && !existsSync(path.join(root, file)))
        .map((file) => `${at}: ${file}`),
    );
    expect(missing).toEqual([]);
  });

  it('lists the Telegram commands brainstem answers, and with the front on who answers which', () => {
    const commandsIn = (row: string) =>
      [...(row.split(' | ')[0] ?? '').matchAll(/`\/(\w+)/g)].map(([, c]) => c);
    const tableAfter = (head: string) => {
      const start = lines.findIndex((l) => l.text.startsWith(head));
      expect(start, head).toBeGreaterThan(-1);
      const end = lines.findIndex((l, i) => i > start && !l.text.startsWith('|'));
      return lines.slice(start + 2, end).map((l) => l.text);
    };
    const off = commandNames(false, true);
    const on = commandNames(true, true);
    expect(tableAfter('| command | what it does |').flatMap(commandsIn).sort()).toEqual([...off].sort());
    const [mine = '', renamed = '', openclaws = ''] = tableAfter('| you type | answered by |');
    for (const c of [...commandsIn(mine), ...commandsIn(renamed)]) expect(on, c).toContain(c);
    for (const c of commandsIn(openclaws)) expect(on, c).not.toContain(c);
  });
});

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
