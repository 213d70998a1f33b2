import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatOutbox } from '../handlers/telegram/route/outbox.js';
import { OUTBOX_KEY_FILE, outboxRoot } from '../src/outbox.js';
import { telegramSessionKey } from '../src/session-keys.js';
import { text, toolUse } from './fakes/anthropic.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { CLAUDE_BIN } from './helpers/service.js';
import { type Harness, nextLog, OWNER, startHarness } from './telegram-harness.js';

/**
 * Files back: the real `claude` CLI, told in its session's first prompt where
 * its per-chat outbox is, writes two files there with its Write tool (scripted
 * by the fake Messages API); after the answer the chat gets the image as a
 * photo and the text as a document, and the outbox is removed once empty. The turn
 * runs on the mode's spare process, started before the chat was known.
 */

const CHAT = 112;
const claude = claudeOnFake();
let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    env: { CLAUDE_BIN },
    parts: { bot: true, claudeSpares: true },
    config: {
      defaultMode: 'assistant',
      modes: { assistant: { kind: 'claude', allowedTools: ['Write'] } },
      claude: { env: claude.cli.env, maxRetries: 0 },
    },
  });
});
afterAll(async () => {
  await h?.close();
});

const PNG = 'PNG chart bytes (fake image)';
const REPORT = 'Quarterly report\nAll good.\n';

describe('the outbox', () => {
  it('files Claude writes into its outbox reach the chat as a photo and a document; the outbox is emptied', async () => {
    const outbox = chatOutbox(h.service.core.config.dataDir, CHAT, undefined);
    // Left there before the turn: a symlink to a file outside, which must never be sent.
    const secret = path.join(h.dir, 'secret.txt');
    await writeFile(secret, 'do not send');
    await mkdir(outbox, { recursive: true });
    await symlink(secret, path.join(outbox, 'leak.png'));

    const spare = await h.tg.waitFor(() => h.logs.find((l) => l.msg === 'spare Claude process ready'), {
      timeoutMs: 60_000,
    });
    let told = '';
    claude.fake.script((req) => {
      told = req.userTexts.join('\n');
      const dir = /directly into the folder (\S+) is sent to the user/.exec(told)?.[1] ?? 'no-outbox';
      return toolUse(
        'Write',
        { file_path: path.join(dir, 'chart.png'), content: PNG },
        toolUse('Write', { file_path: path.join(dir, 'report.txt'), content: REPORT }, text('Sent both.')),
      );
    });
    // What is on disk while the document is on its way is what a brainstem killed then would send again.
    const atDocument = h.tg.waitFor(
      () => h.tg.callsOf('sendDocument', CHAT).length > 0 && readdirSync(outbox).sort(),
      { timeoutMs: 60_000 },
    );
    h.tg.user(CHAT).says('send me the chart and the report');

    const doc = await h.tg.waitFor(() => h.tg.botMessages(CHAT).find((m) => m.document), {
      timeoutMs: 60_000,
    });
    expect(told).toContain(outbox);
    expect(h.logs.find((l) => l.msg === 'claude turn started')).toMatchObject({
      spare: true,
      pid: spare.pid,
    });
    const photo = h.tg.botMessages(CHAT).find((m) => m.photo);
    expect(photo?.photo?.fileName).toBe('chart.png');
    expect(Buffer.from(photo?.photo?.bytes ?? []).toString()).toBe(PNG);
    expect(doc.document?.fileName).toBe('report.txt');
    expect(Buffer.from(doc.document?.bytes ?? []).toString()).toBe(REPORT);
    // After the answer, in the order written; nothing else was sent as a file.
    const answer = h.tg.botMessages(CHAT).find((m) => m.text.includes('Sent both.'));
    expect(answer).toBeDefined();
    expect(photo?.messageId).toBeGreaterThan(answer?.messageId ?? Infinity);
    expect(doc.messageId).toBeGreaterThan(photo?.messageId ?? Infinity);
    expect(h.tg.botMessages(CHAT).filter((m) => m.photo || m.document)).toHaveLength(2);
    for (const c of [...h.tg.callsOf('sendPhoto', CHAT), ...h.tg.callsOf('sendDocument', CHAT)]) {
      expect(JSON.stringify(c.params)).not.toContain('do not send');
    }

    // The photo went out of the outbox as soon as it was sent: only the document in flight is left.
    expect(await atDocument).toEqual(['report.txt']);
    // Emptied, then removed: no folder stays for each chat ever answered (made again before its next turn).
    await h.tg.waitFor(() => !existsSync(outbox));
    expect(readFileSync(secret, 'utf8')).toBe('do not send');
  });

  it('files a stopped brainstem left in the outbox go before the next answer, said to be from an earlier one', async () => {
    const outbox = chatOutbox(h.service.core.config.dataDir, 116, undefined);
    await mkdir(outbox, { recursive: true });
    await writeFile(path.join(outbox, 'a-chart.png'), PNG);
    await writeFile(path.join(outbox, 'b-report.txt'), REPORT);
    claude.fake.script(() => text('Next answer.'));
    h.tg.user(116).says('next question');
    await h.tg.waitFor(() => h.tg.botMessages(116).find((m) => m.text.includes('Next answer.')), {
      timeoutMs: 60_000,
    });
    const shown = h.tg.botMessages(116).map((m) => m.photo?.fileName ?? m.document?.fileName ?? m.text);
    expect(shown).toEqual([
      '⚙️ [proxy] 📎 From an earlier answer: brainstem stopped before it had sent these.',
      'a-chart.png',
      'b-report.txt',
      'Next answer.',
    ]);
    await h.tg.waitFor(() => !existsSync(outbox));
  });
});

