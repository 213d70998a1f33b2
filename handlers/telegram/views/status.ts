import { modeId, readyIcon, statusWord, uptimeLine } from '../../../src/chat/facts.js';
import type { Core } from '../../../src/core.js';
import { colon, formatDuration, formatUtc, type Lang, saidIn, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import type { FrontStatus } from '../../telegram-front/index.js';
import { escapeHtml, htmlMarkup } from '../format/render.js';
import { creditStatusLine } from './credit.js';
import { limitLines } from './limit.js';

/** How long /status waits for each probe. */
const PROBE_MS = 3000;

/** /status: active mode, Claude's usage limit if reached, the Agent SDK credit, each brain's readiness, the route and whether it answers, uptime, versions. */
export async function statusView(core: Core, front: FrontStatus | undefined, lang: Lang): Promise<string> {
  const facts = await core.chat.statusFacts(PROBE_MS);
  const { active, lines } = facts;
  const brains = lines.map(
    (l) =>
      `${readyIcon(l.ready)} ${modeId(l.mode.id, l.active, htmlMarkup)} (${l.mode.kind})${colon(lang)} ${escapeHtml(saidIn(l.detail, lang))}`,
  );
  const routeLine = front
    ? frontLine(front, lang)
    : t(
        lang,
        'Route: direct to the active brain (the Bot API front for OpenClaw is off)',
        'Route : directe vers le cerveau actif (le front Bot API pour OpenClaw est éteint)',
      );
  return [
    `${PROXY_TAG} ${htmlMarkup.strong(statusWord(lang))}`,
    t(lang, `Active mode: <b>${escapeHtml(active.id)}</b>`, `Mode actif : <b>${escapeHtml(active.id)}</b>`) +
      switchingNote(facts.switching, core.switcher.underWay(), lang),
    ...limitLines(core.limits.state(), core.config.usageLimit.fallbackMode, lang),
    ...creditStatusLine(core.meter.reading(), lang),
    ...brains,
    routeLine,
    uptimeLine(facts.uptimeMs, lang),
    `Versions${colon(lang)} brainstem ${escapeHtml(facts.version)}, Node ${process.versions.node}`,
  ].join('\n');
}

/** Where OpenClaw's channel stands: when it last fetched from the front, and what waits for it. */
export function frontLine(f: FrontStatus, lang: Lang): string {
  const now = Date.now();
  const polled =
    f.lastPolledAt === undefined
      ? t(lang, 'never polled yet', 'jamais encore récupéré')
      : t(
          lang,
          `last polled ${formatDuration(now - f.lastPolledAt)} ago${f.polling ? ' (polling now)' : ''}`,
          `dernière récupération il y a ${formatDuration(now - f.lastPolledAt)}${f.polling ? ' (en cours)' : ''}`,
        );
  const waiting =
    f.waiting === 0 || f.oldestAt === undefined
      ? t(lang, 'nothing waiting', 'rien en attente')
      : t(
          lang,
          `${f.waiting} waiting since ${formatUtc(f.oldestAt)}`,
          `${f.waiting} en attente depuis ${formatUtc(f.oldestAt)}`,
        );
  const icon = f.stalledSince !== undefined ? '❌' : f.lastPolledAt === undefined ? '⏳' : '✅';
  return t(
    lang,
    `Route: OpenClaw through the Bot API front ${icon} ${polled}; ${waiting}`,
    `Route : OpenClaw par le front Bot API ${icon} ${polled} ; ${waiting}`,
  );
}

/** Where the switch under way goes, once it began its work (before, it may still find nothing to do). */
function switchingNote(switching: boolean, to: string | undefined, lang: Lang): string {
  if (!switching) return '';
  if (to === undefined) return t(lang, ' (switching…)', ' (bascule en cours…)');
  const mode = `<b>${escapeHtml(to)}</b>`;
  return t(lang, ` (switching to ${mode}…)`, ` (bascule vers ${mode} en cours…)`);
}
