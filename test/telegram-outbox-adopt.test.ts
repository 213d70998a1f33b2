import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatOutbox } from '../handlers/telegram/route/outbox.js';
import { OUTBOX_KEY_FILE, outboxRoot } from '../src/outbox.js';
import { telegramSessionKey } from '../src/session-keys.js';
import { type Harness, startHarness } from './telegram-harness.js';

/**
 * A conversation's outbox folder is removed once its turn's files are sent (made again before the
 * next turn). A folder under the name outboxes had before their names were keyed by brainstem's
 * secret (a plain hash anyone computes) is taken for leftovers of that older brainstem only when it
 * is older than the secret: one made since was made by a brain of another conversation, to reach
 * this chat, and a restart must not make it look old enough.
 */
let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const dataDir = () => h.service.core.config.dataDir;
const oldName = (chatId: number) =>
  path.join(
    outboxRoot(dataDir()),
    `telegram_${chatId}-${createHash('sha256').update(telegramSessionKey(chatId)).digest('hex').slice(0, 8)}`,
  );
const answered = (chatId: number, said: string) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => m.text.includes(said)), { timeoutMs: 30_000 });

describe('a folder under an outbox’s old name', () => {
  it('made after brainstem first keyed the names (before a restart) is not sent to the chat it names', async () => {
    h.tg.user(113).says('first question');
    await answered(113, 'first question');
    // Its folder went with the turn.
    await h.tg.waitFor(() => !existsSync(chatOutbox(dataDir(), 113, undefined)));
    // The names were keyed two hours ago; an hour ago (before this process started, as after a
    // restart) another conversation's brain wrote under this chat's old name.
    const hours = (n: number) => new Date(Date.now() - n * 3_600_000);
    await utimes(path.join(dataDir(), OUTBOX_KEY_FILE), hours(2), hours(2));
    await mkdir(oldName(113), { recursive: true });
    await writeFile(path.join(oldName(113), 'planted.txt'), 'from another chat');
    await utimes(oldName(113), hours(1), hours(1));

    h.tg.user(113).says('second question');
    await answered(113, 'second question');
    expect(h.tg.botMessages(113).filter((m) => m.document || m.photo)).toEqual([]);
    expect(h.tg.botMessages(113).filter((m) => /earlier answer/.test(m.text))).toEqual([]);
  });

  it('older than the keyed names (a brainstem from before them) is sent as leftovers', async () => {
    const hours = (n: number) => new Date(Date.now() - n * 3_600_000);
    await utimes(path.join(dataDir(), OUTBOX_KEY_FILE), hours(2), hours(2));
    await mkdir(oldName(114), { recursive: true });
    await writeFile(path.join(oldName(114), 'left.txt'), 'an older answer');
    await utimes(oldName(114), hours(3), hours(3));
    h.tg.user(114).says('hello');
    await answered(114, 'hello');
    expect(h.tg.botMessages(114).map((m) => m.document?.fileName ?? m.text)).toContain('left.txt');
  });
});
