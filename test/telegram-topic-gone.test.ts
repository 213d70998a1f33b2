/**
 * What brainstem sends to a forum topic an admin closed or deleted (Telegram refuses it there for
 * good) besides an answer: a /run's result and its .txt document, a notice for that topic, the lines
 * a turn shows beside its answer (the outbox's "Not sent", "Queued", what a voice note said). Each
 * comes to the group outside the topic (its General topic), saying why, rather than being lost with
 * a log line. Against the Bot API emulator, a real tool process and the real notice sink.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatOutbox } from '../handlers/telegram/route/outbox.js';
import { html } from '../src/html.js';
import type { FakeMessage } from './fakes/telegram.js';
import { type FakeTranscription, startFakeTranscription } from './fakes/transcription.js';
import { answerHeldInTopic } from './helpers/answer-held-in-topic.js';
import { type Harness, holdOn, nextLog, startHarness } from './telegram-harness.js';

const project = mkdtempSync(path.join(tmpdir(), 'bst-tg-topic-gone-'));
const file = (name: string) => path.join(project, name);
/** Created by the test once it has closed or deleted the topic: the tool then writes its output. */
const GO = file('go');

/**
 * The lint command: says it started, waits for the test's go (the file appearing), then writes far
 * more than a message holds, so its whole output follows the result as a .txt document.
 */
const LINT_SCRIPT = `
const fs = require('node:fs');
console.log('lint started');
const timer = setInterval(() => {
  if (!fs.existsSync(${JSON.stringify(GO)})) return;
  clearInterval(timer);
  for (let i = 0; i < 400; i++) console.log('lint: src/file-' + i + '.ts: nothing to report');
}, 50);
`;

let h: Harness;
let stt: FakeTranscription;

beforeAll(async () => {
  writeFileSync(file('lint.cjs'), LINT_SCRIPT);
  stt = await startFakeTranscription();
  h = await startHarness({
    parts: { tools: true, bot: true },
    config: {
      tools: { lint: { argv: [process.execPath, file('lint.cjs')], cwd: project, readOnly: true } },
      transcription: { url: stt.baseUrl, model: 'whisper-1' },
      // Another mode on the fake llama-server: a switch to it waits as long as the fake says it is loading.
      modes: { spare: { kind: 'llama', description: 'Fake local model, another mode' } },
      // Only the test decides when a loading model is ready, however loaded the machine.
      llama: { readyTimeoutMs: 120_000 },
    },
  });
});
afterAll(async () => {
  await h?.close();
  await stt?.close();
  rmSync(project, { recursive: true, force: true });
});

/** Lets the waiting lint run write its output and end. */
const go = () => {
  if (!existsSync(GO)) writeFileSync(GO, '');
};

