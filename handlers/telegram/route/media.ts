import { type FileHandle, mkdir, open, readFile, realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Api, GrammyError } from 'grammy';
import { html } from '../../../src/html.js';
import { undici } from '../../../src/http-client.js';
import { type Lang, t } from '../../../src/i18n.js';
import { type ImageData, imageFromBytes, sniffImageType } from '../../../src/images.js';
import { PROXY_TAG } from '../../../src/notices.js';
import { isOpenedAt } from '../../../src/opened-at.js';
import { tailChars } from '../../../src/text.js';
import { uploadsDir } from './uploads.js';

/** The Bot API does not serve files larger than this to bots. */
export const MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024;

/** A file larger than bots may download; `size` when known (Telegram's refusal does not give it). */
export class FileTooLarge extends Error {
  constructor(readonly size?: number) {
    super(
      size === undefined
        ? 'the file is larger than the 20 MB bots can download'
        : `the file is ${(size / 1024 / 1024).toFixed(1)} MB; bots can only download up to 20 MB`,
    );
    this.name = 'FileTooLarge';
  }
}

/**
 * A chat's uploads folder that resolves to another place than `<dataDir>/uploads/<chat>` (a link
 * put there by something that can write brainstem's files, an approved shell command say): no
 * download is written through it, where it would land in whatever folder the link names.
 */
export class UploadsFolderElsewhere extends Error {
  constructor(
    readonly folder: string,
    readonly resolved: string,
  ) {
    super(`the uploads folder ${folder} leads to ${resolved}: a link, through which nothing is written`);
    this.name = 'UploadsFolderElsewhere';
  }
}

