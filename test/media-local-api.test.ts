import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeTranscription, startFakeTranscription } from './fakes/transcription.js';
import { randomPng } from './helpers/images.js';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * Files users send, on the direct route (no front), with a self-hosted Bot API server run with
 * `--local` as telegram.apiRoot: its getFile gives a path on its disk and it serves no files. The
 * Bot API emulator in local mode as that server, the fake llama-server as a brain with vision.
 */

let h: Harness;
let stt: FakeTranscription;
/** The Bot API server's working directory (its --dir), on this machine. */
let workDir: string;
beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'bot-api-local-'));
  stt = await startFakeTranscription();
  h = await startHarness({
    config: {
      modes: { local: { kind: 'llama', description: 'Fake local model', vision: true } },
      transcription: { url: stt.baseUrl, model: 'whisper', timeoutMs: 10_000 },
    },
  });
});
afterEach(() => {
  h.tg.setLocalMode(false);
});
afterAll(async () => {
  await h?.close();
  await stt?.close();
});

const chatCompletions = () => h.llama.requests.filter((r) => r.path.endsWith('/chat/completions'));
/** The last user message the fake llama-server was asked about: its text and images. */
const lastAsked = () => {
  const body = chatCompletions().at(-1)?.body as { messages: { role: string; content: unknown }[] };
  const content = body.messages.filter((m) => m.role === 'user').at(-1)?.content;
  const parts = Array.isArray(content)
    ? (content as { type: string; text?: string; image_url?: { url: string } }[])
    : [];
  return {
    text: typeof content === 'string' ? content : parts.find((p) => p.type === 'text')?.text,
    images: parts.filter((p) => p.type === 'image_url').map((p) => p.image_url?.url),
  };
};
const reply = (chatId: number, pattern: RegExp) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)));

