/**
 * Tools from Telegram, end to end: the Bot API emulator, real SQLite, real
 * processes (a slow node script as the test command, a real Makefile, git).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { paceFor } from '../handlers/telegram/stream/pacer.js';
import { text } from './fakes/anthropic.js';
import type { FakeMessage } from './fakes/telegram.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { killPidIn } from './helpers/procs.js';
import { CLAUDE_BIN } from './helpers/service.js';
import { type Harness, OWNER, startHarness, turnsDone } from './telegram-harness.js';

const project = mkdtempSync(path.join(tmpdir(), 'bst-tg-tools-'));
const file = (name: string) => path.join(project, name);
/** Long enough that no test's press races it, however busy the machine. */
const CONFIRM_MS = 120_000;
/** The time the expiry's own test (and harness) gives a question. */
const EXPIRY_MS = 1_000;
/** An approver who is not one of the allowed users. */
const OUTSIDE_APPROVER = 990;
let h: Harness;

/** The test command: five lines 400 ms apart (one coloured), so progress shows before the end. */
const TESTS_SCRIPT = `
const lines = ['collecting 4 tests', 'test a … ok', 'test b … ok', '\\u001b[32mtest c … ok\\u001b[0m', 'test d … ok'];
let i = 0;
const timer = setInterval(() => {
  console.log(lines[i++]);
  if (i === lines.length) { clearInterval(timer); console.log('4 passed'); }
}, 400);
`;
/** The lint command: far more output than a message holds. */
const LINT_SCRIPT = `for (let i = 0; i < 400; i++) console.log('lint: src/file-' + i + '.ts: nothing to report');`;
const MAKEFILE = `deploy:
\t@echo "deploying"; touch deployed.txt; echo "deployed"
release:
\t@touch released.txt
hang:
\t@echo "waiting"; sleep 30
serve:
\t@echo "serving"; sh -c 'echo $$$$ > serve.pid; exec sleep 300' &
check:
\t@echo "all checks passed"
`;

beforeAll(async () => {
  writeFileSync(file('tests.cjs'), TESTS_SCRIPT);
  writeFileSync(file('lint.cjs'), LINT_SCRIPT);
  writeFileSync(file('Makefile'), MAKEFILE);
  const git = (...args: string[]) => execFileSync('git', args, { cwd: project });
  git('init', '-q', '-b', 'main');
  git('add', 'Makefile');
  git('-c', 'user.email=dev@example.com', '-c', 'user.name=Dev', 'commit', '-q', '-m', 'feat: a Makefile');
  h = await startTools(CONFIRM_MS);
});

/** brainstem with the tools on the test project, its confirmation questions waiting `confirmTimeoutMs`. */
function startTools(confirmTimeoutMs: number): Promise<Harness> {
  return startHarness({
    parts: { tools: true, bot: true },
    config: {
      telegram: { confirmTimeoutMs, approvers: [OWNER, OUTSIDE_APPROVER] },
      // A recording's transcript is its bytes as text: a voice note says what the test puts in it.
      transcription: {
        command: [
          process.execPath,
          '-e',
          "process.stdout.write(require('node:fs').readFileSync(process.argv[1]))",
          '{file}',
        ],
      },
      tools: {
        git: { repo: project },
        make: { targets: ['deploy', 'release', 'hang', 'serve', 'check'] },
        tests: { argv: [process.execPath, file('tests.cjs')], readOnly: true },
        lint: { argv: [process.execPath, file('lint.cjs')], readOnly: true },
        shortcuts: {
          wait: { tool: 'make_target', input: { target: 'hang' }, aliases: ['attends'], mutating: false },
        },
      },
    },
  });
}

afterAll(async () => {
  await h?.close();
  rmSync(project, { recursive: true, force: true });
});

const reply = (chatId: number, pattern: RegExp, timeoutMs = 30_000) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs });
const buttonsOf = (m: FakeMessage) =>
  (
    (m.replyMarkup as { inline_keyboard?: { text: string; callback_data: string }[][] } | undefined)
      ?.inline_keyboard ?? []
  ).flat();
const lastAudit = (tool: string) => h.service.tools?.registry.recentAudit(1, tool)[0];
const answerTo = (callbackId: string) =>
  h.tg.waitFor(() => h.tg.callbackAnswers.find((a) => a.callbackQueryId === callbackId));

