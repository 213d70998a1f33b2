import { constants } from 'node:fs';
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

/**
 * A file a self-hosted Bot API server run with `--local` gave as a path on its disk (it serves no
 * files itself), which brainstem could neither read there (another machine, or a folder brainstem's
 * user may not read) nor download from telegram.apiRoot (no web server in front of it serving its
 * files). `shown` is the path with the bot token taken out; `why` the error reading it (ENOENT…).
 */
export class LocalFileUnreadable extends Error {
  constructor(
    readonly shown: string,
    readonly why: string,
  ) {
    super(
      `the Bot API server (run with --local) gave the file as ${shown} on its disk, which brainstem cannot read (${why}), and telegram.apiRoot serves no file at that path: mount the Bot API server's working directory (its --dir) at the same path on brainstem's machine, readable by brainstem's user (or run brainstem on its machine), or run the Bot API server without --local`,
    );
    this.name = 'LocalFileUnreadable';
  }
}

/**
 * A path a self-hosted Bot API server gave that brainstem does not read: not a plain absolute path
 * (`.` or `..` parts, doubled slashes), a symbolic link, or no regular file (a folder, a pipe).
 * The server writes plain files under its working directory; anything else is not its file.
 */
export class LocalFileRefused extends Error {
  constructor(
    readonly shown: string,
    readonly why: string,
  ) {
    super(
      `the Bot API server (run with --local) gave the file as ${shown} on its disk, which brainstem does not read: ${why}`,
    );
    this.name = 'LocalFileRefused';
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
  if (err instanceof LocalFileUnreadable)
    return t(
      lang,
      'the self-hosted Bot API server keeps it on its own disk, which brainstem cannot read: mount its working directory at the same path on brainstem’s machine, or run it without --local',
      'le serveur Bot API auto-hébergé le garde sur son propre disque, que brainstem ne peut pas lire : montez son dossier de travail au même chemin sur la machine de brainstem, ou lancez-le sans --local',
    );
  if (err instanceof LocalFileRefused)
    return t(
      lang,
      'the self-hosted Bot API server gave it as a path on its disk that brainstem does not read (its log says why)',
      'le serveur Bot API auto-hébergé l’a donné comme un chemin sur son disque que brainstem ne lit pas (son journal dit pourquoi)',
    );
  if (err instanceof UploadsFolderElsewhere)
    return t(
      lang,
      'brainstem’s folder for received files is a link to another place, so nothing was written there (its log names both)',
      'le dossier des fichiers reçus de brainstem est un lien vers un autre endroit, donc rien n’y a été écrit (son journal nomme les deux)',
    );
  return t(lang, 'the download from Telegram failed', 'le téléchargement depuis Telegram a échoué');
}

/**
 * A fetch failure every file meets alike until the owner changes the setup (a folder for received
 * files that is a link, a Bot API server's disk brainstem cannot read): trying again cannot help.
 */
export function isSetupFault(err: unknown): boolean {
  return (
    err instanceof UploadsFolderElsewhere ||
    err instanceof LocalFileUnreadable ||
    err instanceof LocalFileRefused
  );
}

/** What the user is told when a document they sent could not be fetched (HTML). */
export function fetchFailureText(name: string, err: unknown, lang: Lang): string {
  const why = fetchFailureReason(err, lang);
  // A file too large for a bot stays too large, and a setup fault stays until the owner mends it:
  // sending it again cannot help.
  const again =
    err instanceof FileTooLarge || isSetupFault(err)
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
 * that anyway. A self-hosted Bot API server run with `--local` gives an
 * absolute path on its disk instead, and serves no files: that file is read
 * from the disk when brainstem can read it there (the same machine, or its
 * working directory mounted at the same path), else asked of the server's
 * root as before (a web server in front of it may serve its files there).
 */
async function openTelegramFile(opts: FileSource): Promise<Readable> {
  if (opts.size !== undefined && opts.size > MAX_DOWNLOAD_BYTES) throw new FileTooLarge(opts.size);
  const file = await opts.api.getFile(opts.fileId).catch((err: unknown) => {
    throw err instanceof GrammyError && /file is too big/i.test(err.description) ? new FileTooLarge() : err;
  });
  if (file.file_size !== undefined && file.file_size > MAX_DOWNLOAD_BYTES)
    throw new FileTooLarge(file.file_size);
  if (!file.file_path) throw new Error('Telegram gave no download path for this file');
  // Telegram's own file paths are relative: an absolute one at api.telegram.org is read from no disk.
  const local = path.isAbsolute(file.file_path) && !isTelegramCloud(opts.apiRoot);
  const shown = local ? file.file_path.split(opts.token).join('<token>') : '';
  let unreadable = '';
  if (local) {
    const read = await openLocalFile(file.file_path, opts.token, shown);
    if ('body' in read) return capped(read.body);
    unreadable = read.unreadable;
  }
  const url = `${opts.apiRoot.replace(/\/+$/, '')}/file/bot${opts.token}/${file.file_path}`;
  const { request } = await undici();
  const res = await request(url, { signal: opts.signal, headersTimeout: 30_000, bodyTimeout: 60_000 });
  if (res.statusCode !== 200) {
    await res.body.dump();
    // The Bot API server's own 404 (it serves no files), or its web server's: the owner is told what to set up.
    if (local)
      throw new LocalFileUnreadable(shown, `${unreadable}; HTTP ${res.statusCode} from telegram.apiRoot`);
    throw new Error(`the download failed (HTTP ${res.statusCode})`);
  }
  return capped(res.body);
}

/** The body of a download, stopped with FileTooLarge once it runs past what bots may download. */
function capped(body: Readable): Readable {
  let size = 0;
  body.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_DOWNLOAD_BYTES) body.destroy(new FileTooLarge(size));
  });
  return body;
}