/** A file size as people read it: `5 bytes`, `830 KB`, `4.2 MB` (in French `5 octets`, `830 Ko`, `4.2 Mo`). */
export function sizeText(bytes: number, lang: Lang = 'en'): string {
  if (bytes < 1024) return `${bytes} ${t(lang, 'bytes', 'octets')}`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} ${t(lang, 'KB', 'Ko')}`;
  return `${(bytes / 1024 / 1024).toFixed(1)} ${t(lang, 'MB', 'Mo')}`;
}

/** A file's type and size, for the brain (English) or a reader (`lang`): `application/pdf, 15 bytes`. */
export function aboutFile(mimeType: string | undefined, size: number | undefined, lang: Lang = 'en'): string {
  return [mimeType, size === undefined ? undefined : sizeText(size, lang)].filter(Boolean).join(', ');
}

/**
 * Why a file the user sent could not be fetched, in words they can act on.
 * grammY's own text ("Call to 'getFile' failed! (400: …)") goes to the log only.
 */
export function fetchFailureReason(err: unknown, lang: Lang): string {
  if (err instanceof FileTooLarge) {
    if (err.size === undefined)
      return t(
        lang,
        'it is larger than the 20 MB Telegram lets bots download',
        'il dépasse les 20 Mo que Telegram laisse télécharger aux bots',
      );
    const mb = (err.size / 1024 / 1024).toFixed(1);
    return t(
      lang,
      `it is ${mb} MB, and Telegram lets bots download files of up to 20 MB only`,
      `il fait ${mb} Mo, et Telegram ne laisse les bots télécharger que jusqu’à 20 Mo`,
    );
  }
  if (err instanceof GrammyError)
    return t(lang, 'Telegram would not hand the file over', 'Telegram n’a pas voulu fournir le fichier');
  if (err instanceof UploadsFolderElsewhere)
    return t(
      lang,
      'brainstem’s folder for received files is a link to another place, so nothing was written there (its log names both)',
      'le dossier des fichiers reçus de brainstem est un lien vers un autre endroit, donc rien n’y a été écrit (son journal nomme les deux)',
    );
  return t(lang, 'the download from Telegram failed', 'le téléchargement depuis Telegram a échoué');
}

/** What the user is told when a document they sent could not be fetched (HTML). */
export function fetchFailureText(name: string, err: unknown, lang: Lang): string {
  const why = fetchFailureReason(err, lang);
  // A file too large for a bot stays too large, and a folder that is a link stays one: sending
  // it again cannot help.
  const again =
    err instanceof FileTooLarge || err instanceof UploadsFolderElsewhere
      ? ''
      : t(lang, ' Send it again in a moment.', ' Renvoyez-le dans un instant.');
  return t(
    lang,
    html`${PROXY_TAG} I could not fetch “${name}”: ${why}. Nothing was sent to the brain.${again}`,
    html`${PROXY_TAG} Impossible de récupérer « ${name} » : ${why}. Rien n’a été envoyé au cerveau.${again}`,
  ).toString();
}

export interface SavedFile {
  path: string;
  size: number;
}

/** Files of one name saved in one millisecond; past it, something else is at work than a busy chat. */
const MAX_SAME_NAME = 100;

/** A name safe on any filesystem: no path, no control characters, not too long. */
export function safeFileName(name: string): string {
  const base = path
    .basename(name)
    .replace(/[^\p{L}\p{N}._-]+/gu, '_')
    .replace(/^\.+/, '');
  return tailChars(base || 'file', 80);
}

interface FileSource {
  api: Api;
  token: string;
  apiRoot: string;
  fileId: string;
  /** The size the message gave (Telegram's `file_size`), if it gave one: too large is refused before asking. */
  size?: number | undefined;
  signal?: AbortSignal;
}

/**
 * The download of a file a user sent (getFile, then the Bot API's file
 * endpoint), refused when larger than the Bot API lets bots download: by the
 * size the message gave, by Telegram's refusal ("file is too big"), by the
 * size getFile gives; the body stream stops with FileTooLarge if it runs past
 * that anyway.
 */
async function openTelegramFile(opts: FileSource): Promise<Readable> {
  if (opts.size !== undefined && opts.size > MAX_DOWNLOAD_BYTES) throw new FileTooLarge(opts.size);
  const file = await opts.api.getFile(opts.fileId).catch((err: unknown) => {
    throw err instanceof GrammyError && /file is too big/i.test(err.description) ? new FileTooLarge() : err;
  });
  if (file.file_size !== undefined && file.file_size > MAX_DOWNLOAD_BYTES)
    throw new FileTooLarge(file.file_size);
  if (!file.file_path) throw new Error('Telegram gave no download path for this file');
  const url = `${opts.apiRoot.replace(/\/+$/, '')}/file/bot${opts.token}/${file.file_path}`;
  const { request } = await undici();
  const res = await request(url, { signal: opts.signal, headersTimeout: 30_000, bodyTimeout: 60_000 });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`the download failed (HTTP ${res.statusCode})`);
  }
  let size = 0;
  res.body.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_DOWNLOAD_BYTES) res.body.destroy(new FileTooLarge(size));
  });
  return res.body;
}

/**
 * Downloads a photo or image file a user sent into memory (for the brain's eyes), at most 20 MB,
 * and reads it as an image: `image` is undefined when its bytes are no image brainstem reads.
 */
export async function downloadTelegramImage(
  from: { api: Api; token: string; apiRoot: string },
  file: { file_id: string; file_size?: number | undefined },
  signal: AbortSignal,
): Promise<{ image: ImageData | undefined; bytes: number }> {
  const { api, token, apiRoot } = from;
  const chunks: Buffer[] = [];
  const body = await openTelegramFile({
    api,
    token,
    apiRoot,
    fileId: file.file_id,
    size: file.file_size,
    signal,
  });
  for await (const chunk of body) chunks.push(chunk as Buffer);
  const bytes = Buffer.concat(chunks);
  return { image: imageFromBytes(bytes), bytes: bytes.length };
}

/**
 * Downloads a file a user sent into `<dataDir>/uploads/<chatId>/`, prefixed
 * with the time so nothing is overwritten. Streams to disk; refuses what the
 * Bot API would refuse anyway. Written only inside that folder: never through
 * a link in its place (UploadsFolderElsewhere), nor over a file or link that
 * already has the new file's name.
 */
export async function saveTelegramFile(
  opts: FileSource & { dataDir: string; chatId: number; name: string },
): Promise<SavedFile> {
  const dir = uploadsDir(opts.dataDir, opts.chatId);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // dataDir itself may be a link the owner made: the folders under it may not.
  const expected = uploadsDir(await realpath(opts.dataDir), opts.chatId);
  await refuseElsewhere(dir, expected);
  const body = await openTelegramFile(opts);
  // Held until the pipeline takes it: its size guard set it flowing, and the awaits below would lose what flowed.
  body.pause();
  let name = '';
  let file: FileHandle | undefined;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  // A chat's topics share its folder, and a voice note is always voice.ogg: two of the same name
  // in one millisecond are numbered, the second -2-, instead of the second being refused.
  for (let n = 1; file === undefined; n++) {
    name = `${stamp}${n > 1 ? `-${n}` : ''}-${safeFileName(opts.name)}`;
    try {
      // wx: created here, or refused; a link already at this name is not followed.
      file = await open(path.join(dir, name), 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && n < MAX_SAME_NAME) continue;
      letGo(body);
      throw err;
    }
  }
  const target = path.join(dir, name);
  let size = 0;
  try {
    // The folder was judged before the download began, which can take minutes: swapped for a link
    // since, the file was just created where the link leads, and gets none of the download.
    if (!(await isOpenedAt(file, path.join(expected, name)))) {
      throw new UploadsFolderElsewhere(dir, await realpath(dir).catch(() => 'another place'));
    }
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
    });
    await pipeline(body, file.createWriteStream());
  } catch (err) {
    letGo(body);
    await file.close().catch(() => undefined);
    // Created by this download (wx), empty or cut: not kept, wherever it is.
    await rm(target, { force: true });
    throw err;
  }
  return { path: target, size };
}

/**
 * Ends a download no one reads: undici's body, destroyed, emits an AbortError, which with no
 * listener would be an uncaught exception, the end of brainstem.
 */
function letGo(body: Readable): void {
  if (body.destroyed) return;
  body.on('error', () => undefined);
  body.destroy();
}

/** Throws UploadsFolderElsewhere when `dir` does not resolve to `expected`. */
async function refuseElsewhere(dir: string, expected: string): Promise<void> {
  const resolved = await realpath(dir);
  if (resolved !== expected) throw new UploadsFolderElsewhere(dir, resolved);
}

/**
 * The image a saved file holds when its first bytes say it is one (JPEG, PNG, GIF, WebP), whatever
 * type and name it was sent with: some apps send a photo "as a file" as application/octet-stream.
 * Read whole (it was downloaded within the 20 MB an image may be); undefined for any other file.
 */
export async function imageInFile(file: string): Promise<ImageData | undefined> {
  const head = Buffer.alloc(16);
  const handle = await open(file);
  try {
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  return sniffImageType(head) ? imageFromBytes(await readFile(file)) : undefined;
}
