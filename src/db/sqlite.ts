import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

/**
 * better-sqlite3, the one way brainstem loads it: with `require`. It is a
 * CommonJS package, and an ES `import` of one makes Node load its CommonJS
 * export scanner (a WebAssembly module, ~1 MB resident and a few ms of
 * start-up) only to list the package's exports.
 */
const Database: typeof BetterSqlite3 = createRequire(import.meta.url)('better-sqlite3');

export default Database;
