import { createRequire } from 'node:module';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';

const load = createRequire(import.meta.url);

/**
 * better-sqlite3, the one way brainstem loads it: with `require`. It is a
 * CommonJS package, and an ES `import` of one makes Node load its export
 * scanner (a WebAssembly module, ~1 MB resident and a few ms of start-up)
 * only to list the package's exports.
 */
const Database: typeof BetterSqlite3 = load('better-sqlite3');

export default Database;

/**
 * better-sqlite3's compiled part cannot be loaded by this Node: most often it was built for
 * another Node version (Node upgraded from 20 to 24 for OpenClaw, or pm2 running another Node
 * than the one `npm install` ran with), or never built. Restarting cannot fix that, so the
 * start exits with the code pm2 does not restart, saying the one command that does.
 */
export class NativeSqliteError extends Error {
  constructor(reason: string) {
    super(
      `better-sqlite3's native module cannot be loaded by Node ${process.versions.node} (${reason}): run \`npm rebuild better-sqlite3\` in ${packageFolder()} with the Node that runs brainstem, then start brainstem again`,
    );
    this.name = 'NativeSqliteError';
  }
}

/**
 * The typed error for a failure to load the native module (better-sqlite3 loads it at the first
 * `new Database`), or undefined for any other error, an SQLite one included.
 */
export function nativeSqliteError(err: unknown): NativeSqliteError | undefined {
  const e = err as { code?: unknown; message?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : '';
  const abi = /NODE_MODULE_VERSION (\d+)\.[\s\S]*NODE_MODULE_VERSION (\d+)\./.exec(message);
  if (abi)
    return new NativeSqliteError(`it was built for NODE_MODULE_VERSION ${abi[1]}, this Node needs ${abi[2]}`);
  // Another dlopen failure (a build for another CPU or C library), or the bindings package
  // finding no build at all (an install with --ignore-scripts, a build that failed).
  if (e?.code === 'ERR_DLOPEN_FAILED' || message.startsWith('Could not locate the bindings file')) {
    return new NativeSqliteError(message.split('\n')[0] ?? message);
  }
  return undefined;
}

/** Where `npm rebuild` finds this better-sqlite3: the folder whose node_modules holds it. */
function packageFolder(): string {
  const entry = load.resolve('better-sqlite3');
  const at = entry.lastIndexOf(`${path.sep}node_modules${path.sep}`);
  return at < 0 ? "brainstem's folder" : entry.slice(0, at);
}
