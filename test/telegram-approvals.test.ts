import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modeCwd } from '../src/config.js';
import { button, buttonsOf } from './helpers/buttons.js';
import { claudeOnFake, touchWithBash } from './helpers/claude-fake.js';
import { CLAUDE_BIN } from './helpers/service.js';
import { type Harness, type HarnessOptions, OWNER, sleep, startHarness } from './telegram-harness.js';

/**
 * Tool approvals from Telegram with the real `claude` CLI: the fake Anthropic
 * API asks for `Bash touch <words>.txt` (outside the assistant mode's
 * allow-list) and the question is answered, or not, with the buttons.
 */
const GROUP = -100800;
/** Allowed to use the bot, not to answer approvals. */
const NOT_APPROVER = 119;
/** Not allowed at all. */
const STRANGER = 999;
/** An approver who is not one of the allowed users. */
const OUTSIDE_APPROVER = 990;
const NOTIFY_OTHER = 118;

const claude = claudeOnFake({ script: touchWithBash('Create <the> file') });
let h: Harness;

const harness = (
  claudeConfig: Record<string, unknown> = {},
  more: Pick<HarnessOptions, 'env' | 'atListen' | 'beforeBot' | 'tg' | 'llama' | 'dir'> = {},
) =>
  startHarness({
    ...more,
    env: { CLAUDE_BIN, ...more.env },
    config: {
      defaultMode: 'assistant',
      claude: { env: claude.cli.env, maxRetries: 0, ...claudeConfig },
      telegram: {
        // The default: drafts in private chats, edits in the group.
        streaming: 'draft',
        approvers: [OWNER, 112, 113, 114, 115, NOTIFY_OTHER, OUTSIDE_APPROVER],
        notifyChats: [OWNER, NOTIFY_OTHER],
      },
    },
  });

beforeAll(async () => {
  h = await harness();
});
afterAll(async () => {
  await h?.close();
});

const questionIn = (hh: Harness, chatId: number, file: string) =>
  hh.tg.waitFor(
    () =>
      hh.tg
        .botMessages(chatId)
        .find((m) => /Claude (wants to use|veut utiliser) Bash/.test(m.text) && m.text.includes(file)),
    { timeoutMs: 20_000 },
  );
const answerIn = (hh: Harness, chatId: number, pattern: RegExp) =>
  hh.tg.waitFor(() => hh.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs: 20_000 });
const fileIn = (hh: Harness, name: string) =>
  path.join(modeCwd(hh.service.core.config, hh.service.core.modes.get('assistant')), name);
const resultsFor = (words: string) =>
  claude.fake
    .mainRequests()
    .filter((r) => r.userTurns.includes(words))
    .flatMap((r) => r.toolResults);
/** The approval decisions the audit log holds for one caller (each test asks in a chat of its own). */
const auditOf = (hh: Harness, caller: string) =>
  hh.service.core.db
    .prepare(
      "SELECT tool, args, ok, error FROM audit WHERE tool LIKE 'approval:%' AND caller = ? ORDER BY id",
    )
    .all(caller);
const approval = (args: object, error: string | null = null) => ({
  tool: 'approval:Bash',
  args: JSON.stringify(args),
  ok: error === null ? 1 : 0,
  error,
});

/** Everything the chat saw while the answer streamed: drafts and each state of each message. */
const everShown = (hh: Harness, chatId: number) => [
  ...hh.tg.drafts(chatId).map((d) => d.text),
  ...hh.tg.botMessages(chatId).flatMap((m) => m.history),
];

