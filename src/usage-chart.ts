import type { ResvgRenderOptions } from '@resvg/resvg-js';
import type { BarSeriesOption, LineSeriesOption } from 'echarts/charts';
import type {
  GraphicComponentOption,
  GridComponentOption,
  LegendComponentOption,
  TitleComponentOption,
} from 'echarts/components';
import type { ComposeOption } from 'echarts/core';
import { type CreditReading, day, percent, usd } from './credit/meter.js';
import { type Lang, t } from './i18n.js';
import { onFirstUse } from './lazy.js';
import { subprocesses } from './subprocesses.js';
import type { UsageLedger } from './usage.js';
import { formatTokens, namedModes, startOfUtcDay } from './usage-summary.js';

/**
 * The usage chart: daily cost stacked per mode (bars) and daily tokens (line),
 * drawn by ECharts' server-side SVG renderer and rasterised by resvg, so no
 * browser or canvas is needed. ECharts and resvg load on the first chart only:
 * together they take over a second to import, which start-up should not pay.
 */

const WIDTH = 1200;
const HEIGHT = 675;
const DAY_MS = 86_400_000;
/** Past this many days (e.g. `since=all`), the axis starts where the data starts. */
const MAX_EMPTY_SPAN_DAYS = 366;
/** With no data and an open-ended period, show this many days. */
const EMPTY_DAYS = 30;
/** The title and legend of every chart, so the usage and credit charts look alike. */
const TITLE_STYLE = {
  left: 24,
  top: 16,
  textStyle: { fontSize: 20, fontWeight: 'bold', color: '#222' },
  subtextStyle: { fontSize: 14, color: '#555' },
} as const;
const LEGEND_TOP = 80;
const LEGEND_LEFT = 24;
const LEGEND_ITEM_GAP = 20;
const LEGEND_FONT_PX = 13;
/** ECharts' default legend symbol width, and its gap to the text. */
const LEGEND_SYMBOL_WIDTH = 25 + 5;
/**
 * The widest a legend entry's name is drawn: a wider one (a 40-character mode name, CJK) ran over
 * the next entry; it is cut in the middle (shortName), so that a row holds several. /usage's text
 * names the same modes (namedModes) in full.
 */
const LEGEND_TEXT_WIDTH = 230;
/** A legend row at fontSize 13 with itemGap between rows, as ECharts draws it. */
const LEGEND_ROW_HEIGHT = LEGEND_FONT_PX + 1 + LEGEND_ITEM_GAP;
/** Between the legend's last row and the plot: the axis names sit there. */
const AXIS_NAME_SPACE = 46;

/**
 * The legend for these series' names and the plot's top below it: a legend of more entries than a
 * row holds wraps, and the plot (its axis names) started at a fixed 140 px, under the third row.
 */
function legendAndGridTop(names: string[]): { legend: LegendComponentOption; gridTop: number } {
  // The rows ECharts makes of them, as it measures the names (measureText).
  const available = WIDTH - 2 * LEGEND_LEFT;
  let rows = 1;
  let x = 0;
  for (const name of names) {
    const width = LEGEND_SYMBOL_WIDTH + textWidth(shortName(name));
    if (x > 0 && x + width > available) {
      rows++;
      x = 0;
    }
    x += width + LEGEND_ITEM_GAP;
  }
  return {
    legend: {
      top: LEGEND_TOP,
      left: LEGEND_LEFT,
      right: LEGEND_LEFT,
      itemGap: LEGEND_ITEM_GAP,
      textStyle: { fontSize: LEGEND_FONT_PX },
      formatter: shortName,
      data: names,
    },
    gridTop: LEGEND_TOP + rows * LEGEND_ROW_HEIGHT + AXIS_NAME_SPACE,
  };
}

const textWidth = (text: string) => measureText(text, `${LEGEND_FONT_PX}px`).width;

/**
 * A name no wider than LEGEND_TEXT_WIDTH: its start and its end around an ellipsis, since modes
 * named alike often differ at the end (`claude-sonnet-fast`, `claude-sonnet-slow`).
 */
