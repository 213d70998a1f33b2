import { pino } from 'pino';

export type LogRecord = Record<string, unknown>;

/**
 * A pino logger whose records a test reads, parsed, oldest first. Records go
 * into `logs` when given (a test that keeps one array across loggers).
 */
export function recordingLogger(
  level = 'debug',
  logs: LogRecord[] = [],
): { logger: pino.Logger; logs: LogRecord[] } {
  const logger = pino(
    { level },
    {
      // One write may carry several lines.
      write: (chunk: string) => {
        for (const line of chunk.split('\n')) if (line) logs.push(JSON.parse(line) as LogRecord);
      },
    },
  );
  return { logger, logs };
}