describe('tool approvals in Telegram', { timeout: 60_000 }, () => {
  it('asks with the tool, its command and three buttons; "Allow once" runs it and the answer completes', async () => {
    const u = h.tg.user(112);
    u.says('allow-once');
    const question = await questionIn(h, 112, 'touch allow-once.txt');
    expect(question.text).toBe(
      '⚙️ [proxy] 🔐 Claude wants to use Bash:\ntouch allow-once.txt\nCreate <the> file',
    );
    expect(question.entities.map((e) => e.type)).toEqual(['bold', 'pre', 'italic']);
    expect(buttonsOf(question).map((b) => b.text)).toEqual([
      '✅ Allow once',
      '♾️ Allow for this session',
      '✖️ Deny',
    ]);
    await h.tg.waitFor(() => everShown(h, 112).some((s) => s === '⏳ Waiting for approval to use Bash…'));
    expect(existsSync(fileIn(h, 'allow-once.txt'))).toBe(false);

    u.presses(question.messageId, button(question, /Allow once/));
    await answerIn(h, 112, /^Done\.$/);
    expect(existsSync(fileIn(h, 'allow-once.txt'))).toBe(true);
    expect(question.text).toMatch(/\n\n✅ Allowed once by User112\.$/);
    expect(buttonsOf(question)).toEqual([]);
    expect(h.tg.callbackAnswers.at(-1)?.text).toBe('✅ Allowed once by User112.');
    expect(resultsFor('allow-once')).toEqual([expect.objectContaining({ isError: false })]);
    expect(auditOf(h, 'telegram:112')).toEqual([
      approval({ summary: 'touch allow-once.txt', by: 'approver', scope: 'once' }),
    ]);
  });

  it('once allowed, the answer says the tool runs instead of still waiting for the approval', async () => {
    const chat = -100_802;
    const u = h.tg.user(112, { chatId: chat });
    // The command reads a pipe the test writes once it has seen the message: it runs until then.
    const pipe = fileIn(h, 'hold-running.txt');
    await mkdir(path.dirname(pipe), { recursive: true });
    execFileSync('mkfifo', [pipe]);
    u.says('allowed-running.txt && cat hold-running');
    const question = await questionIn(h, chat, 'touch allowed-running.txt && cat hold-running.txt');
    const answer = await answerIn(h, chat, /^⏳ Waiting for approval to use Bash…$/);
    u.presses(question.messageId, button(question, /Allow once/));
    await h.tg.waitFor(() => answer.text === '⏳ Running Bash…', { timeoutMs: 20_000 });
    expect(existsSync(fileIn(h, 'allowed-running.txt'))).toBe(true);
    await writeFile(pipe, 'go');
    await h.tg.waitFor(() => answer.text === 'Done.', { timeoutMs: 20_000 });
  });

  it('a command too long for one message is shown as far as it fits, saying how much is not; "Allow once" runs all of it', async () => {
    const u = h.tg.user(115);
    // Few long names rather than many short ones: the CLI takes time per word
    // to check a Bash command, seconds for 660 words on a busy machine.
    const names = Array.from({ length: 17 }, (_, i) =>
      `f${String(i + 1).padStart(2, '0')}-`.padEnd(240, 'x'),
    );
    const words = names.join(' ');
    const command = `touch ${words}.txt`;
    u.says(words);
    const question = await questionIn(h, 115, `touch ${names[0]} f02-`);
    // Room is left for the outcome line added below it.
    expect(question.text.length).toBeLessThanOrEqual(4096 - 200);
    const [, shown = '', more = ''] =
      /^⚙️ \[proxy\] 🔐 Claude wants to use Bash:\n([\s\S]*)…\nOnly the start is shown: (\d+) more characters are not\. Allowing allows all of it\.\nCreate <the> file$/.exec(
        question.text,
      ) ?? [];
    expect(shown.length).toBeGreaterThan(3_500);
    expect(command.startsWith(shown)).toBe(true);
    expect(Number(more)).toBe(command.length - shown.length);

    u.presses(question.messageId, button(question, /Allow once/));
    await answerIn(h, 115, /^Done\.$/);
    expect(question.text).toMatch(/\n\n✅ Allowed once by User115\.$/);
    // The end of the command, past what the question showed, ran too.
    expect(shown).not.toContain(names[16]);
    expect(existsSync(fileIn(h, names[15] ?? ''))).toBe(true);
    expect(existsSync(fileIn(h, `${names[16]}.txt`))).toBe(true);
    // The audit row keeps the start of it, and its length.
    expect(auditOf(h, 'telegram:115')).toEqual([
      approval({
        summary: `${command.slice(0, 200)}…(${command.length} chars)`,
        by: 'approver',
        scope: 'once',
      }),
    ]);
  });

  it('a command with characters that reorder or hide text shows each as its code, so what is approved is what is read', async () => {
    const u = h.tg.user(114);
    // A right-to-left isolate and override, a zero-width space and joiner: Telegram applies them as
    // it shows the question, so the command read was not the command run. A joiner inside an emoji
    // (a woman and a laptop, a white flag and a rainbow) makes the one emoji shown, and stays.
    const words = 'bidi\u2067x\u2069y\u202Ez\u200Bw\u200Dv👩\u200D💻🏳\uFE0F\u200D🌈';
    u.says(words);
    const question = await questionIn(h, 114, 'touch bidi');
    expect(question.text).toBe(
      '⚙️ [proxy] 🔐 Claude wants to use Bash:\ntouch bidi⟨U+2067⟩x⟨U+2069⟩y⟨U+202E⟩z⟨U+200B⟩w⟨U+200D⟩v👩\u200D💻🏳\uFE0F\u200D🌈.txt\nCreate <the> file',
    );
    u.presses(question.messageId, button(question, /Deny/));
    await h.tg.waitFor(() => question.text.includes('Denied'));
  });

  it('"Deny": nothing runs, the model gets the denial, the question says who denied', async () => {
    const u = h.tg.user(113, { languageCode: 'fr' });
    u.says('deny-me');
    const question = await questionIn(h, 113, 'touch deny-me.txt');
    expect(buttonsOf(question).map((b) => b.text)).toEqual([
      '✅ Autoriser une fois',
      '♾️ Autoriser pour cette session',
      '✖️ Refuser',
    ]);
    u.presses(question.messageId, button(question, /Refuser/));
    await answerIn(h, 113, /^Done\.$/);
    expect(existsSync(fileIn(h, 'deny-me.txt'))).toBe(false);
    expect(resultsFor('deny-me')).toEqual([
      expect.objectContaining({
        isError: true,
        content: 'Permission to use Bash was denied by User113 in Telegram.',
      }),
    ]);
    expect(question.text).toMatch(/\n\n✖️ Refusé par User113\.$/);
    expect(auditOf(h, 'telegram:113')).toEqual([
      approval(
        { summary: 'touch deny-me.txt', by: 'approver' },
        'Permission to use Bash was denied by User113 in Telegram.',
      ),
    ]);
  });

  it('a press by someone who is not an approver is refused and changes nothing; an approver then answers', async () => {
    const asker = h.tg.user(114, { chatId: GROUP });
    const other = h.tg.user(NOT_APPROVER, { chatId: GROUP });
    const stranger = h.tg.user(STRANGER, { chatId: GROUP });
    asker.says('group-file');
    const question = await questionIn(h, GROUP, 'touch group-file.txt');
    const before = { text: question.text, edits: question.edits, buttons: buttonsOf(question) };

    const refused = other.presses(question.messageId, button(question, /Allow once/));
    const kicked = stranger.presses(question.messageId, button(question, /Allow once/));
    await h.tg.waitFor(() =>
      [refused, kicked].every((id) => h.tg.callbackAnswers.some((a) => a.callbackQueryId === id)),
    );
    const alerts = h.tg
      .callsOf('answerCallbackQuery')
      .filter((c) => [refused, kicked].includes(String(c.params.callback_query_id)));
    expect(alerts.map((c) => [c.params.text, c.params.show_alert])).toEqual([
      ['Only an approver can answer this; nothing changed.', true],
      [expect.stringMatching(/This bot is private/), true],
    ]);
    // A chat's presses are handled one after the other: once a third is answered, what the
    // first two did, had either been taken for an answer, is done.
    const third = other.presses(question.messageId, button(question, /Allow once/));
    await h.tg.waitFor(() => h.tg.callbackAnswers.some((a) => a.callbackQueryId === third));
    expect({ text: question.text, edits: question.edits, buttons: buttonsOf(question) }).toEqual(before);
    expect(existsSync(fileIn(h, 'group-file.txt'))).toBe(false);
    expect(h.tg.botMessages(GROUP).some((m) => m.text === 'Done.')).toBe(false);

    asker.presses(question.messageId, button(question, /this session/));
    await answerIn(h, GROUP, /^Done\.$/);
    expect(existsSync(fileIn(h, 'group-file.txt'))).toBe(true);
    expect(question.text).toMatch(/\n\n✅ Allowed for this session by User114\.$/);
    // The refused presses decided nothing: one decision, the approver's.
    expect(auditOf(h, `telegram:${GROUP}`)).toEqual([
      approval({ summary: 'touch group-file.txt', by: 'approver', scope: 'session' }),
    ]);
  });

  it('an approver who is not an allowed user answers the question, and is refused anything else', async () => {
    const chat = -100_801;
    const approver = h.tg.user(OUTSIDE_APPROVER, { chatId: chat });
    h.tg.user(117, { chatId: chat }).says('outside-approver');
    const question = await questionIn(h, chat, 'touch outside-approver.txt');
    const press = approver.presses(question.messageId, button(question, /Allow once/));
    await answerIn(h, chat, /^Done\.$/);
    expect(h.tg.callbackAnswers.find((a) => a.callbackQueryId === press)?.text).toBe(
      '✅ Allowed once by User990.',
    );
    expect(existsSync(fileIn(h, 'outside-approver.txt'))).toBe(true);
    expect(question.text).toMatch(/\n\n✅ Allowed once by User990\.$/);

    approver.says('and now me, @brainstem_test_bot');
    const refusal = await answerIn(h, chat, /This bot is private/);
    expect(refusal.text).toContain('Your Telegram user id is 990');
  });

  it('in the private chat of someone who is not an approver, asks each approver in their own chat; the asker sees the answer', async () => {
    h.tg.user(NOT_APPROVER).says('unseen-chat');
    const asked = await questionIn(h, NOT_APPROVER, 'touch unseen-chat.txt');
    // No buttons where nobody could press them, and the asker is told who answers.
    expect(buttonsOf(asked)).toEqual([]);
    expect(asked.text).toBe(
      '⚙️ [proxy] 🔐 Claude wants to use Bash:\ntouch unseen-chat.txt\nCreate <the> file\nOnly an approver can answer: each was asked in their own chat with the bot. Their answer shows here.',
    );
    const owners = await questionIn(h, OWNER, 'touch unseen-chat.txt');
    expect(owners.text).toContain('(mode assistant, conversation telegram:119)');
    const other = await questionIn(h, OUTSIDE_APPROVER, 'touch unseen-chat.txt');

    h.tg.user(OWNER).presses(owners.messageId, button(owners, /Allow once/));
    await answerIn(h, NOT_APPROVER, /^Done\.$/);
    expect(existsSync(fileIn(h, 'unseen-chat.txt'))).toBe(true);
    await h.tg.waitFor(() => asked.text.endsWith('\n\n✅ Allowed once by User111.'));
    await h.tg.waitFor(() => other.text.endsWith('\n\n✅ Allowed once by User111.'));
    expect(buttonsOf(other)).toEqual([]);
  });

  it('when no approver can be written to, the question is denied at once and the asker is told', async () => {
    const approvers = [OWNER, 112, 113, 114, 115, NOTIFY_OTHER, OUTSIDE_APPROVER];
    for (const id of approvers) {
      h.tg.failNext(
        'sendMessage',
        1,
        { code: 403, description: "Forbidden: bot can't initiate conversation with a user" },
        id,
      );
    }
    h.tg.user(NOT_APPROVER).says('nobody-reached');
    const asked = await questionIn(h, NOT_APPROVER, 'touch nobody-reached.txt');
    await h.tg.waitFor(() => asked.text.endsWith('\n\n⚠️ No approver could be asked: denied.'));
    await answerIn(h, NOT_APPROVER, /could not be asked, so it was denied/);
    await answerIn(h, NOT_APPROVER, /^Done\.$/);
    expect(existsSync(fileIn(h, 'nobody-reached.txt'))).toBe(false);
    expect(resultsFor('nobody-reached')).toEqual([expect.objectContaining({ isError: true })]);
  });

  it('a turn from the OpenAI endpoint asks every notify chat; the first answer wins and every copy shows it', async () => {
    const { service } = h;
    const reply = fetch(`${service.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${service.core.apiToken.token}`,
        'content-type': 'application/json',
        'x-session-key': 'openclaw:main',
      },
      body: JSON.stringify({ model: 'assistant', messages: [{ role: 'user', content: 'from-endpoint' }] }),
    });
    const mine = await questionIn(h, OWNER, 'touch from-endpoint.txt');
    const theirs = await questionIn(h, NOTIFY_OTHER, 'touch from-endpoint.txt');
    expect(mine.text).toContain('(mode assistant, conversation openclaw:main)');

    const theirsOnce = button(theirs, /Allow once/);
    h.tg.user(OWNER).presses(mine.messageId, button(mine, /Allow once/));
    const body = (await (await reply).json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]?.message.content).toBe('Done.');
    expect(existsSync(fileIn(h, 'from-endpoint.txt'))).toBe(true);
    await h.tg.waitFor(() => theirs.text.endsWith('✅ Allowed once by User111.'));
    expect(mine.text).toBe(theirs.text);
    expect(buttonsOf(theirs)).toEqual([]);

    // The other copy is closed too: a late press there changes nothing.
    const late = h.tg.user(NOTIFY_OTHER).presses(theirs.messageId, theirsOnce);
    const closed = await h.tg.waitFor(() => h.tg.callbackAnswers.find((a) => a.callbackQueryId === late));
    expect(closed.text).toBe('This question is closed.');
    expect(auditOf(h, 'openclaw:main')).toEqual([
      approval({ summary: 'touch from-endpoint.txt', by: 'approver', scope: 'once' }),
    ]);
  });

  it('/stop while the question waits: nothing runs and the question says the answer stopped', async () => {
    const u = h.tg.user(116);
    u.says('stop-me');
    const question = await questionIn(h, 116, 'touch stop-me.txt');
    u.says('/stop');
    await h.tg.waitFor(() => question.text.endsWith('⏹ The answer stopped before a decision: nothing ran.'));
    // What showed the wait now says the answer stopped.
    await answerIn(h, 116, /^⏹ stopped$/);
    expect(buttonsOf(question)).toEqual([]);
    expect(existsSync(fileIn(h, 'stop-me.txt'))).toBe(false);
    expect(auditOf(h, 'telegram:116')).toEqual([
      approval(
        { summary: 'touch stop-me.txt', by: 'cancelled' },
        'The turn was stopped before the approval was answered.',
      ),
    ]);
  });
});

