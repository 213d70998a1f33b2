/**
 * `npm run build`: brainstem bundled into dist/src/main.js, the file `npm start`
 * and pm2 run, with what loads on first use (the charts, the DOM library, the
 * MCP SDK, the doctor) split into chunks beside it in dist/chunks/. Node then
 * reads a few large files at start instead of resolving ~850 modules one by one.
 * Type checking is `tsc --noEmit` (npm test); this only strips types.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build, type Plugin } from 'esbuild';

/** Native addons find their .node file from their own package directory: they stay in node_modules. */
const NATIVE = ['better-sqlite3', '@resvg/resvg-js'];

/**
 * node-fetch 2 (grammY's HTTP client) parses URLs with node:url's `parse`, which
 * Node 24 deprecates with a warning (DEP0169) on the first Telegram call of every
 * start, and takes `URL` from node:url, loading the whatwg-url package (with
 * tr46's ~300 kB of Unicode tables) only as a fallback for runtimes without one.
 * Both come from Node's WHATWG `URL` here: `parse` returns the fields node-fetch
 * and http.request read, `format` the URL it was parsed from.
 */
const URL_FOR_NODE_FETCH = `
const parse = (text) => {
  const u = new URL(text);
  const user = u.username ? decodeURIComponent(u.username) : '';
  return {
    protocol: u.protocol, slashes: true,
    auth: user ? user + (u.password ? ':' + decodeURIComponent(u.password) : '') : null,
    host: u.host, port: u.port || null, hostname: u.hostname.replace(/^\\[|\\]$/g, ''),
    hash: u.hash || null, search: u.search || null, query: u.search ? u.search.slice(1) : null,
    pathname: u.pathname, path: u.pathname + u.search, href: u.href,
  };
};
module.exports = { URL, parse, format: (parsed) => parsed.href };
`;
const nodeFetchUrl: Plugin = {
  name: 'node-fetch-url',
  setup(b) {
    b.onResolve({ filter: /^(whatwg-url|url)$/ }, (args) =>
      args.importer.includes(`${path.sep}node-fetch${path.sep}`)
        ? { path: args.path, namespace: 'node-fetch-url' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'node-fetch-url' }, () => ({
      contents: URL_FOR_NODE_FETCH,
      loader: 'js',
    }));
  },
};

/**
 * zod re-exports every one of its ~50 message locales (`z.locales`, about 300 kB
 * of the bundle's source, half of zod); brainstem's messages are zod's English
 * default, so `z.locales` keeps only `en` and V8 parses the rest never.
 */
