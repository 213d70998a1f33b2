import { type Api, InputFile } from 'grammy';
import { escapeHtml } from '../../../src/html.js';
import { type Lang, t } from '../../../src/i18n.js';
import type { Logger } from '../../../src/logger.js';
import { PROXY_TAG } from '../../../src/notices.js';
import type { ToolResult, Tools } from '../../../src/tools/index.js';
import type { TurnsUnderWay } from '../route/cut-turns.js';
import { topicTurnKey } from '../route/topic.js';
import { failureReason } from '../send/failure.js';
import { ChatOutput } from '../send/output.js';
import { linesOutput, outsideTopic } from '../send/outside-topic.js';
import { LiveMessage } from '../stream/live-message.js';
import type { ChatPaces } from '../stream/pacer.js';
import { type ChatTurns, stopReasonOf } from '../turns.js';
import {
  type CallRequest,
  callText,
  callTitle,
  OutputTail,
  progressHtml,
  queuedHtml,
  resultView,
} from '../views/tool.js';

/** What running tools from a chat needs. */
export interface ToolChat {
  tools: Tools;
  turns: ChatTurns;
  api: Api;
  logger: Logger;
  /** Minimum time between two progress edits. */
  intervalMs: number;
  /** The chats' paces: a run's progress shares its chat's with the chat's other topics. */
  paces: ChatPaces;
  /** The runs not ended yet, on disk: a crash leaves them to be told at the next start. */
  underWay: TurnsUnderWay;
  /** brainstem's /stop as the user types it: `bstop` with the Bot API front on, where `/stop` is OpenClaw's. */
  stopCommand: string;
}

export interface RunRequest {
  chatId: number;
  /** The forum topic it was asked in: the run waits in that topic's queue and answers there. */
  topicId?: number | undefined;
  /** Who asked: the audit records `telegram:<userId>`. */
  userId: number;
  lang: Lang;
  call: CallRequest;
  /** A message of the chat (the confirmed question) that becomes the progress and the result. */
  messageId?: number | undefined;
  /** What a new message replies to (in a group, the message that asked). */
  replyTo?: number | undefined;
}

/** Telegram allows about one edit a second per chat; progress never goes faster. */
const MIN_PROGRESS_MS = 1_000;
/** With no new output, the elapsed time still moves this often. */
const HEARTBEAT_MS = 5_000;

export const callerOf = (userId: number): string => `telegram:${userId}`;

/**
 * Runs a tool call as one of the chat's turns: behind a brain answer or
 * another run already going (saying so), stopped by /stop like an answer.
 * One message shows the latest output lines and the elapsed time, then the
 * result; a long output follows as a .txt document.
 */
export function submitToolRun(chat: ToolChat, req: RunRequest): void {
  // The run's own message: its "queued" notice, then its progress, then its result. In a topic closed
  // or deleted before or while it runs, it goes to the group outside the topic under the line saying
  // why, kept through its edits, instead of each send being refused there and lost.
  const out = linesOutput(chat.api, req.chatId, req.topicId, req.lang);
  const title = callTitle(req.call);
  // From now until the run ends: a crash meanwhile is told to the chat at the next start (cut-turns.ts).
  const underWay = chat.underWay.begin({
    chatId: req.chatId,
    topicId: req.topicId,
    kind: 'tool',
    lang: req.lang,
    said: callText(req.call),
  });
  chat.turns.submit<number>(
    topicTurnKey(req.chatId, req.topicId),
    async (signal, queuedId) => {
      try {
        await runInChat(chat, req, out, signal, queuedId ?? req.messageId, () =>
          chat.underWay.delivering(underWay),
        );
      } finally {
        chat.underWay.end(underWay);
      }
    },
    async () => {
      const html = queuedHtml(title, req.lang, chat.stopCommand);
      if (req.messageId !== undefined && (await out.editHtml(req.messageId, html)) === 'ok')
        return req.messageId;
      return out.sendHtml(html, req.replyTo ? { replyTo: req.replyTo } : {});
    },
    (err) => chat.logger.error({ err, chatId: req.chatId, tool: req.call.tool }, 'tool run in chat failed'),
  );
}