describe('an approval nobody answers', { timeout: 60_000 }, () => {
  let quick: Harness;
  beforeAll(async () => {
    quick = await harness({ approvalTimeoutMs: 2_000 });
  });
  afterAll(async () => {
    await quick?.close();
  });

  it('is denied at the limit: the user is told in the answer and the question says it timed out', async () => {
    const u = quick.tg.user(115);
    u.says('too-late');
    const question = await questionIn(quick, 115, 'touch too-late.txt');
    const answer = await answerIn(quick, 115, /Done\.$/);
    expect(answer.text).toBe(
      '⚙️ [proxy] Nobody answered the approval request for Bash (touch too-late.txt) within 2 s, so it was denied.\n\nDone.',
    );
    await quick.tg.waitFor(() => question.text.endsWith('⌛ No answer within 2.0 s: denied.'));
    expect(buttonsOf(question)).toEqual([]);
    expect(existsSync(fileIn(quick, 'too-late.txt'))).toBe(false);
    expect(resultsFor('too-late')).toEqual([
      expect.objectContaining({
        isError: true,
        content: expect.stringMatching(/nobody answered the approval request within 2 s/),
      }),
    ]);
    const row = quick.service.core.db
      .prepare("SELECT args, ok FROM audit WHERE tool = 'approval:Bash' AND caller = 'telegram:115'")
      .get();
    expect(row).toEqual({ args: JSON.stringify({ summary: 'touch too-late.txt', by: 'timeout' }), ok: 0 });
  });
});

