import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * Documents users send are saved under data/uploads/<chat>/ for the brain to
 * read, and kept a week, not forever: the Bot API emulator as Telegram, the
 * fake llama-server as the brain.
 */

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const DAY_S = 24 * 60 * 60;

describe('uploaded documents', () => {
  it('older than 7 days are removed when a new one arrives; younger ones stay', async () => {
    const dir = path.join(h.service.core.config.dataDir, 'uploads', '112');
    mkdirSync(dir, { recursive: true });
    const aged = (name: string, days: number) => {
      writeFileSync(path.join(dir, name), 'x');
      const at = Date.now() / 1000 - days * DAY_S;
      utimesSync(path.join(dir, name), at, at);
    };
    aged('old-notes.txt', 8);
    aged('recent-notes.txt', 6);
    h.tg.user(112).sendsDocument('new.txt', Buffer.from('new'), 'read this', 'text/plain');
    await h.tg.waitFor(() => h.tg.botMessages(112).find((m) => m.text.startsWith('echo: ')));
    const left = readdirSync(dir);
    expect(left).not.toContain('old-notes.txt');
    expect(left).toContain('recent-notes.txt');
    expect(left.filter((f) => f.endsWith('-new.txt'))).toHaveLength(1);
  });
});

describe('a chat’s uploads folder emptied by the sweep', () => {
  it('is removed with its last file, not left empty for good', async () => {
    const root = path.join(h.service.core.config.dataDir, 'uploads');
    const emptied = path.join(root, '117');
    mkdirSync(emptied, { recursive: true });
    writeFileSync(path.join(emptied, 'old-notes.txt'), 'x');
    const at = Date.now() / 1000 - 8 * DAY_S;
    utimesSync(path.join(emptied, 'old-notes.txt'), at, at);
    // A folder that is no chat's (the owner's own) is left alone, empty or not.
    mkdirSync(path.join(root, 'mine'), { recursive: true });
    h.tg.user(118).sendsDocument('new.txt', Buffer.from('new'), 'read this', 'text/plain');
    // The sweep ends before the turn's text goes to the brain, whose echo this is.
    await h.tg.waitFor(() => h.tg.botMessages(118).find((m) => m.text.startsWith('echo: ')));
    const left = readdirSync(root);
    expect(left).not.toContain('117');
    expect(left).toContain('mine');
    expect(readdirSync(path.join(root, '118')).filter((f) => f.endsWith('-new.txt'))).toHaveLength(1);
  });

  it('while a document of that chat downloads: the download is saved in the folder made again', async () => {
    const dir = path.join(h.service.core.config.dataDir, 'uploads', '119');
    const release = h.tg.holdDownloads();
    try {
      const asked = h.tg.downloads.length;
      h.tg.user(119).sendsDocument('notes.txt', Buffer.from('kept'), 'read this', 'text/plain');
      // The folder is made before the download begins; the sweep of another chat's turn removes it, empty, meanwhile.
      await h.tg.waitFor(() => h.tg.downloads.length > asked);
      rmdirSync(dir);
      release();
      const echo = await h.tg.waitFor(() =>
        h.tg.botMessages(119).find((m) => m.text.includes('could not fetch') || m.text.startsWith('echo: ')),
      );
      expect(echo.text).not.toMatch(/could not fetch/);
      const saved = readdirSync(dir).filter((f) => f.endsWith('-notes.txt'));
      expect(saved).toHaveLength(1);
      expect(readFileSync(path.join(dir, saved[0] ?? ''), 'utf8')).toBe('kept');
    } finally {
      release();
    }
  });
});

