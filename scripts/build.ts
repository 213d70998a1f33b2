/**
 * `npm run build`: brainstem bundled into dist/src/main.js, the file `npm start`
 * and pm2 run, with what loads on first use (the charts, the DOM library, the
 * MCP SDK, the doctor) split into chunks beside it in dist/chunks/. Node then
 * reads a few large files at start instead of resolving ~850 modules one by one.
 * Type checking is `tsc --noEmit` (npm test); this only strips types.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import { build, type Plugin } from 'esbuild';
import { eagerModuleBodies, findHelper, type Shift } from './eager-modules.js';

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
 * Modules a bundled library loads but calls only for what brainstem never
 * does: a stand-in takes each one's place, saying why if it is ever used.
 * Without `names`, the module is required only when used, and its stand-in
 * throws as it loads; with them, it is required as the library loads, and the
 * stand-in has those names, each of which throws when called. Each costs the
 * start time to parse, or loads more of Node, even when never called.
 */
const STAND_INS: {
  importer?: RegExp;
  path: RegExp;
  /** What the module exports, each a function that throws; `default` is the module itself as one. */
  names?: string[];
  why: string;
}[] = [
  // ajv and fast-json-stringify (~470 kB of source) compile route schemas: brainstem declares
  // none (requests are checked with zod) and gives fastify compilers that refuse (handlers/http/server.ts).
  { path: /^@fastify\/ajv-compiler$/, why: 'routes declare no schemas' },
  { path: /^@fastify\/fast-json-stringify-compiler$/, why: 'routes declare no schemas' },
  // fastify's inject(), for tests, which run the sources.
  { path: /^light-my-request$/, why: 'inject() is for tests, which run the sources' },
  {
    // The cookie helpers read `globalThis.Headers` as undici loads: that one read loads
    // Node's own copy of undici whole, beside the one brainstem uses (src/http-client.ts).
    importer: /\/undici\/index\.js$/,
    path: /^\.\/lib\/web\/cookies$/,
    names: ['deleteCookie', 'getCookies', 'getSetCookies', 'setCookie', 'parseCookie'],
    why: "brainstem reads no cookies, and loading undici's helpers would load Node's undici",
  },
  {
    // fastify serves HTTP/2 and TLS only when asked to; brainstem serves plain HTTP on
    // loopback, and node:http2 and node:https (with node:tls) cost a start some 10 built-in modules.
    importer: /\/fastify\/lib\/server\.js$/,
    path: /^node:http2$/,
    names: ['createServer', 'createSecureServer'],
    why: 'brainstem does not serve HTTP/2',
  },
  {
    importer: /\/fastify\/lib\/server\.js$/,
    path: /^node:https$/,
    names: ['createServer'],
    why: 'brainstem serves plain HTTP on loopback (TLS, where wanted, comes from a proxy in front)',
  },
  {
    // proxy-addr (with ipaddr.js) reads X-Forwarded-For for fastify's trustProxy, which brainstem leaves off.
    importer: /\/fastify\/lib\/request\.js$/,
    path: /^@fastify\/proxy-addr$/,
    names: ['compile', 'all'],
    why: 'trustProxy is off: brainstem serves loopback clients directly',
  },
  {
    // pino's transports run a logger in a worker thread (thread-stream); brainstem writes to stdout.
    importer: /\/pino\/(pino|lib\/tools)\.js$/,
    path: /^\.\/(lib\/)?transport$/,
    names: ['default'],
    why: 'brainstem logs to stdout, with no pino transport',
  },
  {
    // 47 modules fastify loads to check a plugin's declared fastify version.
    importer: /\/fastify\/lib\/plugin-utils\.js$/,
    path: /^semver$/,
    names: ['satisfies', 'gt', 'coerce'],
    why: 'fastify asks it only of plugins that declare the fastify version they need, and brainstem registers none',
  },
];

