import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Core } from '../../src/core.js';
import { BrainstemError } from '../../src/errors.js';
import { formatUtc } from '../../src/i18n.js';
import { renderUsageChart } from '../../src/usage-chart.js';
import { parseSince } from '../../src/usage-summary.js';
import { queryOf } from './query.js';

const query = z.strictObject({
  since: z.string().default('30d'),
  until: z.string().optional(),
});

/**
 * How far ahead `until` may go (a chart up to the end of the year). The ledger holds nothing
 * after now, and the chart draws every day up to `until`: `until=9999-12-31` was millions of
 * empty days, minutes of rendering with brainstem standing still.
 */
const MAX_AHEAD_MS = 366 * 86_400_000;

/**
 * `GET /api/usage/chart.png?since=30d[&until=…]`: the usage chart as a PNG.
 * `since` and `until` take what /usage takes (7d, 24h, month, an ISO date, unix ms or seconds).
 * The Bearer token is asked by auth.ts, as on every route not marked public.
 */
export function registerUsageChart(app: FastifyInstance, core: Pick<Core, 'ledger'>): void {
  app.get('/api/usage/chart.png', async (request, reply) => {
    const q = queryOf(query, request.query);
    const since = parseSince(q.since);
    if (since === undefined) {
      throw new BrainstemError(
        'INVALID_REQUEST',
        `since: "${q.since}" is not a period (7d, 24h, month, 2026-11-01…).`,
        'since',
      );
    }
    const until = q.until === undefined ? undefined : parseSince(q.until);
    if (q.until !== undefined && until === undefined) {
      throw new BrainstemError('INVALID_REQUEST', `until: "${q.until}" is not a date.`, 'until');
    }
    if (until !== undefined && until > Date.now() + MAX_AHEAD_MS) {
      throw new BrainstemError(
        'INVALID_REQUEST',
        `until: "${q.until}" is more than a year ahead; the ledger holds nothing after now.`,
        'until',
      );
    }
    if (until !== undefined && until <= since) {
      throw new BrainstemError('INVALID_REQUEST', 'until must come after since.', 'until');
    }
    // Without `until` the chart ends now: a `since` to come (a year mistyped) drew one empty day of
    // the future as if nothing had been used, where /usage says the period starts in the future.
    if (until === undefined && since > Date.now()) {
      throw new BrainstemError(
        'INVALID_REQUEST',
        `since: "${q.since}" starts in the future (${formatUtc(since)}): nothing has been used in it yet.`,
        'since',
      );
    }
    const png = await renderUsageChart(core.ledger, since, until);
    return reply.type('image/png').header('cache-control', 'no-store').send(png);
  });
}
