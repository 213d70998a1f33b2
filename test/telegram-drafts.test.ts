import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeCall } from './fakes/telegram.js';
import { gate } from './helpers/gate.js';
import { type Harness, startHarness } from './telegram-harness.js';

/** Native streaming drafts (`telegram.streaming: 'draft'`) against the Bot API emulator. */
let h: Harness;
const { held: holdOn, open: release } = gate();

beforeAll(async () => {
  h = await startHarness({ config: { telegram: { streaming: 'draft' } } });
});
afterAll(async () => {
  release();
  await h.close();
  // A refused draft is Telegram's answer, handled: nothing here is an internal failure.
  expect(h.logs.filter((l) => Number(l.level) >= 50)).toEqual([]);
});

const INTERVAL = 150;
const GROUP = -100700;

const words = (n: number, prefix = 'word') => Array.from({ length: n }, (_, i) => `${prefix}${i} `);
const texts = (chatId: number) => h.tg.botMessages(chatId).map((m) => m.text);
/** sendMessage calls that carried answer text (not typing, not a notice). */
const answerSends = (chatId: number, pattern: RegExp) =>
  h.tg.callsOf('sendMessage', chatId).filter((c) => c.ok && pattern.test(String(c.params.text)));
const gaps = (calls: FakeCall[]) => calls.slice(1).map((c, i) => c.at - (calls[i]?.at ?? 0));

