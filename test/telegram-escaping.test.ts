import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpError } from './fakes/anthropic.js';
import type { FakeMessage } from './fakes/telegram.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { CLAUDE_BIN } from './helpers/service.js';
import { type Harness, OWNER, startHarness } from './telegram-harness.js';

/**
 * Text from outside (an upstream's error, a tool's output, a file's content)
 * reaches the chat as text: Telegram never parses it as HTML or Markdown, so
 * it cannot become a link, bold text or a broken message.
 */

const LINK = '<a href="https://evil.example/renew">renew your login here</a>';
const MD_LINK = '[renew](https://evil.example/md)';

const claude = claudeOnFake();
let h: Harness;
let files: string;

beforeAll(async () => {
  files = await mkdtemp(path.join(tmpdir(), 'bst-escaping-'));
  await writeFile(path.join(files, 'page.html'), `<b>bold?</b> & ${LINK} ${MD_LINK}\n`);
  h = await startHarness({
    env: { CLAUDE_BIN },
    parts: { tools: true, bot: true },
    config: {
      defaultMode: 'assistant',
      claude: { env: claude.cli.env, maxRetries: 0 },
      tools: { files: { roots: [files] } },
    },
  });
});
afterAll(async () => {
  await h?.close();
  await rm(files, { recursive: true, force: true });
});

const reply = (chatId: number, pattern: RegExp) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs: 30_000 });

/** Shown as it was written: no link, no formatting taken from it. */
function expectLiteral(m: FakeMessage, ...parts: string[]) {
  for (const part of parts) expect(m.text).toContain(part);
  expect(m.entities.filter((e) => e.type === 'text_link' || e.type === 'url')).toEqual([]);
  expect(m.entities.filter((e) => e.type === 'bold' && m.text.slice(e.offset).startsWith('bold?'))).toEqual(
    [],
  );
}

describe('outside text in Telegram', { timeout: 60_000 }, () => {
  it('an upstream auth error carrying HTML and a Markdown link: the notice and the answer show it as text', async () => {
    claude.fake.script(() => httpError(401, { message: `${LINK} ${MD_LINK}`, shouldRetry: false }));
    h.tg.user(112).says('hello');

    const notice = await reply(OWNER, /refused its credentials/);
    expectLiteral(notice, 'renew your login here', 'https://evil.example/renew', MD_LINK);
    const answer = await reply(112, /⚠️/);
    expectLiteral(answer, 'renew your login here', 'https://evil.example/renew', MD_LINK);
  });

  it('a tool output with HTML and Markdown: shown as text', async () => {
    h.tg.user(113).says('/run read_file path=page.html');
    const result = await reply(113, /✅ read_file/);
    expectLiteral(result, '<b>bold?</b> &', LINK, MD_LINK);
  });

  it('a file read_file cut at its size limit: the result says which limit cut it, not that brainstem capped the output', async () => {
    await writeFile(path.join(files, 'long-notes.txt'), 'a note line\n'.repeat(500));
    h.tg.user(114).says('/run read_file path=long-notes.txt maxBytes=1200');
    const result = await reply(114, /✅ read_file .*long-notes\.txt/);
    expect(result.text).toContain('[… truncated: 4800 more bytes …]');
    expect(result.text).toContain(
      "Only the first 1200 of the file's 6000 bytes are shown: read_file stops at maxBytes (1200), which tools.files.maxBytes (1000000) caps.",
    );
    expect(result.text).not.toContain('tools.maxOutputChars');
  });
});
