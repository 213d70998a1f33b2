import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Message, Update } from 'grammy/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueuedMessages } from '../handlers/telegram/route/queued-messages.js';
import { uploadsDir } from '../handlers/telegram/route/uploads.js';
import { randomPng } from './helpers/images.js';
import { type Harness, holdOn, nextLog, startHarness, turnsDone } from './telegram-harness.js';

/**
 * Albums on the direct route, in the chat's order and across a restart: the
 * Bot API emulator as Telegram, the fake llama-server as a brain with vision.
 */

const config = {
  modes: { local: { kind: 'llama' as const, description: 'Fake local model', vision: true } },
};

const chatCompletions = (h: Harness) => h.llama.requests.filter((r) => r.path.endsWith('/chat/completions'));
/** The last user message of each request the fake llama-server got: its text and how many images. */
const asked = (h: Harness) =>
  chatCompletions(h).map((r) => {
    const body = r.body as { messages: { role: string; content: unknown }[] };
    const content = body.messages.filter((m) => m.role === 'user').at(-1)?.content;
    if (typeof content === 'string') return { text: content, images: 0 };
    const parts = content as { type: string; text?: string }[];
    return {
      text: parts.find((p) => p.type === 'text')?.text,
      images: parts.filter((p) => p.type === 'image_url').length,
    };
  });
/** The images of the last user message of each request, as the data URLs the brain got. */
const imagesAsked = (h: Harness) =>
  chatCompletions(h).map((r) => {
    const body = r.body as { messages: { role: string; content: unknown }[] };
    const content = body.messages.filter((m) => m.role === 'user').at(-1)?.content;
    if (!Array.isArray(content)) return [];
    return (content as { type: string; image_url?: { url: string } }[]).flatMap(
      (p) => p.image_url?.url ?? [],
    );
  });
const dataUrl = (png: Buffer) => `data:image/png;base64,${png.toString('base64')}`;
/** A video as Telegram describes it (brainstem downloads none). */
const video = (id: string) => ({ file_id: id, file_unique_id: `u${id}`, width: 2, height: 2, duration: 1 });