const standIns: Plugin = {
  name: 'stand-ins',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      const importer = args.importer.split(path.sep).join('/');
      const i = STAND_INS.findIndex((m) => m.path.test(args.path) && (m.importer?.test(importer) ?? true));
      return i < 0 ? undefined : { path: `${args.path}#${i}`, namespace: 'stand-in' };
    });
    b.onLoad({ filter: /.*/, namespace: 'stand-in' }, (args) => {
      const m = STAND_INS[Number(args.path.split('#').pop())];
      if (!m) throw new Error(`no stand-in for ${args.path}`);
      const refusal = `throw new Error(${JSON.stringify(`${args.path.split('#')[0]} is not in brainstem's bundle: ${m.why}`)});`;
      return {
        contents: !m.names
          ? refusal
          : m.names.includes('default')
            ? `module.exports = function refuse() { ${refusal} };`
            : `function refuse() { ${refusal} }\nmodule.exports = { ${m.names.map((n) => `${n}: refuse`).join(', ')} };`,
        loader: 'js',
      };
    });
  },
};

/**
 * undici loads node:http2 as it loads (lib/dispatcher/client-h2.js), for ten
 * of its constants, and calls it only for a connection that negotiated HTTP/2,
 * which needs `allowH2`: brainstem never sets it. node:http2 loads node:tls
 * with it from the first request undici makes (a local chat, a Telegram file
 * download) on: in a bare Node 24, 7.6 MB of resident memory over node:crypto
 * alone. Here undici gets
 * the constants, copied from the Node that builds (plain values, the same in
 * every Node: HTTP/2's header names and error codes), and every other export
 * as a getter that requires node:http2 on its first read.
 */
const undiciHttp2: Plugin = {
  name: 'undici-http2',
  setup(b) {
    b.onResolve({ filter: /^(node:)?http2$/ }, (args) =>
      /\/undici\/lib\/dispatcher\/client-h2\.js$/.test(args.importer.split(path.sep).join('/'))
        ? { path: 'node:http2', namespace: 'undici-http2' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'undici-http2' }, () => {
      const real = createRequire(import.meta.url)('node:http2') as { constants: object };
      const getters = Object.keys(real)
        .filter((key) => key !== 'constants')
        .map(
          (key) => `${JSON.stringify(key)}: { enumerable: true, get: () => load()[${JSON.stringify(key)}] }`,
        )
        .join(',\n  ');
      return {
        contents: [
          `let loaded;\nconst load = () => (loaded ??= require('node:http2'));`,
          `module.exports = Object.defineProperties({ constants: ${JSON.stringify(real.constants)} }, {\n  ${getters}\n});`,
        ].join('\n'),
        loader: 'js',
      };
    });
  },
};

/**
 * An ES import of a Node built-in makes Node build a facade that reads every
 * export once, and many are getters that load more of Node: node:fs's
 * `promises` and streams, node:crypto's `webcrypto`, node:process's report,
 * and on Node 24 node:http's `WebSocket`, which loads Node's own copy of
 * undici whole, with its WebAssembly parser (~20 ms of a start on Node 24).
 * Here every import of a built-in becomes a `require`, of which only the
 * exports that are plain values are read (eagerBuiltin, below).
 */
const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/**
 * Built-ins that nothing calls before the first answer, yet each brings a batch
 * of Node's own modules to compile when required: node:crypto some 20 (8–11 ms
 * of a start on Node 24), node:fs/promises 9 with node:readline's (3–4 ms).
 * Whatever imports or requires one gets an object whose every export is a getter
 * that requires the built-in on the first read. That is of no use for a built-in
 * a library reads as it loads (fastify takes `performance` from node:perf_hooks,
 * find-my-way calls node:assert for each route), so those stay as they are. The
 * names come from the Node that builds; brainstem imports only those every
 * supported Node has. An `import()` of one gets the built-in as any other (its
 * named exports), which loads only when the import runs.
 *
 * node:https is read by grammY (its `Agent`) and node-fetch (its `request`) only
 * for a Bot API root on https: requiring it loads node:tls and starts OpenSSL,
 * some 5 MB of resident memory on Node 24 (3.7 of them the node binary's
 * pages), which a bot on a local Bot API server over http never uses.
 */
