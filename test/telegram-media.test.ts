import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RecordedRequest, text, toolUse } from './fakes/anthropic.js';
import { CLAUDE_BIN, CLAUDE_CLI } from './helpers/claude-bin.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { randomPng } from './helpers/images.js';
import { type Harness, nextLog, startHarness } from './telegram-harness.js';

/**
 * Photos, albums and documents on the direct route (no OpenClaw): the Bot API
 * emulator as Telegram, the real Claude CLI against the fake Messages API as
 * the active brain.
 */

const claude = claudeOnFake();
let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    config: {
      defaultMode: 'assistant',
      claude: { env: claude.cli.env, maxRetries: 0 },
      // Another mode on the fake llama-server: a switch to it waits as long as the fake says it is loading.
      modes: { spare: { kind: 'llama', description: 'Fake local model, another mode' } },
      // Only the tests decide when a loading model is ready, however loaded the machine.
      llama: { readyTimeoutMs: 120_000 },
    },
    env: { CLAUDE_BIN },
  });
});
afterAll(async () => {
  await h?.close();
});

type Block = { type: string; source?: { media_type: string; data: string } };
const imagesOf = (r: RecordedRequest | undefined) => {
  const content = r?.body?.messages?.filter((m) => m.role === 'user').at(-1)?.content;
  return (Array.isArray(content) ? (content as Block[]) : []).filter((b) => b.type === 'image');
};
const answer = (chatId: number, pattern: RegExp) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs: 60_000 });
/** The conversation request the fake got first after `before` requests. */
const requestAfter = (before: number) =>
  h.tg.waitFor(() => claude.fake.mainRequests()[before], { timeoutMs: 60_000 });