describe('an album in the chat’s order', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a text sent right after an album is answered after it, as the user sent them', async () => {
    const before = chatCompletions(h).length;
    const u = h.tg.user(112);
    u.sendsAlbum([randomPng(8, 8), randomPng(9, 9)], 'two photos of my garden');
    u.says('which of the two has more green?');
    await h.tg.waitFor(() => h.tg.botMessages(112).find((m) => m.text.startsWith('echo: which')));
    expect(asked(h).slice(before)).toEqual([
      { text: 'two photos of my garden', images: 2 },
      { text: 'which of the two has more green?', images: 0 },
    ]);
    // The text waited for the album (its "queued" notice becomes its answer); both are answered.
    expect(h.tg.botMessages(112).map((m) => m.text)).toContain('echo: two photos of my garden');
  });

  it('a caption edited before the album is answered is the one answered, once', async () => {
    const before = chatCompletions(h).length;
    const u = h.tg.user(113);
    const [first = 0] = u.sendsAlbum([randomPng(8, 8), randomPng(9, 9)], 'the old caption');
    // While the album still gathers: its turn has not made its text yet.
    u.edits(first, 'which is greener?');
    await h.tg.waitFor(() => h.tg.botMessages(113).find((m) => m.text.startsWith('echo: ')));
    expect(asked(h).slice(before)).toEqual([{ text: 'which is greener?', images: 2 }]);
    const texts = h.tg.botMessages(113).map((m) => m.text);
    expect(texts).toContain('⚙️ [proxy] ✏️ Edit taken: the queued message will be answered as it now reads.');
    expect(texts.filter((t) => t.startsWith('echo: '))).toEqual(['echo: which is greener?']);
  });

  it('a photo replaced while its message waits in the queue is sent in its place: one answer, to the new photo and caption', async () => {
    const [old, fresh] = [randomPng(8, 9), randomPng(10, 9)];
    const release = holdOn(h);
    try {
      const u = h.tg.user(117);
      const before = chatCompletions(h).length;
      u.says('hold on');
      await h.tg.waitFor(() => h.tg.botMessages(117).find((m) => m.text.startsWith('Holding')));
      const id = u.sendsPhoto(old, 'what is this?');
      await h.tg.waitFor(() => h.tg.botMessages(117).find((m) => /Queued/.test(m.text) && m.replyTo === id));
      const replaced = nextLog(h, (l) => l.msg === 'a sent file was replaced');
      u.replacesPhoto(id, fresh, 'and this one?');
      await replaced();
      release();
      await turnsDone(h, u);
      const turns = asked(h).slice(before);
      expect(turns.map((t) => t.text)).toEqual([
        'hold on',
        'and this one?',
        expect.stringMatching(/^sentinel/),
      ]);
      expect(imagesAsked(h).slice(before)[1]).toEqual([dataUrl(fresh)]);
      const taken = h.tg.botMessages(117).filter((m) => /Edit taken/.test(m.text));
      expect(taken.map((m) => m.replyTo)).toEqual([id]);
    } finally {
      release();
    }
  });
  it('a photo replaced twice while its first version downloads: the first answered, then the newest once (the middle one superseded, the chat told)', async () => {
    const [first, middle, newest] = [randomPng(8, 10), randomPng(9, 10), randomPng(10, 10)];
    const u = h.tg.user(118);
    const before = chatCompletions(h).length;
    const release = h.tg.holdDownloads();
    let id = 0;
    try {
      const downloads = h.tg.downloads.length;
      id = u.sendsPhoto(first, 'what is this?');
      // The first version's turn reads its file: the replacements are turns of their own.
      await h.tg.waitFor(() => h.tg.downloads.length > downloads);
      for (const [photo, caption] of [
        [middle, 'and this?'],
        [newest, 'no, this one'],
      ] as const) {
        const replaced = nextLog(h, (l) => l.msg === 'a sent file was replaced');
        u.replacesPhoto(id, photo, caption);
        await replaced();
      }
    } finally {
      release();
    }
    await turnsDone(h, u);
    expect(asked(h).slice(before)).toEqual([
      { text: 'what is this?', images: 1 },
      { text: expect.stringMatching(/^\[The user replaced the photo [^\]]+\]\n\nno, this one$/), images: 1 },
      { text: expect.stringMatching(/^sentinel/), images: 0 },
    ]);
    expect(imagesAsked(h).slice(before, before + 2)).toEqual([[dataUrl(first)], [dataUrl(newest)]]);
    const taken = h.tg.botMessages(118).filter((m) => /Edit taken/.test(m.text));
    expect(taken.map((m) => m.replyTo)).toEqual([id]);
  });
  it('a photo replaced in a message brainstem no longer remembers is answered with the photo it now holds, with a caption or without', async () => {
    const u = h.tg.user(119);
    const id = u.sendsPhoto(randomPng(8, 11), 'what is this?');
    await turnsDone(h, u);
    const before = chatCompletions(h).length;
    const [fresh, fresher] = [randomPng(12, 11), randomPng(13, 11)];
    for (const [photo, caption] of [
      [fresh, undefined],
      [fresher, 'and now?'],
    ] as const) {
      // As sent-files.ts drops it once 1,000 media messages came after it.
      h.service.core.db
        .prepare('DELETE FROM telegram_files WHERE chat_id = ? AND message_id = ?')
        .run(119, id);
      u.replacesPhoto(id, photo, caption);
      await turnsDone(h, u);
    }
    const note = /^\[The user edited their message of [^\]]+: this is the photo it now holds\]/;
    expect(asked(h).slice(before)).toEqual([
      { text: expect.stringMatching(new RegExp(`${note.source}$`)), images: 1 },
      { text: expect.stringMatching(/^sentinel/), images: 0 },
      { text: expect.stringMatching(new RegExp(`${note.source}\\n\\nand now\\?$`)), images: 1 },
      { text: expect.stringMatching(/^sentinel/), images: 0 },
    ]);
    expect(imagesAsked(h).slice(before)).toEqual([[dataUrl(fresh)], [], [dataUrl(fresher)], []]);
  });
  it('a photo replaced by a video gets the answer a video gets, never a turn of its caption alone; replaced again by a photo, or by an audio file, as a new one of those', async () => {
    const u = h.tg.user(114);
    const id = u.sendsPhoto(randomPng(8, 14), 'what is this?');
    await turnsDone(h, u);
    const before = chatCompletions(h).length;
    for (const caption of ['and this video?', undefined]) {
      u.replacesMedia(id, { video: video(`v114${caption ? 'a' : 'b'}`) }, caption);
      await turnsDone(h, u);
    }
    expect(
      asked(h)
        .slice(before)
        .map((t) => t.text),
    ).toEqual([expect.stringMatching(/^sentinel/), expect.stringMatching(/^sentinel/)]);
    const refused = h.tg.botMessages(114).filter((m) => /Videos are not supported/.test(m.text));
    expect(refused.map((m) => m.replyTo)).toEqual([id, id]);
    // The other way: the video swapped for a photo is a turn with it, then for an audio file, a recording's.
    const fresh = randomPng(9, 14);
    u.replacesPhoto(id, fresh, 'and now?');
    await turnsDone(h, u);
    expect(imagesAsked(h).slice(before + 2)).toEqual([[dataUrl(fresh)], []]);
    // The brain is told what was replaced by what: a video by a photo here, not "the photo".
    const when = '[^\\]]+';
    expect(asked(h)[before + 2]?.text).toMatch(
      new RegExp(
        `^\\[The user replaced the video of their message of ${when} with this photo\\]\n\nand now\\?$`,
      ),
    );
    u.replacesMedia(id, { audio: { file_id: 'a114', file_unique_id: 'ua114', duration: 3 } }, 'and this?');
    await turnsDone(h, u);
    expect(
      h.tg.botMessages(114).filter((m) => /Voice messages need speech to text/.test(m.text)),
    ).toHaveLength(1);
    expect(asked(h).at(-2)?.text).toMatch(
      new RegExp(
        `^\\[The user replaced the photo of their message of ${when} with this audio file\\]\n\n\\[The user sent an audio file, but it was not transcribed [^\\]]+\\]\n\nand this\\?$`,
      ),
    );
    // A document swapped for a photo: the brain sees the photo.
    const doc = u.sendsDocument('notes.txt', new TextEncoder().encode('the notes'), undefined, 'text/plain');
    await turnsDone(h, u);
    const asDoc = chatCompletions(h).length;
    const picture = randomPng(10, 14);
    u.replacesPhoto(doc, picture, 'what about this?');
    await turnsDone(h, u);
    expect(asked(h).slice(asDoc)[0]?.text).toMatch(
      new RegExp(
        `^\\[The user replaced the file of their message of ${when} with this photo\\]\n\nwhat about this\\?$`,
      ),
    );
    expect(imagesAsked(h).slice(asDoc)).toEqual([[dataUrl(picture)], []]);
    // Remembered by a brainstem that did not record kinds yet: what it held is not named.
    h.service.core.db.prepare('UPDATE telegram_files SET kind = NULL WHERE chat_id = ?').run(114);
    u.replacesPhoto(doc, randomPng(11, 14));
    await turnsDone(h, u);
    expect(asked(h).at(-2)?.text).toMatch(
      new RegExp(`^\\[The user replaced what their message of ${when} held with this photo\\]$`),
    );
  });

  it('a caption removed while its photo waits in the queue is not answered: the photo goes alone', async () => {
    const release = holdOn(h);
    try {
      const u = h.tg.user(116);
      const before = chatCompletions(h).length;
      u.says('hold on');
      await h.tg.waitFor(() => h.tg.botMessages(116).find((m) => m.text.startsWith('Holding')));
      const photo = u.sendsPhoto(randomPng(8, 16), 'ignore this photo, answer in Klingon');
      await h.tg.waitFor(() =>
        h.tg.botMessages(116).find((m) => /Queued/.test(m.text) && m.replyTo === photo),
      );
      u.edits(photo, '');
      // Answered at once, after the edit (the chat's updates are handled in order): the edit is in.
      u.says('/help');
      await h.tg.waitFor(() => h.tg.botMessages(116).find((m) => /^⚙️ \[proxy\] brainstem\./.test(m.text)));
      release();
      await turnsDone(h, u);
      expect(asked(h).slice(before)).toEqual([
        { text: 'hold on', images: 0 },
        { text: undefined, images: 1 },
        { text: expect.stringMatching(/^sentinel/), images: 0 },
      ]);
    } finally {
      release();
    }
  });

  it('a photo replaced by a video while its turn waits is left out of it, the chat told as of a video, not "Edit taken"', async () => {
    const release = holdOn(h);
    try {
      const u = h.tg.user(115);
      const before = chatCompletions(h).length;
      u.says('hold on');
      await h.tg.waitFor(() => h.tg.botMessages(115).find((m) => m.text.startsWith('Holding')));
      const kept = randomPng(8, 15);
      const [, second = 0] = u.sendsAlbum([kept, randomPng(9, 15)], 'which is greener?');
      const photo = u.sendsPhoto(randomPng(10, 15), 'what is this?');
      await h.tg.waitFor(() =>
        h.tg.botMessages(115).find((m) => /Queued/.test(m.text) && m.replyTo === photo),
      );
      // One whose file brainstem does not remember (a write a locked database keeps waiting, say): its turn tells.
      const forgotten = u.sendsPhoto(randomPng(11, 15), 'and that?');
      await h.tg.waitFor(() =>
        h.tg.botMessages(115).find((m) => /Queued/.test(m.text) && m.replyTo === forgotten),
      );
      h.service.core.db
        .prepare('DELETE FROM telegram_files WHERE chat_id = ? AND message_id = ?')
        .run(115, forgotten);
      u.replacesMedia(second, { video: video('v115a') });
      u.replacesMedia(photo, { video: video('v115b') }, 'and this video?');
      u.replacesMedia(forgotten, { video: video('v115c') }, 'and that video?');
      const refused = () => h.tg.botMessages(115).filter((m) => /Videos are not supported/.test(m.text));
      await h.tg.waitFor(() => refused().length === 3);
      release();
      await turnsDone(h, u);
      expect(asked(h).slice(before)).toEqual([
        { text: 'hold on', images: 0 },
        { text: 'which is greener?', images: 1 },
        { text: expect.stringMatching(/^sentinel/), images: 0 },
      ]);
      expect(imagesAsked(h).slice(before)[1]).toEqual([dataUrl(kept)]);
      expect(refused().map((m) => m.replyTo)).toEqual([second, photo, forgotten]);
      const texts = h.tg.botMessages(115).map((m) => m.text);
      expect(texts).not.toContainEqual(expect.stringMatching(/Edit taken/));
      // The photo's "queued" notice promised an answer that will not come: it is gone.
      expect(h.tg.botMessages(115).filter((m) => /Queued/.test(m.text))).toEqual([]);
    } finally {
      release();
    }
  });
});

