#!/usr/bin/env node
import { ConfigError, loadConfig } from './config.js';
import { lockDataDir } from './instance-lock.js';
import { createLogger } from './logger.js';
import { mapStackTracesToSources } from './stack-trace.js';

mapStackTracesToSources();

async function serve(): Promise<void> {
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
  const lock = lockDataDir(config.dataDir);
  // The one place the core meets the faces: src/ and brains/ never import handlers/.
  const [{ startService, ALL_PARTS }, { faces }] = await Promise.all([
    import('./service.js'),
    import('../handlers/index.js'),
  ]);
  const logger = createLogger(config.logLevel);
  const service = await startService(config, logger, { faces, parts: ALL_PARTS, lock });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    service.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function main(): Promise<void> {
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

main().catch((err: Error) => {
  process.stderr.write(`brainstem: failed to start: ${err.message}\n`);
  process.exit(1);
});
