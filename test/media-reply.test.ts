import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * A reply to a document or a photo, on the direct route: the brain (the fake
 * llama-server) is told what the replied-to message holds. The replies are
 * sent as Telegram sends them, the replied-to message with its file fields.
 */

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const lastAsked = () => {
  const body = h.llama.requests.filter((r) => r.path.endsWith('/chat/completions')).at(-1)?.body as {
    messages: { role: string; content: unknown }[];
  };
  return body.messages.filter((m) => m.role === 'user').at(-1)?.content;
};
const answered = (chatId: number, text: string) =>
  h.tg.waitFor(
    () => h.tg.botMessages(chatId).find((m) => m.text.startsWith('echo: ') && m.text.endsWith(text)),
    { timeoutMs: 8000 },
  );
const earlier = (chatId: number, fields: Record<string, unknown>) => ({
  message_id: 1,
  date: Math.floor(Date.now() / 1000),
  chat: { id: chatId, type: 'private', first_name: 'User' },
  from: { id: chatId, is_bot: false, first_name: 'User' },
  ...fields,
});

describe('a reply to a message holding a file', () => {
  it('to a document: the brain is told which document', async () => {
    h.tg.user(112).sends({
      text: 'summarise this one',
      reply_to_message: earlier(112, {
        document: {
          file_id: 'd1',
          file_unique_id: 'ud1',
          file_name: 'first.txt',
          mime_type: 'text/plain',
          file_size: 25,
        },
      }),
    });
    await answered(112, 'summarise this one');
    expect(lastAsked()).toBe(
      '[The user replies to an earlier message, which holds the document "first.txt" (text/plain, 25 bytes)]\n\nsummarise this one',
    );
  });

  it('to a photo without a caption: the brain is told it was a photo; a caption is quoted too', async () => {
    const photo = [{ file_id: 'p1', file_unique_id: 'up1', width: 800, height: 600, file_size: 1000 }];
    h.tg.user(113).sends({ text: 'where was this?', reply_to_message: earlier(113, { photo }) });
    await answered(113, 'where was this?');
    expect(lastAsked()).toBe(
      '[The user replies to an earlier message, which holds a photo]\n\nwhere was this?',
    );

    h.tg
      .user(113)
      .sends({ text: 'and this?', reply_to_message: earlier(113, { photo, caption: 'the lake' }) });
    await answered(113, 'and this?');
    expect(lastAsked()).toBe(
      '[The user replies to an earlier message, which holds a photo: "the lake"]\n\nand this?',
    );
  });
});

describe('a reply to a long message', () => {
  it('quotes its start, never cut inside an emoji (the Messages API, llama-server and Telegram refuse half of one), and says it was cut', async () => {
    // The 2000-character cut falls between the two halves of 🎵.
    const long = `${'a'.repeat(1999)}🎵${'b'.repeat(100)}`;
    h.tg.user(116).sends({ text: 'summarise this', reply_to_message: earlier(116, { text: long }) });
    await answered(116, 'summarise this');
    expect(lastAsked()).toBe(
      `[The user replies to an earlier message: "${'a'.repeat(1999)}…" (cut: these are its first 1999 of 2101 characters)]\n\nsummarise this`,
    );
  });
});
