import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerUsageChart } from '../handlers/http/usage-chart.js';
import { type Db, openDb } from '../src/db/index.js';
import { UsageLedger } from '../src/usage.js';
import { renderUsageChart } from '../src/usage-chart.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const DAY = 86_400_000;

/** Width and height from the IHDR chunk, which always follows the signature. */
function pngSize(png: Buffer): { width: number; height: number } {
  expect(png.subarray(12, 16).toString('ascii')).toBe('IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

describe('usage chart', () => {
  let dir: string;
  let db: Db;
  let ledger: UsageLedger;
  const now = Date.UTC(2026, 10, 24, 12);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'brainstem-chart-'));
    db = openDb(dir);
    ledger = new UsageLedger(db);
    const modes = ['assistant', 'anklume', 'local'];
    for (let d = 0; d < 14; d++) {
      for (const [i, mode] of modes.entries()) {
        if ((d + i) % 4 === 0) continue; // some quiet days per mode
        ledger.record({
          ts: now - d * DAY - i * 3_600_000,
          mode,
          sessionKey: `telegram:${i}`,
          source: 'telegram',
          costUsd: mode === 'local' ? 0 : 0.05 * (d + 1) * (i + 1),
          inputTokens: 1_000 * (d + 1),
          outputTokens: 300 * (i + 1),
          cacheReadTokens: mode === 'local' ? 0 : 20_000,
          cacheWriteTokens: mode === 'local' ? 0 : 2_000,
          durationMs: 4_000,
        });
      }
    }
  });

  afterAll(async () => {
    db.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('renders a PNG of the period from a real ledger', async () => {
    const png = await renderUsageChart(ledger, now - 30 * DAY, now + 1);
    expect(png.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    expect(pngSize(png)).toEqual({ width: 1200, height: 675 });
    // Text and bars are drawn (a blank image compresses to a few KB), and it stays small enough for Telegram.
    expect(png.length).toBeGreaterThan(15_000);
    expect(png.length).toBeLessThan(1_000_000);
  });

  it('renders an empty-state chart when there is no usage', async () => {
    const png = await renderUsageChart(ledger, now - 400 * DAY, now - 300 * DAY);
    expect(png.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    expect(pngSize(png)).toEqual({ width: 1200, height: 675 });
    expect(png.length).toBeGreaterThan(5_000);
    expect(png.length).toBeLessThan(1_000_000);
  });

  it('starts "all time" at the first recorded day instead of 1970', async () => {
    const png = await renderUsageChart(ledger, 0, now + 1);
    expect(png.subarray(0, 8)).toEqual(PNG_SIGNATURE);
  });

  it('serves GET /api/usage/chart.png and rejects a bad period', async () => {
    const app = Fastify();
    registerUsageChart(app, { ledger });
    const ok = await app.inject({ method: 'GET', url: '/api/usage/chart.png?since=7d' });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['content-type']).toBe('image/png');
    expect(ok.rawPayload.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    const bad = await app.inject({ method: 'GET', url: '/api/usage/chart.png?since=yesterdayish' });
    expect(bad.statusCode).toBe(400);
    await app.close();
  });
});