describe(`Telegram media on the direct route (Claude CLI ${CLAUDE_CLI})`, () => {
  it('a photo reaches Claude as an image block with its caption, bytes intact', async () => {
    const png = randomPng(20, 12);
    claude.fake.script(() => text('It is a tiny noisy picture.'));
    const before = claude.fake.mainRequests().length;
    h.tg.user(114).sendsPhoto(png, 'what is this?');
    await answer(114, /tiny noisy picture/);
    const req = await requestAfter(before);
    expect(imagesOf(req).map((b) => b.source)).toEqual([
      { type: 'base64', media_type: 'image/png', data: png.toString('base64') },
    ]);
    expect(req.lastUserText).toContain('what is this?');
  });

  it('an album is one turn holding every photo, in order, with the caption', async () => {
    const photos = [randomPng(10, 10), randomPng(12, 10), randomPng(14, 10)];
    claude.fake.script(() => text('Three pictures.'));
    const before = claude.fake.mainRequests().length;
    h.tg.user(115).sendsAlbum(photos, 'compare these');
    await answer(115, /Three pictures/);
    const req = await requestAfter(before);
    expect(imagesOf(req).map((b) => b.source?.data)).toEqual(photos.map((p) => p.toString('base64')));
    expect(req.lastUserText).toContain('compare these');
    expect(h.tg.botMessages(115).filter((m) => /Three pictures/.test(m.text))).toHaveLength(1);
  });

  it('a photo replaced by an edit after its answer reaches Claude, with or without a caption', async () => {
    const [first, second, third] = [randomPng(9, 9), randomPng(11, 9), randomPng(13, 9)];
    claude.fake.script(() => text('Seen it.'));
    const u = h.tg.user(114);
    const id = u.sendsPhoto(first, 'what is this?');
    await answer(114, /Seen it/);
    let before = claude.fake.mainRequests().length;
    claude.fake.script(() => text('The new one.'));
    u.replacesPhoto(id, second, 'what is this?');
    await answer(114, /The new one/);
    let req = await requestAfter(before);
    expect(imagesOf(req).map((b) => b.source?.data)).toEqual([second.toString('base64')]);
    expect(req.lastUserText).toMatch(/replaced the photo of their message of .*\n\nwhat is this\?$/s);

    // Without a caption there is no text to answer, yet the new photo is a question.
    before = claude.fake.mainRequests().length;
    claude.fake.script(() => text('The third one.'));
    u.replacesPhoto(id, third);
    await answer(114, /The third one/);
    req = await requestAfter(before);
    expect(imagesOf(req).map((b) => b.source?.data)).toEqual([third.toString('base64')]);
  });

  it('a reply to a photo shows Claude the photo with the reply, as it may never have seen it (a group member’s)', async () => {
    const png = randomPng(7, 5);
    const u = h.tg.user(117);
    claude.fake.script(() => text('A photo.'));
    const photo = u.sendsPhoto(png);
    await answer(117, /A photo/);
    // The reply holds the photo as Telegram sends it, whoever sent it.
    type Sent = { message_id: number; chat: { id: number } } | undefined;
    const sent = h.tg.updateLog
      .map((x) => x.message as Sent)
      .find((m) => m?.chat.id === 117 && m.message_id === photo);
    claude.fake.script(() => text('It says hello.'));
    const before = claude.fake.mainRequests().length;
    u.sends({ text: 'what does it say?', reply_to_message: sent });
    await answer(117, /It says hello/);
    const req = await requestAfter(before);
    expect(imagesOf(req).map((b) => b.source?.data)).toEqual([png.toString('base64')]);
    expect(req.lastUserText).toContain(
      '[The user replies to an earlier message, which holds a photo]\n\nwhat does it say?',
    );
  });

  it('an image sent as a document is an image; another document is saved and named with its size', async () => {
    const png = randomPng(16, 16);
    claude.fake.script(() => text('A screenshot.'));
    let before = claude.fake.mainRequests().length;
    h.tg.user(116).sendsDocument('screen.png', png, undefined, 'image/png');
    await answer(116, /A screenshot/);
    expect(imagesOf(await requestAfter(before)).map((b) => b.source?.data)).toEqual([png.toString('base64')]);

    claude.fake.script(() => text('Read it.'));
    before = claude.fake.mainRequests().length;
    h.tg.user(116).sendsDocument('report.pdf', Buffer.from('%PDF-1.4 fake'), 'summarise', 'application/pdf');
    await answer(116, /Read it/);
    const req = await requestAfter(before);
    expect(imagesOf(req)).toEqual([]);
    const said =
      /\[The user sent the document "report\.pdf" \(application\/pdf, 13 bytes\), saved at (\S+)\]/.exec(
        req.lastUserText,
      );
    expect(said?.[1] && existsSync(said[1]) && readFileSync(said[1], 'utf8')).toBe('%PDF-1.4 fake');
    expect(req.lastUserText).toContain('summarise');
  });

  it('Claude reads a document the user sent without asking them; a link in its folder to a file elsewhere still asks', async () => {
    const u = h.tg.user(119);
    const asked = () => h.tg.botMessages(119).filter((m) => /Claude wants to use Read/.test(m.text));
    // Claude opens the file whose path it was told, as it does with a PDF.
    claude.fake.script((r) =>
      toolUse(
        'Read',
        { file_path: /saved at (\S+)\]/.exec(r.lastUserText)?.[1] ?? '' },
        text('Read it through.'),
      ),
    );
    u.sendsDocument('notes.txt', Buffer.from('the notes inside'), 'summarise', 'text/plain');
    // The answer, or the question that would hold it back.
    await answer(119, /Read it through|Claude wants to use Read/);
    expect(asked()).toEqual([]);
    const [result] = claude.fake.mainRequests().at(-1)?.toolResults ?? [];
    expect(result?.isError).toBe(false);
    expect(result?.content).toContain('the notes inside');

    // What resolves outside the chat's uploads is no file the user sent: the approver is asked.
    const link = path.join(h.dir, 'data', 'uploads', '119', 'link.txt');
    // Not one of brainstem's own files, which Claude may never read, asked or not (src/own-files.ts).
    const elsewhere = path.join(h.dir, 'elsewhere.txt');
    writeFileSync(elsewhere, 'not sent by the user');
    symlinkSync(elsewhere, link);
    claude.fake.script(() => toolUse('Read', { file_path: link }, text('Not read.')));
    u.says('and the other file?');
    const question = await h.tg.waitFor(() => asked()[0], { timeoutMs: 60_000 });
    type Button = { text: string; callback_data: string };
    const buttons = (question.replyMarkup as { inline_keyboard: Button[][] }).inline_keyboard.flat();
    u.presses(question.messageId, buttons.find((b) => /Deny/.test(b.text))?.callback_data ?? '');
    await answer(119, /Not read/);
  });

  it('an album whose first item (with the caption) is a video says the caption did not go', async () => {
    h.tg.user(118).sends({
      video: { file_id: 'v1', file_unique_id: 'uv1', width: 2, height: 2, duration: 1 },
      media_group_id: 'mixed1',
      caption: 'compare these two',
    });
    const reply = await answer(118, /Videos are not supported/);
    expect(reply.text).toContain('Its caption (“compare these two”) did not go with the rest of the album');
  });

  it('a document sent while a switch to a local mode loads gets its text to the local model, not a path it cannot open', async () => {
    const { switcher } = h.service.core;
    await switcher.switchTo('assistant', { source: 'api' });
    const u = h.tg.user(112);
    h.llama.setLoading(true);
    try {
      u.says('/mode local');
      await answer(112, /Switching to local…/);
      const saved = nextLog(h, (l) => l.msg === 'saved a file from Telegram' && l.chatId === 112);
      u.sendsDocument('notes.txt', Buffer.from('the notes'), 'summarise this', 'text/plain');
      // The document is in brainstem's hands while the switch still waits for the model.
      await saved();
      expect(switcher.isSwitching()).toBe(true);
      // The chat is told what the turn waits for, as a text's answer says it.
      await answer(112, /^⏳ waiting for the mode switch to end…$/);
    } finally {
      h.llama.setLoading(false);
    }
    await answer(112, /^echo: \[The user sent/);
    // The answer took the line's place: no line is left saying an answer is on its way.
    expect(h.tg.botMessages(112).filter((m) => m.text.includes('waiting for the mode switch'))).toEqual([]);
    const asked = h.llama.requests.filter((r) => r.path.endsWith('/chat/completions')).at(-1)?.body as {
      messages: { role: string; content: unknown }[];
    };
    expect(asked.messages.at(-1)?.content).toMatch(
      /^\[The user sent the document "notes\.txt" \(text\/plain, 9 bytes\), saved at \S+; its text:\]\n\nthe notes\n\n\[end of "notes\.txt"\]\n\nsummarise this$/,
    );
    expect(switcher.active().id).toBe('local');
  });

  it('a PDF sent while a switch to a Claude mode is under way goes to Claude by path, not refused as no text', async () => {
    const { switcher } = h.service.core;
    await switcher.switchTo('local', { source: 'api' });
    claude.fake.script(() => text('Read the PDF.'));
    const before = claude.fake.mainRequests().length;
    const u = h.tg.user(113);
    // A PDF's binary comment line: no UTF-8 text, which a local model is never given.
    const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n%'), Buffer.from([0xe2, 0xe3, 0xcf, 0xd3, 0x0a])]);
    h.llama.setLoading(true);
    let switched: Promise<unknown> | undefined;
    try {
      // Two switches in a row, the first waiting for the loading model: the turn waits for both.
      void switcher.switchTo('spare', { source: 'api' });
      switched = switcher.switchTo('assistant', { source: 'api' });
      const saved = nextLog(h, (l) => l.msg === 'saved a file from Telegram' && l.chatId === 113);
      u.sendsDocument('report.pdf', pdf, 'summarise this', 'application/pdf');
      await saved();
      expect(switcher.isSwitching()).toBe(true);
    } finally {
      h.llama.setLoading(false);
    }
    await switched;
    // Claude's answer, or the local model's refusal had the note been made for the mode active when it came.
    const said = await answer(113, /Read the PDF|only reads text/);
    expect(said.text).toMatch(/Read the PDF/);
    const req = await requestAfter(before);
    expect(req.lastUserText).toMatch(
      /\[The user sent the document "report\.pdf" \(application\/pdf, 15 bytes\), saved at \S+\]\n\nsummarise this$/,
    );
    expect(switcher.active().id).toBe('assistant');
  });

  it('a photo sent while a switch from a text-only mode to Claude is under way reaches Claude, not refused by the mode it leaves', async () => {
    const { switcher } = h.service.core;
    await switcher.switchTo('local', { source: 'api' });
    claude.fake.script(() => text('I see it now.'));
    const before = claude.fake.mainRequests().length;
    const png = randomPng(10, 6);
    h.llama.setLoading(true);
    let switched: Promise<unknown> | undefined;
    try {
      // The first switch waits for its loading model, the second for the first: the photo comes meanwhile.
      void switcher.switchTo('spare', { source: 'api' });
      switched = switcher.switchTo('assistant', { source: 'api' });
      const downloaded = nextLog(h, (l) => l.msg === 'image from Telegram' && l.chatId === 118);
      h.tg.user(118).sendsPhoto(png, 'and now?');
      await downloaded();
      expect(switcher.isSwitching()).toBe(true);
    } finally {
      h.llama.setLoading(false);
    }
    await switched;
    const said = await answer(118, /I see it now|takes no images/);
    expect(said.text).toMatch(/I see it now/);
    expect(imagesOf(await requestAfter(before)).map((b) => b.source?.data)).toEqual([png.toString('base64')]);
  });

  it('a text-only mode answers a photo with a clear refusal', async () => {
    await h.service.core.switcher.switchTo('local', { source: 'api' });
    const before = h.llama.requests.length;
    h.tg.user(117).sendsPhoto(randomPng(8, 8), 'and this?');
    const refusal = await answer(117, /takes no images/);
    expect(refusal.text).toMatch(/mode "local" takes no images/);
    expect(h.llama.requests.filter((r) => r.path.endsWith('/chat/completions')).length).toBe(
      h.llama.requests.slice(0, before).filter((r) => r.path.endsWith('/chat/completions')).length,
    );
  });
});