describe('the outbox of another conversation', () => {
  const dataDir = () => h.service.core.config.dataDir;
  /** The name a conversation's folder had, from a plain hash of its key: anyone could compute it. */
  const oldName = (chatId: number) =>
    path.join(
      outboxRoot(dataDir()),
      `telegram_${chatId}-${createHash('sha256').update(telegramSessionKey(chatId)).digest('hex').slice(0, 8)}`,
    );

  it("another chat's Claude finds no chat's outbox: not by listing them, not by computing its name", async () => {
    // Chat 117's file waits to be sent, as it does while 117's turn runs.
    const theirs = chatOutbox(dataDir(), 117, undefined);
    await mkdir(theirs, { recursive: true });
    await writeFile(path.join(theirs, 'pending.txt'), 'private to chat 117');
    const root = outboxRoot(dataDir());
    claude.fake.script(() =>
      toolUse(
        'Bash',
        { command: `ls -la ${root}` },
        toolUse(
          'Read',
          { file_path: path.join(oldName(117), 'pending.txt') },
          toolUse(
            'Write',
            { file_path: path.join(oldName(OWNER), 'planted.txt'), content: 'from chat 118' },
            // The secret the names are made with: refused like brainstem's other secrets, never asked about.
            toolUse('Read', { file_path: path.join(dataDir(), OUTBOX_KEY_FILE) }, text('Looked around.')),
          ),
        ),
      ),
    );
    const before = claude.fake.mainRequests().length;
    h.tg.user(118).says('look around');
    await h.tg.waitFor(() => h.tg.botMessages(118).find((m) => m.text.includes('Looked around.')), {
      timeoutMs: 60_000,
    });
    const results = claude.fake
      .mainRequests()
      .slice(before)
      .flatMap((r) => r.toolResults.map((t) => t.content))
      .join('\n');
    expect(results).not.toContain('private to chat 117');
    expect(results).not.toContain(readFileSync(path.join(dataDir(), OUTBOX_KEY_FILE), 'utf8').trim());
    // `ls` (run unasked in an added folder) is refused by the root's mode; root ignores modes.
    if (process.getuid?.() !== 0) expect(results).not.toContain(path.basename(theirs));
    expect(readdirSync(theirs)).toEqual(['pending.txt']);

    // What was written under the owner's old name since the start is not taken for their leftovers.
    claude.fake.script(() => text('Hello owner.'));
    h.tg.user(OWNER).says('hi');
    await h.tg.waitFor(() => h.tg.botMessages(OWNER).find((m) => m.text.includes('Hello owner.')), {
      timeoutMs: 60_000,
    });
    expect(h.tg.botMessages(OWNER).filter((m) => m.document || m.photo)).toEqual([]);
  });

  it('files left under the old name by a brainstem from before the change still reach the chat', async () => {
    await mkdir(oldName(119), { recursive: true });
    await writeFile(path.join(oldName(119), 'left.txt'), REPORT);
    await utimes(oldName(119), new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    claude.fake.script(() => text('Hello 119.'));
    h.tg.user(119).says('hi');
    await h.tg.waitFor(() => h.tg.botMessages(119).find((m) => m.text.includes('Hello 119.')), {
      timeoutMs: 60_000,
    });
    expect(h.tg.botMessages(119).map((m) => m.document?.fileName ?? m.text)).toEqual([
      '⚙️ [proxy] 📎 From an earlier answer: brainstem stopped before it had sent these.',
      'left.txt',
      'Hello 119.',
    ]);
    expect(existsSync(oldName(119))).toBe(false);
  });
});

describe('the outbox, what is not sent', () => {
  it('an empty file and one over 50 MB are named in a notice; an outbox replaced by a symlink is put back, and nothing outside is sent or removed', async () => {
    claude.fake.script(() => text('Nothing new from me.'));
    const dataDir = h.service.core.config.dataDir;

    const outbox = chatOutbox(dataDir, 113, undefined);
    await mkdir(outbox, { recursive: true });
    await writeFile(path.join(outbox, 'empty.txt'), '');
    // Sparse: 51 MB on paper, nothing on disk.
    await truncate(path.join(outbox, 'huge.bin'), 51 * 1024 * 1024).catch(async () => {
      await writeFile(path.join(outbox, 'huge.bin'), '');
      await truncate(path.join(outbox, 'huge.bin'), 51 * 1024 * 1024);
    });
    h.tg.user(113).says('anything new?');
    const notice = await h.tg.waitFor(() => h.tg.botMessages(113).find((m) => /Not sent/.test(m.text)), {
      timeoutMs: 60_000,
    });
    expect(notice.text).toContain('empty.txt (empty)');
    expect(notice.text).toContain('huge.bin (51.0 MB, over Telegram’s 50 MB for bots)');
    expect(h.tg.botMessages(113).filter((m) => m.photo || m.document)).toEqual([]);
    await h.tg.waitFor(() => !existsSync(outbox));

    // A chat whose outbox was replaced by a link to a folder elsewhere.
    const elsewhere = path.join(h.dir, 'elsewhere');
    await mkdir(elsewhere, { recursive: true });
    await writeFile(path.join(elsewhere, 'keep.png'), 'not for the chat');
    const linked = chatOutbox(dataDir, 114, undefined);
    await mkdir(path.dirname(linked), { recursive: true });
    await symlink(elsewhere, linked);
    h.tg.user(114).says('anything new?');
    await h.tg.waitFor(() => h.tg.botMessages(114).find((m) => /Nothing new from me/.test(m.text)), {
      timeoutMs: 60_000,
    });
    // Replaced by a folder of its own before the turn (Claude was never pointed elsewhere), removed once emptied.
    await h.tg.waitFor(() => lstatSync(linked, { throwIfNoEntry: false }) === undefined);
    expect(h.tg.botMessages(114).filter((m) => m.photo || m.document)).toEqual([]);
    expect(readFileSync(path.join(elsewhere, 'keep.png'), 'utf8')).toBe('not for the chat');
  });

  it('a name with a line break, a semicolon or a quote is sent with them as _, and the chat goes on; forty long names fit one notice', async () => {
    claude.fake.script(() => text('Here you are.'));
    const outbox = chatOutbox(h.service.core.config.dataDir, 117, undefined);
    // Chat 117's turns began nowhere yet: what an earlier test left for it is not this test's.
    await rm(outbox, { recursive: true, force: true });
    await mkdir(outbox, { recursive: true });
    // grammY refuses a line break in a file name, and the refusal, taken for a network failure, was
    // retried for ever: the chat's later messages waited behind it.
    const odd = path.join(outbox, 'line\nbreak;"quoted".txt');
    await writeFile(odd, 'odd name');
    await utimes(odd, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    for (let i = 0; i < 40; i++)
      await writeFile(path.join(outbox, `z${String(i).padStart(2, '0')}-${'n'.repeat(200)}.txt`), 'x');
    h.tg.user(117).says('anything new?');
    const notice = await h.tg.waitFor(() => h.tg.botMessages(117).find((m) => /Not sent/.test(m.text)), {
      timeoutMs: 60_000,
    });
    const docs = h.tg.botMessages(117).filter((m) => m.document);
    expect(docs).toHaveLength(10);
    expect(docs[0]?.document?.fileName).toBe('line_break__quoted_.txt');
    // Fifteen names, each cut, then how many more: one message.
    const lines = notice.text.split('\n');
    expect(lines).toHaveLength(1 + 15 + 1);
    expect(lines.at(-1)).toBe('… and 16 more');
    expect(lines[1]).toMatch(/^• z09-n+… \(more than 10 files\)$/);
    expect(notice.text.length).toBeLessThan(4096);
    // The chat is not held: its next message is answered.
    h.tg.user(117).says('thanks');
    await h.tg.waitFor(() => h.tg.botMessages(117).filter((m) => /Here you are/.test(m.text)).length === 2, {
      timeoutMs: 60_000,
    });
  });

  it('a folder Claude writes into its outbox (Write makes the parents) is named in the notice, not dropped unsaid', async () => {
    const outbox = chatOutbox(h.service.core.config.dataDir, 115, undefined);
    claude.fake.script((req) => {
      const dir = /directly into the folder (\S+) is sent to the user/.exec(req.userTexts.join('\n'))?.[1];
      return toolUse(
        'Write',
        { file_path: path.join(dir ?? 'no-outbox', 'notes.txt'), content: 'notes' },
        toolUse(
          'Write',
          { file_path: path.join(dir ?? 'no-outbox', 'report', 'summary.md'), content: '# Summary' },
          text('Wrote the notes and the report.'),
        ),
      );
    });
    h.tg.user(115).says('write the notes and the report');
    const doc = await h.tg.waitFor(() => h.tg.botMessages(115).find((m) => m.document), {
      timeoutMs: 60_000,
    });
    expect(doc.document?.fileName).toBe('notes.txt');
    const notice = await h.tg.waitFor(() => h.tg.botMessages(115).find((m) => /Not sent/.test(m.text)), {
      timeoutMs: 10_000,
    });
    expect(notice.text).toMatch(/• report \(a folder: only the files directly in the outbox are sent\)/);
    await h.tg.waitFor(() => !existsSync(outbox));
  });
});

describe('the outbox of a group upgraded to a supergroup', () => {
  it('a file the group’s Claude session writes after the upgrade, into the folder it was told at its start, reaches the supergroup', async () => {
    const GROUP = -4_331;
    const SUPERGROUP = -1_000_000_004_331;
    claude.fake.script(() => text('Noted.'));
    const member = h.tg.user(113, { chatId: GROUP, basicGroup: true });
    const noted = (n: number) =>
      h.tg.waitFor(() => h.tg.botMessages(GROUP).filter((m) => m.text.includes('Noted.')).length === n, {
        timeoutMs: 60_000,
      });
    const done = nextLog(h, (l) => l.msg === 'claude turn finished' && l.sessionKey === `telegram:${GROUP}`);
    member.says('my name is Ada');
    await noted(1);
    // A second turn in the group: once it is answered, the first one is recorded (a chat's turns run one
    // at a time); once its Claude turn is done too, the group's warm process is free for the supergroup.
    member.says('and I like tea');
    await noted(2);
    await done(2);
    const followed = nextLog(h, (l) => l.msg === 'a group became a supergroup: its conversation follows');
    h.tg.migrates(GROUP, SUPERGROUP);
    await followed(2);

    // The session resumed in the supergroup writes where it was last told to, as a model does.
    let resumed = false;
    claude.fake.script((req) => {
      const told = [
        ...req.userTexts.join('\n').matchAll(/directly into the folder (\S+) is sent to the user/g),
      ];
      resumed = req.userTexts.some((t) => t.includes('my name is Ada'));
      return toolUse(
        'Write',
        { file_path: path.join(told.at(-1)?.[1] ?? 'no-outbox', 'notes.txt'), content: 'notes for Ada' },
        text('Wrote the notes.'),
      );
    });
    const user = h.tg.user(113, { chatId: SUPERGROUP });
    user.says('write my notes');
    await h.tg.waitFor(() => h.tg.botMessages(SUPERGROUP).find((m) => m.text.includes('Wrote the notes.')), {
      timeoutMs: 60_000,
    });
    expect(resumed).toBe(true);
    // The chat's turns run one at a time: once the next one is answered, the files of this one were sent.
    claude.fake.script(() => text('Anything else?'));
    user.says('thanks');
    await h.tg.waitFor(() => h.tg.botMessages(SUPERGROUP).find((m) => m.text.includes('Anything else?')), {
      timeoutMs: 60_000,
    });
    const doc = h.tg.botMessages(SUPERGROUP).find((m) => m.document);
    expect(doc?.document?.fileName).toBe('notes.txt');
    expect(Buffer.from(doc?.document?.bytes ?? []).toString()).toBe('notes for Ada');
  });
});
