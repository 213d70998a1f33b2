import { rm } from 'node:fs/promises';
import { type Bot, Context } from 'grammy';
import type { Message } from 'grammy/types';
import type { ModeConfig } from '../../../src/config.js';
import { Html, html } from '../../../src/html.js';
import { formatUtc, type Lang, langOf, t } from '../../../src/i18n.js';
import { IMAGE_MEDIA_TYPES, type ImageData } from '../../../src/images.js';
import { SENT_FILES_KEEP_DAYS } from '../../../src/keep-days.js';
import { PROXY_TAG } from '../../../src/notices.js';
import type { BotDeps } from '../deps.js';
import { sendHtmlOrOutside } from '../send/outside-topic.js';
import { switchWaitLine } from '../stream/answer.js';
import { stopReasonOf } from '../turns.js';
import { AlbumCollector, type Gathering } from './album.js';
import { documentText, INLINE_MAX_BYTES } from './document-text.js';
import { takenText } from './edits.js';
import { aboutFile, downloadTelegramImage, fetchFailureReason, imageInFile, sizeText } from './media.js';
import { save, submitTurn, type TurnContent, type TurnStart, unsupportedText } from './messages.js';
import type { HeldMessage } from './queued-messages.js';
import { type FileKind, SentFiles } from './sent-files.js';
import { outputFor } from './topic.js';
import { sweepUploads } from './uploads.js';
import { recordingTurn } from './voice.js';