async function runInChat(
  chat: ToolChat,
  req: RunRequest,
  out: ChatOutput,
  signal: AbortSignal,
  messageId: number | undefined,
  /** The result goes to Telegram now, which may show it before a crash (cut-turns.ts). */
  onResult: () => void,
): Promise<void> {
  const log = chat.logger.child({ chatId: req.chatId, tool: req.call.tool });
  const started = Date.now();
  const title = callTitle(req.call);
  const tail = new OutputTail();
  const live = new LiveMessage(out, {
    intervalMs: Math.max(MIN_PROGRESS_MS, chat.intervalMs),
    chat: chat.paces.of(req.chatId),
    messageId,
    replyTo: req.replyTo,
    onError: (err, what) => log.warn({ err, what }, 'telegram delivery failed'),
  });
  const refresh = () => live.show(() => progressHtml(title, tail.lines(), Date.now() - started, req.lang));
  refresh();
  const heartbeat = setInterval(refresh, HEARTBEAT_MS);
  let result: ToolResult;
  try {
    result = await chat.tools.registry.call(req.call.tool, req.call.input, {
      caller: callerOf(req.userId),
      signal,
      lang: req.lang,
      chat: { id: req.chatId, ...(req.topicId !== undefined ? { topicId: req.topicId } : {}) },
      onOutput: (chunk) => {
        tail.push(chunk);
        refresh();
      },
    });
  } finally {
    clearInterval(heartbeat);
  }
  const view = resultView(req.call, result, stopReasonOf(signal), req.lang);
  onResult();
  const shown: Shown = (await live.finish(view.html))
    ? { messageId: live.messageId, outside: live.messageId !== undefined && out.sentOutside(live.messageId) }
    : await undeliveredResult(out, req, log);
  if (view.document) await sendDocument(chat.api, out, req, view.document, shown, log);
  // Only now has the user got the result (or Telegram refused it for good, logged above):
  // what waits for that may run, e.g. self_upgrade restarting brainstem.
  result.afterDelivery?.();
}

/** Where the result shows, for its document to follow: the message, and whether it left the topic. */
interface Shown {
  messageId?: number | undefined;
  /** The result went to the group outside its topic (closed or deleted): the document follows it there. */
  outside: boolean;
}

/**
 * Telegram refused the result for good (not its topic's refusal: `out` sends that outside the topic):
 * a notice that it did not arrive, as the user must not be left with "running" for a result that
 * will never show.
 */
async function undeliveredResult(out: ChatOutput, req: RunRequest, log: Logger): Promise<Shown> {
  await out
    .sendHtml(
      t(
        req.lang,
        `${PROXY_TAG} ⚠️ Telegram refused the message with the result of ${callTitle(req.call)}, so it did not arrive; the call itself ran.`,
        `${PROXY_TAG} ⚠️ Telegram a refusé le message du résultat de ${callTitle(req.call)} : il n’est pas arrivé ; l’appel lui-même a eu lieu.`,
      ),
    )
    .catch((err: unknown) =>
      log.warn({ err }, 'telegram refused the notice about an undelivered result too'),
    );
  return { outside: false };
}

/**
 * A long output, whole, as a .txt document under its result; outside the run's topic (its caption
 * saying why) when the topic refuses it for good, under the result when that went outside too. When
 * it does not arrive, a line says so through `out`, the run's lines output.
 */
async function sendDocument(
  api: Api,
  out: ChatOutput,
  req: RunRequest,
  doc: { name: string; text: string },
  shown: Shown,
  log: Logger,
): Promise<void> {
  const title = callTitle(req.call);
  const file = () => new InputFile(Buffer.from(doc.text, 'utf8'), doc.name);
  const under = shown.messageId !== undefined ? { replyTo: shown.messageId } : {};
  // Not `out`: it would move the file outside replying to nothing, whereas it belongs under a result
  // that went there too.
  const files = new ChatOutput(api, req.chatId, req.topicId);
  try {
    await files.sendFile('document', file(), under);
  } catch (err) {
    const outside = outsideTopic(files, err, req.lang, 'file');
    if (outside) {
      // Its topic refuses it for good: outside, under the result if that is out there too (else the
      // result stays in the topic, and the document replies to nothing).
      try {
        await outside.out.sendFile('document', file(), {
          caption: outside.line,
          ...(shown.outside ? under : {}),
        });
      } catch (e) {
        log.warn({ err: e }, 'could not send the full output as a document outside its topic either');
      }
      return;
    }
    log.warn({ err }, 'could not send the full output as a document');
    // The result message says the whole output is "in the file below": without this, the
    // user waits for a file that will not come.
    const why = escapeHtml(failureReason(err, req.lang));
    await out
      .sendHtml(
        t(
          req.lang,
          `${PROXY_TAG} ⚠️ The file with the whole output of ${title} did not arrive: ${why}. Only part of it shows above.`,
          `${PROXY_TAG} ⚠️ Le fichier avec la sortie complète de ${title} n’est pas arrivé : ${why}. Seule une partie s’affiche ci-dessus.`,
        ),
        under,
      )
      .catch((e: unknown) =>
        log.warn({ err: e }, 'telegram refused the notice about the undelivered file too'),
      );
  }
}
