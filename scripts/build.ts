/**
 * `npm run build`: brainstem bundled into dist/src/main.js, the file `npm start`
 * and pm2 run, with what loads on first use (the charts, the DOM library, the
 * MCP SDK, the doctor) split into chunks beside it in dist/chunks/. Node then
 * reads a few large files at start instead of resolving ~1,500 modules one by one.
 * Type checking is `tsc --noEmit` (npm test); this only strips types.
 */
import { rmSync } from 'node:fs';
import { build, type Plugin } from 'esbuild';

/** Native addons find their .node file from their own package directory: they stay in node_modules. */
const NATIVE = ['better-sqlite3', '@resvg/resvg-js'];

/**
 * node-fetch 2 (grammY's HTTP client) takes `URL` from node:url and loads the
 * whatwg-url package (with tr46's ~300 kB of Unicode tables) only as a fallback
 * for runtimes without one; Node has had it for years, so the fallback is Node's own.
 */
const nodeUrl: Plugin = {
  name: 'node-url',
  setup(b) {
    b.onResolve({ filter: /^whatwg-url$/ }, () => ({ path: 'whatwg-url', namespace: 'node-url' }));
    b.onLoad({ filter: /.*/, namespace: 'node-url' }, () => ({
      contents: 'module.exports = { URL: globalThis.URL };',
      loader: 'js',
    }));
  },
};

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
  plugins: [nodeUrl],
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
  logLevel: 'warning',
});