/**
 * Photos and documents on the direct route. A photo (its largest size), an
 * image document (JPEG, PNG, GIF, WebP, by its type, or by its bytes when sent
 * as another type) and every photo of an album go to the brain as images, with
 * their captions as the turn's text. Any other
 * document is saved under the data dir and passed by path, with its name,
 * type and size (to a local model, its text). Files sent together (one media
 * group: an album of photos, or of documents, images or not) are one turn.
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
        if (removed > 0) deps.logger.info({ removed, keepDays: SENT_FILES_KEEP_DAYS }, 'old uploads removed');
      })
      .catch((err: unknown) => deps.logger.warn({ err }, 'could not remove old uploads'));
  void sweep();
  /**
   * Each part as it now reads: held in deps.queued from the part's arrival, so an edit meanwhile is
   * what the turn answers, one answer (the chat is told "edit taken"). A photo or file replaced
   * counts until the turn begins reading its files (while the turn waits in the queue or the album
   * gathers); a caption edited, until the turn makes its text (its files downloaded too).
   */
  const held = new WeakMap<MediaMessage, HeldMessage>();
  const files = new SentFiles(deps.core.db, deps.core.kept);
  /** Parts that are edits of a message sent earlier (see Edited). */
  const replacing = new WeakMap<MediaMessage, Edited>();
  /** The part as it now reads, its file fixed from now on: a replaced photo or file is the one the turn sends. */
  const current = (c: MediaMessage): MediaMessage => {
    const hold = held.get(c);
    const now = hold?.takeFile() ?? c.message;
    if (now === c.message) return c;
    const ctx = new Context({ update_id: c.update.update_id, message: now }, c.api, c.me) as MediaMessage;
    if (hold) held.set(ctx, hold);
    const edit = replacing.get(c);
    if (edit) replacing.set(ctx, edit);
    return ctx;
  };
  /**
   * A turn lets go of its parts once it made its text, or stopped before (even while its album
   * gathers): a later edit is then a turn of its own, not "taken" by a turn that will never read it.
   */
  const letGo = (parts: MediaMessage[]) => {
    for (const c of parts) held.get(c)?.release();
  };
  const turn = (first: MediaMessage, { parts, end }: Gathering<MediaMessage>) =>
    gatheredTurn(
      deps,
      first,
      parts,
      async (gathered, started, lang) => {
        const ordered = gathered.map(current);
        // A part whose photo or file was replaced by a video (say) is left out: the user was told, as of a new video.
        const kept = ordered.filter((c) => fileOf(c.message));
        const latest = (c: MediaMessage) => held.get(c)?.release().caption ?? c.message.caption ?? '';
        try {
          const content = await mediaContent(deps, kept, started, lang, latest);
          if (kept.some((c) => !isImage(c.message))) await sweep();
          return content && withReplacedNote(content, kept, replacing);
        } finally {
          letGo(ordered);
        }
      },
      // Stopped, even while its album gathers: the album is handed on at once, and every part let go.
      () => {
        end();
        void parts.then(letGo);
      },
    );
  const remember = (m: Message) => {
    const file = swappableOf(m);
    if (file) files.set(m.chat.id, m.message_id, file);
  };
  // Every file a user can swap for another, of any kind: a video put in place of a photo is no caption edit.
  bot.on(['message:video', 'message:animation', 'message:audio'], (ctx, next) => {
    remember(ctx.message);
    return next();
  });
  // Files sent together (one media group: an album of photos, or of documents, images among them)
  // are one turn, whatever each is: "compare these" goes with all of them.
  const media = (ctx: MediaMessage) => {
    held.set(
      ctx,
      deps.queued.hold(ctx.message, (m) => fileOf(m) !== undefined),
    );
    remember(ctx.message);
    const group = ctx.message.media_group_id;
    if (!group) return turn(ctx, { parts: Promise.resolve([ctx]), end: () => undefined });
    const chatId = ctx.message.chat.id;
    deps.logger.debug({ chatId, group, messageId: ctx.message.message_id }, 'album part');
    // The album's turn is queued with its first part: what the user sends after the album waits for it.
    const album = albums.add(`${chatId}:${group}`, ctx);
    if (album) turn(ctx, album);
  };

  bot.on('message:photo', (ctx) => media(ctx));
  bot.on('message:document', (ctx, next) => {
    // Telegram sets `document` on every GIF (an `animation`) too: those get the "not supported" reply (messages.ts).
    if (ctx.message.animation) return next();
    media(ctx);
  });

  // A replaced photo or file is sent in place of the old one while the message's turn waits; else
  // it is a new turn with it, queued as any message (the brain told what it replaces). A caption
  // edited on the same file goes on to edits.ts. An edit of a media message brainstem no longer
  // remembers may be either (Telegram sends the whole message for both, and a caption removed
  // looks like a file replaced without one): it is a turn with the file the message now holds, so
  // a replaced photo is never answered with silence, nor by its caption alone. A file swapped for
  // one of another kind (a photo for a video, an audio file for a photo) is handled as a new message
  // of that kind would be, and the turn that waited with the old one, if any, goes without it.
  bot.on('edited_message', async (ctx, next) => {
    const edited = ctx.editedMessage;
    const now = swappableOf(edited);
    if (!now) return next();
    const before = files.get(edited.chat.id, edited.message_id);
    if (before?.id === now.id) return next();
    const file = fileOf(edited);
    const replaced = before !== undefined;
    const edit: Edited = { date: edited.date, before: before && (before.kind ?? 'file') };
    const waiting = deps.queued.replaceFile(edited);
    // A video (say) brainstem does not remember holding another file, with no turn waiting on it: its caption edited, as far as it knows.
    if (!file && !replaced && !waiting) return next();
    deps.logger.info(
      { chatId: edited.chat.id, messageId: edited.message_id },
      replaced ? 'a sent file was replaced' : 'a media message brainstem does not remember was edited',
    );
    const lang = langOf(ctx.from?.language_code);
    if (waiting === 'taken') {
      remember(edited);
      await outputFor(ctx).sendHtml(takenText(lang), { replyTo: edited.message_id });
      return;
    }
    const turnOf = new Context({ update_id: ctx.update.update_id, message: edited }, ctx.api, ctx.me);
    if (file) {
      replacing.set(turnOf as MediaMessage, edit);
      media(turnOf as MediaMessage);
      return;
    }
    remember(edited);
    // Taken out of an album still to be answered, it takes its caption with it, as a new video in an album does: said.
    const refused = unsupportedText(
      edited,
      lang,
      waiting === 'left out' && edited.media_group_id !== undefined,
    );
    if (refused) await outputFor(ctx).sendHtml(refused, { replyTo: edited.message_id });
    else await recordingTurn(deps, turnOf as Parameters<typeof recordingTurn>[1], editNote(edit, edited));
  });

  return { stop: () => albums.stop() };
}

/** The photo (its largest size) or document a message holds; none for a GIF, which is no file here. */
function fileOf(m: Message): { file_unique_id: string } | undefined {
  return m.animation ? undefined : (m.photo?.at(-1) ?? m.document);
}

