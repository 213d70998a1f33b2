import { GrammyError, InputFile } from 'grammy';
import type { KvStore } from '../../../src/db/index.js';
import { type Lang, t } from '../../../src/i18n.js';
import type { Logger } from '../../../src/logger.js';
import { PROXY_TAG } from '../../../src/notices.js';
import {
  clearOutbox,
  listOutbox,
  type OutboxFile,
  type OutboxSkipped,
  outboxDir,
  removeEmptyOutbox,
} from '../../../src/outbox.js';
import { telegramSessionKey } from '../../../src/session-keys.js';
import { headChars, shorten } from '../../../src/text.js';
import { escapeHtml } from '../format/render.js';
import { type ChatOutput, isTopicGone } from '../send/output.js';
import { outsideTopic, sendHtmlOrOutside } from '../send/outside-topic.js';
import { formerChat } from './former-chat.js';

/** Telegram's limits for bots: photos up to 10 MB, other files up to 50 MB. */
export const MAX_PHOTO_BYTES = 10 * 1024 * 1024;
export const MAX_DOCUMENT_BYTES = 50 * 1024 * 1024;
/** Files sent after one answer; more are named in the notice, not sent. */
const MAX_FILES = 10;
/** What Telegram shows as a photo; any other file (a GIF, an SVG too) goes as a document. */
const PHOTO = /\.(jpe?g|png|webp)$/i;
/** Lines of the notice, each name cut to NAME_CHARS: it must fit one message (4096 characters). */
const MAX_NOTICE_LINES = 15;
const NAME_CHARS = 80;

/** The outbox of a chat's conversation (or of one of its forum topics) on the direct route. */
export function chatOutbox(dataDir: string, chatId: number, topicId: number | undefined): string {
  return outboxDir(dataDir, telegramSessionKey(chatId, topicId));
}

/**
 * The outbox of a chat's conversation as its turns use it: the folder its Claude session was told
 * (chatOutbox), for a supergroup the group's it was (formerChat). A basic group has no topics.
 */
export function turnOutbox(
  core: { config: { dataDir: string }; kv: Pick<KvStore, 'get'> },
  chatId: number,
  topicId: number | undefined,
): string {
  return chatOutbox(
    core.config.dataDir,
    topicId === undefined ? formerChat(core.kv, chatId) : chatId,
    topicId,
  );
}

/**
 * After an answer: the files the brain left in the conversation's outbox go
 * to the chat (images as photos, the rest as documents, within Telegram's
 * limits), one notice names what could not be sent, and the outbox is
 * emptied, sent or not, so nothing is sent twice, and removed (made again
 * before the chat's next turn), so no folder stays per chat ever answered. Each file is removed as
 * soon as it is sent: brainstem killed in the middle sends again at most the
 * one that was on its way.
 *
 * `earlier`: what is still in the outbox when a turn begins, left there by a
 * brainstem stopped before it had sent an earlier answer's files; a line
 * before them says they are from that answer.
 */
export async function deliverOutbox(opts: {
  out: ChatOutput;
  dataDir: string;
  dir: string;
  lang: Lang;
  logger: Logger;
  earlier?: boolean;
}): Promise<void> {
  const { out, lang, logger } = opts;
  const refused: string[] = [];
  try {
    // Nothing to send also when the outbox is not where it should be (a symlink): it is removed below.
    const { files, skipped } = await listOutbox(opts.dataDir, opts.dir).catch((err: unknown) => {
      logger.warn({ err: (err as Error).message }, 'the outbox could not be read');
      return { files: [] as OutboxFile[], skipped: [] };
    });
    // Its lines, like its files, go outside a forum topic closed or deleted meanwhile (outside-topic.ts).
    if (opts.earlier && files.length + skipped.length > 0) {
      await sendHtmlOrOutside(out, earlierText(lang), lang).catch((err: unknown) =>
        logger.warn({ err }, 'could not say the outbox files are from an earlier answer'),
      );
    }
    for (const other of skipped) refused.push(`${shownName(other.name)} (${skippedText(other.kind, lang)})`);
    for (const [i, file] of files.entries()) {
      if (i >= MAX_FILES) {
        refused.push(
          t(
            lang,
            `${shownName(file.name)} (more than ${MAX_FILES} files)`,
            `${shownName(file.name)} (plus de ${MAX_FILES} fichiers)`,
          ),
        );
        continue;
      }
      if (file.size === 0 || file.size > MAX_DOCUMENT_BYTES) {
        refused.push(`${shownName(file.name)} (${sizeText(file.size, lang)})`);
        continue;
      }
      try {
        await sendHere(out, file, lang);
        logger.info({ chatId: out.chatId, file: file.name, size: file.size }, 'outbox file sent');
        await file
          .remove()
          .catch((err: unknown) =>
            logger.warn({ err: (err as Error).message, file: file.name }, 'a sent outbox file stays'),
          );
      } catch (err) {
        logger.warn({ err, chatId: out.chatId, file: file.name }, 'outbox file not sent');
        const why = err instanceof GrammyError ? err.description : (err as Error).message;
        refused.push(`${shownName(file.name)} (${headChars(why, 120)})`);
      }
    }
  } finally {
    await clearOutbox(opts.dir).catch((err: unknown) =>
      logger.warn({ err: (err as Error).message }, 'the outbox could not be emptied'),
    );
    // Run in the chat's turn job, before its turn or after it: no brain writes there meanwhile.
    await removeEmptyOutbox(opts.dir).catch((err: unknown) =>
      logger.warn({ err: (err as Error).message }, 'the emptied outbox folder stays'),
    );
  }
  if (refused.length > 0) {
    await sendHtmlOrOutside(out, noticeHtml(refused, lang), lang).catch((err: unknown) =>
      logger.warn({ err }, 'could not say which outbox files were not sent'),
    );
  }
}

