import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ClaudeTestEnv,
  claudeTestEnv,
  type FakeAnthropic,
  httpError,
  startFakeAnthropic,
  text,
  usageLimitHeaders,
} from './fakes/anthropic.js';
import { CLAUDE_BIN } from './helpers/service.js';
import { type Harness, OWNER, startHarness } from './telegram-harness.js';

/**
 * Claude's subscription limit seen from Telegram, with the real `claude` CLI
 * on subscription (OAuth) credentials against the fake Anthropic API: the
 * notice, the fallback to the local mode and back, and /status and /usage.
 */
let fake: FakeAnthropic;
let cli: ClaudeTestEnv;
let h: Harness;

beforeAll(async () => {
  fake = await startFakeAnthropic();
  cli = await claudeTestEnv(fake.url, { auth: 'oauth' });
  h = await startHarness({
    env: { CLAUDE_BIN },
    config: {
      defaultMode: 'assistant',
      claude: { env: cli.env, maxRetries: 0 },
      usageLimit: { fallbackMode: 'local' },
    },
  });
});
afterAll(async () => {
  await h?.close();
  await fake?.close();
  await cli?.cleanup();
});

const notices = (pattern: RegExp) => h.tg.botMessages(OWNER).filter((m) => pattern.test(m.text));
const reply = (chatId: number, pattern: RegExp, timeoutMs = 20_000) =>
  h.tg.waitFor(() => h.tg.botMessages(chatId).find((m) => pattern.test(m.text)), { timeoutMs });
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

describe('Claude usage limit in Telegram', { timeout: 60_000 }, () => {
  it('one notice, the switch to local with its wake notice, the state in /status and /usage, then the switch back', async () => {
    // Room for a CLI run under load (1–5 s) before the reset, and for /status and /usage after the switch.
    const resetsAt = (Math.ceil(Date.now() / 1000) + 12) * 1000;
    fake.script(() => httpError(429, { headers: usageLimitHeaders(resetsAt / 1000), shouldRetry: false }));
    const u = h.tg.user(112);
    u.says('hello');

    const failed = await reply(112, /⚠️/);
    expect(failed.text).toMatch(/^⚙️ \[proxy\] ⚠️ .*limit/i);
    const limit = await reply(OWNER, /usage limit is reached/);
    expect(limit.text).toBe(
      `⚙️ [proxy] Claude's subscription usage limit is reached (mode assistant). It resets at ${new Date(resetsAt).toISOString().slice(0, 16).replace('T', ' ')} UTC.`,
    );
    const wake = await reply(OWNER, /Mode local is awake/);
    expect(wake.text).toMatch(/Switched from assistant in /);
    expect(h.service.core.switcher.active().id).toBe('local');

    // Meanwhile the chat is answered by the local brain.
    u.says('still there?');
    await reply(112, /^echo: still there\?$/);

    u.says('/status');
    const status = await reply(112, /^⚙️ \[proxy\] Status\n/);
    const limitLine = new RegExp(
      `⛔ Claude's usage limit is reached \\(mode assistant, since .* UTC\\); it resets at .* ${hhmm(resetsAt)} UTC \\(in [^)]+\\)\\.\\nAutomatic fallback: on, to local until the reset\\.`,
    );
    expect(status.text).toMatch(limitLine);
    expect(status.text).toMatch(/Active mode: local/);
    u.says('/usage');
    const usage = await reply(112, /^⚙️ \[proxy\] Usage\n/);
    expect(usage.text).toMatch(limitLine);

    // A notice is per limit: nothing more while it lasts.
    expect(notices(/usage limit is reached/)).toHaveLength(1);

    fake.script(() => text('back on the subscription'));
    const back = await reply(OWNER, /usage limit has reset/, 25_000);
    expect(back.text).toBe("⚙️ [proxy] Claude's usage limit has reset: back to assistant.");
    await reply(OWNER, /Mode assistant is awake/);
    expect(Date.now()).toBeGreaterThanOrEqual(resetsAt);
    expect(h.service.core.switcher.active().id).toBe('assistant');

    u.says('/status');
    const statuses = () => h.tg.botMessages(112).filter((m) => /^⚙️ \[proxy\] Status\n/.test(m.text));
    await h.tg.waitFor(() => statuses().length === 2);
    const after = statuses()[1];
    expect(after?.text).toMatch(/Active mode: assistant/);
    expect(after?.text).not.toContain('⛔');
    u.says('back?');
    await reply(112, /^back on the subscription$/);
    expect(notices(/usage limit is reached/)).toHaveLength(1);
  });
});