describe('files back for a forum topic closed while its answer is written', () => {
  it('come to the group outside the topic with the answer, each saying why in its caption', async () => {
    const FORUM = -1_000_000_004_404;
    const open = await answerHeldInTopic(
      h,
      { userId: 118, chatId: FORUM, topicId: 4 },
      'write me a report',
      'here is the report',
    );
    try {
      // What the brain wrote into the topic's outbox during its answer.
      const outbox = chatOutbox(h.service.core.config.dataDir, FORUM, 4);
      mkdirSync(outbox, { recursive: true });
      writeFileSync(path.join(outbox, 'report.txt'), 'the report\n');
      h.tg.closesTopic(FORUM, 4);
    } finally {
      open();
    }
    const doc = await h.tg.waitFor(() => h.tg.botMessages(FORUM).find((m) => m.document));
    h.llama.script();
    expect(doc.topicId).toBeUndefined();
    expect(doc.document?.fileName).toBe('report.txt');
    expect(doc.text).toMatch(/refused this file in the topic it was meant for \(TOPIC_CLOSED/);
    const answer = h.tg.botMessages(FORUM).find((m) => m.text.includes('here is the report'));
    expect(answer?.topicId).toBeUndefined();
  });
});

/** The line brainstem puts above a message its topic refused, when it sends it outside the topic instead. */
const REFUSED_CLOSED =
  '⚙️ [proxy] ⚠️ Telegram refused this message in the topic it was meant for (TOPIC_CLOSED: the topic was closed or deleted), so it comes here:';

describe('what a turn shows besides its answer, in a forum topic closed meanwhile', () => {
  it('the outbox\'s "Not sent" line comes to the group outside the topic, saying why', async () => {
    const FORUM = -1_000_000_004_405;
    const open = await answerHeldInTopic(
      h,
      { userId: 112, chatId: FORUM, topicId: 4 },
      'write me an empty file',
      'here is nothing',
    );
    try {
      const outbox = chatOutbox(h.service.core.config.dataDir, FORUM, 4);
      mkdirSync(outbox, { recursive: true });
      writeFileSync(path.join(outbox, 'empty.txt'), '');
      h.tg.closesTopic(FORUM, 4);
    } finally {
      open();
    }
    const notSent = await h.tg.waitFor(() =>
      h.tg.botMessages(FORUM).find((m) => m.text.includes('📎 Not sent')),
    );
    h.llama.script();
    expect(notSent.topicId).toBeUndefined();
    expect(notSent.text).toBe(`${REFUSED_CLOSED}\n\n⚙️ [proxy] 📎 Not sent:\n• empty.txt (empty)`);
  });

  it('the "Queued" notice of a message an admin sends into the closed topic comes outside it, saying why', async () => {
    const FORUM = -1_000_000_004_406;
    const user = h.tg.user(113, { chatId: FORUM, topicId: 5 });
    const release = holdOn(h);
    try {
      user.says('hold on');
      await h.tg.waitFor(() => h.tg.botMessages(FORUM).find((m) => m.text.startsWith('Holding')));
      h.tg.closesTopic(FORUM, 5);
      // An admin may still write in a closed topic; the bot, without the right to manage topics, may not.
      user.says('one more thing');
      const queued = await h.tg.waitFor(() =>
        h.tg.botMessages(FORUM).find((m) => m.text.includes('⏳ Queued')),
      );
      expect(queued.topicId).toBeUndefined();
      expect(queued.text).toBe(
        `${REFUSED_CLOSED}\n\n⚙️ [proxy] ⏳ Queued: I will answer once the current answer is done (/stop interrupts it).`,
      );
    } finally {
      release();
    }
    const answer = await h.tg.waitFor(() =>
      h.tg.botMessages(FORUM).find((m) => m.text.includes('echo: one more thing')),
    );
    expect(answer.topicId).toBeUndefined();
  });

  it('what a voice note said comes outside the closed topic, saying why, above its answer', async () => {
    const FORUM = -1_000_000_004_407;
    const user = h.tg.user(114, { chatId: FORUM, topicId: 8 });
    user.says('hello');
    await h.tg.waitFor(() => h.tg.botMessages(FORUM).find((m) => m.text === 'echo: hello'));
    h.tg.closesTopic(FORUM, 8);
    stt.answer({ text: 'remind me <tomorrow>' });
    user.sendsVoice();
    const answer = await h.tg.waitFor(() =>
      h.tg.botMessages(FORUM).find((m) => m.text.includes('echo: remind me <tomorrow>')),
    );
    expect(answer.topicId).toBeUndefined();
    const understood = h.tg.botMessages(FORUM).find((m) => m.text.includes('🎙'));
    expect(understood?.topicId).toBeUndefined();
    expect(understood?.text).toBe(`${REFUSED_CLOSED}\n\n🎙 “remind me <tomorrow>”`);
    expect(understood?.messageId).toBeLessThan(answer.messageId);
  });
});

describe('a /run asked in a forum topic closed before it starts', () => {
  it('its "Queued" notice, progress and result come to the group outside the topic, saying why once, its document under them', async () => {
    const FORUM = -1_000_000_004_412;
    const user = h.tg.user(111, { chatId: FORUM, topicId: 10 });
    // The lint run writes its whole output at once, past what a message holds.
    go();
    const release = holdOn(h);
    const failed = () => h.logs.filter((l) => l.msg === 'tool run in chat failed' && l.chatId === FORUM);
    try {
      user.says('hold on');
      await h.tg.waitFor(() => h.tg.botMessages(FORUM).find((m) => m.text.startsWith('Holding')));
      h.tg.closesTopic(FORUM, 10);
      // An admin may still write in a closed topic; the run waits behind the answer under way.
      user.says('lint');
      const queued = await h.tg.waitFor(() =>
        h.tg.botMessages(FORUM).find((m) => m.text.includes('⏳ Queued')),
      );
      expect(queued.topicId).toBeUndefined();
      expect(queued.text.startsWith(`${REFUSED_CLOSED}\n\n`)).toBe(true);
    } finally {
      release();
    }
    const doc = await h.tg.waitFor(() => h.tg.botMessages(FORUM).find((m) => m.document));
    // The notice became the progress, then the result: one message outside, its line kept through the edits.
    const result = h.tg.botMessages(FORUM).find((m) => /lint → lint · exit 0/.test(m.text));
    expect(result?.topicId).toBeUndefined();
    expect(result?.edits).toBeGreaterThan(0);
    expect(result?.text.startsWith(`${REFUSED_CLOSED}\n\n`)).toBe(true);
    expect(result?.text.match(/refused this/g)).toHaveLength(1);
    expect(result?.history.every((text) => text.startsWith(REFUSED_CLOSED))).toBe(true);
    expect(doc.topicId).toBeUndefined();
    expect(doc.replyTo).toBe(result?.messageId);
    expect(doc.text).toMatch(/refused this file in the topic it was meant for \(TOPIC_CLOSED/);
    expect(failed()).toEqual([]);
  });
});

/*
 * The tests below touch only their own forum group, and the brain's default echo answer or none
 * (no script, no switch): they run side by side, so a group's 1 s between two messages and 4 s
 * between two edits (handlers/telegram/throttle.ts, stream/pacer.ts) are waited out once for them
 * all rather than once per test.
 */
// One after the other: both wait for the same go file.
describe.concurrent('a /run whose forum topic goes away while it runs', () => {
  it.sequential('closed: its .txt document comes to the group outside the topic, saying why', async ({
    expect,
  }) => {
    const FORUM = -1_000_000_004_401;
    const user = h.tg.user(115, { chatId: FORUM, topicId: 6 });
    rmSync(GO, { force: true });
    try {
      user.says('lint');
      await h.tg.waitFor(() =>
        h.tg.botMessages(FORUM).find((m) => m.topicId === 6 && m.text.includes('lint started')),
      );
      h.tg.closesTopic(FORUM, 6);
    } finally {
      go();
    }
    const doc = await h.tg.waitFor(() => h.tg.botMessages(FORUM).find((m) => m.document));
    expect(doc.topicId).toBeUndefined();
    expect(doc.document?.fileName).toMatch(/^lint-\d{8}-\d{6}\.txt$/);
    expect(doc.text).toMatch(/refused this file in the topic it was meant for \(TOPIC_CLOSED/);
    // The result itself stayed in the topic (its progress message, edited there): nothing else came out.
    const outside = h.tg.botMessages(FORUM).filter((m) => m.topicId === undefined);
    expect(outside).toEqual([doc]);
  });

  it.sequential('deleted: its result and its document come to the group outside the topic, each saying why once', async ({
    expect,
  }) => {
    const FORUM = -1_000_000_004_402;
    const user = h.tg.user(116, { chatId: FORUM, topicId: 7 });
    rmSync(GO, { force: true });
    try {
      user.says('lint');
      await h.tg.waitFor(() =>
        h.tg.botMessages(FORUM).find((m) => m.topicId === 7 && m.text.includes('lint started')),
      );
      h.tg.deletesTopic(FORUM, 7);
    } finally {
      go();
    }
    const doc = await h.tg.waitFor(() => h.tg.botMessages(FORUM).find((m) => m.document));
    const result = h.tg.botMessages(FORUM).find((m) => /lint → lint · exit 0/.test(m.text) && !m.deleted);
    expect(result?.topicId).toBeUndefined();
    expect(result?.text).toMatch(
      /^⚙️ \[proxy\] ⚠️ Telegram refused this message in the topic it was meant for \(message thread not found: the topic was closed or deleted\), so it comes here:\n/,
    );
    expect(result?.text.match(/refused this/g)).toHaveLength(1);
    expect(doc.topicId).toBeUndefined();
    expect(doc.replyTo).toBe(result?.messageId);
    expect(doc.text).toMatch(/refused this file in the topic it was meant for \(message thread not found/);
    // Nothing else: no "did not arrive" notice, no second copy.
    expect(h.tg.botMessages(FORUM).filter((m) => m.topicId === undefined)).toEqual([result, doc]);
  });
});

describe.concurrent('a notice for a forum topic since deleted', () => {
  it('comes to the group outside the topic, saying why, once', async ({ expect }) => {
    const FORUM = -1_000_000_004_403;
    const user = h.tg.user(117, { chatId: FORUM, topicId: 9 });
    user.says('hello');
    await h.tg.waitFor(() => h.tg.botMessages(FORUM).find((m) => m.text === 'echo: hello'));
    h.tg.deletesTopic(FORUM, 9);
    // As a restart tells the topic the answers it cut, or how a switch asked there ended.
    h.service.core.notifier.notify({
      kind: 'shutdown',
      text: html`brainstem restarted before answering “hello”: send it again.`,
      chat: { id: FORUM, topicId: 9 },
    });
    const moved = await h.tg.waitFor(() =>
      h.tg.botMessages(FORUM).find((m) => m.text.includes('brainstem restarted before answering')),
    );
    expect(moved.topicId).toBeUndefined();
    expect(moved.text).toBe(
      '⚙️ [proxy] ⚠️ Telegram refused this message in the topic it was meant for (message thread not found: the topic was closed or deleted), so it comes here:\n\n⚙️ [proxy] brainstem restarted before answering “hello”: send it again.',
    );
    await h.tg.waitFor(() => h.service.core.notifier.pending().length === 0 || undefined);
    expect(h.tg.botMessages(FORUM).filter((m) => m.topicId === undefined)).toEqual([moved]);
  });
});

describe.concurrent('a forum topic that refused a message for good', () => {
  it('is not asked again: what follows goes straight outside it, until Telegram says it was reopened', async ({
    expect,
  }) => {
    const FORUM = -1_000_000_004_413;
    const user = h.tg.user(112, { chatId: FORUM, topicId: 11 });
    /** The calls that tried topic 11 since the test began. */
    const tried = (method: string) =>
      h.tg.callsOf(method, FORUM).filter((c) => Number(c.params.message_thread_id) === 11);
    h.tg.closesTopic(FORUM, 11);
    user.says('first');
    const first = await h.tg.waitFor(() =>
      h.tg.botMessages(FORUM).find((m) => m.text.includes('echo: first')),
    );
    expect(first.topicId).toBeUndefined();
    const refused = tried('sendMessage').length;
    expect(refused).toBeGreaterThan(0);
    expect(tried('sendMessage').every((c) => !c.ok)).toBe(true);
    const typed = tried('sendChatAction').length;
    user.says('second');
    const second = await h.tg.waitFor(() =>
      h.tg.botMessages(FORUM).find((m) => m.text.includes('echo: second')),
    );
    expect(second.topicId).toBeUndefined();
    expect(second.text).toMatch(
      /^⚙️ \[proxy\] ⚠️ Telegram refused this answer in the topic it was written for \(TOPIC_CLOSED/,
    );
    // Telegram was not asked again: no refused send, and "typing…" showed where the answer came.
    expect(tried('sendMessage')).toHaveLength(refused);
    expect(tried('sendChatAction')).toHaveLength(typed);
    const reopened = nextLog(h, (l) => l.msg === 'a forum topic was reopened: messages go into it again');
    h.tg.reopensTopic(FORUM, 11);
    expect(await reopened()).toMatchObject({ chatId: FORUM, topicId: 11 });
    user.says('third');
    const third = await h.tg.waitFor(() =>
      h.tg.botMessages(FORUM).find((m) => m.text.includes('echo: third')),
    );
    expect(third.topicId).toBe(11);
    expect(third.text).toBe('echo: third');
  });
});

describe.concurrent("brainstem's own lines about a message sent into a closed forum topic", () => {
  it('the "Not answered" line of a message a /stop right behind it stopped comes outside the topic, saying why', async ({
    expect,
  }) => {
    const FORUM = -1_000_000_004_408;
    const user = h.tg.user(119, { chatId: FORUM, topicId: 3 });
    h.tg.closesTopic(FORUM, 3);
    // One getUpdates answer holds both: /stop is handled apart, finds nothing running, and the message's turn is stopped.
    user.says('delete every draft');
    user.says('/stop');
    const told = await h.tg.waitFor(() =>
      h.tg.botMessages(FORUM).find((m) => m.text.includes('⏹ Not answered')),
    );
    expect(told.topicId).toBeUndefined();
    expect(told.text).toBe(
      `${REFUSED_CLOSED}\n\n⚙️ [proxy] ⏹ Not answered: the /stop sent after this message stopped it.`,
    );
  });

  it('the line saying a file could not be fetched comes outside the topic, saying why', async ({
    expect,
  }) => {
    const FORUM = -1_000_000_004_409;
    const user = h.tg.user(119, { chatId: FORUM, topicId: 3 });
    h.tg.closesTopic(FORUM, 3);
    // Over the 20 MB a bot may download: refused by the size its message gives, before any download.
    user.sends({
      document: {
        file_id: 'big-gone',
        file_unique_id: 'ubig-gone',
        file_name: 'scan.pdf',
        file_size: 25 * 1024 * 1024,
      },
      caption: 'summarise please',
    });
    const told = await h.tg.waitFor(() =>
      h.tg.botMessages(FORUM).find((m) => m.text.includes('could not fetch')),
    );
    expect(told.topicId).toBeUndefined();
    expect(told.text).toBe(
      `${REFUSED_CLOSED}\n\n⚙️ [proxy] I could not fetch “scan.pdf”: it is 25.0 MB, and Telegram lets bots download files of up to 20 MB only. Nothing was sent to the brain.`,
    );
  });

  it('the "not supported" reply to a sticker comes outside the topic, saying why', async ({ expect }) => {
    const FORUM = -1_000_000_004_410;
    const user = h.tg.user(119, { chatId: FORUM, topicId: 3 });
    h.tg.closesTopic(FORUM, 3);
    user.sendsSticker();
    const told = await h.tg.waitFor(() =>
      h.tg.botMessages(FORUM).find((m) => m.text.includes('not supported')),
    );
    expect(told.topicId).toBeUndefined();
    expect(told.text).toBe(
      `${REFUSED_CLOSED}\n\n⚙️ [proxy] Stickers are not supported: please send text, a photo or a document.`,
    );
  });
});

describe("brainstem's own line about a document sent into a closed forum topic during a mode switch", () => {
  it('the line a document shows while a mode switch ends comes outside the topic, saying why, and goes once the answer came', async () => {
    const FORUM = -1_000_000_004_411;
    const user = h.tg.user(119, { chatId: FORUM, topicId: 3 });
    const { switcher } = h.service.core;
    h.tg.closesTopic(FORUM, 3);
    h.llama.setLoading(true);
    let switched: Promise<unknown> = Promise.resolve();
    let wait: FakeMessage | undefined;
    try {
      switched = switcher.switchTo('spare', { source: 'api' });
      const saved = nextLog(h, (l) => l.msg === 'saved a file from Telegram' && l.chatId === FORUM);
      user.sendsDocument('notes.txt', Buffer.from('the notes'), 'summarise this', 'text/plain');
      // The document is in brainstem's hands while the switch still waits for the model.
      await saved();
      expect(switcher.isSwitching()).toBe(true);
      wait = await h.tg.waitFor(() =>
        h.tg.botMessages(FORUM).find((m) => m.text.includes('waiting for the mode switch')),
      );
      expect(wait.topicId).toBeUndefined();
      expect(wait.text).toBe(`${REFUSED_CLOSED}\n\n⏳ waiting for the mode switch to end…`);
    } finally {
      h.llama.setLoading(false);
    }
    await switched;
    try {
      const answer = await h.tg.waitFor(() =>
        h.tg.botMessages(FORUM).find((m) => m.text.includes('echo: [The user sent')),
      );
      expect(answer.topicId).toBeUndefined();
      expect(answer.text).toMatch(
        /^⚙️ \[proxy\] ⚠️ Telegram refused this answer in the topic it was written for \(TOPIC_CLOSED/,
      );
      // Once, and the line saying why the wait line came here was not written over: it goes, as the answer replaced it.
      await h.tg.waitFor(() => wait?.deleted);
      expect(wait?.edits).toBe(0);
      expect(h.tg.botMessages(FORUM)).toEqual([answer]);
    } finally {
      await switcher.switchTo('local', { source: 'api' });
    }
  });
});
