import { type DestinationStream, pino } from 'pino';
import { scrubText } from './redact.js';

export type { Logger } from 'pino';

/**
 * JSON logs (pm2 and journald keep them); secrets are redacted wherever they
 * might appear: by path in a logged object, then by name and shape in the
 * written line (a URL with credentials, a token inside an error message).
 * `destination` defaults to stdout.
 */
export function createLogger(level: string, destination?: DestinationStream) {
  return pino(
    {
      level,
      hooks: { streamWrite: scrubText },
      redact: {
        paths: [
          'req.headers.authorization',
          'headers.authorization',
          '*.token',
          '*.apiToken',
          '*.accessToken',
          '*.refreshToken',
          '*.gatewayToken',
          '*.apiKey',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
