import { describe, expect, it } from 'vitest';
import type { ConfigFile } from '../src/config.js';
import { httpError, refuseWithLimit, text, usageLimitHeaders } from './fakes/anthropic.js';
import { startFakeLlama } from './fakes/llama.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { gate } from './helpers/gate.js';
import { CLAUDE_BIN } from './helpers/service.js';
import { type Harness, OWNER, startHarness } from './telegram-harness.js';

/**
 * Claude's subscription limit seen from Telegram, with the real `claude` CLI
 * on subscription (OAuth) credentials against the fake Anthropic API: the
 * notice, the fallback to the local mode and back, and /status and /usage.
 * A reset an hour away holds the limit while the test looks at it; the switch
 * back is tested with a reset due seconds after the refusal, waited for as the
 * notices it sends.
 */
const claude = claudeOnFake({ auth: 'oauth' });

/** A bot of its own for each test: the limit and the fallback are persisted state. `more` is merged over its config. */
async function harness(
  ctx: { onTestFinished(fn: () => Promise<void>): void },
  more: ConfigFile = {},
): Promise<Harness> {
  const h = await startHarness({
    env: { CLAUDE_BIN },
    config: {
      defaultMode: 'assistant',
      claude: { env: claude.cli.env, maxRetries: 0 },
      usageLimit: { fallbackMode: 'local' },
      ...more,
    },
  });
  ctx.onTestFinished(() => h.close());
  return h;
}

const reply = (h: Harness, chatId: number, pattern: RegExp) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs: 120_000 });
const notices = (h: Harness, pattern: RegExp) => h.tg.botMessages(OWNER).filter((m) => pattern.test(m.text));
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

