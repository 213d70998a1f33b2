/**
 * What brainstem says in a forum topic an admin closed or deleted besides an answer (Telegram
 * refuses it there for good): the replies of its commands (/status, /help, /usage and its chart,
 * /stop, /mode, /run and a command's failure), the question of a /run that asks first and its result,
 * a mode switch's progress, the reply to an edited message, a voice note's
 * "not configured", the line about a document the local model cannot read, a stranger's refusal.
 * Each comes to the group outside the topic (its General topic) under a line saying why, rather
 * than being lost with a log line; a message edited later keeps that line. Against the Bot API
 * emulator and the fake llama-server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeMessage } from './fakes/telegram.js';
import { button } from './helpers/buttons.js';
import { type Harness, startHarness } from './telegram-harness.js';

const project = mkdtempSync(path.join(tmpdir(), 'bst-tg-topic-commands-'));
let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    parts: { tools: true, bot: true },
    config: {
      // A command that may write (not read-only): run from the chat, it asks first.
      tools: { lint: { argv: [process.execPath, '-e', 'console.log("fixed 3 files")'], cwd: project } },
      // Another mode on the fake llama-server: a switch to it waits as long as the fake says it is loading.
      modes: { spare: { kind: 'llama', description: 'Fake local model, another mode' } },
      // Only the test decides when a loading model is ready, however loaded the machine.
      llama: { readyTimeoutMs: 120_000 },
    },
  });
});
afterAll(async () => {
  await h?.close();
  rmSync(project, { recursive: true, force: true });
});

/** The line brainstem puts above a message its topic refused, when it sends it outside the topic instead. */
const REFUSED_CLOSED =
  '⚙️ [proxy] ⚠️ Telegram refused this message in the topic it was meant for (TOPIC_CLOSED: the topic was closed or deleted), so it comes here:';
const REFUSED_DELETED =
  '⚙️ [proxy] ⚠️ Telegram refused this message in the topic it was meant for (message thread not found: the topic was closed or deleted), so it comes here:';

/** The bot's first message outside any topic of `forum` whose text matches `pattern`, other than `seen`. */
const outside = (forum: number, pattern: RegExp, seen: FakeMessage[] = []) =>
  h.tg.waitFor(() =>
    h.tg
      .botMessages(forum)
      .find((m) => m.topicId === undefined && !m.deleted && !seen.includes(m) && pattern.test(m.text)),
  );

/*
 * Each test below touches only its own forum group, on the mode it starts on: they run side by
 * side, so a group's 1 s between two messages and 4 s between two edits (handlers/telegram/throttle.ts,
 * stream/pacer.ts) are waited out once for them all rather than once per test.
 */