describe('two uploads of one name in one millisecond', () => {
  it('are both kept, the second numbered, instead of the second refused as a failed download', async () => {
    // The name is the time to the millisecond and the file's name. The clock is stopped while the
    // download ends and the file gets its name, at a millisecond whose name is taken first, as a
    // second upload in the same millisecond would take it (however long the machine takes).
    const dir = path.join(h.service.core.config.dataDir, 'uploads', '115');
    mkdirSync(dir, { recursive: true });
    const release = h.tg.holdDownloads();
    const asked = h.tg.downloads.length;
    h.tg.user(115).sendsDocument('same.txt', Buffer.from('second'), 'read this', 'text/plain');
    await h.tg.waitFor(() => h.tg.downloads.length > asked);
    const now = Date.now();
    writeFileSync(path.join(dir, `${new Date(now).toISOString().replace(/[:.]/g, '-')}-same.txt`), 'first');
    vi.useFakeTimers({ toFake: ['Date'], now });
    try {
      release();
      await h.tg.waitFor(() => readdirSync(dir).length > 1);
    } finally {
      vi.useRealTimers();
    }
    const echo = await h.tg.waitFor(() => h.tg.botMessages(115).find((m) => m.text.startsWith('echo: ')));
    expect(echo.text).not.toMatch(/could not fetch/);
    const second = readdirSync(dir).filter((f) => f.endsWith('-2-same.txt'));
    expect(second).toHaveLength(1);
    expect(readFileSync(path.join(dir, second[0] ?? ''), 'utf8')).toBe('second');
  });
});

describe('a chat’s uploads folder that is a link to another place', () => {
  it('gets nothing written through it, and the sender is told why, in words', async () => {
    const elsewhere = mkdtempSync(path.join(tmpdir(), 'bst-uploads-elsewhere-'));
    try {
      const root = path.join(h.service.core.config.dataDir, 'uploads');
      mkdirSync(root, { recursive: true });
      symlinkSync(elsewhere, path.join(root, '113'));
      h.tg.user(113).sendsDocument('notes.txt', Buffer.from('secret'), 'read this', 'text/plain');
      const told = await h.tg.waitFor(() =>
        h.tg.botMessages(113).find((m) => m.text.includes('could not fetch')),
      );
      expect(told.text).toContain(
        'I could not fetch “notes.txt”: brainstem’s folder for received files is a link to another place, so nothing was written there (its log names both). Nothing was sent to the brain.',
      );
      expect(readdirSync(elsewhere)).toEqual([]);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('made while the file downloads: the download is not written through it either', async () => {
    const elsewhere = mkdtempSync(path.join(tmpdir(), 'bst-uploads-elsewhere-'));
    const folder = path.join(h.service.core.config.dataDir, 'uploads', '114');
    const release = h.tg.holdDownloads();
    try {
      const downloads = h.tg.downloads.length;
      h.tg.user(114).sendsDocument('notes.txt', Buffer.from('secret'), 'read this', 'text/plain');
      // The folder was judged before the download began; it is swapped for a link while the bytes come.
      await h.tg.waitFor(() => h.tg.downloads.length > downloads);
      renameSync(folder, `${folder}.real`);
      symlinkSync(elsewhere, folder);
      release();
      // The turn's end either way: the refusal, or the brain's echo of what it was sent.
      const told = await h.tg.waitFor(() =>
        h.tg.botMessages(114).find((m) => m.text.includes('could not fetch') || m.text.startsWith('echo: ')),
      );
      expect(told.text).toContain('folder for received files is a link to another place');
      expect(readdirSync(elsewhere)).toEqual([]);
      expect(readdirSync(`${folder}.real`)).toEqual([]);
    } finally {
      release();
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('a document a local model cannot read is told to a reader in French with its size in French', async () => {
    h.tg
      .user(116, { languageCode: 'fr' })
      .sendsDocument('rapport.pdf', Buffer.from('%PDF-1.4\0binary'), 'résume', 'application/pdf');
    const told = await h.tg.waitFor(() => h.tg.botMessages(116).find((m) => /rapport\.pdf/.test(m.text)));
    expect(told.text).toBe(
      '⚙️ [proxy] Le modèle local du mode local ne lit que du texte, et rapport.pdf (application/pdf, 15 octets) n’en est pas : rien ne lui a été envoyé. Envoyez le texte lui-même ou passez à un mode Claude (/mode), qui ouvre les fichiers.',
    );
  });
});