const LAZY_BUILTINS = new Set(['node:crypto', 'node:fs/promises', 'node:https']);

function lazyBuiltin(name: string): string {
  const real: unknown = createRequire(import.meta.url)(name);
  const load = `let loaded;\nconst load = () => (loaded ??= require(${JSON.stringify(name)}));`;
  const getters = Object.keys(real as object)
    .map((key) => `${JSON.stringify(key)}: { enumerable: true, get: () => load()[${JSON.stringify(key)}] }`)
    .join(',\n  ');
  return `${load}\nmodule.exports = Object.defineProperties({}, {\n  ${getters}\n});`;
}

/**
 * A built-in as an ES module of its own: `export const name = m.name` for each
 * of its exports that is a plain value, read once when it loads. Before, each
 * module that imported one wrapped it in a copy with a getter per export
 * (esbuild's interop for a CommonJS module), which at start made some 4,500
 * getters and their closures, 0.8 MB of the idle heap. An export that is a
 * getter (node:fs's `promises`, node:crypto's `webcrypto`, node:http's
 * `WebSocket` on Node 24) is left out, because reading it loads more of Node:
 * importing one by name fails the build ("No matching export"), unless it is
 * listed in ACCESSORS_READ, read at load like the others: those cost nothing
 * more than what their module loads anyway.
 */
const ACCESSORS_READ = new Set([
  'node:util.aborted',
  'node:net.BlockList',
  // A getter on Node 24 (a plain value on 20): without it a build there failed, so `npm start` did.
  'node:async_hooks.AsyncLocalStorage',
]);
/**
 * Plain values on the Node that builds, deprecated getters on a later one: read at load, each
 * made Node 24 warn (DEP0176) at every start of a bundle built on Node 20 (pm2 after a Node
 * upgrade without `npm run build`). brainstem reads `fs.constants` instead.
 */
const NEVER_READ = new Set(['node:fs.F_OK', 'node:fs.R_OK', 'node:fs.W_OK', 'node:fs.X_OK']);

function eagerBuiltin(name: string): string {
  const real = createRequire(import.meta.url)(name) as object;
  const lines = [`const m = require(${JSON.stringify(name)});`, 'export default m;'];
  for (const key of Object.keys(real)) {
    const d = Object.getOwnPropertyDescriptor(real, key);
    const readable = d && ('value' in d || ACCESSORS_READ.has(`${name}.${key}`));
    if (key === 'default' || !/^[A-Za-z_$][\w$]*$/.test(key) || !readable) continue;
    if (NEVER_READ.has(`${name}.${key}`)) continue;
    lines.push(`export const ${key} = m.${key};`);
  }
  return lines.join('\n');
}

const builtinsByRequire: Plugin = {
  name: 'builtins-by-require',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z0-9_/]+$/ }, (args) => {
      // The lazy module's own require is Node's.
      if (!BUILTINS.has(args.path) || args.namespace === 'lazy-builtin') return undefined;
      const name = args.path.replace(/^(node:)?/, 'node:');
      // A dynamic import loads it when it runs, lazy enough; and esbuild gives it a CommonJS module
      // (the lazy one) with a default export only: `(await import('node:https')).get` was undefined.
      if (LAZY_BUILTINS.has(name) && args.kind !== 'dynamic-import')
        return { path: name, namespace: 'lazy-builtin' };
      return args.kind === 'import-statement' || args.kind === 'dynamic-import'
        ? { path: name, namespace: 'builtins-by-require' }
        : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'builtins-by-require' }, (args) => ({
      contents: eagerBuiltin(args.path),
      loader: 'js',
    }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({
      contents: lazyBuiltin(args.path),
      loader: 'js',
    }));
  },
};

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