function shortName(name: string): string {
  if (textWidth(name) <= LEGEND_TEXT_WIDTH) return name;
  const chars = [...name];
  let head = 0;
  let tail = 0;
  // Two characters from the start for one from the end, while the cut name still fits.
  for (let turn = 0; head + tail < chars.length; turn++) {
    const [h, e] = turn % 3 === 2 ? [head, tail + 1] : [head + 1, tail];
    if (
      textWidth(`${chars.slice(0, h).join('')}…${chars.slice(chars.length - e).join('')}`) > LEGEND_TEXT_WIDTH
    )
      break;
    [head, tail] = [h, e];
  }
  return `${chars.slice(0, head).join('')}…${chars.slice(chars.length - tail).join('')}`;
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7', '#9c755f'];
const TOKEN_COLOR = '#e15759';
/**
 * The modes namedModes names get a bar of their own, one palette colour each (there are as many
 * colours as MODES_NAMED); the others share one grey bar. ECharts cycles the palette: a ninth mode
 * got the first one's colour, and two modes of the stack could not be told apart.
 */
const OTHERS_COLOR = '#bab0ac';

type ChartOption = ComposeOption<
  | BarSeriesOption
  | LineSeriesOption
  | GridComponentOption
  | LegendComponentOption
  | TitleComponentOption
  | GraphicComponentOption
>;

export async function renderUsageChart(
  ledger: UsageLedger,
  since: number,
  until = Date.now() + 1,
  lang: Lang = 'en',
): Promise<Buffer> {
  return toPng(chartOption(ledger.dailyByMode(since, until), since, until, lang));
}

/**
 * The credit chart: the cycle's cumulative spend on the subscription (per
 * hour), the credit as a line, and the forecast at the 7-day pace from now to
 * the renewal. Needs a reading with a credit.
 */
export async function renderCreditChart(
  ledger: UsageLedger,
  r: CreditReading,
  lang: Lang = 'en',
): Promise<Buffer> {
  const hours = ledger.hourlySpend('subscription', r.cycle.start, r.now + 1);
  return toPng(creditChartOption(hours, r, lang));
}

async function toPng(option: ChartOption): Promise<Buffer> {
  const { resvg } = await libraries();
  const image = await resvg.renderAsync(await chartSvg(option), {
    background: '#ffffff',
    font: await fontOptions(),
    logLevel: 'error',
  });
  return image.asPng();
}

/** The SVG the PNG is drawn from (exported for the tests, which read where its texts are). */
export async function chartSvg(option: ChartOption): Promise<string> {
  const { echarts } = await libraries();
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: WIDTH, height: HEIGHT });
  let svg: string;
  try {
    chart.setOption(option);
    svg = chart.renderToSVGString();
  } finally {
    // An undisposed SSR chart keeps zrender's animation timer alive.
    chart.dispose();
  }
  return svg;
}

type Row = ReturnType<UsageLedger['dailyByMode']>[number];

/**
 * What the usage chart draws (exported for the tests, which cannot read a PNG's bars); its words
 * in the reader's language (a French chat's /usage chart), the HTTP API's in English.
 */