describe.concurrent("a command's reply in a closed forum topic", () => {
  it('/status, /help, /usage, /stop, /mode and /run come to the group outside the topic, each saying why', async ({
    expect,
  }) => {
    const FORUM = -1_000_000_004_701;
    const user = h.tg.user(112, { chatId: FORUM, topicId: 4 });
    h.tg.closesTopic(FORUM, 4);
    const said: FakeMessage[] = [];
    const ask = async (command: string, pattern: RegExp) => {
      user.says(command);
      const reply = await outside(FORUM, pattern, said);
      expect(reply.text.startsWith(`${REFUSED_CLOSED}\n\n`)).toBe(true);
      said.push(reply);
      return reply;
    };
    await ask('/status', /Route/i);
    await ask('/help', /\/usage/);
    await ask('/usage', /usage/i);
    const stop = await ask('/stop', /Nothing is running/);
    expect(stop.text).toBe(`${REFUSED_CLOSED}\n\n⚙️ [proxy] Nothing is running.`);
    const menu = await ask('/mode', /Modes: pick one/);
    // The mode menu keeps its buttons out there.
    expect(JSON.stringify(menu.replyMarkup)).toContain('mode:');
    await ask('/run', /a shortcut or a tool/);
    const unknown = await ask('/run no_such_tool', /Unknown tool or shortcut/);
    expect(unknown.text).toBe(
      `${REFUSED_CLOSED}\n\n⚙️ [proxy] ❌ Unknown tool or shortcut “no_such_tool”. Send /run alone for the list.`,
    );
    // A chart is a file: the line saying why is its caption's first.
    user.says('/usage chart 7d');
    const chart = await h.tg.waitFor(() => h.tg.botMessages(FORUM).find((m) => m.photo !== undefined));
    expect(chart.topicId).toBeUndefined();
    expect(chart.text).toMatch(
      /^⚙️ \[proxy\] ⚠️ Telegram refused this file in the topic it was meant for \(TOPIC_CLOSED: the topic was closed or deleted\), so it comes here\.\n\n⚙️ \[proxy\] /,
    );
    said.push(chart);
    // Each once, and nothing in the closed topic.
    expect(h.tg.botMessages(FORUM)).toEqual(said);
  });

  it("a command's failure is told outside the closed topic, saying why", async ({ expect }) => {
    const FORUM = -1_000_000_004_702;
    const user = h.tg.user(113, { chatId: FORUM, topicId: 5 });
    h.tg.closesTopic(FORUM, 5);
    // Refused for another reason than the topic: the command fails, and its failure must still be told.
    h.tg.failNext('sendMessage', 1, { code: 400, description: 'Bad Request: CHAT_RESTRICTED' }, FORUM);
    user.says('/status');
    const told = await outside(FORUM, /\/status failed/);
    expect(told.text).toMatch(
      new RegExp(`^${escapeRegExp(REFUSED_CLOSED)}\\n\\n⚙️ \\[proxy\\] /status failed: `),
    );
    expect(h.tg.botMessages(FORUM)).toEqual([told]);
  });
});

describe.concurrent('a /run that asks first, in a closed forum topic', () => {
  it('asks outside the topic, saying why, and the same message, still saying why, shows the result once confirmed', async ({
    expect,
  }) => {
    const FORUM = -1_000_000_004_709;
    const user = h.tg.user(119, { chatId: FORUM, topicId: 8 });
    h.tg.closesTopic(FORUM, 8);
    user.says('/run lint');
    const question = await outside(FORUM, /Run lint\?/);
    expect(question.text).toBe(`${REFUSED_CLOSED}\n\n⚙️ [proxy] ❓ Run lint? It changes things.`);
    user.presses(question.messageId, button(question, /Confirm/));
    await h.tg.waitFor(() => /exit 0/.test(question.text) || undefined);
    expect(question.text).toMatch(
      new RegExp(`^${escapeRegExp(REFUSED_CLOSED)}\n\n⚙️ \\[proxy\\] ✅ lint → lint · exit 0 · `),
    );
    expect(question.text).toContain('fixed 3 files');
    expect(h.tg.botMessages(FORUM)).toEqual([question]);
  });
});

describe.concurrent("brainstem's lines about a message in a closed forum topic", () => {
  it('the reply to an edit made into a command comes outside the topic, saying why', async ({ expect }) => {
    const FORUM = -1_000_000_004_704;
    const user = h.tg.user(115, { chatId: FORUM, topicId: 3 });
    const asked = user.says('what time is it');
    await h.tg.waitFor(() => h.tg.botMessages(FORUM).find((m) => m.text === 'echo: what time is it'));
    h.tg.closesTopic(FORUM, 3);
    user.edits(asked, '/status');
    const told = await outside(FORUM, /An edited message is not run/);
    expect(told.text).toBe(
      `${REFUSED_CLOSED}\n\n⚙️ [proxy] ✏️ An edited message is not run as a command, a mode switch or a shortcut: send it again as a new message.`,
    );
  });

  it('a voice note with transcription not configured is told so outside the topic, saying why', async ({
    expect,
  }) => {
    const FORUM = -1_000_000_004_705;
    const user = h.tg.user(116, { chatId: FORUM, topicId: 3 });
    h.tg.closesTopic(FORUM, 3);
    user.sendsVoice();
    const told = await outside(FORUM, /transcri/i);
    expect(told.text.startsWith(`${REFUSED_CLOSED}\n\n`)).toBe(true);
    expect(h.tg.botMessages(FORUM)).toEqual([told]);
  });

  it('a document the local model cannot read is told so outside the topic, saying why', async ({
    expect,
  }) => {
    const FORUM = -1_000_000_004_706;
    const user = h.tg.user(117, { chatId: FORUM, topicId: 3 });
    h.tg.closesTopic(FORUM, 3);
    user.sendsDocument(
      'blob.bin',
      new Uint8Array([0, 1, 2, 3, 255, 254]),
      'what is this',
      'application/octet-stream',
    );
    const told = await outside(FORUM, /only reads text/);
    expect(
      told.text.startsWith(`${REFUSED_CLOSED}\n\n⚙️ [proxy] The local model of mode local only reads text`),
    ).toBe(true);
  });

  it("a stranger's refusal comes outside the topic, saying why", async ({ expect }) => {
    const FORUM = -1_000_000_004_707;
    const stranger = h.tg.user(601, { chatId: FORUM, topicId: 3 });
    h.tg.closesTopic(FORUM, 3);
    stranger.says('/status');
    const told = await outside(FORUM, /Your Telegram user id is 601/);
    expect(told.text).toBe(
      `${REFUSED_CLOSED}\n\n⚙️ [proxy] This bot is private. Your Telegram user id is 601: give it to the owner if you should have access.`,
    );
  });
});