describe('a document sent in a group later upgraded to a supergroup', () => {
  it('Claude reads it in the supergroup without asking, as it did in the group; one sent there too', async () => {
    const GROUP = -4_341;
    const SUPERGROUP = -1_000_000_004_341;
    const asked = () => h.tg.botMessages(SUPERGROUP).filter((m) => /Claude wants to use Read/.test(m.text));
    // The tests before may have left a local mode active.
    await h.service.core.switcher.switchTo('assistant', { source: 'api' });
    let saved = '';
    claude.fake.script((r) => {
      saved = /saved at (\S+)\]/.exec(r.lastUserText)?.[1] ?? '';
      return text('Got it.');
    });
    h.tg
      .user(117, { chatId: GROUP, basicGroup: true })
      .sendsDocument('plan.txt', Buffer.from('the plan inside'));
    await answer(GROUP, /Got it/);
    const followed = nextLog(h, (l) => l.msg === 'a group became a supergroup: its conversation follows');
    h.tg.migrates(GROUP, SUPERGROUP);
    await followed(2);
    // The session was told the path in the group: it opens it from the supergroup.
    claude.fake.script(() => toolUse('Read', { file_path: saved }, text('Read the plan.')));
    const member = h.tg.user(117, { chatId: SUPERGROUP });
    member.says('what does the plan say?');
    await answer(SUPERGROUP, /Read the plan|Claude wants to use Read/);
    expect(asked()).toEqual([]);
    const [result] = claude.fake.mainRequests().at(-1)?.toolResults ?? [];
    expect(result?.content).toContain('the plan inside');
    // A document sent in the supergroup is the user's too.
    claude.fake.script((r) =>
      toolUse(
        'Read',
        { file_path: /saved at (\S+)\]/.exec(r.lastUserText)?.[1] ?? '' },
        text('Read the new one.'),
      ),
    );
    member.sendsDocument('more.txt', Buffer.from('more of the plan'));
    await answer(SUPERGROUP, /Read the new one|Claude wants to use Read/);
    expect(asked()).toEqual([]);
    expect(claude.fake.mainRequests().at(-1)?.toolResults[0]?.content).toContain('more of the plan');
  });
});
