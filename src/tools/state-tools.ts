import type { Core } from '../core.js';
import { creditSentence } from '../credit/meter.js';
import { BrainstemError } from '../errors.js';
import { upgradedSessions } from '../former-chats.js';
import { freshStart } from '../fresh-start.js';
import { colon, formatUtc, t } from '../i18n.js';
import { shorten } from '../text.js';
import { formatTotals, parseSince } from '../usage-summary.js';
import { type AnyTool, defineTool, type ToolRegistry } from './registry.js';

/** brainstem's own state as tools: sessions, usage, the active mode, the audit log. */
export function stateTools(core: Core, registry: ToolRegistry): AnyTool[] {
  const modeRef = (ref: string | undefined, field: string) => {
    if (ref === undefined) return undefined;
    const m = core.modes.find(ref);
    if (!m) {
      // The name may be whatever was typed: quoted short, so the error stays one a chat can show.
      const typed = shorten(ref, 80);
      throw new BrainstemError(
        'UNKNOWN_MODE',
        `Unknown mode "${typed}". Modes: ${core.modes.ids().join(', ')}.`,
        field,
        `Mode inconnu : "${typed}". Modes : ${core.modes.ids().join(', ')}.`,
      );
    }
    return m.id;
  };

  return [
    defineTool({
      name: 'sessions',
      description:
        'Lists the conversations that have a brain session (Claude sessions resumed across restarts), all or those of one conversation or mode, or clears one.',
      mutating: (input) => input.action === 'clear',
      authorize: (input) => void modeRef(input.mode, 'mode'),
      run: async (input) => {
        const mode = modeRef(input.mode, 'mode');
        if (input.action === 'clear' && input.sessionKey) {
          return { data: { removed: freshStart(core, input.sessionKey, mode) } };
        }
        const sessions = core.sessions
          .list()
          .filter(
            (s) =>
              (mode === undefined || s.mode === mode) &&
              (input.sessionKey === undefined || s.sessionKey === input.sessionKey),
          );
        return { data: { sessions } };
      },
    }),
    defineTool({
      name: 'usage',
      description:
        'Brain usage measured by brainstem (cost, tokens, turns) since a time: 24h, 7d, 30d, today, month, all, or an ISO date; and the monthly Agent SDK credit: spent this cycle and its share, left, 7-day pace, run-out date, renewal.',
      authorize: (input) => void sinceOf(input.since),
      run: async (input, ctx) => {
        // A group upgraded to a supergroup is one conversation, as /usage counts it.
        const report = core.ledger.report(sinceOf(input.since), { countedAs: upgradedSessions(core.kv) });
        const credit = core.meter.reading();
        // Read in a chat (/run usage, the `report` shortcut, « rapport »), in its reader's language.
        const lang = ctx.lang ?? 'en';
        const lines = [
          t(
            lang,
            `Usage since ${formatUtc(report.since)}: ${formatTotals(report.totals)}`,
            `Consommation depuis ${formatUtc(report.since)} : ${formatTotals(report.totals, 'fr')}`,
          ),
          ...report.byMode.map((m) => `- ${m.mode}${colon(lang)} ${formatTotals(m, lang)}`),
          creditSentence(credit, lang),
        ];
        return { data: { ...report, credit }, output: lines.join('\n') };
      },
    }),
    defineTool({
      name: 'mode',
      description:
        'Without `mode`: the active mode and the list of modes. With `mode`: switches to it, waiting until its brain is ready.',
      mutating: (input) => input.mode !== undefined,
      authorize: (input) => void modeRef(input.mode, 'mode'),
      run: async (input, ctx) => {
        if (input.mode !== undefined) {
          const o = await core.switcher.switchTo(input.mode, {
            source: ctx.caller === 'api' ? 'api' : 'tool',
            by: ctx.caller,
          });
          if (!o.ok) {
            // A switch a stop leaves to the next start did not fail: that start makes it.
            const code = o.unknownMode
              ? 'UNKNOWN_MODE'
              : o.leftToNextStart
                ? 'SHUTTING_DOWN'
                : 'SWITCH_FAILED';
            throw new BrainstemError(code, o.reason, 'mode');
          }
          return { data: { active: o.to, from: o.from, alreadyActive: o.alreadyActive, ms: o.ms } };
        }
        return {
          data: {
            active: core.switcher.active().id,
            switching: core.switcher.isSwitching(),
            modes: core.modes.all.map((m) => ({
              id: m.id,
              kind: m.kind,
              description: m.description,
              aliases: m.aliases,
            })),
          },
        };
      },
    }),
    defineTool({
      name: 'audit',
      description:
        'The latest tool calls: when, which tool, who asked, arguments (secrets redacted), outcome.',
      run: async (input) => ({ data: { calls: registry.recentAudit(input.limit, input.tool) } }),
    }),
  ];
}

function sinceOf(value: string): number {
  const since = parseSince(value);
  if (since === undefined) {
    // Quoted short: what was typed may be long, and the error is shown in a chat.
    const typed = shorten(value, 80);
    throw new BrainstemError(
      'INVALID_REQUEST',
      `since: "${typed}" is not a period; use 24h, 7d, 30d, today, month, all or an ISO date.`,
      'since',
      `since : "${typed}" n’est pas une période ; utilisez 24h, 7d, 30d, today, month, all ou une date ISO.`,
    );
  }
  return since;
}
