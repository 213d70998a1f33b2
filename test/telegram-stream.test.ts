import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gate } from './helpers/gate.js';
import { type Harness, startHarness } from './telegram-harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
  // Nothing in these tests is an internal failure: every error is Telegram's or the brain's, handled.
  expect(h.logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
});

const INTERVAL = 150;

/** Visible text of a chat's bot messages, in order. */
const texts = (chatId: number) => h.tg.botMessages(chatId).map((m) => m.text);

describe('streamed answers through the Bot API emulator', () => {
  it('shows typing, then edits one message in place, never faster than the interval, ending with the full text', async () => {
    const chunks = Array.from({ length: 24 }, (_, i) => `word${i} `);
    const full = chunks.join('').trimEnd();
    h.llama.reply({ chunks, chunkDelayMs: 40 });
    const user = h.tg.user(112);
    user.says('stream please');
    const msg = await h.tg.waitFor(() => h.tg.botMessages(112).find((m) => m.text === full));

    expect(h.tg.botMessages(112)).toHaveLength(1);
    expect(msg.edits).toBeGreaterThanOrEqual(2);
    for (const shown of msg.history) expect(full.startsWith(shown.trimEnd())).toBe(true);

    const typing = h.tg.callsOf('sendChatAction', 112);
    const sends = h.tg.callsOf('sendMessage', 112);
    expect(typing.length).toBeGreaterThanOrEqual(1);
    expect(typing[0]?.at).toBeLessThanOrEqual(sends[0]?.at ?? 0);

    const changes = [...sends, ...h.tg.callsOf('editMessageText', 112)]
      .map((c) => c.at)
      .sort((a, b) => a - b);
    for (let i = 1; i < changes.length; i++) {
      expect((changes[i] ?? 0) - (changes[i - 1] ?? 0)).toBeGreaterThanOrEqual(INTERVAL - 5);
    }
    // Far fewer calls than chunks: intermediate texts were dropped, not queued.
    expect(changes.length).toBeLessThan(chunks.length);
  });

  it('splits a 6000-character answer into two messages at a paragraph break, nothing lost or repeated', async () => {
    const paragraphs = Array.from(
      { length: 60 },
      (_, i) => `${String(i).padStart(2, '0')} ${'x'.repeat(95)}`,
    );
    const full = paragraphs.join('\n\n');
    expect(full.length).toBeGreaterThan(5900);
    h.llama.reply({ chunks: full.match(/[\s\S]{1,700}/g) ?? [], chunkDelayMs: 20 });
    h.tg.user(113).says('long answer');
    await h.tg.waitFor(() => texts(113).length === 2 && texts(113).join('\n\n') === full);
    const [first, second] = texts(113);
    expect(first?.length).toBeLessThanOrEqual(4096);
    expect(first?.endsWith('x')).toBe(true);
    expect(second).toMatch(/^\d\d x+\n\n/);
  });

  it('a code block cut across two messages keeps the indentation of the second one’s first line', async () => {
    // Telegram trims the whitespace at a message's start: the continued block's first line lost
    // its indentation there (the emulator trims as Telegram does), wrong Python once copied.
    const group = -100830;
    const body = Array.from({ length: 120 }, (_, i) => `    total += step(${i})  # ${'x'.repeat(30)}\n`);
    h.llama.reply({ chunks: ['```python\ndef run():\n', ...body, '```'], chunkDelayMs: 0 });
    h.tg.user(117, { chatId: group }).says('long code');
    const second = await h.tg.waitFor(() => {
      const msgs = h.tg.botMessages(group);
      return msgs.length === 2 && msgs[1]?.text.includes('step(119)') ? msgs[1] : undefined;
    });
    const pre = second.entities.find((e) => e.type === 'pre');
    const code = second.text.slice(pre?.offset, (pre?.offset ?? 0) + (pre?.length ?? 0));
    expect(code).toMatch(/^ {4}total \+= step\(\d+\)/);
    expect(code.split('\n').every((line) => line.startsWith('    total'))).toBe(true);
  });

  it('renders Markdown as valid HTML with <, & and a lone * kept as text', async () => {
    h.llama.reply({
      chunks: [
        '# Title\n',
        'Use **bold**, `a<b && c`, 2 < 3 & 4 > 1, *lonely star and ',
        '[docs](https://example.com/?a=1&b=2) <script>\n',
        '```ts\nif (a < b && c) {}\n```',
      ],
      chunkDelayMs: 10,
    });
    h.tg.user(114).says('markdown');
    const expected =
      'Title\nUse bold, a<b && c, 2 < 3 & 4 > 1, *lonely star and docs <script>\nif (a < b && c) {}';
    const msg = await h.tg.waitFor(() => h.tg.botMessages(114).find((m) => m.text === expected), {
      timeoutMs: 30_000,
    });
    expect(msg.parseMode).toBe('HTML');
    expect(msg.entities.map((e) => e.type)).toEqual(['bold', 'bold', 'code', 'text_link', 'pre']);
    expect(msg.entities.find((e) => e.type === 'text_link')?.url).toBe('https://example.com/?a=1&b=2');
    expect(msg.entities.find((e) => e.type === 'pre')?.language).toBe('ts');
    expect(h.tg.calls.filter((c) => !c.ok && /parse entities/.test(c.description ?? ''))).toEqual([]);
  });

  it('sends the same text plain when Telegram rejects the entities', async () => {
    h.tg.rejectHtml((raw) => raw.includes('REJECTED'));
    try {
      h.llama.reply({
        chunks: ['This is **REJECTED** by ', 'Telegram but still delivered.'],
        chunkDelayMs: 10,
      });
      h.tg.user(115).says('fallback');
      const full = 'This is **REJECTED** by Telegram but still delivered.';
      const msg = await h.tg.waitFor(() => h.tg.botMessages(115).find((m) => m.text === full), {
        timeoutMs: 30_000,
      });
      expect(msg.parseMode).toBeUndefined();
      expect(h.tg.botMessages(115)).toHaveLength(1);
    } finally {
      h.tg.rejectHtml(undefined);
    }
  });

  it('loses nothing after 429s: retry_after is waited out and the final text arrives', async () => {
    h.tg.rateLimit('sendMessage', 1, 1);
    h.tg.rateLimit('editMessageText', 2, 1);
    const chunks = Array.from({ length: 12 }, (_, i) => `part${i} `);
    const full = chunks.join('').trimEnd();
    h.llama.reply({ chunks, chunkDelayMs: 60 });
    h.tg.user(116).says('rate limited');
    const msg = await h.tg.waitFor(() => h.tg.botMessages(116).find((m) => m.text === full), {
      timeoutMs: 10_000,
    });
    expect(h.tg.botMessages(116)).toHaveLength(1);

    const calls = h.tg.calls.filter(
      (c) =>
        Number(c.params.chat_id) === 116 && (c.method === 'sendMessage' || c.method === 'editMessageText'),
    );
    const limited = calls.filter((c) => c.errorCode === 429);
    expect(limited).toHaveLength(3);
    for (const hit of limited) {
      const retry = calls.find((c) => c.at > hit.at && c.method === hit.method);
      expect(retry).toBeDefined();
      expect((retry?.at ?? 0) - hit.at).toBeGreaterThanOrEqual(990);
    }
    expect(msg.history.at(-1)).toBe(full);
  });

  it('streams an answer that opens with a code block: nothing is sent before its first line, then edits go on', async () => {
    const { held, open } = gate();
    // Telegram refuses a message with no visible text (a block only just opened): that refusal ended the streaming.
    h.llama.reply({
      chunks: ['```python\n', 'print(1)\n', { wait: held }, 'print(2)\n```\n', 'Done.'],
      chunkDelayMs: 100,
    });
    h.tg.user(118).says('code first');
    await h.tg.waitFor(() => texts(118).some((t) => t.trimEnd() === 'print(1)'));
    open();
    await h.tg.waitFor(() => texts(118).includes('print(1)\nprint(2)\nDone.'));
    expect(texts(118)).toHaveLength(1);
    expect(h.tg.calls.filter((c) => Number(c.params.chat_id) === 118 && !c.ok)).toEqual([]);
  });

  it('a notice while a code block is open comes below the block, as text', async () => {
    // The local model cut at its output limit inside a block: its notice was shown as code, with
    // its escapes (`\\-`, `\\.`) as backslashes.
    h.llama.reply({ chunks: ['```sh\n', 'ls -la\n'], finishReason: 'length' });
    h.tg.user(111).says('a long script');
    await h.tg.waitFor(() => texts(111).some((t) => t.includes('reached its output limit')));
    const [message] = h.tg.botMessages(111);
    expect(message?.raw).toMatch(
      /^<pre><code class="language-sh">ls -la<\/code><\/pre>\n\n[^<\\]*--n-predict/,
    );
    expect(message?.text).not.toContain('\\');
  });

  it('a paragraph break not yet followed by words costs no edit: Telegram shows the same text', async () => {
    const { held, open } = gate();
    // Held after the first words, so that they are shown alone whatever the machine's load.
    h.llama.reply({ chunks: ['Hello.', { wait: held }, '\n\n', 'More.'], chunkDelayMs: 300 });
    h.tg.user(119).says('paragraphs');
    await h.tg.waitFor(() => texts(119).includes('Hello.'));
    open();
    const msg = await h.tg.waitFor(() => h.tg.botMessages(119).find((m) => m.text === 'Hello.\n\nMore.'));
    const shown = msg.history.map((t) => t.trimEnd());
    expect(shown[0]).toBe('Hello.');
    expect(shown.filter((t, i) => t === shown[i - 1])).toEqual([]);
  });

  it('shows typing again while the answer is quiet (a tool runs), until its next words', async () => {
    const { held, open } = gate();
    // The chat of the first test, which is over.
    const CHAT = 112;
    h.llama.reply({ chunks: ['Let me check.', { wait: held }, ' Done.'] });
    h.tg.user(CHAT).says('quiet');
    await h.tg.waitFor(() => texts(CHAT).includes('Let me check.'));
    const shownAt = h.tg.callsOf('sendMessage', CHAT).at(-1)?.at ?? 0;
    // Before, the chat showed nothing more until the next words, however long the tool ran.
    await h.tg.waitFor(() => h.tg.callsOf('sendChatAction', CHAT).some((c) => c.at > shownAt));
    open();
    await h.tg.waitFor(() => texts(CHAT).includes('Let me check. Done.'));
  });

  it('shows a brain error as its message, without a stack trace', async () => {
    h.llama.reply({ status: 500, error: 'the model crashed' });
    h.tg.user(117).says('break');
    const msg = await h.tg.waitFor(() => h.tg.lastBotMessage(117), { timeoutMs: 30_000 });
    await h.tg.waitFor(() => h.tg.lastBotMessage(117)?.text.includes('⚠️'), { timeoutMs: 30_000 });
    expect(msg.text).toMatch(/^⚙️ \[proxy\] ⚠️ /);
    expect(msg.text).not.toMatch(/\n\s+at /);
  });
});