export function chartOption(rows: Row[], since: number, until: number, lang: Lang = 'en'): ChartOption {
  const tokensName = t(lang, 'tokens', 'jetons');
  const days = dayAxis(rows, since, until);
  const index = new Map(days.map((d, i) => [d, i]));
  // Only modes that cost something get a bar (a local model costs 0; its tokens are in the line).
  const spent = new Map<string, number>();
  for (const r of rows) if (r.costUsd > 0) spent.set(r.mode, (spent.get(r.mode) ?? 0) + r.costUsd);
  const costliest = [...spent].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const charted = namedModes(costliest);
  const others = charted.others.length;
  const othersName = t(lang, `${others} other modes`, `${others} autres modes`);
  const modes = charted.named.map(([m]) => m).sort();
  const bars = [...modes, ...(others > 0 ? [othersName] : [])];
  const cost = new Map(bars.map((m) => [m, days.map(() => 0)]));
  const tokens = days.map(() => 0);
  const totals = { cost: 0, turns: 0, input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };
  for (const r of rows) {
    const i = index.get(r.day);
    if (i === undefined) continue;
    const perMode = cost.get(r.mode) ?? (r.costUsd > 0 && others > 0 ? cost.get(othersName) : undefined);
    if (perMode) perMode[i] = (perMode[i] ?? 0) + r.costUsd;
    // Every token the model processed: with Claude most of the prompt arrives as cache reads.
    tokens[i] = (tokens[i] ?? 0) + r.inputTokens + r.outputTokens + r.cacheReadTokens + r.cacheWriteTokens;
    totals.cost += r.costUsd;
    totals.turns += r.turns;
    totals.input += r.inputTokens;
    totals.output += r.outputTokens;
    totals.cacheRead += r.cacheReadTokens;
    totals.cacheWrite += r.cacheWriteTokens;
  }
  const empty = rows.length === 0;
  const { legend, gridTop } = legendAndGridTop([...bars, ...(empty ? [] : [tokensName])]);

  return {
    animation: false,
    backgroundColor: '#ffffff',
    textStyle: { fontFamily: 'sans-serif', color: '#333' },
    color: PALETTE,
    title: {
      text: t(
        lang,
        `brainstem usage, ${days[0]} → ${days[days.length - 1]} (UTC)`,
        `Consommation de brainstem, ${days[0]} → ${days[days.length - 1]} (UTC)`,
      ),
      subtext: empty
        ? t(lang, 'no brain turns in this period', 'aucun tour de cerveau sur cette période')
        : t(
            lang,
            `$${totals.cost.toFixed(2)} · ${totals.turns} ${totals.turns === 1 ? 'turn' : 'turns'} · tokens in ${formatTokens(totals.input)}, out ${formatTokens(totals.output)}, cache read ${formatTokens(totals.cacheRead)}, cache write ${formatTokens(totals.cacheWrite)}`,
            `$${totals.cost.toFixed(2)} · ${totals.turns} ${totals.turns > 1 ? 'tours' : 'tour'} · jetons en entrée ${formatTokens(totals.input)}, en sortie ${formatTokens(totals.output)}, cache lu ${formatTokens(totals.cacheRead)}, cache écrit ${formatTokens(totals.cacheWrite)}`,
          ),
      ...TITLE_STYLE,
    },
    legend,
    grid: { left: 80, right: 90, top: gridTop, bottom: 60 },
    xAxis: {
      type: 'category',
      data: days.map((d) => d.slice(5)),
      axisLabel: { fontSize: 12, hideOverlap: true },
    },
    yAxis: [
      {
        type: 'value',
        name: t(lang, 'cost (USD)', 'coût (USD)'),
        nameTextStyle: { fontSize: 13 },
        min: 0,
        axisLabel: { fontSize: 12, formatter: (v: number) => `$${v < 10 ? v.toFixed(2) : v.toFixed(0)}` },
      },
      {
        type: 'value',
        name: tokensName,
        nameTextStyle: { fontSize: 13 },
        min: 0,
        splitLine: { show: false },
        axisLabel: { fontSize: 12, formatter: (v: number) => formatTokens(v) },
      },
    ],
    series: [
      ...bars.map(
        (mode, i): BarSeriesOption => ({
          type: 'bar',
          name: mode,
          color: i < modes.length ? PALETTE[i] : OTHERS_COLOR,
          stack: 'cost',
          yAxisIndex: 0,
          barMaxWidth: 40,
          data: cost.get(mode) ?? [],
        }),
      ),
      ...(empty
        ? []
        : [
            {
              type: 'line',
              name: tokensName,
              yAxisIndex: 1,
              color: TOKEN_COLOR,
              symbol: days.length > 60 ? 'none' : 'circle',
              symbolSize: 6,
              lineStyle: { width: 2 },
              data: tokens,
            } satisfies LineSeriesOption,
          ]),
    ],
    graphic: empty
      ? [
          {
            type: 'text',
            left: 'center',
            top: 'middle',
            style: {
              text: t(lang, 'No usage recorded in this period', 'Aucune consommation sur cette période'),
              fontSize: 22,
              fontFamily: 'sans-serif',
              fill: '#888',
            },
          },
        ]
      : [],
  };
}