/** The file of any kind a user can swap for another in a sent message (Telegram's "replace"), and its kind. */
function swappableOf(m: Message): { id: string; kind: FileKind } | undefined {
  // A GIF comes with a `document` too: it is a GIF.
  if (m.animation) return { id: m.animation.file_unique_id, kind: 'animation' };
  const photo = m.photo?.at(-1);
  if (photo) return { id: photo.file_unique_id, kind: 'photo' };
  if (m.document) return { id: m.document.file_unique_id, kind: 'document' };
  if (m.video) return { id: m.video.file_unique_id, kind: 'video' };
  if (m.audio) return { id: m.audio.file_unique_id, kind: 'audio' };
  return undefined;
}

/**
 * An edit of a media message sent earlier (its `date`): `before`, the kind of file it held, which
 * the user replaced ('file' when brainstem remembers a file of a kind it did not record); undefined
 * when brainstem no longer remembers the file it held (a new caption or a new file).
 */
interface Edited {
  date: number;
  before: FileKind | 'file' | undefined;
}

/** How the brain is told of a kind of file. */
const KIND_NAMES: Record<FileKind, string> = {
  photo: 'photo',
  document: 'file',
  video: 'video',
  animation: 'GIF',
  audio: 'audio file',
};

/** What the brain is told first of a file that comes from an edit of a message sent earlier: what it replaced, and when that was sent. */
function editNote({ date, before }: Edited, now: Message): string {
  const when = formatUtc(date * 1000);
  const kind = swappableOf(now)?.kind;
  const what = kind ? KIND_NAMES[kind] : 'file';
  const name = kind === 'document' ? now.document?.file_name : undefined;
  const named = name ? `${what} "${name}"` : what;
  if (before === undefined)
    return `[The user edited their message of ${when}: this is the ${named} it now holds]`;
  if (before === kind)
    return `[The user replaced the ${what} of their message of ${when}: this is the new one${name ? `, "${name}"` : ''}]`;
  const held =
    before === 'file'
      ? `what their message of ${when} held`
      : `the ${KIND_NAMES[before]} of their message of ${when}`;
  return `[The user replaced ${held} with this ${named}]`;
}

/** The turn's text, told first which of its files come from edits of messages sent earlier, and when those were sent. */
function withReplacedNote(
  content: TurnContent,
  ordered: MediaMessage[],
  replacing: WeakMap<MediaMessage, Edited>,
): TurnContent {
  const notes = ordered.flatMap((c) => {
    const edit = replacing.get(c);
    return edit ? editNote(edit, c.message) : [];
  });
  return notes.length === 0
    ? content
    : { ...content, text: [...notes, content.text].filter(Boolean).join('\n\n') };
}

/** A photo, or an image sent as a document (JPEG, PNG, GIF, WebP): the brain sees it. */
function isImage(m: Message): boolean {
  return (
    m.photo !== undefined || (IMAGE_MEDIA_TYPES as readonly string[]).includes(m.document?.mime_type ?? '')
  );
}

/**
 * One turn for one message or several sent together (an album), queued now in
 * the chat's place of `first`, so what the user sends after it waits for it.
 * When its turn comes the album is gathered and `build` makes the turn of its
 * parts, in order (downloading them then). Cut by a restart (gathering,
 * waiting or downloading), the user is told to send it again. `onStop`: once the
 * turn is stopped (`build` may be reading its parts, or never have them).
 */
function gatheredTurn(
  deps: BotDeps,
  first: MediaMessage,
  parts: Promise<MediaMessage[]>,
  build: (ordered: MediaMessage[], turn: TurnStart, lang: Lang) => Promise<TurnContent | undefined>,
  onStop: () => void,
): void {
  const lang = langOf(first.from?.language_code);
  const kind =
    first.message.media_group_id !== undefined ? 'album' : isImage(first.message) ? 'photo' : 'document';
  submitTurn(
    deps,
    first,
    async (turn) => {
      const { signal, out } = turn;
      const gathered = await unlessAborted(parts, signal);
      const ordered = gathered?.sort((a, b) => a.message.message_id - b.message.message_id);
      const content = ordered && (await build(ordered, turn, lang));
      if (stopReasonOf(signal) === 'shutdown') {
        // In a forum topic closed since, to the group outside it, saying why.
        await sendHtmlOrOutside(out, restartingText(kind, lang), lang).catch((err: unknown) =>
          deps.logger.warn({ err, kind }, 'could not say that a restart cut what was sent'),
        );
      }
      return signal.aborted ? undefined : content;
    },
    lang,
    { onStop },
  );
}

/** A document saved under the data dir, with what the brain is told of it (its name, type and size). */
interface SavedDocument {
  ctx: MediaMessage;
  name: string;
  about: string;
  path: string;
  mimeType: string | undefined;
  size: number | undefined;
}

