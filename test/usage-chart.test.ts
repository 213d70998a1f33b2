import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import Fastify from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerUsageChart } from '../handlers/http/usage-chart.js';
import type { CreditReading } from '../src/credit/meter.js';
import { type Db, openDb } from '../src/db/index.js';
import { KeptWrites } from '../src/db/kept-writes.js';
import { UsageLedger } from '../src/usage.js';
import {
  chartOption,
  chartSvg,
  creditChartOption,
  renderCreditChart,
  renderUsageChart,
} from '../src/usage-chart.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const DAY = 86_400_000;

/** One turn of `mode` on `day` costing `costUsd`, as the chart's daily rows hold it. */
const dayRow = (day: string, mode: string, costUsd: number) => ({
  ...{ day, mode, turns: 1, errors: 0, costUsd, inputTokens: 10, outputTokens: 10 },
  ...{ cacheReadTokens: 0, cacheWriteTokens: 0, durationMs: 1, estimated: 0, uncounted: 0 },
});

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
    ledger = new UsageLedger(db, new KeptWrites(db, pino({ level: 'silent' })));
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

  it('gives each charted mode a colour of its own, the costliest seven named and the others summed in one bar', () => {
    const day = '2026-11-24';
    // Ten Claude modes and a local one (no cost, no bar): m01 costs $1 … m10 $10.
    const rows = [...Array.from({ length: 10 }, (_, i) => i + 1), 0].map((n) =>
      dayRow(day, n === 0 ? 'local' : `m${String(n).padStart(2, '0')}`, n),
    );
    const option = chartOption(rows, Date.parse(`${day}T00:00Z`), Date.parse(`${day}T12:00Z`));
    const bars = (option.series as { type: string; name: string; color: string; data: number[] }[]).filter(
      (s) => s.type === 'bar',
    );
    // ECharts cycles its eight colours: a ninth mode's bar was the first one's colour.
    expect(bars.map((b) => b.name)).toEqual([
      'm04',
      'm05',
      'm06',
      'm07',
      'm08',
      'm09',
      'm10',
      '3 other modes',
    ]);
    expect(new Set(bars.map((b) => b.color)).size).toBe(bars.length);
    expect(bars.at(-1)?.data).toEqual([1 + 2 + 3]);
    expect(bars.reduce((n, b) => n + (b.data[0] ?? 0), 0)).toBe(55);
    // Up to eight modes, each has its own bar.
    const eight = chartOption(rows.slice(2), Date.parse(`${day}T00:00Z`), Date.parse(`${day}T12:00Z`));
    expect((eight.series as { type: string }[]).filter((s) => s.type === 'bar')).toHaveLength(8);
    // One turn is "1 turn", not "1 turns".
    const one = chartOption(rows.slice(-1), Date.parse(`${day}T00:00Z`), Date.parse(`${day}T12:00Z`));
    expect((one.title as { subtext: string }).subtext).toMatch(/^\$[\d.]+ · 1 turn · /);
    // For a French chat's /usage chart, every word on it in French: title, totals, legend, axes.
    const fr = chartOption(rows, Date.parse(`${day}T00:00Z`), Date.parse(`${day}T12:00Z`), 'fr');
    const title = fr.title as { text: string; subtext: string };
    expect(title.text).toBe(`Consommation de brainstem, ${day} → ${day} (UTC)`);
    expect(title.subtext).toMatch(
      /^\$55\.00 · 11 tours · jetons en entrée 110, en sortie 110, cache lu 0, cache écrit 0$/,
    );
    expect((fr.legend as { data: string[] }).data.slice(-2)).toEqual(['3 autres modes', 'jetons']);
    expect((fr.yAxis as { name: string }[]).map((a) => a.name)).toEqual(['coût (USD)', 'jetons']);
    const empty = chartOption([], Date.parse(`${day}T00:00Z`), Date.parse(`${day}T12:00Z`), 'fr');
    expect((empty.title as { subtext: string }).subtext).toBe('aucun tour de cerveau sur cette période');
  });

  it('keeps the legend of eight long mode names above the plot, its entries apart and told apart', async () => {
    const day = '2026-11-24';
    // Forty-character names, some alike but for their end, one CJK and one with emoji: one bar each.
    const names = [
      ...Array.from({ length: 6 }, (_, i) => `anthropic-claude-sonnet-4-5-research-${i}`.padEnd(40, 'x')),
      '助手模式中文名称很长的模式名称测试助手模式中文名称很长的模式名称测试助手模式',
      `🤖 robot mode with emoji 🚀 ${'y'.repeat(40)}`.slice(0, 40),
    ];
    const rows = names.map((mode, i) => dayRow(day, mode, i + 1));
    const svg = await chartSvg(chartOption(rows, Date.parse(`${day}T00:00Z`), Date.parse(`${day}T12:00Z`)));
    const texts = [...svg.matchAll(/<text ([^>]*)>([^<]*)<\/text>/g)].map(([, attrs = '', text = '']) => {
      const at = (name: string) => Number(new RegExp(`\\b${name}="([-\\d.]+)"`).exec(attrs)?.[1] ?? 0);
      const [tx = 0, ty = 0] = (/translate\(([-\d.]+) ([-\d.]+)\)/.exec(attrs)?.slice(1) ?? []).map(Number);
      const size = Number(/font-size:([\d.]+)px/.exec(attrs)?.[1]);
      // dominant-baseline central: y is the text's middle.
      return { text, attrs, left: tx + at('x'), middle: ty + at('y'), size };
    });
    // The legend's entries: their text starts at x (the axis names are centred on theirs).
    const legend = texts.filter((t) => t.attrs.includes('text-anchor="start"') && t.size === 13);
    expect(legend).toHaveLength(names.length + 1);
    const axisName = texts.find((t) => t.text === 'cost (USD)');
    expect(axisName).toBeDefined();
    const plotTop = (axisName?.middle ?? 0) - (axisName?.size ?? 0) / 2;
    // A third row of the legend was drawn over the plot, which started at a fixed 140 px.
    for (const entry of legend)
      expect(entry.middle + entry.size / 2, entry.text).toBeLessThanOrEqual(plotTop);
    // Each name as drawn (the font resvg draws with) ends before the next entry's symbol starts.
    const family = execFileSync('fc-match', ['--format=%{family[0]}', 'sans-serif'], { encoding: 'utf8' });
    const drawnWidth = (text: string) =>
      new Resvg(
        `<svg xmlns="http://www.w3.org/2000/svg" width="2000" height="40"><text x="0" y="20" style="font-size:13px;font-family:sans-serif;">${text}</text></svg>`,
        { font: { loadSystemFonts: true, defaultFontFamily: family, sansSerifFamily: family } },
      ).getBBox()?.width ?? 0;
    const symbolAndGap = 30;
    for (const [i, entry] of legend.entries()) {
      const next = legend[i + 1];
      const end = entry.left + drawnWidth(entry.text);
      expect(end, entry.text).toBeLessThanOrEqual(1200);
      if (next && next.middle === entry.middle)
        expect(end, entry.text).toBeLessThan(next.left - symbolAndGap);
    }
    // Names alike but for their end are still told apart, cut in their middle.
    expect(new Set(legend.map((e) => e.text)).size).toBe(legend.length);
  });

  it('draws the credit chart’s days in UTC, as its title says, whatever the server’s time zone', async () => {
    const start = Date.UTC(2026, 10, 1);
    const reading: CreditReading = {
      now,
      cycle: { start, end: Date.UTC(2026, 11, 1) },
      credit: { usd: 20, from: 'config' },
      spent: 6,
      share: 0.3,
      left: 14,
      pacePerDay: 0.5,
      runOutAt: now + 28 * DAY,
      exhausted: false,
      apiSpent: 0,
    };
    // For a French chat, in French: title, totals, forecast and the legend's series.
    const fr = creditChartOption([], reading, 'fr');
    expect((fr.title as { text: string }).text).toBe('Crédit Agent SDK, cycle 2026-11-01 → 2026-12-01 (UTC)');
    expect((fr.title as { subtext: string }).subtext).toMatch(
      /^\$6\.00 dépensés sur \$20\.00 \(30 %\), il reste \$14\.00 · tient jusqu’au renouvellement à \$0\.50\/jour$/,
    );
    expect((fr.legend as { data: string[] }).data).toEqual(['dépensé', 'prévision', 'crédit']);
    const tz = process.env.TZ;
    try {
      process.env.TZ = 'UTC';
      const utc = await renderCreditChart(ledger, reading);
      // A home server keeps its local zone (systemd, /etc/localtime): ECharts' time axis drew local
      // midnights, so each day's tick and label were off by the offset and the renewal's fell off.
      for (const zone of ['Asia/Tokyo', 'America/Los_Angeles']) {
        process.env.TZ = zone;
        expect((await renderCreditChart(ledger, reading)).equals(utc), zone).toBe(true);
      }
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('looks the font up without brainstem’s secrets in fc-match’s environment, its configured ones included', async (ctx) => {
    // An fc-match first on PATH that records the environment it got (and finds no font: the chart still renders).
    const bin = path.join(dir, 'bin');
    const dump = path.join(dir, 'fc-match-environ');
    await mkdir(bin);
    await writeFile(path.join(bin, 'fc-match'), `#!/bin/sh\nenv > '${dump}'\nexit 1\n`);
    await chmod(path.join(bin, 'fc-match'), 0o755);
    vi.stubEnv('PATH', `${bin}${path.delimiter}${process.env.PATH}`);
    vi.stubEnv('TELEGRAM_BOT_TOKEN', '123456:bot-secret-token');
    vi.stubEnv('BRAINSTEM_API_TOKEN', 'api-secret-token');
    vi.stubEnv('BRAVE_API_KEY', 'brave-secret-key');
    // What transcription.apiKeyEnv may name: any variable, a secret the chart is never told about.
    vi.stubEnv('STT_CHART_TEST_KEY', 'stt-secret-key');
    vi.stubEnv('FONTCONFIG_PATH', '/etc/fonts-for-the-test');
    vi.stubEnv('XDG_CACHE_HOME', '/tmp/fc-cache-for-the-test');
    ctx.onTestFinished(() => {
      vi.unstubAllEnvs();
    });
    // The font is looked up once per process: a fresh copy of the module looks again.
    vi.resetModules();
    const fresh = await import('../src/usage-chart.js');

    const png = await fresh.renderUsageChart(ledger, now - 7 * DAY, now + 1);

    expect(png.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    const env = await readFile(dump, 'utf8');
    expect(env).toContain('FONTCONFIG_PATH=/etc/fonts-for-the-test');
    expect(env).toContain('XDG_CACHE_HOME=/tmp/fc-cache-for-the-test');
    expect(env).not.toMatch(/bot-secret-token|api-secret-token|brave-secret-key|stt-secret-key/);
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
    // Every day up to `until` is drawn: centuries ahead held brainstem still for as long as it took.
    const far = await app.inject({ method: 'GET', url: '/api/usage/chart.png?since=7d&until=2500-01-01' });
    expect(far.statusCode).toBe(400);
    expect(far.json().message).toBe(
      'until: "2500-01-01" is more than a year ahead; the ledger holds nothing after now.',
    );
    // A period to come, without an `until` after it, is said to be in the future, as /usage says it.
    const future = await app.inject({ method: 'GET', url: '/api/usage/chart.png?since=2099-01-01' });
    expect(future.statusCode).toBe(400);
    expect(future.json().message).toBe(
      'since: "2099-01-01" starts in the future (2099-01-01 00:00 UTC): nothing has been used in it yet.',
    );
    // A parameter it does not take is refused by name, not ignored for the default 30 days; so is one given twice.
    for (const [url, named] of [
      ['/api/usage/chart.png?sinse=7d', 'sinse'],
      ['/api/usage/chart.png?since=7d&since=30d', 'since'],
    ] as const) {
      const refused = await app.inject({ method: 'GET', url });
      expect(refused.statusCode, url).toBe(400);
      expect(refused.json().message, url).toMatch(new RegExp(`^${named}: `));
    }
    await app.close();
  });
});