/** What the credit chart draws (exported for the tests), in the reader's language. */
export function creditChartOption(
  hours: { hour: number; costUsd: number }[],
  r: CreditReading,
  lang: Lang,
): ChartOption {
  // The series' names, which the legend lists.
  const names = {
    spent: t(lang, 'spent', 'dépensé'),
    forecast: t(lang, 'forecast', 'prévision'),
    credit: t(lang, 'credit', 'crédit'),
  };
  const { legend, gridTop } = legendAndGridTop([names.spent, names.forecast, names.credit]);
  const credit = r.credit?.usd ?? 0;
  let total = 0;
  // A step per hour with spending, from 0 at the cycle's start to now.
  const spent: [number, number][] = [[r.cycle.start, 0]];
  for (const h of hours) {
    total += h.costUsd;
    spent.push([Math.max(h.hour, r.cycle.start), total]);
  }
  spent.push([r.now, r.spent]);
  const atEnd = r.spent + (r.pacePerDay * (r.cycle.end - r.now)) / 86_400_000;
  const forecast = r.exhausted
    ? []
    : ([
        [r.now, r.spent],
        [r.cycle.end, atEnd],
      ] as [number, number][]);
  const runOut =
    r.exhausted || r.runOutAt === undefined
      ? r.exhausted
        ? t(lang, 'spent', 'épuisé')
        : t(lang, 'nothing spent in the last 7 days', 'rien dépensé ces 7 derniers jours')
      : r.runOutAt < r.cycle.end
        ? t(
            lang,
            `runs out on ${day(r.runOutAt)} at ${usd(r.pacePerDay)}/day`,
            `épuisé le ${day(r.runOutAt)} à ${usd(r.pacePerDay)}/jour`,
          )
        : t(
            lang,
            `lasts until the renewal at ${usd(r.pacePerDay)}/day`,
            `tient jusqu’au renouvellement à ${usd(r.pacePerDay)}/jour`,
          );
  return {
    animation: false,
    // The time axis' ticks and labels in UTC, as the title and the cycle are: ECharts uses the
    // server's zone by default, so on a host in Tokyo or California each day sat hours off.
    useUTC: true,
    backgroundColor: '#ffffff',
    textStyle: { fontFamily: 'sans-serif', color: '#333' },
    title: {
      text: t(
        lang,
        `Agent SDK credit, cycle ${day(r.cycle.start)} → ${day(r.cycle.end)} (UTC)`,
        `Crédit Agent SDK, cycle ${day(r.cycle.start)} → ${day(r.cycle.end)} (UTC)`,
      ),
      subtext: t(
        lang,
        `${usd(r.spent)} of ${usd(credit)} spent (${percent(r.share ?? 0)}), ${usd(r.left ?? 0)} left · ${runOut}`,
        `${usd(r.spent)} dépensés sur ${usd(credit)} (${percent(r.share ?? 0)}), il reste ${usd(r.left ?? 0)} · ${runOut}`,
      ),
      ...TITLE_STYLE,
    },
    legend,
    grid: { left: 80, right: 60, top: gridTop, bottom: 60 },
    xAxis: {
      type: 'time',
      min: r.cycle.start,
      max: r.cycle.end,
      axisLabel: { fontSize: 12, hideOverlap: true, formatter: '{MM}-{dd}' },
    },
    yAxis: {
      type: 'value',
      name: 'USD',
      min: 0,
      nameTextStyle: { fontSize: 13 },
      axisLabel: { fontSize: 12, formatter: (v: number) => usd(v) },
    },
    series: [
      {
        type: 'line',
        name: names.spent,
        step: 'end',
        symbol: 'none',
        color: PALETTE[0],
        lineStyle: { width: 3 },
        areaStyle: { opacity: 0.15 },
        data: spent,
      },
      {
        type: 'line',
        name: names.forecast,
        symbol: 'none',
        color: PALETTE[1],
        lineStyle: { width: 2, type: 'dashed' },
        data: forecast,
      },
      {
        type: 'line',
        name: names.credit,
        symbol: 'none',
        color: TOKEN_COLOR,
        lineStyle: { width: 2 },
        data: [
          [r.cycle.start, credit],
          [r.cycle.end, credit],
        ],
      },
    ],
  };
}