function isTelegramCloud(apiRoot: string): boolean {
  try {
    return new URL(apiRoot).hostname.toLowerCase() === 'api.telegram.org';
  } catch {
    return false;
  }
}

/** Read only the file itself: a link at its name is not followed, a FIFO's open does not wait for a writer. */
const LOCAL_OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/**
 * A file a local Bot API server gave as `filePath`, opened for reading: exactly that path (a plain
 * absolute one) in the bot's own folder there (the server keeps each bot's files under
 * `<dir>/<token>/`, and nothing else is the bot's to read), no link, a regular file within the size
 * bots may download. `unreadable` (the
 * error's code) when brainstem cannot open it, on another machine say; LocalFileRefused when it is
 * no file of the server's; FileTooLarge when it is too large.
 */
async function openLocalFile(
  filePath: string,
  token: string,
  shown: string,
): Promise<{ body: Readable } | { unreadable: string }> {
  // normalize takes out '.', '..' and doubled slashes: a path it changes is not one the server writes.
  if (path.normalize(filePath) !== filePath || filePath.endsWith(path.sep))
    throw new LocalFileRefused(shown, 'it is not a plain absolute path');
  // The folder may carry a suffix after the token (a test server's); the token's secret part is in it.
  if (
    !path
      .dirname(filePath)
      .split(path.sep)
      .some((folder) => folder.startsWith(token))
  )
    throw new LocalFileRefused(
      shown,
      'it is not in the folder the server keeps for this bot (<dir>/<token>/)',
    );
  let handle: FileHandle;
  try {
    handle = await open(filePath, LOCAL_OPEN_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    // O_NOFOLLOW's refusal of a link: ELOOP on Linux, EMLINK on FreeBSD.
    if (code === 'ELOOP' || code === 'EMLINK') throw new LocalFileRefused(shown, 'it is a symbolic link');
    return { unreadable: code };
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new LocalFileRefused(shown, 'it is not a regular file');
    if (stat.size > MAX_DOWNLOAD_BYTES) throw new FileTooLarge(stat.size);
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
  // Closed by the stream at its end, or when it is destroyed.
  return { body: handle.createReadStream() };
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
  // dataDir itself may be a link the owner made: the folders under it may not.
  const expected = uploadsDir(await realpath(opts.dataDir), opts.chatId);
  await makeFolder(dir, expected);
  const body = await openTelegramFile(opts);
  // Held until the pipeline takes it: its size guard set it flowing, and the awaits below would lose what flowed.
  body.pause();
  let name = '';
  let file: FileHandle | undefined;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  // A chat's topics share its folder, and a voice note is always voice.ogg: two of the same name
  // in one millisecond are numbered, the second -2-, instead of the second being refused.
  let remade = false;
  for (let n = 1; file === undefined; n++) {
    name = `${stamp}${n > 1 ? `-${n}` : ''}-${safeFileName(opts.name)}`;
    try {
      // wx: created here, or refused; a link already at this name is not followed.
      file = await open(path.join(dir, name), 'wx', 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && n < MAX_SAME_NAME) continue;
      // The folder, empty while the file downloaded, was removed by the sweep of another turn
      // (sweepUploads): made again, once, and this name tried again.
      if (code === 'ENOENT' && !remade) {
        remade = true;
        n--;
        try {
          await makeFolder(dir, expected);
        } catch (again) {
          letGo(body);
          throw again;
        }
        continue;
      }
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

/**
 * Makes a chat's uploads folder, and throws UploadsFolderElsewhere when it does not resolve to
 * `expected`. The sweep removes the folders it emptied (sweepUploads): one removed between its
 * making and its check is made again, once, rather than the upload failing on a folder gone.
 */
async function makeFolder(dir: string, expected: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    await refuseElsewhere(dir, expected);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await refuseElsewhere(dir, expected);
  }
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
