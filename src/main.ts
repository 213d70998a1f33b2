#!/usr/bin/env node
// Only these small imports are static: what loads after enableCompileCache() is compiled from the cache.
import { type CompileCacheState, enableCompileCache, flushCompileCache } from './compile-cache.js';
import { holdTurbofanDuringStart } from './start-tiering.js';

const compileCache: CompileCacheState = enableCompileCache();

async function serve(): Promise<void> {
  // Until the first idle window (src/idle-memory.ts).
  holdTurbofanDuringStart();
  const [
    { ConfigError, loadConfig },
    { DataDirNotFolderError, lockDataDir, NativeSqliteError, UnwritableDataError },
    { createLogger },
  ] = await Promise.all([import('./config.js'), import('./instance-lock.js'), import('./logger.js')]);
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`brainstem: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // Before the rest of brainstem loads: a second instance on this data dir is refused at once.
  let lock: ReturnType<typeof lockDataDir>;
  try {
    lock = lockDataDir(config.dataDir);
  } catch (err) {
    // better-sqlite3 built for another Node (after a Node upgrade), a data dir this user cannot
    // write or that is a file: restarting cannot fix it. A full disk (DataDiskFullError) is left to pm2's restarts.
    if (
      err instanceof NativeSqliteError ||
      err instanceof UnwritableDataError ||
      err instanceof DataDirNotFolderError
    ) {
      process.stderr.write(`brainstem: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // The one place the core meets the faces: src/ and brains/ never import handlers/.
  const [{ startService, ALL_PARTS }, { faces }, { UnusableDatabaseError }, { takeOverGroups }] =
    await Promise.all([
      import('./service.js'),
      import('../handlers/index.js'),
      import('./db/unusable.js'),
      import('./leftover-groups.js'),
    ]);
  const logger = createLogger(config.logLevel);
  // Here, not in startService: one brainstem per process (tests run several in one, and keep none).
  takeOverGroups(config.dataDir, logger);
  // What nothing handled goes to the log, whose lines are scrubbed, instead of Node's own print to
  // stderr, which shows every field of the error: grammY's network error holds the request URL,
  // the bot token in it. Then the process ends, as Node would end it.
  const crashed = (what: string) => (err: unknown) => {
    logger.fatal({ err }, `crashed: ${what}`);
    process.exit(1);
  };
  process.on('uncaughtException', crashed('an exception nothing caught'));
  process.on('unhandledRejection', crashed('a rejection nothing handled'));
  let service: Awaited<ReturnType<typeof startService>> | undefined;
  // Listened for before the start: its parts start after the server listens, and a SIGTERM that
  // pm2 (or a test) sends once it sees the listening line would otherwise kill the process as is.
  let stopAsked = false;
  let signals = 0;
  const stop = (running: NonNullable<typeof service>) =>
    running.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    if (service) stop(service);
    else stopAsked = true;
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    service = await startService(config, logger, { faces, parts: ALL_PARTS, lock });
  } catch (err) {
    // An unusable state database, or one this user cannot write: restarting cannot fix it.
    if (err instanceof UnusableDatabaseError || err instanceof UnwritableDataError) {
      process.stderr.write(`brainstem: ${err.message}\n`);
      process.exit(2);
    }
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      const { host, port } = config.server;
      throw new Error(
        `${host}:${port} is already in use (EADDRINUSE): stop the program that listens there, or give brainstem another port (BRAINSTEM_PORT or server.port)`,
      );
    }
    throw err;
  }
  flushCompileCache();
  if (compileCache.on) logger.info(`compile cache: on, in ${compileCache.directory}`);
  else logger.info(`compile cache: off, ${compileCache.why}; each start compiles the bundle again`);
  if (stopAsked) stop(service);
}

async function main(): Promise<void> {
  (await import('./stack-trace.js')).mapStackTracesToSources();
  // zod compiles a parser for each object schema on its first parse (new Function), which
  // pays off on a schema parsed thousands of times; most of brainstem's are parsed once at
  // start-up (the config) or once per request. Set before any schema is built: zod reads it then.
  (await import('zod')).config({ jitless: true });
  const [command, ...args] = process.argv.slice(2);
  switch (command) {
    case undefined:
    case 'serve':
      return serve();
    case 'doctor':
      process.exitCode = await (await import('./commands/doctor.js')).runDoctor();
      return;
    case 'openclaw-config':
      process.exitCode = await (await import('./commands/openclaw-config.js')).runOpenclawConfig(args);
      return;
    default:
      process.stderr.write(
        `brainstem: unknown command "${command}". Commands: serve (default), doctor, openclaw-config [--apply PATH]\n`,
      );
      process.exitCode = 2;
  }
}

main().catch(async (err: unknown) => {
  // Scrubbed as a log line is: a start error may quote a URL or a command line with a secret in it.
  // Not always an Error: a library may throw a string, which is then the reason.
  const { scrubText } = await import('./redact.js');
  const reason = err instanceof Error ? err.message : String(err);
  process.stderr.write(`brainstem: failed to start: ${scrubText(reason)}\n`);
  process.exit(1);
});
