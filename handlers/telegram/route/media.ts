import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Api } from 'grammy';
import { request } from 'undici';

/** The Bot API does not serve files larger than this to bots. */
export const MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024;

export class FileTooLarge extends Error {
  constructor(readonly size: number) {
    super(`the file is ${(size / 1024 / 1024).toFixed(1)} MB; bots can only download up to 20 MB`);
    this.name = 'FileTooLarge';
  }
}

export interface SavedFile {
  path: string;
  size: number;
}

/** A name safe on any filesystem: no path, no control characters, not too long. */
export function safeFileName(name: string): string {
  const base = path
    .basename(name)
    .replace(/[^\p{L}\p{N}._-]+/gu, '_')
    .replace(/^\.+/, '');
  return (base || 'file').slice(-80);
}

/**
 * Downloads a file a user sent (getFile, then the Bot API's file endpoint)
 * into `<dataDir>/uploads/<chatId>/`, prefixed with the time so nothing is
 * overwritten. Streams to disk; refuses what the Bot API would refuse anyway.
 */
export async function saveTelegramFile(opts: {
  api: Api;
  token: string;
  apiRoot: string;
  dataDir: string;
  chatId: number;
  fileId: string;
  name: string;
  signal?: AbortSignal;
}): Promise<SavedFile> {
  const file = await opts.api.getFile(opts.fileId);
  if (file.file_size !== undefined && file.file_size > MAX_DOWNLOAD_BYTES)
    throw new FileTooLarge(file.file_size);
  if (!file.file_path) throw new Error('Telegram gave no download path for this file');
  const dir = path.join(opts.dataDir, 'uploads', String(opts.chatId));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const target = path.join(
    dir,
    `${new Date().toISOString().replace(/[:.]/g, '-')}-${safeFileName(opts.name)}`,
  );
  const url = `${opts.apiRoot.replace(/\/+$/, '')}/file/bot${opts.token}/${file.file_path}`;
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
  try {
    await pipeline(res.body, createWriteStream(target, { mode: 0o600 }));
  } catch (err) {
    await rm(target, { force: true });
    throw err;
  }
  return { path: target, size };
}
