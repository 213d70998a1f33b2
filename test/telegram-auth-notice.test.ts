import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpError } from './fakes/anthropic.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { type Harness, OWNER, startClaudeHarness } from './telegram-harness.js';

/**
 * The notice the notify chats get when Claude refuses its credentials: the real CLI on the fake
 * Messages API, the Bot API emulator as Telegram. It speaks the notices' language, as every notice.
 */

const claude = claudeOnFake();
let h: Harness;

beforeAll(async () => {
  h = await startClaudeHarness(claude.cli.env);
});
afterAll(async () => {
  await h?.close();
});

describe('the credentials-refused notice', { timeout: 60_000 }, () => {
  it('is in French once the owner writes in French, as the answer is', async () => {
    claude.fake.script(() => httpError(401, { message: 'invalid x-api-key', shouldRetry: false }));
    h.tg.user(OWNER, { languageCode: 'fr' }).says('bonjour');
    // The owner's chat is a notify chat too: the answer and the notice both come there.
    const told = await h.tg.waitFor(
      () => {
        const said = h.tg.botMessages(OWNER).filter((m) => /identifiants|credentials/.test(m.text));
        return said.length === 2 && said;
      },
      { timeoutMs: 30_000 },
    );
    for (const m of told) {
      expect(m.text).toMatch(/^⚙️ \[proxy\] (⚠️ )?Claude a refusé ses identifiants \(/);
      expect(m.text).not.toMatch(/refused its credentials/);
    }
  });
});
