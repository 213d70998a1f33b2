import module from 'node:module';
import path from 'node:path';
import { packageRoot } from './version.js';

/**
 * V8's compiled code of the bundle kept on disk between starts, so that a
 * restart does not compile ~2.4 MB of source again (40 to 80 ms of a start on
 * Node 24, 2 cores). Node 22.1 and later have it; Node 20 does not and starts as before.
 *
 * The cache lives in the package's node_modules/.cache, written by the user
 * who runs brainstem, not in Node's default folder under the shared /tmp that
 * another local user could create first and fill. Node checks every entry
 * against the source it was made from, so a new build just misses.
 */

/** The parts of node:module this uses, typed here: @types/node 20 does not know them. */
const nodeModule = module as typeof module & {
  enableCompileCache?: (dir: string) => { status: number; message?: string; directory?: string };
  flushCompileCache?: () => void;
  constants?: { compileCacheStatus?: { FAILED: number; DISABLED: number } };
};

/** What turning the cache on gave, for the log (no logger exists yet when it is turned on). */
export type CompileCacheState = { on: true; directory: string } | { on: false; why: string };

/** Turns the cache on for every module loaded from now on; call it before importing the rest. */
export function enableCompileCache(): CompileCacheState {
  const root = packageRoot();
  if (!nodeModule.enableCompileCache) {
    return { on: false, why: `Node ${process.versions.node} has none (Node 22.1 or later keeps it)` };
  }
  if (!root) return { on: false, why: 'brainstem runs away from its package folder' };
  const r = nodeModule.enableCompileCache(path.join(root, 'node_modules', '.cache', 'brainstem-compile'));
  const status = nodeModule.constants?.compileCacheStatus;
  if (r.status === status?.FAILED) {
    return { on: false, why: r.message ?? 'Node could not open the cache folder' };
  }
  // NODE_DISABLE_COMPILE_CACHE in the environment: Node says so in its message.
  if (r.status === status?.DISABLED) {
    return { on: false, why: r.message ?? 'NODE_DISABLE_COMPILE_CACHE is set' };
  }
  return { on: true, directory: r.directory ?? '' };
}

/**
 * Writes what was compiled so far (Node writes it at exit otherwise, which a
 * SIGKILL or a crash skips): called once the service is up, when the modules
 * that serve requests are all loaded.
 */
export function flushCompileCache(): void {
  nodeModule.flushCompileCache?.();
}
