/**
 * Files through the Bot API front: OpenClaw's channel (a second grammY bot
 * with its apiRoot on the front) uploads as multipart, by file id or URL, and
 * downloads what users sent (getFile, then GET /file/bot<token>/<path>), all
 * against the Bot API emulator as Telegram. What it sends and gets must be the
 * bytes Telegram has, whatever their size, and a call it abandons must leave
 * nothing behind.
 */
import http from 'node:http';
import { InputFile } from 'grammy';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LOCAL_FILES_DIR, UPLOAD_LIMIT } from './fakes/telegram.js';
import { type Downstream, startDownstream } from './helpers/downstream-bot.js';
import { type Harness, startHarness } from './telegram-harness.js';

let h: Harness;
let oc: Downstream;
let front: string;
const MB = 1024 * 1024;

beforeAll(async () => {
  h = await startHarness({ config: { telegram: { front: { enabled: true } } } });
  front = `${h.service.url}/telegram`;
  oc = await startDownstream(front, h.tg.token);
});
afterAll(async () => {
  await oc?.stop();
  await h?.close();
});

/** Bytes that differ along their length, so a chunk lost, doubled or moved shows. */
function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32LE(i, i);
  return b;
}

/** A raw request with the path exactly as written (fetch and http.get of a URL string resolve `..`). */
function rawGet(
  path: string,
  method = 'GET',
  headers: http.OutgoingHttpHeaders = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(front);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, method, path: `${u.pathname}${path}`, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('files through the Bot API front', () => {
  it('streams uploads of 0 bytes, a few MB and near Telegram’s 50 MB through, bytes unchanged', async () => {
    const CHAT = 113;
    for (const size of [0, 3 * MB, UPLOAD_LIMIT - MB]) {
      const bytes = pattern(size);
      const m = await oc.bot.api.sendDocument(CHAT, new InputFile(bytes, `f${size}.bin`), {
        caption: `${size}`,
      });
      const stored = h.tg.botMessages(CHAT).find((x) => x.messageId === m.message_id);
      expect(stored?.document?.size).toBe(size);
      expect(Buffer.from(stored?.document?.bytes ?? []).equals(bytes)).toBe(true);
      expect(stored?.text).toBe(`${size}`);
    }
  });

  it('passes voice notes, audio and video through, as uploads and by file id or URL', async () => {
    const CHAT = 114;
    const voice = pattern(5000);
    await oc.bot.api.sendVoice(CHAT, new InputFile(voice, 'note.ogg'), { caption: 'listen' });
    expect(Buffer.from(h.tg.lastBotMessage(CHAT)?.voice?.bytes ?? []).equals(voice)).toBe(true);
    const audio = pattern(7000);
    await oc.bot.api.sendAudio(CHAT, new InputFile(audio, 'song.mp3'));
    expect(h.tg.lastBotMessage(CHAT)?.audio).toMatchObject({ fileName: 'song.mp3', size: 7000 });
    const video = pattern(9000);
    await oc.bot.api.sendVideo(CHAT, new InputFile(video, 'clip.mp4'));
    expect(Buffer.from(h.tg.lastBotMessage(CHAT)?.video?.bytes ?? []).equals(video)).toBe(true);
    // By file id and by URL: a JSON call, passed on as it came.
    await oc.bot.api.sendVoice(CHAT, 'AwACAgQAAxkBAAI');
    expect(h.tg.lastBotMessage(CHAT)?.voice).toMatchObject({ fileName: 'AwACAgQAAxkBAAI', size: 0 });
    await oc.bot.api.sendVideo(CHAT, 'https://example.com/clip.mp4');
    expect(h.tg.lastBotMessage(CHAT)?.video?.fileName).toBe('https://example.com/clip.mp4');
  });

  it('passes sendMediaGroup with attach:// parts through: one album, each file’s bytes and caption', async () => {
    const CHAT = 115;
    const files = [pattern(1000), pattern(2 * MB), pattern(3000)];
    const album = await oc.bot.api.sendMediaGroup(CHAT, [
      { type: 'photo', media: new InputFile(files[0] as Buffer, 'a.png'), caption: 'the album' },
      { type: 'video', media: new InputFile(files[1] as Buffer, 'b.mp4') },
      { type: 'photo', media: new InputFile(files[2] as Buffer, 'c.png') },
      { type: 'photo', media: 'https://example.com/d.png' },
    ]);
    expect(album).toHaveLength(4);
    const stored = h.tg.botMessages(CHAT).slice(-4);
    expect(new Set(stored.map((m) => m.mediaGroupId)).size).toBe(1);
    const sent = stored.map((m) => m.photo ?? m.video);
    for (const [i, bytes] of files.entries()) {
      expect(Buffer.from(sent[i]?.bytes ?? []).equals(bytes)).toBe(true);
    }
    expect(sent[3]).toMatchObject({ fileName: 'https://example.com/d.png', size: 0 });
    expect(stored[0]?.text).toBe('the album');
  });

  it('answers an upload over Telegram’s limit with Telegram’s own 413, and the next call works', async () => {
    const CHAT = 116;
    const before = h.tg.tooLarge.length;
    const err = await oc.bot.api
      .sendDocument(CHAT, new InputFile(Buffer.alloc(UPLOAD_LIMIT + 1), 'huge.bin'))
      .catch((e: unknown) => e as { error_code: number; description: string });
    expect(err).toMatchObject({ error_code: 413, description: 'Request Entity Too Large' });
    expect(h.tg.tooLarge.slice(before)).toEqual(['sendDocument']);
    const m = await oc.bot.api.sendDocument(CHAT, new InputFile(pattern(1000), 'small.bin'));
    expect(h.tg.botMessages(CHAT).find((x) => x.messageId === m.message_id)?.document?.size).toBe(1000);
  });

  it('streams a large download, passes Telegram’s 404 on, and keeps every path inside the file route', async () => {
    const CHAT = 117;
    const bytes = pattern(30 * MB);
    h.tg.user(CHAT).sendsDocument('big.bin', bytes);
    const update = await h.tg.waitFor(() =>
      oc.received.find((u) => u.message?.document?.file_name === 'big.bin'),
    );
    const file = await oc.bot.api.getFile(update.message?.document?.file_id ?? '');
    const res = await fetch(`${front}/file/bot${h.tg.token}/${file.file_path}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(bytes.length));
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);

    const missing = await fetch(`${front}/file/bot${h.tg.token}/documents/file999999.bin`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ ok: false, error_code: 404, description: 'Not Found' });

    // Whatever would leave the file route once resolved never reaches Telegram.
    const T = h.tg.token;
    const downloads = h.tg.downloads.length;
    const calls = h.tg.calls.length;
    for (const path of [
      `/file/bot${T}/../bot${T}/logOut`,
      `/file/bot${T}/documents/%2e%2e/%2E%2e/bot${T}/logOut`,
      `/file/bot${T}/documents%2f..%2f..%2fbot${T}%2flogOut`,
      `/file/bot${T}/..%5cbot${T}%5clogOut`,
      `/file/bot${T}///etc/passwd`,
      `/file/bot${T}/documents//x`,
      `/file/bot${T}/./documents/x`,
      `/file/bot${T}/../../v1/models`,
      `/file/../bot${T}/logOut`,
    ]) {
      const answer = await rawGet(path);
      expect([path.replaceAll(T, '<T>'), answer.status]).toEqual([path.replaceAll(T, '<T>'), 404]);
      expect(JSON.parse(answer.body)).toEqual({ ok: false, error_code: 404, description: 'Not Found' });
    }
    // A wrong token, even with a real file's path, reaches nothing either.
    const wrong = await rawGet(`/file/bot${T.replace(/.$/, 'x')}/${file.file_path}`);
    expect(wrong.status).toBe(401);
    expect(h.tg.downloads.length).toBe(downloads);
    expect(h.tg.calls.length).toBe(calls);
  }, 60_000);

  it('answers a HEAD of a file with Telegram’s headers, asked of Telegram by HEAD: the file is not downloaded', async () => {
    const CHAT = 112;
    const bytes = pattern(8 * MB);
    h.tg.user(CHAT).sendsDocument('sized.bin', bytes);
    const update = await h.tg.waitFor(() =>
      oc.received.find((u) => u.message?.document?.file_name === 'sized.bin'),
    );
    const file = await oc.bot.api.getFile(update.message?.document?.file_id ?? '');
    const downloads = h.tg.downloads.length;
    const heads = h.tg.fileHeads.length;
    const head = await rawGet(`/file/bot${h.tg.token}/${file.file_path}`, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(bytes.length));
    expect(head.body).toBe('');
    // Of a file Telegram does not have: its 404, still without a body.
    const missing = await rawGet(`/file/bot${h.tg.token}/documents/file999998.bin`, 'HEAD');
    expect(missing.status).toBe(404);
    expect(missing.body).toBe('');
    expect(h.tg.fileHeads.slice(heads)).toEqual([file.file_path, 'documents/file999998.bin']);
    expect(h.tg.downloads.length).toBe(downloads);
  });

  it('passes a download’s Range and If-Range on, and Telegram’s 206 with its Content-Range, ETag and Last-Modified back', async () => {
    const bytes = pattern(MB + 10);
    // A file Telegram has, as a user sent it (no chat of this file's needed).
    const file = await oc.bot.api.getFile(h.tg.storesFile(bytes, 'bin').file_id);
    const url = `${front}/file/bot${h.tg.token}/${file.file_path}`;
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    const etag = whole.headers.get('etag') ?? '';
    const modified = whole.headers.get('last-modified') ?? '';
    expect(etag).toMatch(/^"/);
    expect(modified).toMatch(/GMT$/);
    expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);

    // A download cut mid-way resumes where it stopped.
    const rest = await fetch(url, { headers: { range: `bytes=${MB}-`, 'if-range': etag } });
    expect(rest.status).toBe(206);
    expect(rest.headers.get('content-range')).toBe(`bytes ${MB}-${MB + 9}/${MB + 10}`);
    expect(rest.headers.get('content-length')).toBe('10');
    expect(rest.headers.get('etag')).toBe(etag);
    expect(Buffer.from(await rest.arrayBuffer()).equals(bytes.subarray(MB))).toBe(true);
    const span = await fetch(url, { headers: { range: 'bytes=4-11', 'if-range': modified } });
    expect(span.status).toBe(206);
    expect(Buffer.from(await span.arrayBuffer()).equals(bytes.subarray(4, 12))).toBe(true);
    // The file changed since (another ETag): the whole file again, as Telegram answers.
    const changed = await fetch(url, { headers: { range: 'bytes=4-11', 'if-range': '"other"' } });
    expect(changed.status).toBe(200);
    expect(Buffer.from(await changed.arrayBuffer()).equals(bytes)).toBe(true);
    // Past the end: Telegram's 416, with the size in its Content-Range.
    const past = await fetch(url, { headers: { range: `bytes=${MB + 10}-` } });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${MB + 10}`);
    await past.arrayBuffer();
  });

  it('passes a download’s If-None-Match and If-Modified-Since on, and Telegram’s 304 back with no body', async () => {
    const bytes = pattern(MB + 20);
    const file = await oc.bot.api.getFile(h.tg.storesFile(bytes, 'bin').file_id);
    const url = `${front}/file/bot${h.tg.token}/${file.file_path}`;
    const whole = await fetch(url);
    const etag = whole.headers.get('etag') ?? '';
    const modified = whole.headers.get('last-modified') ?? '';
    await whole.arrayBuffer();
    // The copy the client keeps is still the file: no download again.
    const same = await rawGet(`/file/bot${h.tg.token}/${file.file_path}`, 'GET', { 'if-none-match': etag });
    expect(same.status).toBe(304);
    expect(same.headers.etag).toBe(etag);
    expect(same.body).toBe('');
    const since = await fetch(url, { headers: { 'if-modified-since': modified } });
    expect(since.status).toBe(304);
    // Another copy: the file.
    const other = await fetch(url, { headers: { 'if-none-match': '"other"' } });
    expect(other.status).toBe(200);
    expect(Buffer.from(await other.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('downloads a file a self-hosted Bot API server (--local) gives as a path on its disk, as its web server serves it', async () => {
    const CHAT = 111;
    const bytes = pattern(MB + 3);
    h.tg.user(CHAT).sendsDocument('local.bin', bytes);
    const update = await h.tg.waitFor(() =>
      oc.received.find((u) => u.message?.document?.file_name === 'local.bin'),
    );
    h.tg.setLocalMode(true);
    try {
      const file = await oc.bot.api.getFile(update.message?.document?.file_id ?? '');
      expect(file.file_path?.startsWith(`${LOCAL_FILES_DIR}/`)).toBe(true);
      // As grammY (OpenClaw's client) and every Bot API library builds a download's URL.
      const url = `${front}/file/bot${h.tg.token}/${file.file_path}`;
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
      expect(h.tg.downloads.at(-1)).toBe(file.file_path);
      // Nothing serves that path (no web server in front of the Bot API server): its 404, and the owner told why.
      const logged = h.logs.length;
      const missing = await fetch(`${front}/file/bot${h.tg.token}/${LOCAL_FILES_DIR}/x/documents/gone.bin`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({ ok: false, error_code: 404, description: 'Not Found' });
      const warned = h.logs.slice(logged).filter((l) => Number(l.level) === 40);
      expect(warned.map((l) => l.msg)).toEqual([
        expect.stringContaining(
          'front: the Bot API server (run with --local) gave OpenClaw a file as a path on its disk',
        ),
      ]);
      // The local path holds the token (the server's folder for the bot): never logged.
      expect(JSON.stringify(h.logs)).not.toContain(h.tg.token.split(':')[1]);
    } finally {
      h.tg.setLocalMode(false);
    }
  });

  it('frees everything when OpenClaw abandons an upload mid-way, and the next upload works', async () => {
    const CHAT = 118;
    const u = new URL(front);
    const receiving = h.tg.receiving.filter((m) => m === 'sendDocument').length;
    const cut = h.tg.cutShort.length;
    const logged = h.logs.length;
    const req = http.request({
      host: u.hostname,
      port: u.port,
      path: `${u.pathname}/bot${h.tg.token}/sendDocument`,
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=B' },
    });
    const ended = new Promise((resolve) => req.once('close', resolve));
    req.on('error', () => undefined);
    req.write(
      `--B\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n${CHAT}\r\n--B\r\nContent-Disposition: form-data; name="document"; filename="a.bin"\r\n\r\n`,
    );
    req.write(pattern(MB));
    // Telegram has the upload's first bytes: brainstem is streaming it through.
    await h.tg.waitFor(() => h.tg.receiving.filter((m) => m === 'sendDocument').length > receiving);
    req.destroy();
    await ended;
    // The upload to Telegram ends with it, instead of waiting there for the rest.
    await h.tg.waitFor(() => h.tg.cutShort.length > cut);
    expect(h.tg.cutShort.slice(cut)).toEqual(['sendDocument']);
    expect(h.tg.botMessages(CHAT)).toHaveLength(0);
    // Logged as what happened: OpenClaw left. Not as Telegram out of reach (a network fault to chase),
    // nor as a request Node could not parse (answered with a 400 nobody reads).
    const WENT = 'front: OpenClaw went away before Telegram answered; its call was ended';
    await vi.waitFor(() => expect(h.logs.slice(logged).map((l) => l.msg)).toContain(WENT));
    const lines = h.logs.slice(logged);
    expect(lines.find((l) => l.msg === WENT)).toMatchObject({ level: 30, method: 'sendDocument' });
    const warned = lines.filter((l) => Number(l.level) >= 40 && /^(front|refused)\b/.test(String(l.msg)));
    expect(warned.map((l) => l.msg)).toEqual([]);

    const bytes = pattern(2 * MB);
    const m = await oc.bot.api.sendDocument(CHAT, new InputFile(bytes, 'again.bin'));
    const stored = h.tg.botMessages(CHAT).find((x) => x.messageId === m.message_id);
    expect(Buffer.from(stored?.document?.bytes ?? []).equals(bytes)).toBe(true);
  });

  it('frees everything when OpenClaw abandons a download mid-way, and the next download works', async () => {
    const CHAT = 119;
    const bytes = pattern(20 * MB);
    h.tg.user(CHAT).sendsDocument('long.bin', bytes);
    const update = await h.tg.waitFor(() =>
      oc.received.find((u) => u.message?.document?.file_name === 'long.bin'),
    );
    const file = await oc.bot.api.getFile(update.message?.document?.file_id ?? '');
    const url = `${front}/file/bot${h.tg.token}/${file.file_path}`;
    for (let i = 0; i < 3; i++) {
      const stop = new AbortController();
      const res = await fetch(url, { signal: stop.signal });
      const reader = res.body?.getReader();
      expect((await reader?.read())?.done).toBe(false);
      stop.abort();
    }
    const res = await fetch(url);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    expect(h.logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
  });
});