/** Every UTC day of the period as YYYY-MM-DD, so quiet days show as gaps rather than vanish. */
function dayAxis(rows: Row[], since: number, until: number): string[] {
  const end = startOfUtcDay(Math.max(since, until - 1));
  let start = startOfUtcDay(since);
  if ((end - start) / DAY_MS > MAX_EMPTY_SPAN_DAYS) {
    const first = rows[0] ? Date.parse(`${rows[0].day}T00:00:00Z`) : end - (EMPTY_DAYS - 1) * DAY_MS;
    start = Math.max(start, first);
  }
  const days: string[] = [];
  for (let t = start; t <= end; t += DAY_MS) days.push(new Date(t).toISOString().slice(0, 10));
  return days;
}

interface Libraries {
  echarts: typeof import('echarts/core');
  resvg: typeof import('@resvg/resvg-js');
}

/** echarts and resvg: ~30 MB and over a second of start-up, for a command few runs use. */
const libraries = onFirstUse(async (): Promise<Libraries> => {
  const [echarts, charts, components, renderers, resvg] = await Promise.all([
    import('echarts/core'),
    import('echarts/charts'),
    import('echarts/components'),
    import('echarts/renderers'),
    import('@resvg/resvg-js'),
  ]);
  echarts.use([
    charts.BarChart,
    charts.LineChart,
    components.GridComponent,
    components.LegendComponent,
    components.TitleComponent,
    components.GraphicComponent,
    renderers.SVGRenderer,
  ]);
  echarts.setPlatformAPI({ measureText });
  return { echarts, resvg };
});

/**
 * Text widths as resvg draws them with DejaVu Sans (fontOptions' sans-serif), a little wide rather
 * than narrow. Without a canvas, ECharts measures with a table of a narrower font's widths: a long
 * legend name ran over the next entry, and its cut (overflow: truncate) came too late.
 */
function measureText(text: string, font = ''): { width: number } {
  const px = Number(/(\d+(?:\.\d+)?)px/.exec(font)?.[1] ?? 12);
  let em = 0;
  for (const char of text) em += (char.codePointAt(0) ?? 0) >= WIDE_FROM ? 1 : 0.64;
  return { width: em * px };
}
/** From here (Hangul Jamo up: CJK, emoji) a character is about a square. */
const WIDE_FROM = 0x1100;

/** What fontconfig reads (and PATH, to find fc-match): the host's font setup. */
const FONTCONFIG_VARS = new Set(['PATH', 'HOME', 'LANG', 'LANGUAGE', 'SOURCE_DATE_EPOCH']);
const FONTCONFIG_PREFIXES = ['FONTCONFIG_', 'FC_', 'XDG_', 'LC_'];

/**
 * fc-match's environment, by an allow-list: it needs the font setup only, and
 * a deny-list of brainstem's secrets (childEnv) would still pass the ones its
 * config names (transcription.apiKeyEnv), which the chart is never told.
 */
function fontconfigEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (
      value !== undefined &&
      (FONTCONFIG_VARS.has(name) || FONTCONFIG_PREFIXES.some((p) => name.startsWith(p)))
    )
      env[name] = value;
  }
  return env;
}

/**
 * resvg draws no text without a font. Ask fontconfig for the system's sans-serif
 * face and load just that file (fast and deterministic); without fontconfig, let
 * resvg scan the usual font directories, and with no font at all the chart still
 * renders, only without its labels.
 */
const fontOptions = onFirstUse(async (): Promise<NonNullable<ResvgRenderOptions['font']>> => {
  const { execa } = await subprocesses();
  const r = await execa('fc-match', ['--format=%{family[0]}\n%{file}', 'sans-serif'], {
    reject: false,
    timeout: 3_000,
    stdin: 'ignore',
    env: fontconfigEnv(),
    extendEnv: false,
  });
  const [family, file] = r.failed ? [] : r.stdout.split('\n');
  if (family && file) {
    return {
      loadSystemFonts: false,
      fontFiles: [file],
      defaultFontFamily: family,
      sansSerifFamily: family,
    };
  }
  return { loadSystemFonts: true };
});
