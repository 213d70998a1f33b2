import { type Api, GrammyError } from 'grammy';
import { escapeHtml } from '../../../src/html.js';
import { type Lang, t } from '../../../src/i18n.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { headChars } from '../../../src/text.js';
import { ChatOutput, isTopicGone, type SendExtra } from './output.js';

/**
 * A forum topic closed or deleted refuses for good what brainstem sends there, but the rest of the
 * group still reads: what was meant for the topic goes to the group outside it (its General topic),
 * under one line saying why, rather than being lost with a log line. Used by every path that sends
 * into a topic (an answer's final text, a /run's result and document, a notice, a turn's lines, an
 * approval question).
 */

/** What the line names: an answer, any other message, or a file (the line is then its caption). */
export type Refused = 'answer' | 'message' | 'file';

export interface OutsideTopic {
  /** The same chat, no topic. */
  out: ChatOutput;
  /** Plain text with the proxy tag: the caller escapes it for its format. */
  line: string;
}

/**
 * Output for what brainstem says in a chat or one of its forum topics besides an answer: a command's
 * reply, a switch's progress, a line about a message, a refusal. What the topic refuses for good goes
 * to the group outside it under the line saying why (in `lang`), and keeps the line through its later
 * edits; in an open topic or a chat without topics it is a plain ChatOutput. A /run's queued notice,
 * progress and result go through one too. Not for an answer's stream, which moves what its topic
 * refused itself (with its own line), nor a /run's document (it follows its result: tool-run.ts).
 */
export function linesOutput(api: Api, chatId: number, topicId: number | undefined, lang: Lang): ChatOutput {
  return new ChatOutput(api, chatId, topicId, (err, what) => refusedInTopicLine(err, lang, what), lang);
}

/**
 * Where to send what `out`'s topic refused with `err`, and the line that says why; undefined when
 * `out` writes to no topic or the refusal is not the topic's (the caller then does what it did before).
 */
export function outsideTopic(
  out: ChatOutput,
  err: unknown,
  lang: Lang,
  what: Refused = 'message',
): OutsideTopic | undefined {
  const outside = out.outside();
  if (!outside || !isTopicGone(err)) return undefined;
  return { out: outside, line: refusedInTopicLine(err, lang, what) };
}

/**
 * `html` to `out`; when its topic refuses it for good, to the group outside the topic under the line
 * saying why, with its buttons (replying to nothing there: what it replied to is in the topic).
 * Resolves with the id of the message sent, the chat it is in (ChatOutput.landedIn: a group's
 * supergroup), whether it went outside and its text as shown (for a later edit); rejects with
 * Telegram's refusal otherwise.
 */
export async function sendHtmlOrOutside(
  out: ChatOutput,
  html: string,
  lang: Lang,
  extra: SendExtra = {},
): Promise<{ messageId: number; chatId: number; outside: boolean; html: string }> {
  try {
    const messageId = await out.sendHtml(html, { lang, ...extra });
    return { messageId, chatId: out.landedIn, outside: false, html };
  } catch (err) {
    const moved = outsideTopic(out, err, lang);
    if (!moved) throw err;
    const shown = `${escapeHtml(moved.line)}\n\n${html}`;
    const keyboard = extra.keyboard ? { keyboard: extra.keyboard } : {};
    const messageId = await moved.out.sendHtml(shown, { lang, ...keyboard });
    return { messageId, chatId: moved.out.landedIn, outside: true, html: shown };
  }
}

/** "Telegram refused this … in the topic it was meant for (TOPIC_CLOSED: …), so it comes here:". */
export function refusedInTopicLine(err: unknown, lang: Lang, what: Refused): string {
  const said = err instanceof GrammyError ? err.description.replace(/^Bad Request:\s*/i, '') : '';
  const why = headChars(said, 100);
  const line =
    what === 'answer'
      ? t(
          lang,
          `Telegram refused this answer in the topic it was written for (${why}: the topic was closed or deleted), so it comes here:`,
          `Telegram a refusé cette réponse dans le sujet pour lequel elle a été écrite (${why} : le sujet a été fermé ou supprimé) ; la voici donc ici :`,
        )
      : what === 'file'
        ? t(
            lang,
            `Telegram refused this file in the topic it was meant for (${why}: the topic was closed or deleted), so it comes here.`,
            `Telegram a refusé ce fichier dans le sujet auquel il était destiné (${why} : le sujet a été fermé ou supprimé) ; le voici donc ici.`,
          )
        : t(
            lang,
            `Telegram refused this message in the topic it was meant for (${why}: the topic was closed or deleted), so it comes here:`,
            `Telegram a refusé ce message dans le sujet auquel il était destiné (${why} : le sujet a été fermé ou supprimé) ; le voici donc ici :`,
          );
  return `${PROXY_TAG} ⚠️ ${line}`;
}
