import type { Bot, Context } from 'grammy';
import type { Message } from 'grammy/types';
import { Html, html } from '../../../src/html.js';
import { type Lang, langOf, t } from '../../../src/i18n.js';
import { IMAGE_MEDIA_TYPES, type ImageData, imageFromBytes } from '../../../src/images.js';
import { PROXY_TAG } from '../../../src/notices.js';
import type { BotDeps } from '../deps.js';
import type { ChatOutput } from '../send/output.js';
import { stopReasonOf } from '../turns.js';
import { AlbumCollector } from './album.js';
import { documentText, INLINE_MAX_BYTES } from './document-text.js';
import { downloadTelegramFile, fetchFailureReason, sizeText } from './media.js';
import { save, submitTurn, type TurnContent } from './messages.js';
import { outputFor } from './topic.js';
import { sweepUploads, UPLOAD_KEEP_DAYS } from './uploads.js';

/**
 * Photos and documents on the direct route. A photo (its largest size), an
 * image document (JPEG, PNG, GIF, WebP) and every photo of an album go to the
 * brain as images, with their captions as the turn's text; an album is one
 * turn. Any other document is saved under the data dir and passed by path,
 * with its name, type and size (to a local model, its text); documents sent
 * together are one turn too.
 */

/** A message that holds a photo or a document. */
type MediaMessage = Context & { message: Message };

export function registerMediaMessages(bot: Bot, deps: BotDeps): { stop(): void } {
  // How long an album waits for another part (see AlbumCollector).
  const albums = new AlbumCollector<MediaMessage>(deps.core.config.telegram.albumQuietMs);
  // Documents are kept a few days, not forever: swept now and at each new one.
  const sweep = () =>
    sweepUploads(deps.core.config.dataDir)
      .then((removed) => {
        if (removed > 0) deps.logger.info({ removed, keepDays: UPLOAD_KEEP_DAYS }, 'old uploads removed');
      })
      .catch((err: unknown) => deps.logger.warn({ err }, 'could not remove old uploads'));
  void sweep();
  const photoTurn = (first: MediaMessage, parts: Promise<MediaMessage[]>) =>
    gatheredTurn(deps, first, parts, 'photo', (ordered, out, lang, signal) =>
      imageContent(deps, ordered, out, lang, signal),
    );
  const documentTurn = (first: MediaMessage, parts: Promise<MediaMessage[]>) =>
    gatheredTurn(deps, first, parts, 'document', async (ordered, _out, lang, signal) => {
      const content = await documentContent(deps, ordered, lang, signal);
      await sweep();
      return content;
    });
  const image = (ctx: MediaMessage) => {
    const group = ctx.message.media_group_id;
    if (!group) return photoTurn(ctx, Promise.resolve([ctx]));
    const chatId = ctx.message.chat.id;
    deps.logger.debug({ chatId, group, messageId: ctx.message.message_id }, 'album part');
    // The album's turn is queued with its first part: what the user sends after the album waits for it.
    const album = albums.add(`${chatId}:${group}`, ctx);
    if (album) photoTurn(ctx, album);
  };

  bot.on('message:photo', (ctx) => image(ctx));

  // Several files sent together (an album of documents) are one turn too: "compare these" goes with all.
  const documents = new AlbumCollector<MediaMessage>(deps.core.config.telegram.albumQuietMs);
  bot.on('message:document', (ctx, next) => {
    // Telegram sets `document` on every GIF (an `animation`) too: those get the "not supported" reply (messages.ts).
    if (ctx.message.animation) return next();
    const doc = ctx.message.document;
    if ((IMAGE_MEDIA_TYPES as readonly string[]).includes(doc.mime_type ?? '')) return image(ctx);
    const group = ctx.message.media_group_id;
    if (!group) return documentTurn(ctx, Promise.resolve([ctx]));
    const album = documents.add(`${ctx.message.chat.id}:${group}`, ctx);
    if (album) documentTurn(ctx, album);
  });

  return {
    stop: () => {
      albums.stop();
      documents.stop();
    },
  };
}

/**
 * One turn for one message or several sent together (an album), queued now in
 * the chat's place of `first`, so what the user sends after it waits for it.
 * When its turn comes the album is gathered and `build` makes the turn of its
 * parts, in order (downloading them then). Cut by a restart (gathering,
 * waiting or downloading), the user is told to send it again.
 */
