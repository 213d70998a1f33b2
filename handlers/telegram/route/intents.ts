import type { Lang } from '../../../src/i18n.js';
import { detectIntent } from '../../../src/intents.js';
import { showModeMenu } from '../commands/control.js';
import { menuIn } from '../commands/table.js';
import type { BotDeps } from '../deps.js';
import type { ChatOutput } from '../send/output.js';
import { helpHtml } from '../views/help.js';
import { statusView } from '../views/status.js';

/**
 * Words brainstem answers itself rather than the brain, typed or said in a
 * voice note: a switch request, help, status, the mode list. A switch goes
 * through the chat's SwitchProgress, as /mode does: its progress line, who
 * asked and where (for the report after a restart), and not a turn, so /stop
 * does not claim to stop it. False when the words are none of these.
 */
export async function answerIntent(
  deps: BotDeps,
  out: ChatOutput,
  words: string,
  userId: number,
  lang: Lang,
): Promise<boolean> {
  const intent = detectIntent(words, (name) => deps.core.modes.find(name) !== undefined);
  switch (intent?.kind) {
    case 'switch':
      deps.switches.run(out, intent.target, { source: 'intent', by: String(userId), lang }, lang);
      return true;
    case 'help':
      await out.sendHtml(helpHtml(deps, lang, menuIn(lang, deps.front !== undefined)));
      return true;
    case 'status':
      await out.sendHtml(await statusView(deps.core, deps.front?.status(), lang), { lang });
      return true;
    case 'modes':
      await showModeMenu(deps, out, lang);
      return true;
    default:
      return false;
  }
}