/** Saves a document the user sent; undefined when it could not be (the user has been told why). */
async function saveDocument(
  deps: BotDeps,
  ctx: MediaMessage,
  lang: Lang,
): Promise<SavedDocument | undefined> {
  const doc = ctx.message.document;
  if (!doc) return undefined;
  const name = doc.file_name ?? `document-${doc.file_unique_id}`;
  const path = await save(deps, ctx, { fileId: doc.file_id, name, size: doc.file_size }, lang);
  if (!path) return undefined;
  const about = aboutFile(doc.mime_type, doc.file_size);
  return { ctx, name, about, path, mimeType: doc.mime_type, size: doc.file_size };
}

/**
 * What the brain is told of each saved document, for the mode that answers
 * the turn. The chat core makes a turn wait for a switch under way and gives it
 * to the mode the switch ends on (ChatService.stream), so the notes wait for it
 * here too, and are made again should another switch begin meanwhile: a local
 * model must get a text file's text, not a path it cannot open, and a Claude
 * mode the path of a PDF a local model would have been refused. Only then is
 * the user told of a document the local model cannot read. Undefined when the
 * turn was stopped while it waited.
 */
async function documentNotes(
  deps: BotDeps,
  saved: SavedDocument[],
  lang: Lang,
  { signal, showWaiting }: TurnStart,
): Promise<Map<MediaMessage, string> | undefined> {
  const { switcher } = deps.core;
  const notes = new Map<MediaMessage, string>();
  if (saved.length === 0) return notes;
  let shown = false;
  for (;;) {
    // Said as a text turn's answer says it while the chat core waits (answer.ts), where the answer will come.
    if (switcher.isSwitching() && !shown) {
      shown = true;
      await showWaiting(switchWaitLine(lang, 'html'));
    }
    await switcher.whenIdle(signal);
    if (signal.aborted) return undefined;
    const mode = switcher.active();
    notes.clear();
    const unread: SavedDocument[] = [];
    for (const doc of saved) {
      const note = await documentNote(doc, mode);
      if (note) notes.set(doc.ctx, note);
      else unread.push(doc);
    }
    if (switcher.isSwitching() || switcher.active().id !== mode.id) continue;
    for (const { ctx, name, mimeType, size } of unread) {
      // Telegram refusing the notice must not take the turn, and the other documents sent with this one, with it.
      // Its type and size in the reader's words ("15 octets"), not the brain's.
      const about = aboutFile(mimeType, size, lang);
      await outputFor(ctx)
        .sendHtml(unreadableText(name, about, mode.id, deps, lang).text)
        .catch((err: unknown) =>
          deps.logger.warn(
            { err, chatId: ctx.message.chat.id },
            'could not say that a document was not text',
          ),
        );
    }
    return notes;
  }
}

/**
 * What the brain of `mode` is told of a saved document: its name, type, size
 * and path; to a local model, which cannot open a path, its text. Undefined
 * when a local model cannot read it.
 */
