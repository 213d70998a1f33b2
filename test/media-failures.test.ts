import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomPng } from './helpers/images.js';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * Photos that cannot be fetched or read, and recordings without speech to text, on the direct route: the Bot API
 * emulator as Telegram (its failures injected as Telegram answers them), the
 * fake llama-server as a brain with vision.
 */

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    config: { modes: { local: { kind: 'llama', description: 'Fake local model', vision: true } } },
  });
});
afterAll(async () => {
  await h?.close();
});

const chatCompletions = () => h.llama.requests.filter((r) => r.path.endsWith('/chat/completions'));
/** The last user message the fake llama-server was asked about: its text and how many images. */
const lastAsked = () => {
  const body = chatCompletions().at(-1)?.body as { messages: { role: string; content: unknown }[] };
  const content = body.messages.filter((m) => m.role === 'user').at(-1)?.content;
  const parts = Array.isArray(content) ? (content as { type: string; text?: string }[]) : [];
  return {
    text: typeof content === 'string' ? content : parts.find((p) => p.type === 'text')?.text,
    images: parts.filter((p) => p.type === 'image_url').length,
  };
};
const reply = (chatId: number, pattern: RegExp) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)));

describe('a photo that cannot be fetched or read', () => {
  it('keeps its caption: the brain gets it with a note, the user is told why in plain words', async () => {
    h.tg.failNext('getFile', 1, { code: 400, description: 'Bad Request: wrong file_id' });
    h.tg.user(112).sendsPhoto(randomPng(8, 8), 'the total must be 1234 EUR');
    const told = await reply(112, /could not read/);
    expect(told.text).toBe(
      '⚙️ [proxy] I could not read this photo: Telegram would not hand the file over. Your words went to the brain, with a note that the image is missing.',
    );
    await reply(112, /^echo: /);
    expect(lastAsked()).toEqual({
      text: '[The user sent this photo, but it could not be read (Telegram would not hand the file over): you do not see it]\n\nthe total must be 1234 EUR',
      images: 0,
    });
  });

  it('without a caption: nothing goes, and the user is told so; a photo is never told to be sent as a photo', async () => {
    const before = chatCompletions().length;
    h.tg.user(113).sendsPhoto(new Uint8Array(0));
    const told = await reply(113, /could not read/);
    expect(told.text).toBe(
      '⚙️ [proxy] I could not read this photo: it is not an image I can read. Nothing was sent to the brain.',
    );
    // The next message is answered; the photo made no turn before it.
    h.tg.user(113).says('still there?');
    await reply(113, /^echo: still there\?/);
    expect(chatCompletions().length).toBe(before + 1);
  });

  it('in an album, the photos that could be read go with the caption, the brain told one is missing', async () => {
    h.tg.user(114).sendsAlbum([randomPng(8, 8), new Uint8Array(0)], 'compare them');
    const told = await reply(114, /could not read/);
    expect(told.text).toBe(
      '⚙️ [proxy] I could not read photo 2 of 2: it is not an image I can read. The rest went to the brain.',
    );
    await reply(114, /^echo: /);
    expect(lastAsked()).toEqual({
      text: '[The user sent photo 2 of 2, but it could not be read (it is not an image I can read): you do not see it]\n\ncompare them',
      images: 1,
    });
  });
});

describe('a recording without speech to text', () => {
  it('keeps its caption: the brain gets it with a note, the user is told how to turn transcription on', async () => {
    h.tg.user(115).sendsVoice(undefined, 'the total must be 1234 EUR');
    const told = await reply(115, /Voice messages need speech to text/);
    expect(told.text).toMatch(
      /transcription\.url.*transcription\.command.* Your caption went to the brain, with a note that the recording was not transcribed\.$/,
    );
    const answer = await reply(115, /^echo: /);
    expect(answer.messageId).toBeGreaterThan(told.messageId);
    expect(lastAsked()).toEqual({
      text: '[The user sent a voice note, but it was not transcribed (speech to text is not set up): you do not hear it]\n\nthe total must be 1234 EUR',
      images: 0,
    });
  });
});
