import { z } from 'zod';
import { type Lang, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import type { ToolResult } from '../../../src/tools/index.js';
import { escapeHtml } from '../format/render.js';
import { topicTurnKey } from '../route/topic.js';
import { ChatOutput } from '../send/output.js';
import { type StopReason, stopReasonOf } from '../turns.js';
import { queuedHtml } from '../views/tool.js';
import { callerOf, type RunRequest, type ToolChat } from './tool-run.js';

/**
 * /upgrade's first step: `self_upgrade check` run as one of the chat's turns
 * (so /stop ends a fetch that hangs), then what it found, as the question of
 * the Apply / Cancel dialog or as the final word when there is nothing to apply.
 */

export const CHECK_CALL = { tool: 'self_upgrade', input: { action: 'check' } } as const;
export const APPLY_CALL = { tool: 'self_upgrade', input: { action: 'apply' } } as const;

/** What `self_upgrade check` returns as data; read with zod, since it crosses a module boundary untyped. */
const checkSchema = z.object({
  upstream: z.string(),
  behind: z.number().int(),
  commits: z.array(z.object({ hash: z.string(), subject: z.string() })),
  dirty: z.array(z.string()),
});

/** Commits listed in the question, and the most of a subject shown: the question must fit one message. */
const MAX_COMMITS = 30;
const SUBJECT_CHARS = 100;

const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

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
  const out = new ChatOutput(chat.api, req.chatId, req.topicId);
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
          });
          resolve({ messageId, result, stopped: stopReasonOf(signal) });
        } catch (err) {
          chat.logger.warn({ err, chatId: req.chatId }, 'upgrade check could not be shown');
          resolve({ messageId, result: undefined, stopped: stopReasonOf(signal) });
        }
      },
      () =>
        out.sendHtml(
          queuedHtml('<code>/upgrade</code>', req.lang),
          req.replyTo ? { replyTo: req.replyTo } : {},
        ),
      (err) => chat.logger.error({ err, chatId: req.chatId }, 'upgrade check failed'),
    );
  });
}

/** The check's outcome for the chat: the question to ask when there is something to apply, else the final word. */
export function checkView(outcome: CheckOutcome, lang: Lang): { html: string; ask: boolean } {
  const { result, stopped } = outcome;
  if (stopped) {
    return {
      html: t(lang, `${PROXY_TAG} ⏹ Upgrade check stopped.`, `${PROXY_TAG} ⏹ Vérification arrêtée.`),
      ask: false,
    };
  }
  if (!result) {
    return {
      html: t(
        lang,
        `${PROXY_TAG} ❌ The upgrade check failed; see the brainstem log.`,
        `${PROXY_TAG} ❌ La vérification a échoué ; voir le journal de brainstem.`,
      ),
      ask: false,
    };
  }
  if (result.error) {
    return {
      html: t(
        lang,
        `${PROXY_TAG} ❌ Could not check for an upgrade: ${escapeHtml(result.error.message)}`,
        `${PROXY_TAG} ❌ Impossible de chercher une mise à jour : ${escapeHtml(result.error.message)}`,
      ),
      ask: false,
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
      ask: false,
    };
  }
  const c = parsed.data;
  const upstream = `<code>${escapeHtml(c.upstream)}</code>`;
  if (c.behind === 0) {
    return {
      html: t(
        lang,
        `${PROXY_TAG} ✅ brainstem is up to date with ${upstream}.`,
        `${PROXY_TAG} ✅ brainstem est à jour avec ${upstream}.`,
      ),
      ask: false,
    };
  }
  const commits = c.commits
    .slice(0, MAX_COMMITS)
    .map((x) => `• <code>${escapeHtml(x.hash)}</code> ${escapeHtml(clip(x.subject, SUBJECT_CHARS))}`);
  const more = c.behind - commits.length;
  if (more > 0) commits.push(t(lang, `… and ${more} more`, `… et ${more} de plus`));
  const head = t(
    lang,
    `${PROXY_TAG} ⬆️ <b>${c.behind} new commit(s)</b> on ${upstream}:`,
    `${PROXY_TAG} ⬆️ <b>${c.behind} nouveau(x) commit(s)</b> sur ${upstream} :`,
  );
  if (c.dirty.length > 0) {
    const files = escapeHtml(c.dirty.join(', '));
    return {
      html: [
        head,
        ...commits,
        t(
          lang,
          `⚠️ The checkout has uncommitted changes (${files}): commit or stash them, then /upgrade again.`,
          `⚠️ Le dépôt a des modifications non commitées (${files}) : commitez-les ou mettez-les de côté, puis /upgrade à nouveau.`,
        ),
      ].join('\n'),
      ask: false,
    };
  }
  return {
    html: [
      head,
      ...commits,
      t(
        lang,
        'Apply them? brainstem pulls, installs, builds, then restarts itself.',
        'Les appliquer ? brainstem récupère, installe, compile, puis redémarre.',
      ),
    ].join('\n'),
    ask: true,
  };
}
