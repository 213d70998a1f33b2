import { GrammyError } from 'grammy';
import { t } from '../../../src/i18n.js';
import type { Logger } from '../../../src/logger.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { headChars } from '../../../src/text.js';
import { answeredLine, waitingLine } from '../approvals/view.js';
import { escapeMarkdown, showsNothing } from '../format/render.js';
import { openFenceAfter, splitMarkdown, withFenceClosed } from '../format/split.js';
import type { Route, TurnInput } from '../route/direct.js';
import type { ChatOutput } from '../send/output.js';
import { type OutsideTopic, outsideTopic } from '../send/outside-topic.js';
import { stopReasonOf } from '../turns.js';
import { createAnswerStream, type StreamingMode } from './edit-sender.js';
import { type ChatPaces, paceFor } from './pacer.js';
import type { AnswerStream } from './ports.js';

/**
 * Paces without new text after which the chat shows "typing…" again: a
 * streamed answer stops moving while the brain runs a tool or thinks, and
 * without it the chat looks stalled until the next words.
 */
const QUIET_PACES = 3;

export interface AnswerOptions {
  route: Route;
  streaming: StreamingMode;
  intervalMs: number;
  /** The chats' paces: the answer's stream shares its chat's with the chat's other topics. */
  paces: ChatPaces;
  logger: Logger;
  /** The "queued" notice, if the turn had to wait: the answer takes it over (edits) or replaces it (drafts). */
  queuedMessageId?: number | undefined;
  /** What the answer's first message replies to (in a group, the message it answers). */
  replyTo?: number | undefined;
  /** Called just before the final text goes to Telegram, which may show it before a crash (cut-turns.ts). */
  onFinal?: () => void;
}

/**
 * One turn, from the route to the chat: typing until the first text (and
 * again while the answer is quiet), the answer streamed as it comes (saying
 * when it waits for a tool approval, with brainstem's notices about the turn
 * in their place), and a final text that always arrives, saying when the
 * answer was stopped or failed (the error's message, never a stack).
 */
export async function answerTurn(
  out: ChatOutput,
  input: TurnInput,
  signal: AbortSignal,
  opts: AnswerOptions,
): Promise<AnswerStream> {
  const log = opts.logger.child({ chatId: input.chatId });
  /** Why Telegram refused the final text for good, if it did. */
  let refusal: unknown;
  // Telegram takes drafts in private chats only (sendMessageDraft's chat_id is "the target private
  // chat"): a draft tried in a group was refused each time, a wasted call of the group's ~20 a
  // minute, a warning in the log and a second's wait before the answer was edited in place instead.
  const streaming = opts.streaming === 'draft' && input.chatId < 0 ? 'edit' : opts.streaming;
  const stream = createAnswerStream(streaming, out, {
    ...paceFor(input.chatId, opts.intervalMs),
    chat: opts.paces.of(input.chatId),
    adoptMessageId: opts.queuedMessageId,
    replyTo: opts.replyTo,
    onError: (err, what) => {
      log.warn({ err, what }, 'telegram delivery failed');
      if (what === 'final text') refusal = err;
    },
  });
  stream.begin();
  let text = '';
  /** Shown under the answer while the turn waits for a tool approval (asked in a message of its own). */
  let waiting: string | undefined;
  /**
   * What came of the last approval question, shown while the answer has no words yet: an allowed
   * tool may run for minutes, and the message must not go on asking for an approval given.
   */
  let answered: string | undefined;
  let failure: string | undefined;
  /**
   * The code block a notice closed (the model's answer had it open): a notice inside it showed as
   * code, its escapes as backslashes. Opened again with the model's next words, which are code.
   */
  let reopen: string | undefined;
  const switchLine = switchWaitLine(input.lang);
  let quiet: NodeJS.Timeout | undefined;
  /** "typing…" again once the answer is quiet (a tool runs), unless it waits for the user's approval. */
  const typingWhenQuiet = () => {
    clearTimeout(quiet);
    const asksUser = waiting !== undefined && waiting !== switchLine;
    if (!asksUser) quiet = setTimeout(() => stream.begin(), QUIET_PACES * opts.intervalMs);
  };
  try {
    for await (const ev of opts.route.turn(input, signal)) {
      // Whatever comes after a switch wait means the switch is over.
      if (waiting === switchLine && ev.type !== 'switch_wait') waiting = undefined;
      switch (ev.type) {
        case 'switch_wait':
          waiting = switchLine;
          break;
        case 'text':
          text += reopen === undefined ? ev.text : `${reopen}\n${ev.text}`;
          reopen = undefined;
          break;
        case 'notice': {
          // A notice quotes what the brain asked for (a command, a URL): shown as plain text.
          const notice = escapeMarkdown(ev.text);
          reopen ??= openFenceAfter(text);
          text = text.trim() ? `${withFenceClosed(text.trimEnd())}\n\n${notice}\n\n` : `${notice}\n\n`;
          break;
        }
        case 'approval_pending':
          waiting = waitingLine(ev.request, input.lang);
          break;
        case 'approval':
          // Not when nobody answered (timeout, stop): a notice or the final text says so.
          if (ev.source === 'approver') answered = answeredLine(ev.request, ev.decision, input.lang);
          waiting = undefined;
          break;
        case 'error':
          failure = ev.message;
          continue;
      }
      stream.update(withStatus(text, waiting ?? (text.trim() ? undefined : answered)));
      typingWhenQuiet();
    }
  } catch (err) {
    log.error({ err }, 'turn failed');
    failure = (err as Error).message || String(err);
  } finally {
    clearTimeout(quiet);
  }
  // A message may stand for the answer without any of its text: the queued notice, the approval wait.
  const holdsMessage = opts.queuedMessageId !== undefined || stream.stats.updates > 0;
  const final = finalText(text, failure, signal, input.lang, holdsMessage);
  opts.onFinal?.();
  if (!(await stream.finish(final))) {
    // Its topic closed or deleted meanwhile: the answer must not vanish with it, the group still reads.
    const outside = outsideTopic(out, refusal, input.lang, 'answer');
    if (outside && (await answerOutside(outside, final))) return stream;
    // The user must not be left waiting for an answer that will never come: a short message says so.
    // Not to a chat Telegram lets the bot write nothing to (blocked, removed): refused too, it was
    // one more call and one more warning for each answer.
    if (refusal instanceof GrammyError && refusal.error_code === 403) return stream;
    await out
      .sendMarkdown(undeliveredText(refusal, input.lang))
      .catch((err: unknown) =>
        log.warn({ err }, 'telegram refused the notice about an undelivered answer too'),
      );
  }
  return stream;
}