const zodEnglishOnly: Plugin = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes(`${path.sep}zod${path.sep}v4${path.sep}`)
        ? { path: path.join(path.dirname(args.importer), '../locales/en.js'), namespace: 'zod-locales' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(args.path)};`,
      loader: 'js',
      resolveDir: path.dirname(args.path),
    }));
  },
};

/**
 * Packages fastify may load that brainstem never calls, kept out of the bundle
 * (a module that throws stands in, saying why). Each costs start-up time to
 * parse even when fastify requires it lazily.
 */
const NOT_BUNDLED: Record<string, string> = {
  // ajv and fast-json-stringify (~470 kB of source) compile route schemas: brainstem declares
  // none (requests are checked with zod) and gives fastify compilers that refuse (handlers/http/server.ts).
  '@fastify/ajv-compiler': 'routes declare no schemas',
  '@fastify/fast-json-stringify-compiler': 'routes declare no schemas',
  // fastify's inject(), for tests, which run the sources.
  'light-my-request': 'inject() is for tests, which run the sources',
};

const notBundled: Plugin = {
  name: 'not-bundled',
  setup(b) {
    const names = Object.keys(NOT_BUNDLED).map((n) => n.replace(/[/.-]/g, '\\$&'));
    b.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (args) => ({
      path: args.path,
      namespace: 'not-bundled',
    }));
    b.onLoad({ filter: /.*/, namespace: 'not-bundled' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is not in brainstem's bundle: ${NOT_BUNDLED[args.path]}`)});`,
      loader: 'js',
    }));
  },
};

/**
 * The MCP SDK's server imports its default JSON Schema validator (ajv and
 * ajv-formats, ~1 MB of source) at load. It builds one only when no validator
 * is given, and brainstem gives one (handlers/http/mcp.ts, NO_ELICITATION), so
 * a stand-in that refuses to be built takes the provider's place.
 */
const mcpWithoutAjv: Plugin = {
  name: 'mcp-without-ajv',
  setup(b) {
    b.onResolve({ filter: /\/validation\/ajv-provider\.js$/ }, (args) =>
      args.importer.includes(`${path.sep}@modelcontextprotocol${path.sep}sdk${path.sep}`)
        ? { path: args.path, namespace: 'mcp-without-ajv' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'mcp-without-ajv' }, () => ({
      contents: `export class AjvJsonSchemaValidator { constructor() { throw new Error("ajv is not in brainstem's bundle: handlers/http/mcp.ts gives the MCP server its own validator"); } }`,
      loader: 'js',
    }));
  },
};

/**
 * undici's cookie helpers (`getCookies`, `setCookie`, …), which brainstem never
 * calls, read `globalThis.Headers` as undici loads: that one read loads Node's
 * own copy of undici whole, with its WebAssembly HTTP parser, beside the one
 * brainstem uses (src/http-client.ts). A stand-in that refuses to be called takes their place.
 */
const undiciWithoutCookies: Plugin = {
  name: 'undici-without-cookies',
  setup(b) {
    b.onResolve({ filter: /^\.\/lib\/web\/cookies$/ }, (args) =>
      args.importer.includes(`${path.sep}undici${path.sep}index.js`)
        ? { path: args.path, namespace: 'undici-without-cookies' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'undici-without-cookies' }, () => ({
      contents: `const refuse = () => { throw new Error("undici's cookie helpers are not in brainstem's bundle"); }; module.exports = { deleteCookie: refuse, getCookies: refuse, getSetCookies: refuse, setCookie: refuse, parseCookie: refuse };`,
      loader: 'js',
    }));
  },
};

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: ['src/main.ts'],
  outdir: 'dist',
  outbase: '.',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: NATIVE,
  plugins: [nodeFetchUrl, zodEnglishOnly, notBundled, mcpWithoutAjv, undiciWithoutCookies],
  // CommonJS dependencies (fastify, pino, grammY, …) require() Node's built-ins, which an ES module has no require for.
  banner: {
    js: "import { createRequire as __brainstemRequire } from 'node:module'; const require = __brainstemRequire(import.meta.url);",
  },
  // Libraries compare class names (node-fetch: `constructor.name === 'AbortSignal'`); without
  // this esbuild renames a class whose name two bundled modules share, and grammY's calls fail.
  keepNames: true,
  // Stack traces name the sources: src/stack-trace.ts reads a chunk's map when a trace goes through it.
  sourcemap: true,
  sourcesContent: false,
  // Less source text for V8 to scan and keep in memory (names stay: keepNames, and the maps).
  minifyWhitespace: true,
  minifySyntax: true,
  minifyIdentifiers: true,
  // V8 keeps a file's source at one byte per character only when every character is Latin-1:
  // one "…" or emoji in a tagged template (esbuild leaves those unescaped: their raw text
  // would change) doubled the Telegram chunk's memory. Template literals become string
  // concatenation, whose strings esbuild escapes; regular expressions are escaped in the sources.
  supported: { 'template-literal': false },
  logLevel: 'warning',
});
for (const file of readdirSync('dist', { recursive: true, encoding: 'utf8' })) {
  if (!file.endsWith('.map')) continue;
  const mapFile = path.join('dist', file);
  const map = JSON.parse(readFileSync(mapFile, 'utf8')) as {
    sources: string[];
    mappings: string;
    names: string[];
  };
  writeFileSync(mapFile, JSON.stringify({ ...map, mappings: ownCodeOnly(map) }));
}

/**
 * The maps keep brainstem's own code only: a trace through a library shows the
 * bundle's position (and the function's name), and a map read for a trace
 * costs a tenth of the memory. Source maps' "mappings": per generated line
 * (`;`), segments (`,`) of base64 VLQ fields: generated column (relative
 * within the line), source index, original line, original column, name index
 * (relative across the file).
 */
function ownCodeOnly(map: { sources: string[]; mappings: string }): string {
  // Libraries, and the stand-ins the plugins above write (`node-url:whatwg-url`), are not brainstem's.
  const keep = map.sources.map((s) => !s.includes('node_modules/') && !/^[\w-]+:/.test(s));
  const abs = [0, 0, 0, 0];
  const out = [0, 0, 0, 0];
  return map.mappings
    .split(';')
    .map((line) => {
      let column = 0;
      let outColumn = 0;
      let mapped = false;
      const kept: string[] = [];
      for (const segment of line ? line.split(',') : []) {
        const f = decodeVlq(segment);
        column += f[0] ?? 0;
        if (f.length < 4) continue;
        for (let i = 1; i < f.length; i++) abs[i - 1] = (abs[i - 1] ?? 0) + (f[i] ?? 0);
        if (!keep[abs[0] ?? 0]) {
          // A one-field segment maps what follows to nothing: without it a library's code
          // (a bundle is one long line) would take the position of the own code before it.
          if (mapped) {
            kept.push(encodeVlq(column - outColumn));
            outColumn = column;
          }
          mapped = false;
          continue;
        }
        mapped = true;
        const fields = [column - outColumn];
        for (let i = 1; i < f.length; i++) {
          fields.push((abs[i - 1] ?? 0) - (out[i - 1] ?? 0));
          out[i - 1] = abs[i - 1] ?? 0;
        }
        outColumn = column;
        kept.push(fields.map(encodeVlq).join(''));
      }
      return kept.join(',');
    })
    .join(';');
}

function decodeVlq(segment: string): number[] {
  const values: number[] = [];
  let value = 0;
  let shift = 0;
  for (const char of segment) {
    const digit = BASE64.indexOf(char);
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
      continue;
    }
    values.push(value & 1 ? -(value >>> 1) : value >>> 1);
    value = 0;
    shift = 0;
  }
  return values;
}

function encodeVlq(n: number): string {
  let value = n < 0 ? (-n << 1) | 1 : n << 1;
  let text = '';
  do {
    let digit = value & 31;
    value >>>= 5;
    if (value > 0) digit |= 32;
    text += BASE64[digit];
  } while (value > 0);
  return text;
}