/** The files not sent, and why, in one message however many there are and however long their names. */
function noticeHtml(refused: string[], lang: Lang): string {
  const lines = refused.slice(0, MAX_NOTICE_LINES).map((r) => `• ${escapeHtml(r)}`);
  const more = refused.length - lines.length;
  if (more > 0) lines.push(t(lang, `… and ${more} more`, `… et ${more} de plus`));
  return `${t(lang, `${PROXY_TAG} 📎 Not sent:`, `${PROXY_TAG} 📎 Non envoyés :`)}\n${lines.join('\n')}`;
}

/**
 * A file's name as it can go in an upload: control characters (a line break, which grammY
 * refuses, and its refusal is retried for ever as a network failure, holding the chat's messages
 * behind it), and `;`, `"` and a backslash, which cut or break the name in grammY's unquoted
 * `filename=`, become `_`.
 */
function uploadName(name: string): string {
  return name.replace(/[\p{Cc};"\\]/gu, '_');
}

/** The same, cut, for a line of the notice. */
const shownName = (name: string): string => shorten(uploadName(name), NAME_CHARS);

const earlierText = (lang: Lang) =>
  t(
    lang,
    `${PROXY_TAG} 📎 From an earlier answer: brainstem stopped before it had sent these.`,
    `${PROXY_TAG} 📎 D’une réponse précédente : brainstem s’est arrêté avant de les envoyer.`,
  );

/**
 * The file to the output's chat; when its forum topic was closed or deleted meanwhile (its answer
 * went to the group outside it too), outside the topic, its caption saying why.
 */
async function sendHere(out: ChatOutput, file: OutboxFile, lang: Lang): Promise<void> {
  try {
    await send(out, file);
  } catch (err) {
    const outside = outsideTopic(out, err, lang, 'file');
    if (!outside) throw err;
    await send(outside.out, file, outside.line);
  }
}

/** A photo when it is an image Telegram takes as one; a document otherwise, or when Telegram refuses the photo. */
async function send(out: ChatOutput, file: OutboxFile, caption?: string): Promise<void> {
  const input = new InputFile(() => file.open(), uploadName(file.name));
  const opts = caption !== undefined ? { caption } : {};
  if (PHOTO.test(file.name) && file.size <= MAX_PHOTO_BYTES) {
    try {
      await out.sendFile('photo', input, opts);
      return;
    } catch (err) {
      // The topic refuses any file: no document either (outside-topic.ts takes it from here).
      if (isTopicGone(err)) throw err;
      // Dimensions or format Telegram will not show as a photo (PHOTO_INVALID_DIMENSIONS…): the file still arrives.
      if (!(err instanceof GrammyError && err.error_code === 400)) throw err;
    }
  }
  await out.sendFile('document', input, opts);
}

/** Why something in the outbox that is not a plain file is not sent. */
function skippedText(kind: OutboxSkipped['kind'], lang: Lang): string {
  if (kind === 'folder') {
    return t(
      lang,
      'a folder: only the files directly in the outbox are sent',
      'un dossier : seuls les fichiers placés directement dans la boîte d’envoi partent',
    );
  }
  return t(
    lang,
    'not a plain file: links and special files are never sent',
    'pas un fichier ordinaire : liens et fichiers spéciaux ne partent jamais',
  );
}

function sizeText(bytes: number, lang: Lang): string {
  if (bytes === 0) return t(lang, 'empty', 'vide');
  const mb = (bytes / 1024 / 1024).toFixed(1);
  return t(
    lang,
    `${mb} MB, over Telegram’s 50 MB for bots`,
    `${mb} Mo, au-delà des 50 Mo de Telegram pour les bots`,
  );
}
