import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * Replies on the direct route: the brain (the fake llama-server) is told what
 * the replied-to message says and holds, also when it is a message of another
 * chat. The replies are sent as Telegram sends them: the replied-to message
 * with its file fields, or external_reply and quote.
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
  h.tg.waitFor(() =>
    h.tg.botMessages(chatId).find((m) => m.text.startsWith('echo: ') && m.text.endsWith(text)),
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

/**
 * A reply to a message of another chat (Telegram's "reply in another chat", a quote from a
 * channel): no reply_to_message, but external_reply (where it came from, its media) and quote.
 */
describe('a reply to a message of another chat', () => {
  const channel = { id: -1009, type: 'channel', title: 'News', username: 'news' };

  it('from a channel: the brain gets the quoted text and the channel it was posted in', async () => {
    h.tg.user(114).sends({
      text: 'what does this mean?',
      quote: { text: 'Rates rise by 0.25 points', position: 0 },
      external_reply: {
        origin: { type: 'channel', chat: channel, message_id: 9, date: 1_700_000_000 },
        chat: channel,
        message_id: 9,
      },
    });
    await answered(114, 'what does this mean?');
    expect(lastAsked()).toBe(
      '[The user replies to a message posted in the channel "News" (@news): "Rates rise by 0.25 points"]\n\nwhat does this mean?',
    );
  });

  it('by a user in a group, holding a document, part of it quoted: who, where, what it holds and the part', async () => {
    const group = { id: -1002, type: 'supergroup', title: 'Dev chat' };
    h.tg.user(115).sends({
      text: 'is this right?',
      quote: { text: 'ship on Friday', position: 12, is_manual: true },
      external_reply: {
        origin: {
          type: 'user',
          date: 1_700_000_000,
          sender_user: { id: 77, is_bot: false, first_name: 'Alice', last_name: 'Smith', username: 'alice' },
        },
        chat: group,
        message_id: 40,
        document: {
          file_id: 'x1',
          file_unique_id: 'ux1',
          file_name: 'plan.pdf',
          mime_type: 'application/pdf',
          file_size: 2048,
        },
      },
    });
    await answered(115, 'is this right?');
    expect(lastAsked()).toBe(
      '[The user replies to this part of a message by "Alice Smith" (@alice) in the group "Dev chat", which holds the document "plan.pdf" (application/pdf, 2 KB): "ship on Friday"]\n\nis this right?',
    );
  });

  it('with no quote: its media is named, or the brain is told its text did not come', async () => {
    const photo = [{ file_id: 'p9', file_unique_id: 'up9', width: 800, height: 600, file_size: 1000 }];
    const hidden = { type: 'hidden_user', date: 1_700_000_000, sender_user_name: 'Bob' };
    h.tg.user(117).sends({ text: 'where is this?', external_reply: { origin: hidden, photo } });
    await answered(117, 'where is this?');
    expect(lastAsked()).toBe(
      '[The user replies to a message by "Bob" in another chat, which holds a photo]\n\nwhere is this?',
    );

    h.tg.user(117).sends({ text: 'and this?', external_reply: { origin: hidden } });
    await answered(117, 'and this?');
    expect(lastAsked()).toBe(
      '[The user replies to a message by "Bob" in another chat; Telegram passes on none of its text: ask for it if you need it]\n\nand this?',
    );
  });

  it('a long quote is cut, and the brain is told so', async () => {
    const long = 'q'.repeat(2500);
    h.tg.user(118).sends({
      text: 'too long?',
      quote: { text: long, position: 0 },
      external_reply: { origin: { type: 'channel', chat: channel, message_id: 10, date: 1_700_000_000 } },
    });
    await answered(118, 'too long?');
    expect(lastAsked()).toBe(
      `[The user replies to a message posted in the channel "News" (@news): "${'q'.repeat(2000)}…" (cut: these are its first 2000 of 2500 characters)]\n\ntoo long?`,
    );
  });
});
