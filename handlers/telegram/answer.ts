import { t } from '../../src/i18n.js';
import type { Logger } from '../../src/logger.js';
import { PROXY_TAG } from '../../src/notices.js';
import type { Route, TurnInput } from './relay.js';
import {
  type AnswerStream,
  createAnswerStream,
  type StreamingMode,
  type StreamOutput,
} from './stream-sender.js';
import { stopReasonOf } from './turns.js';

export interface AnswerOptions {
  route: Route;
  streaming: StreamingMode;
  intervalMs: number;
  logger: Logger;
  /** The "queued" notice to turn into the answer, if the turn had to wait. */
  queuedMessageId?: number | undefined;
  /** What the answer's first message replies to (in a group, the message it answers). */
  replyTo?: number | undefined;
}

/**
 * One turn, from the route to the chat: typing until the first text, the
 * answer streamed as it comes, and a final text that always arrives, saying
 * when the answer was stopped or failed (the error's message, never a stack).
 */
export async function answerTurn(
  out: StreamOutput,
  input: TurnInput,
  signal: AbortSignal,
  opts: AnswerOptions,
): Promise<AnswerStream> {
  const log = opts.logger.child({ chatId: input.chatId });
  const stream = createAnswerStream(opts.streaming, out, {
    intervalMs: opts.intervalMs,
    adoptMessageId: opts.queuedMessageId,
    replyTo: opts.replyTo,
    onError: (err, what) => log.warn({ err, what }, 'telegram delivery failed'),
  });
  stream.begin();
  let text = '';
  let failure: string | undefined;
  try {
    for await (const ev of opts.route.turn(input, signal)) {
      if (ev.type === 'text') {
        text += ev.text;
        stream.update(text);
      } else if (ev.type === 'error') failure = ev.message;
    }
  } catch (err) {
    log.error({ err }, 'turn failed');
    failure = (err as Error).message || String(err);
  }
  await stream.finish(finalText(text, failure, signal, input.lang, opts.queuedMessageId !== undefined));
  return stream;
}

function finalText(
  text: string,
  failure: string | undefined,
  signal: AbortSignal,
  lang: TurnInput['lang'],
  holdsMessage: boolean,
): string {
  const body = text.trimEnd();
  const join = (tail: string) => (body ? `${body}\n\n${tail}` : tail);
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
    // The /stop reply already says so; a queued notice must not be left saying "queued".
    return body || holdsMessage ? join(t(lang, '⏹ _stopped_', '⏹ _arrêté_')) : '';
  }
  if (failure !== undefined) return join(`${PROXY_TAG} ⚠️ ${failure}`);
  return (
    body || t(lang, `${PROXY_TAG} The brain sent an empty answer.`, `${PROXY_TAG} Le cerveau a répondu vide.`)
  );
}
