/**
 * Loaded by every Node process of a test build (`--import` in NODE_OPTIONS: npm, the build
 * script): each ends when its stdin, a pipe from the process that holds the build lock, closes,
 * as it does when that process dies, however it dies. Else a killed holder's build would go on
 * writing dist/ after the kernel gave the lock to the next build. esbuild's own process ends with
 * the build script's. Unreferenced: the process ends at its own end as before.
 *
 * The main thread only: `--import` modules load in tsx's module-hooks thread too, and reading
 * stdin there hung the build script on Node 24 for good, its main thread waiting on that thread
 * (test/build-helper.test.ts).
 */
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  process.stdin
    .on('end', () => process.exit(1))
    .resume()
    .unref();
}