rmSync('dist', { recursive: true, force: true });
await build({
  // The page reader's worker thread runs a module of its own (src/tools/page-reader.ts finds it).
  entryPoints: ['src/main.ts', 'src/tools/page-worker.ts'],
  outdir: 'dist',
  outbase: '.',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: NATIVE,
  plugins: [nodeFetchUrl, zodEnglishOnly, standIns, undiciHttp2, builtinsByRequire],
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
const built = readdirSync('dist', { recursive: true, encoding: 'utf8' });
const code = built
  .filter((file) => file.endsWith('.js'))
  .map((file) => ({ file: path.join('dist', file), text: readFileSync(path.join('dist', file), 'utf8') }));
const helper = findHelper(code);
if (!helper)
  throw new Error(
    "esbuild's __commonJS helper was not found in dist: scripts/eager-modules.ts must learn how this esbuild writes it",
  );
/** Per built file, per line: how its columns moved (eagerModuleBodies). */
const moved = new Map<string, Map<number, Shift[]>>();
for (const { file, text } of code) {
  const eager = eagerModuleBodies(file, text, helper);
  if (eager.wrapped === 0) continue;
  writeFileSync(file, eager.text);
  const byLine = new Map<number, Shift[]>();
  for (const s of eager.shifts) byLine.set(s.line, [...(byLine.get(s.line) ?? []), s]);
  moved.set(file, byLine);
}
for (const file of built) {
  if (!file.endsWith('.map')) continue;
  const mapFile = path.join('dist', file);
  const map = JSON.parse(readFileSync(mapFile, 'utf8')) as {
    sources: string[];
    mappings: string;
    names: string[];
  };
  const shifts = moved.get(mapFile.replace(/\.map$/, '')) ?? new Map<number, Shift[]>();
  writeFileSync(mapFile, JSON.stringify({ ...map, mappings: ownCodeOnly(map, shifts) }));
}

/**
 * The maps keep brainstem's own code only: a trace through a library shows the
 * bundle's position (and the function's name), and a map read for a trace
 * costs a tenth of the memory. Source maps' "mappings": per generated line
 * (`;`), segments (`,`) of base64 VLQ fields: generated column (relative
 * within the line), source index, original line, original column, name index
 * (relative across the file).
 */
function ownCodeOnly(map: { sources: string[]; mappings: string }, shifts: Map<number, Shift[]>): string {
  // Libraries, and the stand-ins the plugins above write (`node-url:whatwg-url`), are not brainstem's.
  const keep = map.sources.map((s) => !s.includes('node_modules/') && !/^[\w-]+:/.test(s));
  const abs = [0, 0, 0, 0];
  const out = [0, 0, 0, 0];
  return map.mappings
    .split(';')
    .map((line, index) => {
      // Segments come in column order, as do the line's shifts: one walk along both.
      const lineShifts = shifts.get(index) ?? [];
      let next = 0;
      let moved = 0;
      let column = 0;
      let outColumn = 0;
      let mapped = false;
      const kept: string[] = [];
      for (const segment of line ? line.split(',') : []) {
        const f = decodeVlq(segment);
        column += f[0] ?? 0;
        if (f.length < 4) continue;
        // Where that column is once the module bodies were wrapped.
        for (let s = lineShifts[next]; s !== undefined && s.column <= column; s = lineShifts[++next])
          moved += s.delta;
        const at = column + moved;
        for (let i = 1; i < f.length; i++) abs[i - 1] = (abs[i - 1] ?? 0) + (f[i] ?? 0);
        if (!keep[abs[0] ?? 0]) {
          // A one-field segment maps what follows to nothing: without it a library's code
          // (a bundle is one long line) would take the position of the own code before it.
          if (mapped) {
            kept.push(encodeVlq(at - outColumn));
            outColumn = at;
          }
          mapped = false;
          continue;
        }
        mapped = true;
        const fields = [at - outColumn];
        for (let i = 1; i < f.length; i++) {
          fields.push((abs[i - 1] ?? 0) - (out[i - 1] ?? 0));
          out[i - 1] = abs[i - 1] ?? 0;
        }
        outColumn = at;
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