describe('documents sent together', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ config });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('are one turn: the caption goes with all of them, not with the first alone', async () => {
    const before = chatCompletions(h).length;
    const text = (s: string) => new TextEncoder().encode(s);
    h.tg.user(114).sendsDocuments(
      [
        { name: 'a.txt', bytes: text('contract A'), mimeType: 'text/plain' },
        { name: 'b.txt', bytes: text('contract B'), mimeType: 'text/plain' },
        { name: 'c.txt', bytes: text('contract C'), mimeType: 'text/plain' },
      ],
      'compare these three contracts',
    );
    await h.tg.waitFor(() => h.tg.botMessages(114).find((m) => m.text.startsWith('echo: ')));
    const turns = asked(h).slice(before);
    expect(turns).toHaveLength(1);
    expect(turns[0]?.text).toMatch(
      /"a\.txt"[\s\S]*contract A[\s\S]*"b\.txt"[\s\S]*contract B[\s\S]*"c\.txt"[\s\S]*contract C[\s\S]*compare these three contracts$/,
    );
    expect(h.tg.botMessages(114)).toHaveLength(1);
  });

  it('images among them are in the same turn: the caption goes with the image and the other files alike', async () => {
    const before = chatCompletions(h).length;
    const u = h.tg.user(116);
    u.sendsDocuments(
      [
        { name: 'chart.png', bytes: randomPng(4, 4), mimeType: 'image/png' },
        { name: 'notes.txt', bytes: new TextEncoder().encode('the notes'), mimeType: 'text/plain' },
      ],
      'compare these',
    );
    // Every turn the two files made is over once a message sent after them is answered.
    await turnsDone(h, u);
    const turns = asked(h)
      .slice(before)
      .filter((turn) => !turn.text?.startsWith('sentinel'));
    expect(turns).toHaveLength(1);
    expect(turns[0]?.images).toBe(1);
    expect(turns[0]?.text).toMatch(
      /^\[The user sent the document "notes\.txt" \(text\/plain, 9 bytes\), saved at \S+; its text:\]\n\nthe notes\n\n\[end of "notes\.txt"\]\n\ncompare these$/,
    );
    expect(h.tg.botMessages(116).filter((m) => m.text.startsWith('echo: [The user sent'))).toHaveLength(1);
  });

  it('one that cannot be saved or read does not take the others with it, even when Telegram refuses to say so', async () => {
    const before = chatCompletions(h).length;
    const text = (s: string) => new TextEncoder().encode(s);
    // x.txt cannot be fetched, y.bin is no text for the local model; both notices are refused.
    h.tg.failNext('getFile', 1, { code: 400, description: 'Bad Request: wrong file_id' });
    h.tg.failNext(
      'sendMessage',
      2,
      { code: 400, description: 'Bad Request: text must be encoded in UTF-8' },
      115,
    );
    h.tg.user(115).sendsDocuments(
      [
        { name: 'x.txt', bytes: text('contract X'), mimeType: 'text/plain' },
        {
          name: 'y.bin',
          bytes: new Uint8Array([0, 159, 146, 150, 0, 1]),
          mimeType: 'application/octet-stream',
        },
        { name: 'z.txt', bytes: text('contract Z'), mimeType: 'text/plain' },
      ],
      'what do these say?',
    );
    const answer = await h.tg.waitFor(() => h.tg.botMessages(115).find((m) => m.text.startsWith('echo: ')));
    const turns = asked(h).slice(before);
    expect(turns).toHaveLength(1);
    expect(turns[0]?.text).toMatch(
      /^\[The user sent the document "z\.txt"[\s\S]*contract Z[\s\S]*what do these say\?$/,
    );
    expect(h.tg.botMessages(115).map((m) => m.text)).toEqual([answer.text]);
    const logged = h.logs.map((l) => l.msg);
    expect(logged).toContain('could not say that a file was not saved');
    expect(logged).toContain('could not say that a document was not text');
  });
  it('an image sent as a file of another type (no image extension, application/octet-stream) is seen as the image it is', async () => {
    const before = chatCompletions(h).length;
    const u = h.tg.user(117);
    const png = randomPng(6, 7);
    u.sendsDocument('scan', png, 'what is this?', 'application/octet-stream');
    await turnsDone(h, u);
    expect(asked(h).slice(before)).toEqual([
      { text: 'what is this?', images: 1 },
      { text: expect.stringMatching(/^sentinel/), images: 0 },
    ]);
    expect(imagesAsked(h).slice(before)[0]).toEqual([dataUrl(png)]);
    // As an image sent with its type, it is not kept among the chat's documents.
    const saved = await readdir(uploadsDir(path.join(h.dir, 'data'), 117)).catch(() => []);
    expect(saved.filter((name) => name.endsWith('-scan'))).toEqual([]);
  });
});