/**
 * The final text of an answer its topic refused, sent to the group outside the topic under the line
 * that says why (split like any final text, the line heading its first part). Whether it arrived.
 */
async function answerOutside(outside: OutsideTopic, final: string): Promise<boolean> {
  if (!final.trim()) return true;
  return createAnswerStream('off', outside.out, { intervalMs: 0 }).finish(
    `${escapeMarkdown(outside.line)}\n\n${final}`,
  );
}

/** Said when Telegram refused the final text for good (after the retries of the API pipeline). */
function undeliveredText(err: unknown, lang: TurnInput['lang']): string {
  const raw = err instanceof GrammyError ? err.description : err instanceof Error ? err.message : String(err);
  const reason = `\`${headChars(raw.replace(/`/g, "'"), 200)}\``;
  return t(
    lang,
    `${PROXY_TAG} ⚠️ Telegram refused this answer (${reason}), so it did not arrive in full. Ask again, or /new.`,
    `${PROXY_TAG} ⚠️ Telegram a refusé cette réponse (${reason}) : elle n’est pas arrivée en entier. Reposez la question, ou /new.`,
  );
}

/**
 * The answer with a status line under it, unless the line would start a
 * message of its own: that message would stay behind once the line goes.
 */
function withStatus(text: string, line: string | undefined): string {
  if (!line) return text;
  if (!text.trim()) return line;
  const shown = `${withFenceClosed(text.trimEnd())}\n\n${line}`;
  return splitMarkdown(shown).length > splitMarkdown(text).length ? text : shown;
}

function finalText(
  text: string,
  failure: string | undefined,
  signal: AbortSignal,
  lang: TurnInput['lang'],
  holdsMessage: boolean,
): string {
  // An answer with nothing to show (an empty code block) is empty: Telegram would refuse it as such.
  const body = showsNothing(text) ? '' : text.trimEnd();
  const join = (tail: string) => (body ? `${withFenceClosed(body)}\n\n${tail}` : tail);
  const stopped = stopReasonOf(signal);
  if (stopped === 'shutdown') {
    return join(
      t(
        lang,
        `${PROXY_TAG} brainstem is restarting; this answer was cut. Send it again in a moment.`,
        `${PROXY_TAG} brainstem redémarre ; cette réponse a été coupée. Renvoyez-la dans un instant.`,
      ),
    );
  }
  if (stopped === 'user') {
    // The /stop reply already says so; a message standing for the answer must not be left as it was.
    return body || holdsMessage ? join(t(lang, '⏹ _stopped_', '⏹ _arrêté_')) : '';
  }
  // The failure quotes the upstream (its error text): shown as plain text, never as Markdown.
  // brainstem's own refusals (a budget, the credit, a usage limit) carry the tag already: said once.
  if (failure !== undefined) return join(`${PROXY_TAG} ⚠️ ${escapeMarkdown(untagged(failure))}`);
  return (
    body || t(lang, `${PROXY_TAG} The brain sent an empty answer.`, `${PROXY_TAG} Le cerveau a répondu vide.`)
  );
}

function untagged(text: string): string {
  return text.startsWith(PROXY_TAG) ? text.slice(PROXY_TAG.length).trimStart() : text;
}

/**
 * Shown while the answer waits for a mode switch (a model load can take minutes): in the answer's
 * Markdown, or as HTML where a turn shows it before its answer stream begins (documents, media-messages.ts).
 */
export function switchWaitLine(lang: TurnInput['lang'], as: 'markdown' | 'html' = 'markdown'): string {
  const [en, fr] = ['waiting for the mode switch to end…', 'en attente de la fin du changement de mode…'];
  const line = t(lang, en, fr);
  return as === 'html' ? `⏳ <i>${line}</i>` : `⏳ _${line}_`;
}