describe('a self-hosted Bot API server run with --local, on the same machine', () => {
  it('a document and a photo are read from its disk and reach the brain, though it serves no files', async () => {
    // No web server in front of it: a download by HTTP would be its 404.
    h.tg.setLocalMode(true, { dir: workDir, web: false });
    const downloads = h.tg.downloads.length;

    h.tg.user(112).sendsDocument('report.pdf', Buffer.from('%PDF-1.4 local'), 'summarise', 'application/pdf');
    expect((await reply(112, /^echo: |could not/)).text).toMatch(/^echo: /);
    // Its bytes, read from the server's disk: saved for the brain, and its text given to it.
    const asked = lastAsked().text ?? '';
    const saved =
      /^\[The user sent the document "report\.pdf" \(application\/pdf, 14 bytes\), saved at (\S+);/.exec(
        asked,
      );
    expect(saved?.[1] && (await readFile(saved[1], 'utf8'))).toBe('%PDF-1.4 local');
    expect(asked).toContain('%PDF-1.4 local\n\n[end of "report.pdf"]\n\nsummarise');

    const png = randomPng(10, 8);
    h.tg.user(113).sendsPhoto(png, 'what is this?');
    expect((await reply(113, /^echo: |could not/)).text).toMatch(/^echo: /);
    expect(lastAsked()).toEqual({
      text: 'what is this?',
      images: [`data:image/png;base64,${png.toString('base64')}`],
    });
    // A voice note too: its transcript reaches the brain.
    stt.answer({ text: 'read me the report' });
    h.tg.user(118).sendsVoice(new Uint8Array([7, 8, 9]));
    expect((await reply(118, /^echo: |could not/)).text).toMatch(/^echo: /);
    expect(lastAsked().text).toContain('read me the report');
    // None asked of the server by HTTP.
    expect(h.tg.downloads.slice(downloads)).toEqual([]);
  });

  it('a link where its file should be is not followed: the user is told, the brain gets nothing', async () => {
    h.tg.setLocalMode(true, { dir: workDir, web: false });
    // The next file the emulator stores is the document sent below: a link to a file elsewhere at its path.
    const next = Number(h.tg.storesFile(new Uint8Array(1), 'bin').file_id.replace('file', '')) + 1;
    const docs = path.join(workDir, h.tg.token, 'documents');
    await mkdir(docs, { recursive: true });
    const elsewhere = path.join(workDir, 'elsewhere.pdf');
    await writeFile(elsewhere, 'not the server file');
    await symlink(elsewhere, path.join(docs, `file${next}.pdf`));
    const asked = chatCompletions().length;
    const logged = h.logs.length;
    h.tg
      .user(117)
      .sendsDocument('linked.pdf', Buffer.from('%PDF-1.4 linked'), 'summarise', 'application/pdf');
    const told = await reply(117, /could not fetch/);
    expect(told.text).toBe(
      '⚙️ [proxy] I could not fetch “linked.pdf”: the self-hosted Bot API server gave it as a path on its disk that brainstem does not read (its log says why). Nothing was sent to the brain.',
    );
    const warned = h.logs.slice(logged).find((l) => l.msg === 'could not save a file from Telegram');
    expect(String(warned?.err)).toMatch(
      /\/<token>\/documents\/file\d+\.pdf on its disk, which brainstem does not read: it is a symbolic link$/,
    );
    expect(chatCompletions().length).toBe(asked);
  });
});

describe("a self-hosted Bot API server run with --local, giving a path out of the bot's folder", () => {
  it('is not read there: the user is told, the brain gets nothing', async () => {
    // The server keeps a bot's files under <dir>/<token>/: any other file on the disk is not the bot's.
    h.tg.setLocalMode(true, { dir: workDir, web: false, folder: 'another-bot' });
    const asked = chatCompletions().length;
    const logged = h.logs.length;
    h.tg.user(111).sendsDocument('other.pdf', Buffer.from('%PDF-1.4 other'), 'summarise', 'application/pdf');
    const told = await reply(111, /could not fetch/);
    expect(told.text).toContain('a path on its disk that brainstem does not read');
    const warned = h.logs.slice(logged).find((l) => l.msg === 'could not save a file from Telegram');
    expect(String(warned?.err)).toMatch(
      /\/another-bot\/documents\/file\d+\.pdf on its disk, which brainstem does not read: it is not in the folder the server keeps for this bot/,
    );
    expect(chatCompletions().length).toBe(asked);
  });
});

describe('a self-hosted Bot API server run with --local, on another machine', () => {
  it('with a web server serving its files, a photo comes by HTTP as before', async () => {
    h.tg.setLocalMode(true);
    const png = randomPng(9, 7);
    h.tg.user(114).sendsPhoto(png, 'and this one?');
    await reply(114, /^echo: /);
    expect(lastAsked().images).toEqual([`data:image/png;base64,${png.toString('base64')}`]);
  });

  it('without one, the user is told the file could not be fetched and what to set up; the log says it too', async () => {
    h.tg.setLocalMode(true, { web: false });
    const logged = h.logs.length;
    h.tg.user(115).sendsDocument('far.pdf', Buffer.from('%PDF-1.4 far'), 'summarise', 'application/pdf');
    const told = await reply(115, /could not fetch/);
    expect(told.text).toBe(
      '⚙️ [proxy] I could not fetch “far.pdf”: the self-hosted Bot API server keeps it on its own disk, which brainstem cannot read: mount its working directory at the same path on brainstem’s machine, or run it without --local. Nothing was sent to the brain.',
    );
    const warned = h.logs.slice(logged).find((l) => l.msg === 'could not save a file from Telegram');
    expect(String(warned?.err)).toMatch(
      /^the Bot API server \(run with --local\) gave the file as \/var\/lib\/telegram-bot-api\/<token>\/documents\/file\d+\.pdf on its disk.*ENOENT.*mount/,
    );
    // The path holds the token (the server's folder for the bot): never logged.
    expect(JSON.stringify(h.logs)).not.toContain(h.tg.token.split(':')[1]);

    // A photo the same: the user told why, nothing silent.
    h.tg.user(116).sendsPhoto(randomPng(6, 6));
    const photo = await reply(116, /could not read/);
    expect(photo.text).toContain('the self-hosted Bot API server keeps it on its own disk');

    // A voice note is not told to be tried again, which cannot help until the owner sets this up.
    h.tg.user(119).sendsVoice(new Uint8Array([1, 2, 3]));
    const voice = await reply(119, /could not transcribe/);
    expect(voice.text).toBe(
      '⚙️ [proxy] 🎙 I could not transcribe this recording: the self-hosted Bot API server keeps it on its own disk, which brainstem cannot read: mount its working directory at the same path on brainstem’s machine, or run it without --local. Nothing was sent to the brain; please type it: sending it again will not help until that is set up.',
    );
  });
});