describe('streaming drafts', () => {
  it('a private chat streams through drafts, then one sendMessage with the full text: no edit, no duplicate', async () => {
    const chunks = words(24);
    const full = chunks.join('').trimEnd();
    h.llama.reply({ chunks, chunkDelayMs: 40 });
    h.tg.user(112).says('stream please');
    await h.tg.waitFor(() => texts(112).includes(full));

    const drafts = h.tg.drafts(112);
    expect(drafts.length).toBeGreaterThanOrEqual(2);
    expect(new Set(drafts.map((d) => d.draftId)).size).toBe(1);
    for (const d of drafts) expect(full.startsWith(d.text.trimEnd())).toBe(true);
    // Paced like edits, and far fewer calls than chunks: intermediate texts were dropped, not queued.
    const draftCalls = h.tg.callsOf('sendMessageDraft', 112);
    for (const gap of gaps(draftCalls)) expect(gap).toBeGreaterThanOrEqual(INTERVAL - 5);
    expect(draftCalls.length).toBeLessThan(chunks.length);

    expect(texts(112)).toEqual([full]);
    expect(h.tg.callsOf('editMessageText', 112)).toEqual([]);
    expect(answerSends(112, /word/)).toHaveLength(1);
    const typing = h.tg.callsOf('sendChatAction', 112);
    expect(typing[0]?.at).toBeLessThanOrEqual(draftCalls[0]?.at ?? 0);
    expect(draftCalls.at(-1)?.at).toBeLessThanOrEqual(answerSends(112, /word/)[0]?.at ?? 0);
  });

  it('a group chat, where Telegram refuses drafts, is never sent one: the answer is edited in place and ends whole', async () => {
    const chunks = words(16, 'grp');
    const full = chunks.join('').trimEnd();
    h.llama.reply({ chunks, chunkDelayMs: 120 });
    const asked = h.tg.user(113, { chatId: GROUP }).says('stream in the group');
    const msg = await h.tg.waitFor(() => h.tg.botMessages(GROUP).find((m) => m.text === full), {
      timeoutMs: 15_000,
    });

    expect(h.tg.callsOf('sendMessageDraft', GROUP)).toEqual([]);
    expect(h.logs.filter((l) => l.msg === 'telegram delivery failed' && l.chatId === GROUP)).toEqual([]);
    expect(texts(GROUP)).toEqual([full]);
    expect(msg.replyTo).toBe(asked);
    expect(msg.edits).toBeGreaterThanOrEqual(1);
    for (const shown of msg.history) expect(full.startsWith(shown.trimEnd())).toBe(true);
    // Streamed changes (the final text excepted) one every 4 s at most: past 20 calls a minute, the API throttler
    // held everything to the group (the final text, an approval question, a /stop reply) for up to a minute.
    const changes = [...h.tg.callsOf('sendMessage', GROUP), ...h.tg.callsOf('editMessageText', GROUP)];
    const paced = changes.sort((a, b) => a.at - b.at).slice(0, -1);
    for (const gap of gaps(paced)) expect(gap).toBeGreaterThanOrEqual(4000 - 5);
  });

  it('a draft refused mid-answer hands the rest to edits: nothing lost, nothing twice', async () => {
    const chunks = words(30, 'mid');
    const full = chunks.join('').trimEnd();
    h.llama.reply({ chunks, chunkDelayMs: 50 });
    h.tg.user(114).says('then fail');
    await h.tg.waitFor(() => h.tg.drafts(114).length >= 2);
    h.tg.failNext('sendMessageDraft', 1, { code: 400, description: 'Bad Request: TEXTDRAFT_INVALID' }, 114);
    const msg = await h.tg.waitFor(() => h.tg.botMessages(114).find((m) => m.text === full));

    const draftCalls = h.tg.callsOf('sendMessageDraft', 114);
    const refused = draftCalls.findIndex((c) => !c.ok);
    // The refusal is the last draft: the rest of the answer went by sendMessage and edits.
    expect(refused).toBe(draftCalls.length - 1);
    expect(texts(114)).toEqual([full]);
    expect(answerSends(114, /mid/)).toHaveLength(1);
    const sentFirst = String(answerSends(114, /mid/)[0]?.params.text);
    // The first message already held at least what the last draft showed.
    expect(sentFirst.length).toBeGreaterThanOrEqual(h.tg.drafts(114).at(-1)?.text.trimEnd().length ?? 0);
    for (const shown of msg.history) expect(full.startsWith(shown.trimEnd())).toBe(true);
  });

  it('an answer over 4096 characters drafts its last piece, then sends every piece once', async () => {
    const paragraphs = Array.from(
      { length: 60 },
      (_, i) => `${String(i).padStart(2, '0')} ${'y'.repeat(95)}`,
    );
    const full = paragraphs.join('\n\n');
    const pieces = full.match(/[\s\S]{1,700}/g) ?? [];
    // The stream waits after 4900 characters until the test has seen the second piece drafted.
    let passed: () => void = () => undefined;
    const past4096 = new Promise<void>((resolve) => {
      passed = resolve;
    });
    h.llama.reply({ chunks: [...pieces.slice(0, 7), { wait: past4096 }, ...pieces.slice(7)] });
    h.tg.user(115).says('long answer');
    // Once past 4096 characters, the draft shows the piece being written, not the first one.
    await h.tg.waitFor(() =>
      h.tg.drafts(115).find((d) => /^\d\d y+/.test(d.text) && !d.text.startsWith('00 ')),
    );
    passed();
    await h.tg.waitFor(() => texts(115).length === 2 && texts(115).join('\n\n') === full);

    for (const d of h.tg.drafts(115)) expect(d.text.length).toBeLessThanOrEqual(4096);
    expect(h.tg.drafts(115).at(-1)?.text.startsWith('00 ')).toBe(false);
    expect(h.tg.callsOf('editMessageText', 115)).toEqual([]);
    expect(answerSends(115, /y{95}/)).toHaveLength(2);
  });

  it('an answer that opens with a code block is drafted from its first line, never as an empty draft', async () => {
    const { held, open } = gate();
    h.llama.reply({
      chunks: ['```python\n', 'print(1)\n', { wait: held }, 'print(2)\n```\n', 'Done.'],
      chunkDelayMs: 100,
    });
    h.tg.user(117).says('code first');
    await h.tg.waitFor(() => h.tg.drafts(117).some((d) => d.text.trimEnd() === 'print(1)'));
    open();
    await h.tg.waitFor(() => texts(117).includes('print(1)\nprint(2)\nDone.'));
    expect(texts(117)).toHaveLength(1);
    expect(h.tg.calls.filter((c) => Number(c.params.chat_id) === 117 && !c.ok)).toEqual([]);
  });

  it('a paragraph break not yet followed by words redraws nothing: Telegram shows the same text', async () => {
    const { held, open } = gate();
    // Held after the first words, so that they are drafted alone whatever the machine's load.
    h.llama.reply({ chunks: ['Hello.', { wait: held }, '\n\n', 'More.'], chunkDelayMs: 300 });
    h.tg.user(118).says('paragraphs');
    await h.tg.waitFor(() => h.tg.drafts(118).some((d) => d.text === 'Hello.'));
    open();
    await h.tg.waitFor(() => texts(118).includes('Hello.\n\nMore.'));
    const drafts = h.tg.drafts(118).map((d) => d.text.trimEnd());
    expect(drafts[0]).toBe('Hello.');
    expect(drafts.filter((d, i) => d === drafts[i - 1])).toEqual([]);
  });

  it('a queued message: its notice goes once the answer arrives, below the answer before it', async () => {
    h.llama.script((body) => {
      const last = String(body.messages?.at(-1)?.content ?? '');
      if (last === 'hold on') return { chunks: ['Thinking hard ', { wait: holdOn }, 'and done.'] };
      return { chunks: [`echo: ${last}`] };
    });
    const u = h.tg.user(116);
    u.says('hold on');
    await h.tg.waitFor(() => h.tg.drafts(116).some((d) => d.text.startsWith('Thinking hard')));
    u.says('and then?');
    const queued = await h.tg.waitFor(() => h.tg.botMessages(116).find((m) => /Queued/.test(m.text)));
    release();
    await h.tg.waitFor(() => texts(116).includes('echo: and then?'));
    await h.tg.waitFor(() => queued.deleted);
    expect(texts(116)).toEqual(['Thinking hard and done.', 'echo: and then?']);
  });
});

describe('streaming off', () => {
  let off: Harness;
  beforeAll(async () => {
    off = await startHarness({ config: { telegram: { streaming: 'off' } } });
  });
  afterAll(async () => {
    await off.close();
  });

  it('shows typing until the whole answer is there, then sends it once', async () => {
    const chunks = words(12, 'off');
    const full = chunks.join('').trimEnd();
    off.llama.reply({ chunks, chunkDelayMs: 40 });
    off.tg.user(112).says('no streaming');
    await off.tg.waitFor(() => off.tg.botMessages(112).find((m) => m.text === full));
    expect(off.tg.botMessages(112)).toHaveLength(1);
    expect(off.tg.callsOf('sendMessageDraft', 112)).toEqual([]);
    expect(off.tg.callsOf('editMessageText', 112)).toEqual([]);
    expect(off.tg.callsOf('sendChatAction', 112).length).toBeGreaterThanOrEqual(1);
  });
});
