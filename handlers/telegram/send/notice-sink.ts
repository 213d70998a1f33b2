import type { Api } from 'grammy';
import type { Lang } from '../../../src/i18n.js';
import type { Logger } from '../../../src/logger.js';
import type { Notice, NoticeChat, Notifier } from '../../../src/notices.js';
import { waitAtMost } from '../../../src/wait.js';
import { ChatOutput, isPermanent } from './output.js';
import { sendHtmlOrOutside } from './outside-topic.js';

/** Pending notices are tried again this often (a Telegram outage, a restart with notices waiting). */
const RETRY_EVERY_MS = 30_000;

/**
 * Delivers brainstem's notices (HTML) to every notify chat, or to the one chat a notice is for. A
 * notice counts as delivered once each chat has it, or refused it for good (a user who blocked the
 * bot must not hold back every later notice); a chat that already got it is not sent it again when
 * another chat's failure makes it retry. With no notify chats, theirs wait in the database.
 */
export function startNoticeSink(opts: {
  notifier: Notifier;
  api: Api;
  chats: readonly number[];
  logger: Logger;
  /** The language of a line brainstem adds to a notice (the owner's, noticeLang). */
  lang: () => Lang;
  retryEveryMs?: number;
}): { stop(graceMs: number): Promise<void> } {
  const { notifier, api, chats, logger } = opts;
  const done = new Map<number, Set<number>>();

  const deliver = async (notice: Notice): Promise<'sent' | 'retry' | 'held'> => {
    const targets: NoticeChat[] = notice.chat ? [notice.chat] : chats.map((id) => ({ id }));
    if (targets.length === 0) return 'held';
    const reached = done.get(notice.id) ?? new Set<number>();
    done.set(notice.id, reached);
    for (const chat of targets) {
      if (reached.has(chat.id)) continue;
      try {
        // A notice for a forum topic closed or deleted since (how a switch asked there ended, the answers
        // a restart cut there) goes to the group outside the topic, saying why, rather than being lost.
        await sendHtmlOrOutside(new ChatOutput(api, chat.id, chat.topicId), notice.text, opts.lang());
        reached.add(chat.id);
      } catch (err) {
        if (!isPermanent(err)) {
          logger.warn(
            { err: (err as Error).message, chatId: chat.id, notice: notice.id },
            'notice not delivered; will retry',
          );
          return 'retry';
        }
        logger.error(
          { err: (err as Error).message, chatId: chat.id, notice: notice.id },
          'chat refuses notices; skipped',
        );
        reached.add(chat.id);
      }
    }
    done.delete(notice.id);
    return 'sent';
  };

  notifier.setSink(deliver);
  const timer = setInterval(() => void notifier.flush(), opts.retryEveryMs ?? RETRY_EVERY_MS);
  return {
    /** Lets a delivery in progress end (bounded), so its notice is marked sent before the database closes. */
    async stop(graceMs) {
      clearInterval(timer);
      notifier.setSink(undefined);
      await waitAtMost(notifier.flush(), graceMs);
    },
  };
}