describe('tools from Telegram', () => {
  it('registers /run and /upgrade in the command menu, EN and FR, and /help names the shortcut words', async () => {
    await h.tg.waitFor(() => h.tg.commands.has('fr'));
    expect(h.tg.commands.get('')?.map((c) => c.command)).toEqual(
      expect.arrayContaining(['run', 'upgrade', 'usage']),
    );
    const fr = h.tg.commands.get('fr') ?? [];
    expect(fr.find((c) => c.command === 'run')?.description).toMatch(/^Lancer un outil/);
    expect(fr.find((c) => c.command === 'upgrade')?.description).toMatch(/^Mettre à jour brainstem/);
    h.tg.user(119).says('/help');
    const help = await reply(119, /What this bot does|Your messages go/);
    expect(help.text).toContain('/run: Run a tool or shortcut');
    expect(help.text).toContain('/upgrade: Update brainstem');
    // The 🔒 the line speaks of marks the words that ask first, as /run marks them: `deploy` and
    // `check` (make targets allowed here), not `sync` (no such target allowed: it says what to
    // configure), `lint` and `test` (read-only here) or `wait` (configured as not mutating).
    expect(help.text).toMatch(
      /Shortcut words run their tool without a brain \(🔒 ones ask first\): deploy 🔒, sync, lint, test, check 🔒, .*wait/,
    );
  });

  it('a shortcut word runs its tool: one message shows the latest lines and the time, at most one edit a second, then the result', async () => {
    const user = h.tg.user(112);
    user.says('tests');
    const result = await reply(112, /test d … ok/, 10_000);
    await h.tg.waitFor(() => /exit 0/.test(result.text), { timeoutMs: 10_000 });
    expect(result.text).toMatch(/^⚙️ \[proxy\] ✅ test → run_tests · exit 0 · \d+\.\d s\n/);
    expect(result.text).toContain(
      'collecting 4 tests\ntest a … ok\ntest b … ok\ntest c … ok\ntest d … ok\n4 passed',
    );
    expect(result.raw).not.toContain('\u001b');
    expect(result.entities.some((e) => e.type === 'pre')).toBe(true);

    // Progress first: the running state with some lines but not all, and the elapsed time.
    const progress = result.history.filter((t) => t.startsWith('⚙️ [proxy] ⏳ test → run_tests · '));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.some((t) => /test a … ok/.test(t) && !/4 passed/.test(t))).toBe(true);
    const edits = h.tg
      .callsOf('editMessageText', 112)
      .filter((c) => c.params.message_id === result.messageId)
      .map((c) => c.at);
    for (let i = 1; i < edits.length; i++)
      expect((edits[i] ?? 0) - (edits[i - 1] ?? 0)).toBeGreaterThanOrEqual(900);
    expect(h.tg.botMessages(112)).toHaveLength(1);
    expect(lastAudit('run_tests')).toMatchObject({ caller: 'telegram:112', ok: true, exitCode: 0 });
  });

  it('French aliases work and the result speaks French; other words still go to the brain', async () => {
    const user = h.tg.user(113, { languageCode: 'fr' });
    user.says('statut git');
    const status = await reply(113, /git → git_status · code de sortie 0/);
    expect(status.text).toContain('## main');
    user.says('git stuff please');
    await reply(113, /echo: git stuff please/);
  });

  it('a shortcut word said in a voice note goes to the brain, like other words: it runs nothing', async () => {
    const runs = () => h.service.tools?.registry.recentAudit(50, 'run_tests').length ?? 0;
    const before = runs();
    h.tg.user(118).sendsVoice(new TextEncoder().encode('tests'));
    await reply(118, /^echo: tests$/);
    expect(h.tg.botMessages(118).map((m) => m.text)).toEqual(['🎙 “tests”', 'echo: tests']);
    expect(runs()).toBe(before);
  });

  it('a long output ends the message with its tail and comes whole as a .txt document', async () => {
    h.tg.user(114).says('lint');
    const result = await reply(114, /lint → lint · exit 0/);
    expect(result.text).toContain('src/file-399.ts');
    expect(result.text).not.toContain('src/file-0.ts:');
    expect(result.text).toMatch(/\d+ more characters: the whole output is in the file below\./);
    const doc = await h.tg.waitFor(() => h.tg.botMessages(114).find((m) => m.document));
    expect(doc.document?.fileName).toMatch(/^lint-\d{8}-\d{6}\.txt$/);
    const text = Buffer.from(doc.document?.bytes ?? []).toString('utf8');
    expect(text.split('\n').filter(Boolean)).toHaveLength(400);
    expect(text).toContain('lint: src/file-0.ts: nothing to report');
    expect(text).toContain('lint: src/file-399.ts: nothing to report');
    expect(doc.replyTo).toBe(result.messageId);
  });

  it('a long output whose .txt document Telegram refuses says so under the result, instead of pointing to a file that never comes', async () => {
    h.tg.failNext('sendDocument', 1, { code: 400, description: 'Bad Request: file must be non-empty' }, 117);
    h.tg.user(117).says('lint');
    const result = await reply(117, /lint → lint · exit 0/);
    expect(result.text).toMatch(/the whole output is in the file below/);
    const told = await reply(117, /did not arrive/);
    expect(told.text).toBe(
      '⚙️ [proxy] ⚠️ The file with the whole output of lint → lint did not arrive: Telegram refused it (file must be non-empty). Only part of it shows above.',
    );
    expect(told.replyTo).toBe(result.messageId);
    expect(h.tg.botMessages(117).filter((m) => m.document)).toEqual([]);
  });

  it('in a forum topic, the run, its document and a confirmation question all go to that topic', async () => {
    const group = -100600;
    const user = h.tg.user(OWNER, { chatId: group, topicId: 5 });
    user.says('lint');
    const result = await reply(group, /lint → lint · exit 0/);
    const doc = await h.tg.waitFor(() => h.tg.botMessages(group).find((m) => m.document));
    expect(doc.replyTo).toBe(result.messageId);
    user.says('/run make_target target=release');
    const question = await reply(group, /Run make release\?/);
    const cancel = buttonsOf(question).find((b) => b.text === '✖️ Cancel');
    user.presses(question.messageId, cancel?.callback_data ?? '');
    await h.tg.waitFor(() => /nothing ran/.test(question.text));
    expect(h.tg.botMessages(group).map((m) => m.topicId)).toEqual([5, 5, 5]);
    expect(existsSync(file('released.txt'))).toBe(false);
  });

  it('a mutating shortcut asks first; confirmed, the same message runs it and shows the result', async () => {
    const user = h.tg.user(115);
    user.says('deploy');
    const question = await reply(115, /Run make deploy\?/);
    expect(question.text).toBe('⚙️ [proxy] ❓ Run make deploy? It changes things.');
    expect(buttonsOf(question).map((b) => b.text)).toEqual(['✅ Confirm', '✖️ Cancel']);
    // Had the word run it as well, that run would end before this message is answered.
    await turnsDone(h, user);
    expect(existsSync(file('deployed.txt'))).toBe(false);

    const ok = buttonsOf(question)[0]?.callback_data ?? '';
    user.presses(question.messageId, ok);
    await h.tg.waitFor(() => /exit 0/.test(question.text));
    expect(question.text).toMatch(/^⚙️ \[proxy\] ✅ deploy → make deploy · exit 0 · /);
    expect(question.text).toContain('deploying\ndeployed');
    expect(buttonsOf(question)).toEqual([]);
    expect(existsSync(file('deployed.txt'))).toBe(true);
    expect(lastAudit('make_target')).toMatchObject({ caller: 'telegram:115', ok: true });
  });

  it('in a forum group, the topics’ streamed answer and tool progress keep to one pace, the group’s; a question still goes out; every final text arrives', async () => {
    const group = -100_650;
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    h.llama.script(() => ({ chunks: ['Streaming', ' in', ' its', ' topic', { wait: held }, ' and done.'] }));
    onTestFinished(() => {
      release();
      h.llama.script();
    });
    const talker = h.tg.user(112, { chatId: group, topicId: 21 });
    const runner = h.tg.user(113, { chatId: group, topicId: 22 });
    const asker = h.tg.user(OWNER, { chatId: group, topicId: 23 });
    const inTopic = (topicId: number, pattern: RegExp) =>
      h.tg.waitFor(() => h.tg.botMessages(group).find((m) => m.topicId === topicId && pattern.test(m.text)), {
        timeoutMs: 30_000,
      });
    talker.says('talk to me');
    runner.says('wait');
    await h.tg.waitFor(() => h.tg.botMessages(group)[0]);
    // A question asked while the topics stream goes out, and is answered, without waiting for their pace.
    asker.says('/run make_target target=release');
    const question = await inTopic(23, /Run make release\?/);
    const cancel = buttonsOf(question).find((b) => b.text === '✖️ Cancel');
    asker.presses(question.messageId, cancel?.callback_data ?? '');
    await h.tg.waitFor(() => /nothing ran/.test(question.text), { timeoutMs: 30_000 });
    // Both streams show while they run: the answer held open, the command waiting.
    const answer = await inTopic(21, /^Streaming/);
    const run = await inTopic(22, /wait → make hang/);

    // Counted at Telegram, the group's streamed sends and edits (all but the question's, which is no stream)
    // came one group stream interval apart, whichever topic they went to. A slow machine only spaces them more.
    const streamed = h.tg.calls.filter(
      (c) =>
        c.ok &&
        Number(c.params.chat_id) === group &&
        ['sendMessage', 'editMessageText'].includes(c.method) &&
        Number(c.params.message_thread_id) !== 23 &&
        c.params.message_id !== question.messageId,
    );
    expect(streamed.map((c) => c.params.message_thread_id)).toEqual(expect.arrayContaining([21, 22]));
    const { streamIntervalMs } = paceFor(group, h.service.core.config.telegram.editIntervalMs);
    for (let i = 1; i < streamed.length; i++)
      expect((streamed[i]?.at ?? 0) - (streamed[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(streamIntervalMs);

    // Every final text arrives in full, in its topic.
    release();
    await h.tg.waitFor(() => answer.text === 'Streaming in its topic and done.', { timeoutMs: 30_000 });
    runner.says('/stop');
    await h.tg.waitFor(() => /· stopped ·/.test(run.text), { timeoutMs: 30_000 });
    expect(h.tg.botMessages(group).map((m) => m.topicId)).toEqual(expect.arrayContaining([21, 22, 23]));
    expect(h.tg.botMessages(group).every((m) => [21, 22, 23].includes(m.topicId ?? 0))).toBe(true);
  });

  it('refused: another user’s press and a stranger’s do nothing; Cancel runs nothing and says so; a late press finds it closed', async () => {
    const GROUP = -100_700;
    const asker = h.tg.user(116, { chatId: GROUP });
    const other = h.tg.user(117, { chatId: GROUP });
    const stranger = h.tg.user(999, { chatId: GROUP });
    const asked = asker.says('/run make_target target=release');
    const question = await reply(GROUP, /Run make release\?/);
    expect(question.replyTo).toBe(asked);
    const [ok, no] = buttonsOf(question).map((b) => b.callback_data);

    const byOther = await answerTo(other.presses(question.messageId, ok ?? ''));
    expect(byOther.text).toBe('Only User116, who asked, or an approver can answer this.');
    const byStranger = await answerTo(stranger.presses(question.messageId, ok ?? ''));
    expect(byStranger.text).toMatch(/This bot is private\. Your Telegram user id is 999/);
    // The stranger's press was handled only once the other's was: a press that closed the question shows here.
    // Whether one ran something is checked at the end: waiting for the chat's turns here could outlast the question.
    expect(buttonsOf(question)).toHaveLength(2);

    asker.presses(question.messageId, no ?? '');
    await h.tg.waitFor(() => /Cancelled: nothing ran\./.test(question.text));
    expect(question.text).toBe(
      '⚙️ [proxy] ❓ Run make release? It changes things.\n\n✖️ Cancelled: nothing ran.',
    );
    expect(buttonsOf(question)).toEqual([]);

    const late = await answerTo(asker.presses(question.messageId, ok ?? ''));
    expect(late.text).toBe(
      'This question is closed: its message says what happened. Ask again to run it again.',
    );
    // A second late press is handled once the first is; then every run a press queued ends before turnsDone.
    await answerTo(asker.presses(question.messageId, no ?? ''));
    await turnsDone(h, asker);
    expect(existsSync(file('released.txt'))).toBe(false);
    expect(
      h.service.tools?.registry.recentAudit(50, 'make_target').some((a) => a.args.includes('release')),
    ).toBe(false);
  });

  it('a press with an open question’s data from another message answers nothing; the question still waits', async () => {
    const asker = h.tg.user(114);
    asker.says('/run make_target target=release');
    const first = await reply(114, /Run make release\?/);
    asker.presses(first.messageId, buttonsOf(first)[1]?.callback_data ?? '');
    await h.tg.waitFor(() => /Cancelled: nothing ran\./.test(first.text));
    asker.says('/run make_target target=release');
    const second = await h.tg.waitFor(() =>
      h.tg.botMessages(114).find((m) => m !== first && /Run make release\?/.test(m.text)),
    );
    const [ok, no] = buttonsOf(second).map((b) => b.callback_data);

    // The data a client can send from any message: it is no press on the question.
    const madeUp = await answerTo(asker.presses(first.messageId, ok ?? ''));
    expect(madeUp.text).toBe(
      'This question is closed: its message says what happened. Ask again to run it again.',
    );
    expect(buttonsOf(second)).toHaveLength(2);
    asker.presses(second.messageId, no ?? '');
    await h.tg.waitFor(() => /Cancelled: nothing ran\./.test(second.text));
    expect(existsSync(file('released.txt'))).toBe(false);
    expect(
      h.service.tools?.registry.recentAudit(50, 'make_target').some((a) => a.args.includes('release')),
    ).toBe(false);
  });

  it('an approver who is not an allowed user answers a confirmation, and is refused anything else', async () => {
    const GROUP = -100_701;
    const approver = h.tg.user(OUTSIDE_APPROVER, { chatId: GROUP });
    h.tg.user(116, { chatId: GROUP }).says('/run make_target target=release');
    const question = await reply(GROUP, /Run make release\?/);
    approver.presses(question.messageId, buttonsOf(question)[1]?.callback_data ?? '');
    await h.tg.waitFor(() => /Cancelled \(User990\): nothing ran\./.test(question.text));

    approver.says('/run make_target target=release');
    await reply(GROUP, /This bot is private\. Your Telegram user id is 990/);
    expect(h.tg.botMessages(GROUP).filter((m) => /Run make release\?/.test(m.text))).toHaveLength(1);
  });

  it('no answer in time: nothing runs, and the question says so', async () => {
    // A brainstem of its own whose questions expire soon: the shared one's wait for any press.
    const e = await startTools(EXPIRY_MS);
    onTestFinished(() => e.close());
    const user = e.tg.user(118, { languageCode: 'fr' });
    const asked = user.says('/run make_target {"target": "release"}');
    const question = await e.tg.waitFor(() =>
      e.tg.botMessages(118).find((m) => /Lancer make release \?/.test(m.text)),
    );
    await e.tg.waitFor(() => /Pas de réponse en 1\.0 s : rien n’a été lancé\./.test(question.text));
    expect(buttonsOf(question)).toEqual([]);
    const pressed = user.presses(question.messageId, `bs:dlg:${asked}:ok`);
    const late = await e.tg.waitFor(() => e.tg.callbackAnswers.find((a) => a.callbackQueryId === pressed));
    expect(late.text).toMatch(/question est close/);
    expect(existsSync(file('released.txt'))).toBe(false);
  });

  it('a run with a long input shows its result with the input cut short, and a long /mode name is answered', async () => {
    const user = h.tg.user(115);
    const long = `Please review ${'this part carefully '.repeat(110)}`;
    user.says(`/run brain_chat mode=local message="${long}"`);
    const result = await reply(115, /✅ brain_chat .*…/, 15_000);
    expect(result.text.length).toBeLessThanOrEqual(4096);
    expect(result.text).toContain('echo: Please review');
    user.says(`/mode ${'x'.repeat(2100)}`);
    const refused = await reply(115, /Switch to x+… failed/, 15_000);
    expect(refused.text.length).toBeLessThanOrEqual(4096);
  });

  it('a Telegram refusal during a command is told in words, in the reader’s language, not as grammY’s error', async () => {
    const tooLong = { code: 400, description: 'Bad Request: message is too long' };
    // The question of the /run is what Telegram refuses; the line that tells of it goes through.
    h.tg.failNext('sendMessage', 1, tooLong, 116);
    h.tg.user(116).says('/run make_target target=release');
    const told = await reply(116, /\/run failed/);
    expect(told.text).toBe('⚙️ [proxy] /run failed: Telegram refused the message: it is too long');
    expect(told.text).not.toContain('Call to');

    h.tg.failNext('sendMessage', 1, tooLong, 118);
    h.tg.user(118, { languageCode: 'fr' }).says('/run make_target target=release');
    const fr = await reply(118, /\/run a échoué/);
    expect(fr.text).toBe('⚙️ [proxy] /run a échoué : Telegram a refusé le message : il est trop long');
    expect(h.tg.botMessages(116).filter((m) => /Run make release\?/.test(m.text))).toEqual([]);
    expect(existsSync(file('released.txt'))).toBe(false);
  });

  it("a brain's answer cut at its output limit says so and how to get the rest, not that brainstem capped it", async () => {
    h.llama.script(() => ({ chunks: ['The first', ' half'], finishReason: 'length' }));
    onTestFinished(() => h.llama.script());
    h.tg.user(115).says('/run brain_chat mode=local message="write a long essay"');
    const result = await reply(115, /✅ brain_chat .*write a long essay/, 15_000);
    expect(result.text).toContain('The first half');
    expect(result.text).toContain("the answer was cut at the local model's output limit");
    expect(result.text).not.toContain('tools.maxOutputChars');

    // To a reader in French, in French.
    h.tg.user(113, { languageCode: 'fr' }).says('/run brain_chat mode=local message="un long essai"');
    const fr = await reply(113, /✅ brain_chat .*un long essai/, 15_000);
    expect(fr.text).toContain('la réponse a été coupée à la limite de sortie du modèle local');
    expect(fr.text).not.toContain('the answer was cut');
  });

  it('/run takes a tool with arguments; a bad one is named; /run alone lists shortcuts and tools', async () => {
    const CHAT = OWNER;
    const user = h.tg.user(OWNER);
    user.says('/run git_log max=2');
    const log = await reply(CHAT, /git_log \{"max":2\} · exit 0/);
    expect(log.text).toContain('feat: a Makefile');

    user.says('/run git_log max=5000');
    await reply(CHAT, /❌ git_log: max: Too big/);
    user.says('/run git_log max="2"');
    await reply(CHAT, /❌ git_log: max: .*expected number/i);
    user.says('/run read_file');
    await reply(CHAT, /❌ read_file: path: /);
    user.says('/run git_log 5');
    await reply(CHAT, /❌ git_log: expected key=value or one JSON object, got “5”/);
    user.says('/run deploy now');
    await reply(
      CHAT,
      /“deploy” is a shortcut and takes no arguments; to pass some, name its tool: \/run make_target/,
    );
    user.says('/run sync');
    await reply(
      CHAT,
      /❌ “sync” cannot run: make target "sync" is not allowed\. Allowed: deploy, release, hang, serve, check\./,
    );
    user.says('/run teleport');
    await reply(CHAT, /Unknown tool or shortcut “teleport”/);

    user.says('/run');
    const list = await reply(CHAT, /a shortcut or a tool/);
    expect(list.text).toMatch(/• deploy \(deploie, deployer, deploiement\) → make deploy 🔒/);
    expect(list.text).toMatch(/• sync .* → make sync not configured/);
    // A built-in make word asks first like make_target itself: brainstem cannot know its recipe only reads.
    expect(list.text).toMatch(/• check \(verifie, verifier, verif\) → make check 🔒/);
    expect(list.text).toMatch(/• wait \(attends\) → make hang\n/);
    expect(list.text).toMatch(/git_log, git_diff/);
  });

  it('a bad /run that repeats a long argument names what is wrong with it cut short, not Telegram’s refusal of a long reply', async () => {
    const CHAT = 117;
    const user = h.tg.user(CHAT);
    const answered = async (pattern: RegExp) => {
      const m = await reply(CHAT, pattern);
      expect(m.text.length).toBeLessThanOrEqual(4096);
      return m;
    };
    user.says(`/run ${'z'.repeat(4090)}`);
    await answered(/❌ Unknown tool or shortcut “z{79}…”\. Send \/run alone for the list\./);
    user.says(`/run read_file ${'y'.repeat(4080)}`);
    await answered(/❌ read_file: expected key=value or one JSON object, got “y{79}…”$/);
    user.says(`/run usage since=${'s'.repeat(4070)}`);
    await answered(/❌ since: "s{79}…" is not a period; use 24h/);
    // zod's message quotes an unknown key: the whole error is cut.
    user.says(`/run git_log ${'k'.repeat(4080)}=1`);
    const key = await answered(/❌ git_log: k+…$/);
    expect(key.text.length).toBeLessThan(1100);
    expect(h.tg.botMessages(CHAT).filter((m) => /failed/.test(m.text))).toEqual([]);
  });

  it('a bad /run is explained in French to a reader in French: zod’s checks of the arguments, and the tools’ refusals', async () => {
    const CHAT = 113;
    const user = h.tg.user(CHAT, { languageCode: 'fr' });
    user.says('/run git_log max=5000');
    await reply(CHAT, /❌ git_log : max : Trop grand : nombre doit être <=/);
    user.says('/run git_log max="2"');
    await reply(CHAT, /❌ git_log : max : Entrée invalide : nombre attendu, chaîne de caractères reçu/);
    user.says('/run git_log color=1');
    await reply(CHAT, /❌ git_log : color : Clé non reconnue : "color"/);
    user.says('/run git_log 5');
    await reply(CHAT, /❌ git_log : attendu : clé=valeur ou un objet JSON, reçu « 5 »/);
    // A tool's own refusals too.
    user.says('/run make_target target=sync');
    await reply(
      CHAT,
      /❌ la cible make "sync" n’est pas permise\. Permises : deploy, release, hang, serve, check\./,
    );
    user.says('/run read_file path=/etc/hosts');
    await reply(
      CHAT,
      /❌ read_file n’a pas de racines : listez les dossiers qu’il peut lire dans tools\.files\.roots/,
    );
    user.says('/run brain_chat mode=nope message=salut');
    await reply(CHAT, /❌ Mode inconnu : "nope"\. Modes : active, /);
  });

  it('a command that leaves a process holding its output ends, and says so in the reader’s language', async () => {
    onTestFinished(() => killPidIn(file('serve.pid'), 'SIGKILL'));
    const user = h.tg.user(113, { languageCode: 'fr' });
    user.says('/run make_target target=serve');
    const question = await reply(113, /Lancer make serve \?/);
    user.presses(question.messageId, buttonsOf(question)[0]?.callback_data ?? '');
    // The question becomes the result.
    await h.tg.waitFor(() => /code de sortie 0/.test(question.text), { timeoutMs: 15_000 });
    const result = question;
    expect(result.text).toMatch(
      /La commande est terminée, mais un processus qu’elle a lancé en arrière-plan/,
    );
    expect(result.text).toContain('serving');
    expect(result.text).not.toContain('The command exited');
  });

  it('a tool run queues behind the running one like an answer, and /stop ends it (its process too)', async () => {
    const user = h.tg.user(119);
    user.says('wait');
    const running = await reply(119, /wait → make hang/);
    await h.tg.waitFor(() => /waiting/.test(running.text), { timeoutMs: 30_000 });
    user.says('git');
    const queued = await reply(119, /Queued: git → git_status runs once the current answer is done/);
    user.says('/stop');
    await reply(119, /Stopped the answer in progress\. 1 queued message\(s\) follow\./);
    await h.tg.waitFor(() => /· stopped ·/.test(running.text));
    expect(running.text).toMatch(/^⚙️ \[proxy\] ⏹ wait → make hang · stopped · /);
    expect(running.text).toContain('waiting');
    await h.tg.waitFor(() => /git → git_status · exit 0/.test(queued.text));
    expect(lastAudit('make_target')).toMatchObject({ caller: 'telegram:119', ok: false });
    expect(lastAudit('make_target')?.error).toMatch(/^TOOL_ABORTED/);
  });

  it('the report shortcut said in French (« rapport ») answers in French, the credit sentence too', async () => {
    const chat = -100_913;
    h.tg.user(118, { chatId: chat, languageCode: 'fr' }).says('rapport');
    const report = await reply(chat, /✅ report → usage/);
    expect(report.text).toMatch(/\nConsommation depuis .* UTC : \$\d+\.\d\d, \d+ tours?, /);
    expect(report.text).toContain('Aucun crédit Agent SDK n’est connu');
    expect(report.text).not.toMatch(/Usage since|No Agent SDK credit| turns?,/);
  });

  it('/usage chart sends the PNG as a photo with a caption; a bad period is explained', async () => {
    const user = h.tg.user(117);
    user.says('hello chart');
    await reply(117, /echo: hello chart/);
    user.says('/usage chart 7d');
    const photo = await h.tg.waitFor(() => h.tg.botMessages(117).find((m) => m.photo), { timeoutMs: 20_000 });
    const bytes = Buffer.from(photo.photo?.bytes ?? []);
    expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(bytes.length).toBeGreaterThan(10_000);
    expect(photo.text).toMatch(/^⚙️ \[proxy\] Usage since .* UTC \(7d\): \$0\.00, \d+ turns?, /);
    user.says('/usage chart someday');
    await reply(117, /I do not understand the period “someday”\. Try \/usage chart 7d/);
    // A period as long as a message is quoted back only in part: the answer must still fit one.
    user.says(`/usage chart ${'7'.repeat(4_000)}x`);
    const chart = await reply(117, /I do not understand the period “7{59}…”\. Try \/usage chart 7d/);
    expect(chart.text.length).toBeLessThanOrEqual(4096);
    user.says(`/usage ${'7'.repeat(4_000)}x`);
    await reply(117, /I do not understand the period “7{59}…”\. Try \/usage 24h/);
  });
});

describe('a shortcut word with a confirmation ("deploy yes")', () => {
  it('still asks with Confirm / Cancel, answered by the asker or an approver, and audits who ran it', async () => {
    const GROUP = -100_900;
    const asker = h.tg.user(113, { chatId: GROUP });
    const other = h.tg.user(114, { chatId: GROUP });
    const runs = () => h.service.tools?.registry.recentAudit(50, 'make_target').length ?? 0;
    const before = runs();
    const asked = asker.says('deploy yes');
    const question = await reply(GROUP, /Run make deploy\?/);
    expect(question.replyTo).toBe(asked);
    expect(question.text).toBe('⚙️ [proxy] ❓ Run make deploy? It changes things.');
    expect(runs()).toBe(before);

    const [ok] = buttonsOf(question).map((b) => b.callback_data);
    const byOther = await answerTo(other.presses(question.messageId, ok ?? ''));
    expect(byOther.text).toBe('Only User113, who asked, or an approver can answer this.');
    expect(runs()).toBe(before);

    asker.presses(question.messageId, ok ?? '');
    await h.tg.waitFor(() => /exit 0/.test(question.text));
    expect(lastAudit('make_target')).toMatchObject({ caller: 'telegram:113', ok: true });
  });

  it('an approver answering for someone else reads the toast in their own language', async () => {
    const GROUP = -100_914;
    const asked = h.tg.user(115, { chatId: GROUP }).says('deploy yes');
    const question = await reply(GROUP, /Run make deploy\?/);
    expect(question.replyTo).toBe(asked);
    const [ok] = buttonsOf(question).map((b) => b.callback_data);
    const approver = h.tg.user(OWNER, { chatId: GROUP, languageCode: 'fr' });
    expect((await answerTo(approver.presses(question.messageId, ok ?? ''))).text).toBe('C’est parti…');
    // The question, the chat's, stays in the asker's language.
    await h.tg.waitFor(() => /exit 0/.test(question.text));
    expect(question.text).not.toMatch(/code de sortie/);
  });

  it('in French too ("déploie oui")', async () => {
    h.tg.user(117, { languageCode: 'fr' }).says('Déploie oui');
    const question = await reply(117, /Lancer make deploy \?/);
    expect(buttonsOf(question)).toHaveLength(2);
  });
});

describe('a mutating /run with a long input (claude_code: the real CLI on the fake Messages API)', () => {
  const claude = claudeOnFake({ script: () => text('task done') });
  let c: Harness;
  beforeAll(async () => {
    c = await startHarness({
      parts: { tools: true, bot: true },
      env: { CLAUDE_BIN },
      config: {
        claude: { env: claude.cli.env, maxRetries: 0 },
        telegram: { confirmTimeoutMs: CONFIRM_MS },
        tools: { claudeCode: { cwd: project } },
      },
    });
  });
  afterAll(async () => {
    await c?.close();
  });

  it('asks with the call cut to fit one message and says so; Confirm runs the whole prompt', async () => {
    // 180 lines: the message fits Telegram's 4096, the call does not once each newline is JSON's \n.
    const prompt = Array.from(
      { length: 180 },
      (_, i) => `Step ${String(i + 1).padStart(3, '0')}: run part ${i + 1}`,
    ).join('\n');
    const asked = `/run claude_code prompt="${prompt}"`;
    expect(asked.length).toBeGreaterThan(4000);
    expect(asked.length).toBeLessThanOrEqual(4096);
    const call = `claude_code ${JSON.stringify({ prompt })}`;
    const user = c.tg.user(OWNER);
    user.says(asked);

    const question = await c.tg.waitFor(
      () => c.tg.botMessages(OWNER).find((m) => /Run claude_code/.test(m.text)),
      { timeoutMs: 30_000 },
    );
    expect(question.text.length).toBeLessThanOrEqual(4096);
    const [, shown = '', more = ''] =
      /^⚙️ \[proxy\] ❓ Run ([\s\S]*)…\? It changes things\.\nOnly the start of the call is shown: (\d+) more characters are not\. Confirm runs all of it\.$/.exec(
        question.text,
      ) ?? [];
    expect(shown.length).toBeGreaterThan(3_000);
    expect(call.startsWith(shown)).toBe(true);
    expect(Number(more)).toBe(call.length - shown.length);
    expect(buttonsOf(question).map((b) => b.text)).toEqual(['✅ Confirm', '✖️ Cancel']);

    user.presses(question.messageId, buttonsOf(question)[0]?.callback_data ?? '');
    await c.tg.waitFor(() => /✅ claude_code .* · /.test(question.text), { timeoutMs: 60_000 });
    expect(question.text).toContain('task done');
    // The task got the prompt as typed, every line of it, not the question's shortened call.
    expect(claude.fake.mainRequests().at(-1)?.lastUserTurn).toBe(prompt);
  });
});
