import { pino } from 'pino';

export type { Logger } from 'pino';

/**
 * JSON logs (pm2 and journald keep them); secrets are redacted wherever they
 * might appear in a logged object.
 */
export function createLogger(level: string) {
  return pino({
    level,
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
  });
}
