import type { Core } from '../../src/core.js';
import { formatDuration, type Lang, t } from '../../src/i18n.js';
import { PROXY_TAG } from '../../src/notices.js';
import { creditStatusLine } from './credit-view.js';
import { limitLines } from './limit-view.js';
import type { Route } from './relay.js';
import { escapeHtml } from './render.js';

/** How long /status waits for each probe. */
const PROBE_MS = 3000;

/** /status: active mode, Claude's usage limit if reached, the Agent SDK credit, each brain's readiness, the route and whether it answers, uptime, versions. */
export async function statusView(
  core: Core,
  route: Route,
  gatewayUrl: string | undefined,
  lang: Lang,
): Promise<string> {
  const [facts, gateway] = await Promise.all([
    core.chat.statusFacts(PROBE_MS),
    route.probe(AbortSignal.timeout(PROBE_MS)),
  ]);
  const { active, lines } = facts;
  const brains = lines.map(
    (l) =>
      `${l.ready ? '✅' : '❌'} ${l.active ? `<b>${escapeHtml(l.mode.id)}</b> ←` : escapeHtml(l.mode.id)} (${l.mode.kind}): ${escapeHtml(l.detail)}`,
  );
  const routeLine =
    route.kind === 'openclaw'
      ? t(
          lang,
          `Route: OpenClaw gateway <code>${escapeHtml(gatewayUrl ?? '')}</code> ${gateway.ok ? '✅ answers' : `❌ ${escapeHtml(gateway.reason)}`}`,
          `Route : passerelle OpenClaw <code>${escapeHtml(gatewayUrl ?? '')}</code> ${gateway.ok ? '✅ répond' : `❌ ${escapeHtml(gateway.reason)}`}`,
        )
      : t(
          lang,
          'Route: direct to the active brain (no OPENCLAW_GATEWAY_URL)',
          'Route : directe vers le cerveau actif (pas d’OPENCLAW_GATEWAY_URL)',
        );
  return [
    t(lang, `${PROXY_TAG} <b>Status</b>`, `${PROXY_TAG} <b>Statut</b>`),
    t(lang, `Active mode: <b>${escapeHtml(active.id)}</b>`, `Mode actif : <b>${escapeHtml(active.id)}</b>`) +
      (facts.switching ? t(lang, ' (switching…)', ' (bascule en cours…)') : ''),
    ...limitLines(core.limits.state(), core.config.usageLimit.fallbackMode, lang),
    ...creditStatusLine(core.meter.reading(), lang),
    ...brains,
    routeLine,
    t(
      lang,
      `Uptime: ${formatDuration(facts.uptimeMs)}`,
      `En marche depuis : ${formatDuration(facts.uptimeMs)}`,
    ),
    `Versions: brainstem ${escapeHtml(facts.version)}, Node ${process.versions.node}`,
  ].join('\n');
}