describe.concurrent('in a forum topic still open', () => {
  it('a command is answered in the topic, as before, with no line', async ({ expect }) => {
    const FORUM = -1_000_000_004_708;
    const user = h.tg.user(118, { chatId: FORUM, topicId: 4 });
    user.says('/stop');
    const reply = await h.tg.waitFor(() =>
      h.tg.botMessages(FORUM).find((m) => m.text.includes('Nothing is running')),
    );
    expect(reply.topicId).toBe(4);
    expect(reply.text).toBe('⚙️ [proxy] Nothing is running.');
  });
});

// The mode switches change what every chat is on: each runs alone, after the tests above.
describe('a mode switch asked in a deleted forum topic', () => {
  it('shows its progress outside the topic, saying why, and its outcome in the same message, still saying why', async () => {
    const FORUM = -1_000_000_004_703;
    const user = h.tg.user(114, { chatId: FORUM, topicId: 6 });
    const { switcher } = h.service.core;
    h.tg.deletesTopic(FORUM, 6);
    h.llama.setLoading(true);
    let progress: FakeMessage | undefined;
    try {
      user.says('/mode spare');
      progress = await outside(FORUM, /Switching to spare/);
      expect(progress.text).toBe(
        `${REFUSED_DELETED}\n\n⚙️ [proxy] Switching to spare… (waiting until it answers)`,
      );
    } finally {
      h.llama.setLoading(false);
    }
    try {
      await h.tg.waitFor(() => (progress?.edits ?? 0) > 0 && !/Switching/.test(progress?.text ?? ''));
      expect(progress.text.startsWith(`${REFUSED_DELETED}\n\n`)).toBe(true);
      expect(progress.text).toMatch(/spare/);
      expect(h.tg.botMessages(FORUM)).toEqual([progress]);
    } finally {
      await switcher.switchTo('local', { source: 'api' });
    }
  });
});

describe('a mode button pressed on the menu /mode showed outside a closed topic', () => {
  it('shows the switch in the same message, still saying why it is out there', async () => {
    const FORUM = -1_000_000_004_710;
    const user = h.tg.user(111, { chatId: FORUM, topicId: 9 });
    const { switcher } = h.service.core;
    h.tg.closesTopic(FORUM, 9);
    user.says('/mode');
    const menu = await outside(FORUM, /Modes: pick one/);
    expect(menu.text.startsWith(`${REFUSED_CLOSED}\n\n`)).toBe(true);
    try {
      // The press is another update than the /mode that sent the menu.
      user.presses(menu.messageId, button(menu, /spare/));
      await h.tg.waitFor(() => (menu.edits > 0 && !/Modes: pick one/.test(menu.text)) || undefined);
      expect(menu.text.startsWith(`${REFUSED_CLOSED}\n\n`)).toBe(true);
      expect(menu.text).toMatch(/spare/);
      expect(h.tg.botMessages(FORUM)).toEqual([menu]);
    } finally {
      await switcher.switchTo('local', { source: 'api' });
    }
  });
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
