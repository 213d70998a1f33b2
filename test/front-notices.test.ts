/**
 * A `⚙️ [proxy]` notice reaches a chat once. The second grammY bot plays
 * OpenClaw end to end: it takes the chat's message from the front, asks
 * brainstem's OpenAI endpoint (the real `claude` CLI against the fake
 * Anthropic API, failing), and posts the answer through the front, as OpenClaw
 * does. brainstem also sends the failure's notice to its notify chat itself.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpError, text, toolUse, usageLimitHeaders } from './fakes/anthropic.js';
import { PRICED_MODEL } from './helpers/claude-bin.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { type Downstream, startDownstream } from './helpers/downstream-bot.js';
import { CLAUDE_BIN } from './helpers/service.js';
import { type Harness, OWNER, startHarness } from './telegram-harness.js';

const claude = claudeOnFake({ auth: 'oauth' });
let h: Harness;
let oc: Downstream;
const OTHER = 112;
/** What OpenClaw's bot posted, as Telegram stored it: chat and message id. */
const posted: { chatId: number; messageId: number }[] = [];

/** OpenClaw's rendering of an answer: HTML-escaped, `code` as <code>. */
const toHtml = (md: string) =>
  md
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/`([^`]+)`/g, '<code>$1</code>');

beforeAll(async () => {
  h = await startHarness({
    env: { CLAUDE_BIN },
    config: {
      defaultMode: 'assistant',
      claude: { env: { ...claude.cli.env, ...PRICED_MODEL }, maxRetries: 0 },
      telegram: { front: { enabled: true } },
      modes: { capped: { kind: 'claude', allowedTools: ['Bash'], budget: { turnUsd: 0.01 } } },
    },
  });
  oc = await startDownstream(`${h.service.url}/telegram`, h.tg.token, { commands: false });
  const client = new OpenAI({
    baseURL: `${h.service.url}/v1`,
    apiKey: h.service.core.apiToken.token,
    maxRetries: 0,
  });
  oc.bot.on('message:text', async (ctx) => {
    const stream = await client.chat.completions.create(
      {
        model: ctx.message.text.includes('capped') ? 'brainstem/capped' : 'brainstem/active',
        stream: true,
        messages: [{ role: 'user', content: ctx.message.text }],
      },
      { headers: { 'x-session-key': `telegram:${ctx.chat.id}` } },
    );
    let answer = '';
    for await (const chunk of stream) answer += chunk.choices[0]?.delta?.content ?? '';
    const intro = ctx.message.text.includes('intro') ? 'I tried, but:\n\n' : '';
    const m = await ctx.api.sendMessage(ctx.chat.id, toHtml(intro + answer.trim()), { parse_mode: 'HTML' });
    posted.push({ chatId: ctx.chat.id, messageId: m.message_id });
  });
});
afterAll(async () => {
  await oc?.stop();
  await h?.close();
});

/** The raw text of the next message OpenClaw's bot posts to the chat, as Telegram got it. */
async function nextPost(chatId: number): Promise<string> {
  const seen = posted.filter((p) => p.chatId === chatId).length;
  const p = await h.tg.waitFor(() => posted.filter((x) => x.chatId === chatId)[seen], { timeoutMs: 30_000 });
  return h.tg.messages(chatId).find((m) => m.messageId === p.messageId)?.raw ?? '';
}
const texts = (chatId: number, pattern: RegExp) =>
  h.tg.botMessages(chatId).filter((m) => pattern.test(m.text));

describe('proxy notices through the front', { timeout: 60_000 }, () => {
  it('a notify chat gets an expired credential once; OpenClaw’s copy becomes a pointer to it', async () => {
    claude.fake.script(() => httpError(401, { message: 'OAuth token has expired', shouldRetry: false }));
    const post = nextPost(OWNER);
    h.tg.user(OWNER).says('hello');
    await h.tg.waitFor(() => texts(OWNER, /Claude refused its credentials/).length === 1, {
      timeoutMs: 30_000,
    });
    expect(await post).toBe('⚙️ [proxy] (notice sent above)');
    expect(texts(OWNER, /Claude refused its credentials/)).toHaveLength(1);
  });

  it('a chat that does not get notices keeps the notice in OpenClaw’s answer', async () => {
    const post = nextPost(OTHER);
    h.tg.user(OTHER).says('hello from elsewhere');
    // OAuth token credentials (CLAUDE_CODE_OAUTH_TOKEN): a new setup-token renews them, not /login.
    expect(await post).toMatch(
      /^⚙️ \[proxy\] Claude refused its credentials .*<code>claude setup-token<\/code>/,
    );
  });

  it('a usage limit told in other words is taken out too, and the rest of the answer stays', async () => {
    const resetsAt = Math.ceil(Date.now() / 1000) + 3600;
    claude.fake.script(() => httpError(429, { headers: usageLimitHeaders(resetsAt), shouldRetry: false }));
    const post = nextPost(OWNER);
    h.tg.user(OWNER).says('hello with intro');
    await h.tg.waitFor(() => texts(OWNER, /usage limit is reached/).length === 1, { timeoutMs: 30_000 });
    expect(await post).toBe('I tried, but:');
    expect(texts(OWNER, /limit/)).toHaveLength(1);
  });

  it('a budget stop stays in OpenClaw’s answer: no notice tells it, whatever usage-limit notice came that day', async () => {
    // The usage-limit notice of the test above is recent: the spoken stop must not be taken for it.
    expect(h.service.core.notifier.recent(10).some((n) => n.kind === 'usage_limit')).toBe(true);
    claude.fake.script(() =>
      toolUse('Bash', { command: 'echo more' }, text('never reached'), {
        preamble: 'Working on it.',
        usage: { output_tokens: 4000 },
      }),
    );
    const post = nextPost(OWNER);
    h.tg.user(OWNER).says('a capped task');
    expect(await post).toMatch(
      /Working on it\.[\s\S]*⚙️ \[proxy\] This answer was stopped: it reached the per-turn budget of mode capped/,
    );
  });

  it('never cuts a notice out of an element it leaves open: the markup stays whole', async () => {
    const notice = h.service.core.notifier.recent(10).find((n) => n.kind === 'auth')?.text ?? '';
    const m = await oc.bot.api.sendMessage(OWNER, `<blockquote>${notice}\n\nrest</blockquote>`, {
      parse_mode: 'HTML',
    });
    expect(m.text).toMatch(/^⚙️ \[proxy\] Claude refused[\s\S]*rest$/);
  });

  it('moves the entities of a plain-text message to match what is left', async () => {
    const notice = h.service.core.notifier.recent(10).find((n) => n.kind === 'auth')?.text ?? '';
    expect(notice).toMatch(/^⚙️ \[proxy\] Claude refused/);
    const text = `Intro\n\n${notice}\n\nOutro`;
    const outro = text.length - 5;
    const m = await oc.bot.api.sendMessage(OWNER, text, {
      entities: [
        { type: 'bold', offset: 0, length: 5 },
        { type: 'italic', offset: 7, length: 9 },
        { type: 'bold', offset: outro, length: 5 },
      ],
    });
    expect(m.text).toBe('Intro\n\nOutro');
    expect(h.tg.callsOf('sendMessage', OWNER).at(-1)?.params.entities).toEqual([
      { type: 'bold', offset: 0, length: 5 },
      { type: 'bold', offset: 7, length: 5 },
    ]);
  });
});