function gatheredTurn(
  deps: BotDeps,
  first: MediaMessage,
  parts: Promise<MediaMessage[]>,
  kind: 'photo' | 'document',
  build: (
    ordered: MediaMessage[],
    out: ChatOutput,
    lang: Lang,
    signal: AbortSignal,
  ) => Promise<TurnContent | undefined>,
): void {
  const lang = langOf(first.from?.language_code);
  submitTurn(
    deps,
    first,
    async (signal, out) => {
      const gathered = await unlessAborted(parts, signal);
      const ordered = gathered?.sort((a, b) => a.message.message_id - b.message.message_id);
      const content = ordered && (await build(ordered, out, lang, signal));
      if (stopReasonOf(signal) === 'shutdown') {
        await out
          .sendHtml(restartingText(first.message.media_group_id !== undefined ? 'album' : kind, lang))
          .catch((err: unknown) =>
            deps.logger.warn({ err, kind }, 'could not say that a restart cut what was sent'),
          );
      }
      return signal.aborted ? undefined : content;
    },
    lang,
  );
}

/** The turn of documents (in order): what the brain is told of each, then their captions. */
async function documentContent(
  deps: BotDeps,
  ordered: MediaMessage[],
  lang: Lang,
  signal: AbortSignal,
): Promise<TurnContent | undefined> {
  const notes: string[] = [];
  for (const ctx of ordered) {
    if (signal.aborted) return undefined;
    const note = await documentNote(deps, ctx, lang);
    if (note) notes.push(note);
  }
  if (notes.length === 0) return undefined;
  const captions = ordered.flatMap((c) => c.message.caption?.trim() || []);
  return { text: [...notes, ...captions].join('\n\n') };
}

/**
 * What the brain is told of one document, once saved: its name, type, size and
 * path; to a local model, which cannot open a path, its text. Undefined when
 * nothing of it can go (it could not be saved, or a local model cannot read
 * it): the user has been told why.
 */
async function documentNote(deps: BotDeps, ctx: MediaMessage, lang: Lang): Promise<string | undefined> {
  const doc = ctx.message.document;
  if (!doc) return undefined;
  const name = doc.file_name ?? `document-${doc.file_unique_id}`;
  const saved = await save(deps, ctx, { fileId: doc.file_id, name, size: doc.file_size }, lang);
  if (!saved) return undefined;
  const about = [doc.mime_type, doc.file_size === undefined ? undefined : sizeText(doc.file_size)]
    .filter(Boolean)
    .join(', ');
  const mode = deps.core.switcher.active();
  if (mode.kind !== 'llama') return `[The user sent the document "${name}" (${about}), saved at ${saved}]`;
  const inline = await documentText(saved).catch(() => undefined);
  if (!inline) {
    // Telegram refusing the notice must not take the turn, and the other documents sent with this one, with it.
    await outputFor(ctx)
      .sendHtml(unreadableText(name, about, mode.id, deps, lang).text)
      .catch((err: unknown) =>
        deps.logger.warn({ err, chatId: ctx.message.chat.id }, 'could not say that a document was not text'),
      );
    return undefined;
  }
  const part = inline.cut ? `its first ${sizeText(INLINE_MAX_BYTES)}` : 'its text';
  return `[The user sent the document "${name}" (${about}), saved at ${saved}; ${part}:]\n\n${inline.text}\n\n[end of "${name}"]`;
}

/** Said when a local model is asked about a document that is not text: nothing was sent to it. */
function unreadableText(name: string, about: string, modeId: string, deps: BotDeps, lang: Lang): Html {
  const claude = deps.core.modes.all.some((m) => m.kind === 'claude');
  const other = claude
    ? t(
        lang,
        html` or switch to a Claude mode (/mode), which opens files`,
        html` ou passez à un mode Claude (/mode), qui ouvre les fichiers`,
      )
    : html``;
  return t(
    lang,
    html`${PROXY_TAG} The local model of mode <b>${modeId}</b> only reads text, and <b>${name}</b> (${about}) is not text, so nothing was sent to it. Send the text itself${other}.`,
    html`${PROXY_TAG} Le modèle local du mode <b>${modeId}</b> ne lit que du texte, et <b>${name}</b> (${about}) n’en est pas : rien ne lui a été envoyé. Envoyez le texte lui-même${other}.`,
  );
}

/** Said when a restart stops photos or documents before they reach the brain (worded as answer.ts's cut answer). */
function restartingText(what: 'album' | 'photo' | 'document', lang: Lang): string {
  const [en, fr, again] = {
    album: ['this album did not reach', 'cet album n’est pas parvenu', 'Renvoyez-le'],
    photo: ['this photo did not reach', 'cette photo n’est pas parvenue', 'Renvoyez-la'],
    document: ['this document did not reach', 'ce document n’est pas parvenu', 'Renvoyez-le'],
  }[what];
  return t(
    lang,
    `${PROXY_TAG} brainstem is restarting; ${en} the brain. Send it again in a moment.`,
    `${PROXY_TAG} brainstem redémarre ; ${fr} au cerveau. ${again} dans un instant.`,
  );
}