async function documentNote(
  { name, about, path }: SavedDocument,
  mode: ModeConfig,
): Promise<string | undefined> {
  if (mode.kind !== 'llama') return `[The user sent the document "${name}" (${about}), saved at ${path}]`;
  const inline = await documentText(path).catch(() => undefined);
  if (!inline) return undefined;
  const part = inline.cut ? `its first ${sizeText(INLINE_MAX_BYTES)}` : 'its text';
  return `[The user sent the document "${name}" (${about}), saved at ${path}; ${part}:]\n\n${inline.text}\n\n[end of "${name}"]`;
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
 * The turn of the files of one message or of several sent together, in
 * order: the images for the brain to see, what it is told of each other
 * document (see documentNote), then the captions. An image that cannot be
 * fetched or read does not take the caption with it: the brain is told it is
 * missing, and the user which one and why, and what went to the brain.
 * Undefined when nothing is left to send: no image or document went, and no
 * caption goes with a note of a missing image (a document that could not be
 * saved or read has been said to the user).
 */
async function mediaContent(
  deps: BotDeps,
  ordered: MediaMessage[],
  turn: TurnStart,
  lang: Lang,
  captionOf: (c: MediaMessage) => string,
): Promise<TurnContent | undefined> {
  const { signal, out } = turn;
  const pictures = ordered.filter((c) => isImage(c.message));
  const images: ImageData[] = [];
  const missed: { ctx: MediaMessage; index: number; miss: Miss }[] = [];
  const saved: SavedDocument[] = [];
  for (const ctx of ordered) {
    if (signal.aborted) break;
    if (!isImage(ctx.message)) {
      const doc = await saveDocument(deps, ctx, lang);
      const image = doc && (await sentAsFile(deps, doc));
      if (image) images.push(image);
      else if (doc) saved.push(doc);
      continue;
    }
    const got = await imageOf(deps, ctx, signal);
    if ('mediaType' in got) images.push(got);
    else missed.push({ ctx, index: pictures.indexOf(ctx), miss: got });
  }
  // Stopped (/stop, a restart): whoever stopped it says so; a cut download is no failure to report.
  if (signal.aborted) return undefined;
  const documents = await documentNotes(deps, saved, lang, turn);
  if (!documents) return undefined;
  const captions = ordered.flatMap((c) => captionOf(c).trim() || []);
  const nameOf = (m: (typeof missed)[number], l: Lang) =>
    imageName(m.ctx.message, m.index, pictures.length, l);
  if (missed.length > 0) {
    const lines = missed.map(
      (m) =>
        html`${t(lang, 'I could not read', 'Je n’ai pas pu lire')} ${nameOf(m, lang)}${t(lang, ': ', ' : ')}${missReason(m.ctx.message, m.miss, lang)}.`,
    );
    const outcome =
      images.length > 0 || documents.size > 0
        ? t(lang, 'The rest went to the brain.', 'Le reste est parti au cerveau.')
        : captions.length > 0
          ? t(
              lang,
              'Your words went to the brain, with a note that the image is missing.',
              'Vos mots sont partis au cerveau, avec une note disant que l’image manque.',
            )
          : t(lang, 'Nothing was sent to the brain.', 'Rien n’a été envoyé au cerveau.');
    // In a forum topic closed since, to the group outside it, saying why.
    await sendHtmlOrOutside(out, `${PROXY_TAG} ${Html.join([...lines, html`${outcome}`], ' ')}`, lang).catch(
      (err: unknown) => deps.logger.warn({ err }, 'could not say that an image was missing'),
    );
  }
  if (images.length === 0 && documents.size === 0 && (missed.length === 0 || captions.length === 0))
    return undefined;
  // What the brain is told of each file it does not see, in the order they were sent.
  const notes = ordered.flatMap((ctx) => {
    const m = missed.find((x) => x.ctx === ctx);
    if (m)
      return `[The user sent ${nameOf(m, 'en')}, but it could not be read (${missReason(ctx.message, m.miss, 'en')}): you do not see it]`;
    return documents.get(ctx) ?? [];
  });
  return { text: [...notes, ...captions].join('\n\n'), images };
}

/**
 * The image a saved document turns out to be by its bytes, though sent with another type: it goes
 * to the brain as an image sent as a document does, and its saved copy is removed as that one is
 * never saved. Undefined for any other document, or one that cannot be read back (it stays a document).
 */
async function sentAsFile(deps: BotDeps, doc: SavedDocument): Promise<ImageData | undefined> {
  const chatId = doc.ctx.message.chat.id;
  const image = await imageInFile(doc.path).catch((err: unknown) => {
    deps.logger.warn({ err: (err as Error).message, chatId }, 'could not read back a saved document');
    return undefined;
  });
  if (!image) return undefined;
  deps.logger.info(
    { chatId, mediaType: image.mediaType, bytes: image.bytes },
    'image from Telegram, sent as a file',
  );
  await rm(doc.path, { force: true }).catch((err: unknown) =>
    deps.logger.warn({ err: (err as Error).message, chatId }, 'could not remove an image sent as a file'),
  );
  return image;
}

/** The image a message holds, downloaded, or why there is none (the details logged). */
async function imageOf(deps: BotDeps, ctx: MediaMessage, signal: AbortSignal): Promise<ImageData | Miss> {
  const m = ctx.message;
  const chatId = m.chat.id;
  const file = m.photo?.at(-1) ?? m.document;
  if (!file) return { unreadable: true };
  try {
    const { image, bytes } = await downloadTelegramImage({ api: ctx.api, ...deps }, file, signal);
    if (image) {
      deps.logger.info({ chatId, mediaType: image.mediaType, bytes: image.bytes }, 'image from Telegram');
      return image;
    }
    deps.logger.warn({ chatId, bytes }, 'an image from Telegram is no image brainstem reads');
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
