import { z } from 'zod';
import { sayError } from '../../../src/errors.js';
import { type Lang, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { shorten } from '../../../src/text.js';
import type { ToolResult } from '../../../src/tools/index.js';
import { escapeHtml } from '../format/render.js';
import { topicTurnKey } from '../route/topic.js';
import { linesOutput } from '../send/outside-topic.js';
import { type StopReason, stopReasonOf } from '../turns.js';
import { type CallRequest, queuedHtml, revealHidden } from '../views/tool.js';
import { callerOf, type RunRequest, type ToolChat } from './tool-run.js';

/**
 * /upgrade's first step: `self_upgrade check` run as one of the chat's turns
 * (so /stop ends a fetch that hangs), then what it found, as the question of
 * the Apply / Cancel dialog or as the final word when there is nothing to apply.
 */

export const CHECK_CALL = { tool: 'self_upgrade', input: { action: 'check' } } as const;

/** What `self_upgrade check` returns as data; read with zod, since it crosses a module boundary untyped. */
const commitSchema = z.object({ hash: z.string(), subject: z.string() });
const checkSchema = z.object({
  upstream: z.string(),
  target: z.string(),
  behind: z.number().int(),
  ahead: z.number().int(),
  commits: z.array(commitSchema),
  local: z.array(commitSchema),
  dirty: z.array(z.string()),
  unfinished: z.string().optional(),
});

/**
 * The most the question lists, and the most of one item it shows: it must fit
 * one message (4096 characters) even with every list and warning at its longest.
 */
const MAX_COMMITS = 15;
const MAX_LOCAL = 5;
const MAX_FILES = 10;
const SUBJECT_CHARS = 80;
const NAME_CHARS = 60;
const NOTE_CHARS = 600;

/**
 * Text from the checkout (a subject, a file name) as the question shows it, in HTML: its hidden
 * characters as their code, as in every question brainstem asks, then cut (so the bounds above hold).
 */
const shown = (text: string, max: number): string => escapeHtml(shorten(revealHidden(text), max));

/** One line a commit, the first `max` of them, then how many more. */
function commitLines(commits: { hash: string; subject: string }[], total: number, max: number, lang: Lang) {
  const lines = commits
    .slice(0, max)
    .map((x) => `• <code>${escapeHtml(x.hash.slice(0, 12))}</code> ${shown(x.subject, SUBJECT_CHARS)}`);
  const more = total - lines.length;
  if (more > 0) lines.push(t(lang, `… and ${more} more`, `… et ${more} de plus`));
  return lines;
}

export interface CheckOutcome {
  /** The message showing the check, which the dialog turns into its question. */
  messageId: number | undefined;
  result: ToolResult | undefined;
  stopped: StopReason | undefined;
}

/** Runs the check in the chat's queue; resolves once it is done, whatever happened. */
export function checkInChat(
  chat: ToolChat,
  req: Pick<RunRequest, 'chatId' | 'topicId' | 'userId' | 'lang' | 'replyTo'>,
): Promise<CheckOutcome> {
  // In a topic closed or deleted meanwhile, the check and the question it becomes show outside it, saying why.
  const out = linesOutput(chat.api, req.chatId, req.topicId, req.lang);
  const checking = t(
    req.lang,
    `${PROXY_TAG} 🔎 Looking for new commits…`,
    `${PROXY_TAG} 🔎 Recherche de nouveaux commits…`,
  );
  return new Promise((resolve) => {
    chat.turns.submit<number>(
      topicTurnKey(req.chatId, req.topicId),
      async (signal, queuedId) => {
        let messageId = queuedId;
        try {
          if (messageId === undefined || (await out.editHtml(messageId, checking)) === 'gone') {
            messageId = await out.sendHtml(checking, req.replyTo ? { replyTo: req.replyTo } : {});
          }
          const result = await chat.tools.registry.call(CHECK_CALL.tool, CHECK_CALL.input, {
            caller: callerOf(req.userId),
            signal,
            lang: req.lang,
          });
          resolve({ messageId, result, stopped: stopReasonOf(signal) });
        } catch (err) {
          chat.logger.warn({ err, chatId: req.chatId }, 'upgrade check could not be shown');
          resolve({ messageId, result: undefined, stopped: stopReasonOf(signal) });
        }
      },
      () =>
        out.sendHtml(
          queuedHtml('<code>/upgrade</code>', req.lang, chat.stopCommand),
          req.replyTo ? { replyTo: req.replyTo } : {},
        ),
      (err) => chat.logger.error({ err, chatId: req.chatId }, 'upgrade check failed'),
    );
  });
}

/**
 * The check's outcome for the chat: the question to ask, with the apply it
 * stands for (to exactly the upstream commit it shows), when there is something
 * to apply; else the final word.
 */
export function checkView(outcome: CheckOutcome, lang: Lang): { html: string; apply?: CallRequest } {
  const { result, stopped } = outcome;
  if (stopped) {
    return { html: t(lang, `${PROXY_TAG} ⏹ Upgrade check stopped.`, `${PROXY_TAG} ⏹ Vérification arrêtée.`) };
  }
  if (!result) {
    return {
      html: t(
        lang,
        `${PROXY_TAG} ❌ The upgrade check failed; see the brainstem log.`,
        `${PROXY_TAG} ❌ La vérification a échoué ; voir le journal de brainstem.`,
      ),
    };
  }
  if (result.error) {
    return {
      html: t(
        lang,
        `${PROXY_TAG} ❌ Could not check for an upgrade: ${escapeHtml(result.error.message)}`,
        `${PROXY_TAG} ❌ Impossible de chercher une mise à jour : ${escapeHtml(sayError(result.error, 'fr'))}`,
      ),
    };
  }
  const parsed = checkSchema.safeParse(result.data);
  if (!parsed.success) {
    return {
      html: t(
        lang,
        `${PROXY_TAG} ❌ self_upgrade check answered something unexpected; see the brainstem log.`,
        `${PROXY_TAG} ❌ self_upgrade check a répondu quelque chose d’inattendu ; voir le journal de brainstem.`,
      ),
    };
  }
  const c = parsed.data;
  // Escaped; bare inside a command shown as code, since Telegram allows no code inside code.
  const upstreamName = shown(c.upstream, NAME_CHARS);
  const upstream = `<code>${upstreamName}</code>`;
  // A failed upgrade that could not be rolled back is never "up to date".
  const unfinished = c.unfinished ? [`⚠️ ${escapeHtml(shorten(c.unfinished, NOTE_CHARS))}`] : [];
  if (c.behind === 0) {
    return {
      html: unfinished.length
        ? `${PROXY_TAG} ${unfinished[0]}`
        : t(
            lang,
            `${PROXY_TAG} ✅ brainstem is up to date with ${upstream}.`,
            `${PROXY_TAG} ✅ brainstem est à jour avec ${upstream}.`,
          ),
    };
  }
  const head = [
    t(
      lang,
      `${PROXY_TAG} ⬆️ <b>${c.behind} new commit(s)</b> on ${upstream}:`,
      `${PROXY_TAG} ⬆️ <b>${c.behind} nouveau(x) commit(s)</b> sur ${upstream} :`,
    ),
    ...commitLines(c.commits, c.behind, MAX_COMMITS, lang),
    ...unfinished,
  ];
  const blockers: string[] = [];
  if (c.ahead > 0) {
    const local = commitLines(c.local, c.ahead, MAX_LOCAL, lang).join('\n');
    blockers.push(
      t(
        lang,
        `⚠️ The checkout has ${c.ahead} local commit(s) that ${upstream} does not have:\n${local}\nIt has diverged, so it cannot just move forward: rebase them onto ${upstream} (<code>git pull --rebase</code>) or drop them (<code>git reset --hard ${upstreamName}</code>) by hand, then /upgrade again.`,
        `⚠️ Le dépôt a ${c.ahead} commit(s) local(aux) absent(s) de ${upstream} :\n${local}\nIl a divergé et ne peut pas simplement avancer : rebasez-les sur ${upstream} (<code>git pull --rebase</code>) ou abandonnez-les (<code>git reset --hard ${upstreamName}</code>) à la main, puis /upgrade à nouveau.`,
      ),
    );
  }
  if (c.dirty.length > 0) {
    const names = c.dirty.slice(0, MAX_FILES).map((f) => shown(f, NAME_CHARS));
    const more = c.dirty.length - names.length;
    const files =
      names.join(', ') + (more > 0 ? t(lang, `, … and ${more} more`, `, … et ${more} de plus`) : '');
    blockers.push(
      t(
        lang,
        `⚠️ The checkout has uncommitted changes (${files}): commit or stash them, then /upgrade again.`,
        `⚠️ Le dépôt a des modifications non commitées (${files}) : commitez-les ou mettez-les de côté, puis /upgrade à nouveau.`,
      ),
    );
  }
  if (blockers.length > 0) return { html: [...head, ...blockers].join('\n') };
  return {
    html: [
      ...head,
      t(
        lang,
        'Apply them? brainstem moves to these commits, installs, builds, then restarts itself.',
        'Les appliquer ? brainstem passe à ces commits, installe, compile, puis redémarre.',
      ),
    ].join('\n'),
    apply: { word: 'upgrade', tool: 'self_upgrade', input: { action: 'apply', to: c.target } },
  };
}