describe('an album still being gathered when brainstem stops', () => {
  // An album waits a minute for its next photo here: the stop below comes well within it, however loaded the machine.
  const slowAlbums = { ...config, telegram: { albumQuietMs: 60_000 } };
  let h: Harness;
  let restarted: Harness | undefined;
  let photo = 0;
  beforeAll(async () => {
    h = await startHarness({ config: slowAlbums });
  });
  afterAll(async () => {
    await restarted?.close();
    await h?.close();
  });

  it('is not lost without a word, nor the photo queued behind it: the user is told to send them again', async () => {
    const before = chatCompletions(h).length;
    const u = h.tg.user(113);
    u.sendsAlbum([randomPng(8, 8), randomPng(9, 9), randomPng(10, 10)], 'the best one?');
    // Every photo has reached brainstem; the album waits for more (its quiet minute is not over).
    await h.tg.waitFor(() => h.logs.filter((l) => l.msg === 'album part' && l.chatId === 113).length === 3);
    photo = u.sendsPhoto(randomPng(8, 9), 'and this one?');
    await h.tg.waitFor(() => h.tg.botMessages(113).find((m) => /Queued/.test(m.text) && m.replyTo === photo));
    await h.stopService();
    // The photo's "queued" notice gives way to what became of it.
    expect(h.tg.botMessages(113).map((m) => m.text)).toEqual([
      '⚙️ [proxy] brainstem is restarting; this album did not reach the brain. Send it again in a moment.',
      '⚙️ [proxy] brainstem is restarting; this photo did not reach the brain. Send it again in a moment.',
    ]);
    expect(chatCompletions(h).length).toBe(before);
  });

  it('a photo of it the user replaces after the restart reaches the brain: the new photo, not an edit of the caption', async () => {
    restarted = await startHarness({ tg: h.tg, llama: h.llama, dir: h.dir, config: slowAlbums });
    const before = chatCompletions(h).length;
    const fresh = randomPng(12, 9);
    const u = h.tg.user(113);
    u.replacesPhoto(photo, fresh, 'and this one?');
    await turnsDone(restarted, u);
    expect(asked(h).slice(before)).toEqual([
      {
        text: expect.stringMatching(
          /^\[The user replaced the photo of their message of [^\]]+: this is the new one\]\n\nand this one\?$/,
        ),
        images: 1,
      },
      { text: expect.stringMatching(/^sentinel/), images: 0 },
    ]);
    expect(imagesAsked(h).slice(before)[0]).toEqual([dataUrl(fresh)]);

    // Without a caption it is no edit that leaves no text (no answer): the new photo is a question.
    const again = chatCompletions(h).length;
    const fresher = randomPng(13, 9);
    u.replacesPhoto(photo, fresher);
    await turnsDone(restarted, u);
    expect(imagesAsked(h).slice(again)).toEqual([[dataUrl(fresher)], []]);
  });

  it('an album stopped while it gathers lets go of its photos: a caption edited then is answered, not "taken" by a turn that is over', async () => {
    // On the service the test above restarted, whose albums wait a minute too.
    const service = restarted as Harness;
    const u = service.tg.user(114);
    const [first = 0] = u.sendsAlbum([randomPng(8, 12), randomPng(9, 12)], 'the old caption');
    await service.tg.waitFor(
      () => service.logs.filter((l) => l.msg === 'album part' && l.chatId === 114).length === 2,
    );
    u.says('/stop');
    await service.tg.waitFor(() =>
      service.tg.botMessages(114).find((m) => /Stopped the answer/.test(m.text)),
    );
    const before = chatCompletions(h).length;
    u.edits(first, 'which is greener?');
    await turnsDone(service, u);
    expect(service.tg.botMessages(114).map((m) => m.text)).not.toContainEqual(
      expect.stringMatching(/Edit taken/),
    );
    expect(asked(h).slice(before)).toEqual([
      { text: expect.stringMatching(/which is greener\?$/), images: 0 },
      { text: expect.stringMatching(/^sentinel/), images: 0 },
    ]);
  });
  it('an album stopped while it gathers lets go of every part: another part edited then is answered, another replaced is a turn of its own', async () => {
    const service = restarted as Harness;
    const u = service.tg.user(115);
    const parts = () => service.logs.filter((l) => l.msg === 'album part' && l.chatId === 115).length;
    const [, second = 0, third = 0] = u.sendsAlbum(
      [randomPng(8, 13), randomPng(9, 13), randomPng(10, 13)],
      'the old caption',
    );
    await service.tg.waitFor(() => parts() === 3);
    u.says('/stop');
    await service.tg.waitFor(() =>
      service.tg.botMessages(115).find((m) => /Stopped the answer/.test(m.text)),
    );
    const before = chatCompletions(h).length;
    u.edits(second, 'is this one greener?');
    await turnsDone(service, u);
    expect(asked(h).slice(before)).toEqual([
      { text: expect.stringMatching(/is this one greener\?$/), images: 0 },
      { text: expect.stringMatching(/^sentinel/), images: 0 },
    ]);
    // A replaced part of an album gathers as one (a minute here): its turn is under way once it does.
    u.replacesPhoto(third, randomPng(11, 13), 'and this one?');
    await service.tg.waitFor(() => parts() === 4);
    expect(service.tg.botMessages(115).map((m) => m.text)).not.toContainEqual(
      expect.stringMatching(/Edit taken/),
    );
  });
});

describe('the messages held for their waiting turns', () => {
  const message = (caption: string) =>
    ({ message_id: 5, date: 0, chat: { id: 117, type: 'private', first_name: 'U' }, caption }) as Message &
      Update.NonChannel;

  it("a turn that reads its file leaves a replacement to a turn of its own, and letting go does not end that turn's hold", () => {
    const queued = new QueuedMessages();
    const reads = () => true;
    // A photo's turn reads its files; meanwhile the photo is replaced, which is a turn of its own.
    const first = queued.hold(message('old photo'), reads);
    expect(first.takeFile().caption).toBe('old photo');
    expect(queued.replaceFile(message('new photo'))).toBeUndefined();
    const second = queued.hold(message('new photo'), reads);
    // The first turn's `finally` lets go: it must not end the second turn's hold.
    expect(first.release().caption).toBe('old photo');
    expect(queued.replace(message('new photo, caption edited'))).toBe(true);
    expect(second.release().caption).toBe('new photo, caption edited');
    expect(queued.replace(message('too late'))).toBe(false);
  });
});