/** The promise's value, or undefined as soon as the signal is aborted. */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** An image that could not be had: its download failed (`err`), or its bytes are no image brainstem reads. */
type Miss = { err: unknown } | { unreadable: true };

/**
 * The images of these messages (in order) and their captions. One that cannot
 * be fetched or read does not take the caption with it: the brain is told it
 * is missing, and the user which one and why, and what went to the brain.
 * Undefined when nothing is left to send (no image, no caption).
 */
async function imageContent(
  deps: BotDeps,
  ordered: MediaMessage[],
  out: ChatOutput,
  lang: Lang,
  signal: AbortSignal,
): Promise<TurnContent | undefined> {
  const images: ImageData[] = [];
  const captions: string[] = [];
  const missed: { ctx: MediaMessage; index: number; miss: Miss }[] = [];
  for (const [index, ctx] of ordered.entries()) {
    const got = await imageOf(deps, ctx, signal);
    if ('mediaType' in got) images.push(got);
    else missed.push({ ctx, index, miss: got });
    const caption = ctx.message.caption?.trim();
    if (caption) captions.push(caption);
  }
  // Stopped (/stop, a restart): whoever stopped it says so; a cut download is no failure to report.
  if (signal.aborted) return undefined;
  const nameOf = (m: (typeof missed)[number], l: Lang) =>
    imageName(m.ctx.message, m.index, ordered.length, l);
  if (missed.length > 0) {
    const lines = missed.map(
      (m) =>
        html`${t(lang, 'I could not read', 'Je n’ai pas pu lire')} ${nameOf(m, lang)}${t(lang, ': ', ' : ')}${missReason(m.ctx.message, m.miss, lang)}.`,
    );
    const outcome =
      images.length > 0
        ? t(lang, 'The rest went to the brain.', 'Le reste est parti au cerveau.')
        : captions.length > 0
          ? t(
              lang,
              'Your words went to the brain, with a note that the image is missing.',
              'Vos mots sont partis au cerveau, avec une note disant que l’image manque.',
            )
          : t(lang, 'Nothing was sent to the brain.', 'Rien n’a été envoyé au cerveau.');
    await out
      .sendHtml(`${PROXY_TAG} ${Html.join([...lines, html`${outcome}`], ' ')}`)
      .catch((err: unknown) => deps.logger.warn({ err }, 'could not say that an image was missing'));
  }
  if (images.length === 0 && captions.length === 0) return undefined;
  const notes = missed.map(
    (m) =>
      `[The user sent ${nameOf(m, 'en')}, but it could not be read (${missReason(m.ctx.message, m.miss, 'en')}): you do not see it]`,
  );
  return { text: [...notes, ...captions].join('\n\n'), images };
}

/** The image a message holds, downloaded, or why there is none (the details logged). */
async function imageOf(deps: BotDeps, ctx: MediaMessage, signal: AbortSignal): Promise<ImageData | Miss> {
  const m = ctx.message;
  const chatId = m.chat.id;
  const file = m.photo?.at(-1) ?? m.document;
  if (!file) return { unreadable: true };
  try {
    const bytes = await downloadTelegramFile({
      api: ctx.api,
      token: deps.token,
      apiRoot: deps.apiRoot,
      fileId: file.file_id,
      size: file.file_size,
      signal,
    });
    const image = imageFromBytes(bytes);
    if (image) {
      deps.logger.info({ chatId, mediaType: image.mediaType, bytes: image.bytes }, 'image from Telegram');
      return image;
    }
    deps.logger.warn({ chatId, bytes: bytes.length }, 'an image from Telegram is no image brainstem reads');
    return { unreadable: true };
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, chatId }, 'could not download an image from Telegram');
    return { err };
  }
}

/** Which image it is, for the user and the brain: "this photo", "photo 2 of 3", a document's name. */
function imageName(m: Message, index: number, count: number, lang: Lang): string {
  if (m.document)
    return m.document.file_name ? `“${m.document.file_name}”` : t(lang, 'this image', 'cette image');
  if (count === 1) return t(lang, 'this photo', 'cette photo');
  return t(lang, `photo ${index + 1} of ${count}`, `la photo ${index + 1} sur ${count}`);
}

function missReason(m: Message, miss: Miss, lang: Lang): string {
  if ('err' in miss) return fetchFailureReason(miss.err, lang);
  // Only a document can be sent again "as a photo": a photo was one already.
  return m.document
    ? t(
        lang,
        'it is not a JPEG, PNG, GIF or WebP image I can read; send it as a photo, or in one of those formats',
        'ce n’est pas une image JPEG, PNG, GIF ou WebP lisible ; envoyez-la comme photo, ou dans l’un de ces formats',
      )
    : t(lang, 'it is not an image I can read', 'ce n’est pas une image lisible');
}
