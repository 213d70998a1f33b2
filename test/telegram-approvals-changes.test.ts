import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modeCwd } from '../src/config.js';
import { type FakeReply, text, toolUse } from './fakes/anthropic.js';
import { button, buttonsOf } from './helpers/buttons.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { CLAUDE_BIN } from './helpers/service.js';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * The question for a tool that changes a file shows the change, not only the file: the real
 * `claude` CLI is made (by the fake Anthropic API) to Write or Edit a file in the assistant mode's
 * cwd, outside its allow-list, and the question in the user's private chat is read.
 */

/** A file of many lines, past what one Telegram message holds. */
const HUGE = Array.from({ length: 400 }, (_, i) =>
  `line ${String(i + 1).padStart(3, '0')} `.padEnd(40, '.'),
).join('\n');
const EDITED = 'edited.txt';

/** Each user's words name what Claude does. */
const replies: Record<string, FakeReply> = {
  'write-shown': toolUse(
    'Write',
    { file_path: 'written.txt', content: 'first <b>line</b>\nsecond & "line"\n' },
    text('Done.'),
  ),
  // The CLI edits only a file it has read in the conversation.
  'edit-shown': toolUse(
    'Read',
    { file_path: EDITED },
    toolUse(
      'Edit',
      { file_path: EDITED, old_string: 'old <one>\nkept', new_string: 'new <one>\nkept', replace_all: true },
      text('Done.'),
    ),
  ),
  'write-huge': toolUse('Write', { file_path: 'huge.txt', content: HUGE }, text('Done.')),
};

const claude = claudeOnFake({ script: (req) => replies[req.lastUserTurn] ?? text('Nothing to do.') });
let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    env: { CLAUDE_BIN },
    config: {
      defaultMode: 'assistant',
      claude: { env: claude.cli.env, maxRetries: 0 },
    },
  });
});
afterAll(async () => {
  await h?.close();
});

const cwd = () => modeCwd(h.service.core.config, h.service.core.modes.get('assistant'));
const questionIn = (chatId: number, tool: string) =>
  h.tg.waitFor(
    () =>
      h.tg.botMessages(chatId).find((m) => m.text.startsWith(`⚙️ [proxy] 🔐 Claude wants to use ${tool}:`)),
    { timeoutMs: 20_000 },
  );
const answerIn = (chatId: number) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => m.text === 'Done.'), { timeoutMs: 20_000 });

describe('approval questions for a change to a file', { timeout: 60_000 }, () => {
  it('a Write shows the file and each line it writes, escaped; allowed once, it writes them', async () => {
    const u = h.tg.user(116);
    u.says('write-shown');
    const question = await questionIn(116, 'Write');
    const file = path.join(cwd(), 'written.txt');
    expect(question.text).toBe(
      `⚙️ [proxy] 🔐 Claude wants to use Write:\n${file}\n+ first <b>line</b>\n+ second & "line"`,
    );
    // The tags of the content are text: the question has no bold but the tool's name.
    expect(question.entities.map((e) => e.type)).toEqual(['bold', 'pre']);

    u.presses(question.messageId, button(question, /Allow once/));
    await answerIn(116);
    expect(await readFile(file, 'utf8')).toBe('first <b>line</b>\nsecond & "line"\n');
  });

  it('an Edit shows the file, replace_all, and the lines taken out and put in', async () => {
    const file = path.join(cwd(), EDITED);
    await mkdir(cwd(), { recursive: true });
    await writeFile(file, 'old <one>\nkept\n--\nold <one>\nkept\n');
    const u = h.tg.user(117);
    u.says('edit-shown');
    const question = await questionIn(117, 'Edit');
    expect(question.text).toBe(
      `⚙️ [proxy] 🔐 Claude wants to use Edit:\n${file} (replace_all)\n- old <one>\n- kept\n+ new <one>\n+ kept`,
    );
    expect(buttonsOf(question)).toHaveLength(3);

    u.presses(question.messageId, button(question, /Allow once/));
    await answerIn(117);
    expect(await readFile(file, 'utf8')).toBe('new <one>\nkept\n--\nnew <one>\nkept\n');
  });

  it('a Write too long for one message shows its start and how much is not shown; allowing writes all of it', async () => {
    const u = h.tg.user(118);
    u.says('write-huge');
    const question = await questionIn(118, 'Write');
    const file = path.join(cwd(), 'huge.txt');
    const whole = `${file}\n${HUGE.split('\n')
      .map((l) => `+ ${l}`)
      .join('\n')}`;
    // Room is left for the outcome line added below it.
    expect(question.text.length).toBeLessThanOrEqual(4096 - 200);
    const [, shown = '', more = ''] =
      /^⚙️ \[proxy\] 🔐 Claude wants to use Write:\n([\s\S]*)…\nOnly the start is shown: (\d+) more characters are not\. Allowing allows all of it\.$/.exec(
        question.text,
      ) ?? [];
    expect(shown.length).toBeGreaterThan(3_000);
    expect(whole.startsWith(shown)).toBe(true);
    expect(Number(more)).toBe(whole.length - shown.length);

    u.presses(question.messageId, button(question, /Allow once/));
    await answerIn(118);
    expect(question.text).toMatch(/\n\n✅ Allowed once by User118\.$/);
    expect(await readFile(file, 'utf8')).toBe(HUGE);
  });
});