// Two Claude CLI runs, a fallback and a switch back: minutes on a loaded two-core machine.
describe('Claude usage limit in Telegram', { timeout: 300_000 }, () => {
  it('one notice, the switch to local with its wake notice, the limit in /status and /usage while it lasts', async (ctx) => {
    const h = await harness(ctx);
    const refused = refuseWithLimit(claude.fake, 3_600_000);
    const u = h.tg.user(112);
    u.says('hello');

    const failed = await reply(h, 112, /⚠️/);
    expect(failed.text).toMatch(/^⚙️ \[proxy\] ⚠️ .*limit/i);
    // The chat that asked (not a notify chat) hears where its message can be answered meanwhile.
    expect(failed.text).toMatch(
      /; it resets at .* UTC\. Mode local answers until then: send your message again to have it answered there\.$/,
    );
    // brainstem's own words carry the tag once, not "⚙️ [proxy] ⚠️ ⚙️ [proxy] …".
    expect(failed.text.split('[proxy]')).toHaveLength(2);
    const resetsAt = await refused;
    const limit = await reply(h, OWNER, /usage limit is reached/);
    expect(limit.text).toBe(
      `⚙️ [proxy] Claude's subscription usage limit is reached (mode assistant). It resets at ${new Date(resetsAt).toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
    );
    const wake = await reply(h, OWNER, /Mode local is awake/);
    expect(wake.text).toMatch(/Switched from assistant in /);
    expect(h.service.core.switcher.active().id).toBe('local');

    // Meanwhile the chat is answered by the local brain.
    u.says('still there?');
    await reply(h, 112, /^echo: still there\?$/);

    u.says('/status');
    const status = await reply(h, 112, /^⚙️ \[proxy\] Status\n/);
    const limitLine = new RegExp(
      `⛔ Claude's usage limit is reached \\(mode assistant, since .* UTC\\); it resets at .* ${hhmm(resetsAt)} UTC \\(in [^)]+\\)\\.\\nAutomatic fallback: on, to local until the reset\\.`,
    );
    expect(status.text).toMatch(limitLine);
    expect(status.text).toMatch(/Active mode: local/);
    u.says('/usage');
    const usage = await reply(h, 112, /^⚙️ \[proxy\] Usage\n/);
    expect(usage.text).toMatch(limitLine);

    // A notice is per limit: nothing more while it lasts.
    expect(notices(h, /usage limit is reached/)).toHaveLength(1);
  });

  it('at the reset: back to the Claude mode with its notices, /status clear, Claude answering', async (ctx) => {
    const h = await harness(ctx);
    const refused = refuseWithLimit(claude.fake, 2_000);
    const u = h.tg.user(113);
    u.says('hello');
    await reply(h, 113, /⚠️/);
    const resetsAt = await refused;
    claude.fake.script(() => text('back on the subscription'));

    const back = await reply(h, OWNER, /usage limit has reset/);
    expect(back.text).toBe("⚙️ [proxy] Claude's usage limit has reset: back to assistant.");
    // The fallback came first, however late the refusal was read.
    const wakes = () => notices(h, /^⚙️ \[proxy\] Mode \w+ is awake/).map((m) => m.text.split(' ')[3]);
    await h.tg.waitFor(() => wakes().length === 2, { timeoutMs: 120_000 });
    expect(wakes()).toEqual(['local', 'assistant']);
    const switchedBack = h.tg
      .callsOf('sendMessage', OWNER)
      .find((c) => /has reset/.test(String(c.params.text)));
    expect(switchedBack?.at).toBeGreaterThanOrEqual(resetsAt);
    expect(h.service.core.switcher.active().id).toBe('assistant');

    u.says('/status');
    const status = await reply(h, 113, /^⚙️ \[proxy\] Status\n/);
    expect(status.text).toMatch(/Active mode: assistant/);
    expect(status.text).not.toContain('⛔');
    u.says('back?');
    await reply(h, 113, /^back on the subscription$/);
    expect(notices(h, /usage limit is reached/)).toHaveLength(1);
  });

  it("speaks of the fallback only when this limit's own switch takes over, never of a switch the owner made meanwhile, and in the reader's language", async (ctx) => {
    // A mode whose model is loading until the test says otherwise: the owner's switch to it is under way meanwhile.
    const slow = await startFakeLlama({ loading: true });
    ctx.onTestFinished(() => slow.close());
    const h = await harness(ctx, {
      modes: { slow: { kind: 'llama', baseUrl: slow.baseUrl, description: 'Slow' } },
      llama: { readyTimeoutMs: 120_000 },
    });
    // The refusal is held until the owner's switch is under way.
    const held = gate();
    const asked = gate();
    claude.fake.script(async () => {
      asked.open();
      await held.held;
      const resetSec = Math.ceil((Date.now() + 3_600_000) / 1000);
      return httpError(429, { headers: usageLimitHeaders(resetSec), shouldRetry: false });
    });
    const u = h.tg.user(114, { languageCode: 'fr' });
    u.says('bonjour');
    await asked.held;
    h.tg.user(OWNER).says('/mode slow');
    await expect.poll(() => h.service.core.switcher.underWay(), { timeout: 60_000 }).toBe('slow');
    held.open();
    const refused = await reply(h, 114, /⚠️/);
    // Nothing told the reader to expect the fallback mode: the owner's switch is to another mode.
    expect(refused.text).toMatch(
      /^⚙️ \[proxy\] ⚠️ La limite d’usage de l’abonnement Claude est atteinte \(limite de 5 heures\) ; réinitialisation à [\d-]+ [\d:]+ UTC\.$/,
    );
    slow.setLoading(false);
    await reply(h, OWNER, /✅ Mode slow is ready/);
    // The fallback's switch, queued behind the owner's, no longer applies.
    await expect.poll(() => h.service.core.switcher.isSwitching(), { timeout: 60_000 }).toBe(false);
    expect(h.service.core.switcher.active().id).toBe('slow');

    // Back on Claude, the limit's own fallback takes over: the reader hears so, all in French.
    claude.fake.script(() => text('unused'));
    h.tg.user(OWNER).says('/mode assistant');
    await reply(h, OWNER, /✅ Mode assistant is ready/);
    void refuseWithLimit(claude.fake, 3_600_000);
    u.says('encore');
    const second = await h.tg.waitFor(() => h.tg.botMessages(114).filter((m) => /⚠️/.test(m.text))[1], {
      timeoutMs: 120_000,
    });
    expect(second.text).toMatch(
      /^⚙️ \[proxy\] ⚠️ La limite d’usage de l’abonnement Claude est atteinte \(limite de 5 heures\) ; réinitialisation à .* UTC\. Le mode local répond d’ici là : renvoyez votre message pour qu’il y réponde\.$/,
    );
  });
});