describe('an approval question left open by a restart', { timeout: 90_000 }, () => {
  let before: Harness | undefined;
  let after: Harness | undefined;
  afterAll(async () => {
    await after?.close();
    await before?.close();
  });

  it('its old buttons answer nothing asked after the restart, in any chat', async () => {
    before = await harness();
    before.tg.user(112).says('before-restart');
    const old = await questionIn(before, 112, 'touch before-restart.txt');
    const oldSession = button(old, /this session/);
    // brainstem goes down without closing the question (as after a crash, or Telegram
    // refusing the "restarting" edit): the old question keeps its buttons.
    before.tg.failNext(
      'editMessageText',
      50,
      { code: 400, description: "Bad Request: message can't be edited" },
      112,
    );
    await before.stopService();
    expect(buttonsOf(old)).toHaveLength(3);

    after = await harness({}, { tg: before.tg, llama: before.llama, dir: before.dir });
    const { tg } = after;
    tg.user(113).says('after-restart');
    const fresh = await questionIn(after, 113, 'touch after-restart.txt');
    const pressed = (id: string) =>
      tg.waitFor(() => tg.callbackAnswers.find((a) => a.callbackQueryId === id));
    // The old button, and the new question's own data sent from the old message (made up by a client).
    const stale = await pressed(tg.user(112).presses(old.messageId, oldSession));
    const madeUp = await pressed(tg.user(112).presses(old.messageId, button(fresh, /this session/)));
    expect([stale.text, madeUp.text]).toEqual(['This question is closed.', 'This question is closed.']);
    await tg.waitFor(() => buttonsOf(old).length === 0);

    // The new question still waits for its own answer, and gets it.
    expect(buttonsOf(fresh)).toHaveLength(3);
    tg.user(113).presses(fresh.messageId, button(fresh, /Deny/));
    await answerIn(after, 113, /^Done\.$/);
    expect(fresh.text).toMatch(/\n\n✖️ Denied by User113\.$/);
    expect(existsSync(fileIn(after, 'after-restart.txt'))).toBe(false);
    expect(auditOf(after, 'telegram:113')).toEqual([
      approval(
        { summary: 'touch after-restart.txt', by: 'approver' },
        'Permission to use Bash was denied by User113 in Telegram.',
      ),
    ]);
  });
});

