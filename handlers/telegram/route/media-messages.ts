import type { Bot, Context } from 'grammy';
import type { Message } from 'grammy/types';
import { langOf, t } from '../../../src/i18n.js';
import { IMAGE_MEDIA_TYPES, type ImageData, imageFromBytes } from '../../../src/images.js';
import { PROXY_TAG } from '../../../src/notices.js';
import type { BotDeps } from '../deps.js';
import { escapeMarkdown } from '../format/render.js';
import { AlbumCollector } from './album.js';
import { downloadTelegramFile, fileFailureText, sizeText } from './media.js';
import { save, submitTurn } from './messages.js';
import { outputFor } from './topic.js';

/**
 * Photos and documents on the direct route. A photo (its largest size), an
 * image document (JPEG, PNG, GIF, WebP) and every photo of an album go to the
 * brain as images, with their captions as the turn's text; an album is one
 * turn. Any other document is saved under the data dir and passed by path,
 * with its name, type and size.
 */

/** How long an album waits for another part (see AlbumCollector). */
const ALBUM_QUIET_MS = 1_000;

/** A message that holds an image: a photo, or a document whose type says image. */
type ImageMessage = Context & { message: Message };

export function registerMediaMessages(bot: Bot, deps: BotDeps): { flush(): void } {
  const albums = new AlbumCollector<ImageMessage>(ALBUM_QUIET_MS, (parts) => {
    void imageTurn(deps, parts).catch((err: unknown) => deps.logger.error({ err }, 'album turn failed'));
  });
  const image = async (ctx: ImageMessage) => {
    const group = ctx.message.media_group_id;
    if (group) albums.add(`${ctx.chat?.id}:${group}`, ctx);
    else await imageTurn(deps, [ctx]);
  };

  bot.on('message:photo', (ctx) => image(ctx));

  bot.on('message:document', async (ctx) => {
    const doc = ctx.message.document;
    if ((IMAGE_MEDIA_TYPES as readonly string[]).includes(doc.mime_type ?? '')) return image(ctx);
    const lang = langOf(ctx.from?.language_code);
    const name = doc.file_name ?? `document-${doc.file_unique_id}`;
    const saved = await save(deps, ctx, doc.file_id, name, lang);
    if (!saved) return;
    const about = [doc.mime_type, doc.file_size === undefined ? undefined : sizeText(doc.file_size)];
    const note = `[The user sent the document "${name}" (${about.filter(Boolean).join(', ')}), saved at ${saved}]`;
    submitTurn(deps, ctx, ctx.message.caption ? `${note}\n\n${ctx.message.caption}` : note, lang);
  });

  return { flush: () => albums.flush() };
}

/** One turn for one photo or a whole album: the images downloaded, the captions as its text. */
async function imageTurn(deps: BotDeps, parts: ImageMessage[]): Promise<void> {
  const ordered = [...parts].sort((a, b) => a.message.message_id - b.message.message_id);
  const first = ordered[0];
  if (!first) return;
  const lang = langOf(first.from?.language_code);
  const images: ImageData[] = [];
  const lines: string[] = [];
  for (const ctx of ordered) {
    const got = await imageOf(deps, ctx);
    if (got) images.push(got);
    if (ctx.message.caption) lines.push(ctx.message.caption);
  }
  if (images.length === 0) return;
  submitTurn(deps, first, lines.join('\n\n'), lang, images);
}

/** The image a message holds, downloaded; on failure the user is told which and why. */
async function imageOf(deps: BotDeps, ctx: ImageMessage): Promise<ImageData | undefined> {
  const m = ctx.message;
  const fileId = m.photo?.at(-1)?.file_id ?? m.document?.file_id;
  const chatId = m.chat.id;
  if (!fileId) return undefined;
  const lang = langOf(ctx.from?.language_code);
  const out = outputFor(ctx);
  try {
    const bytes = await downloadTelegramFile({
      api: ctx.api,
      token: deps.token,
      apiRoot: deps.apiRoot,
      fileId,
    });
    const image = imageFromBytes(bytes);
    if (image) {
      deps.logger.info({ chatId, mediaType: image.mediaType, bytes: image.bytes }, 'image from Telegram');
      return image;
    }
    const name = escapeMarkdown(m.document?.file_name ?? 'that file');
    await out.sendMarkdown(
      t(
        lang,
        `${PROXY_TAG} ${name} is not a JPEG, PNG, GIF or WebP image I can read; send it as a photo, or as one of those.`,
        `${PROXY_TAG} ${name} n’est pas une image JPEG, PNG, GIF ou WebP lisible ; envoyez-la comme photo, ou dans l’un de ces formats.`,
      ),
    );
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, chatId }, 'could not download an image from Telegram');
    await out.sendMarkdown(fileFailureText(err, lang));
  }
  return undefined;
}