describe('a turn that asks before the bot is built', { timeout: 60_000 }, () => {
  it('waits for the bot, then asks in Telegram; "Allow once" runs the tool and the answer completes', async () => {
    const token = 'early-turn-token-0123456789abcdef';
    let reply: Promise<Response> | undefined;
    const early = await harness(
      {},
      {
        env: { BRAINSTEM_API_TOKEN: token },
        // A turn from the OpenAI endpoint comes with the listen, before the service waits for
        // its first answer. That answer needs the approval, which needs the bot: the wait must
        // give up (BACKGROUND_GRACE_MS) rather than hold the bot back for good.
        atListen: (url) => {
          reply = fetch(`${url}/v1/chat/completions`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${token}`,
              'content-type': 'application/json',
              'x-session-key': 'early:1',
            },
            body: JSON.stringify({ model: 'assistant', messages: [{ role: 'user', content: 'before-bot' }] }),
          });
        },
        // The bot is built only once the turn's approval request waits for it.
        beforeBot: async (_url, logs) => {
          const waiting = () => logs.some((l) => l.msg === 'approval waits for the Telegram bot to start');
          for (const deadline = Date.now() + 30_000; !waiting(); await sleep(20)) {
            if (Date.now() > deadline) throw new Error('the turn never asked for an approval');
          }
        },
      },
    );
    try {
      const question = await questionIn(early, OWNER, 'touch before-bot.txt');
      expect(question.text).toContain('(mode assistant, conversation early:1)');
      early.tg.user(OWNER).presses(question.messageId, button(question, /Allow once/));
      const body = (await (await reply)?.json()) as { choices: { message: { content: string } }[] };
      expect(body.choices[0]?.message.content).toBe('Done.');
      expect(existsSync(fileIn(early, 'before-bot.txt'))).toBe(true);
      expect(auditOf(early, 'early:1')).toEqual([
        approval({ summary: 'touch before-bot.txt', by: 'approver', scope: 'once' }),
      ]);
    } finally {
      await early.close();
    }
  });
});
