import { describe, expect, it } from 'vitest';
import { httpError, text } from './fakes/anthropic.js';
import { claudeOnFake } from './helpers/claude-fake.js';
import { startClaudeHarness, startHarness } from './telegram-harness.js';

/**
 * A Claude conversation that no longer fits the context, seen from a Telegram
 * chat on the direct route, with the real `claude` CLI against the fake API:
 * the user is told why and what happens, and the chat goes on; and answers,
 * Claude's or a local model's, cut at the output limit.
 */
const claude = claudeOnFake();

/** A bot of its own on the Claude mode, for a test. */
async function claudeHarness(ctx: { onTestFinished(fn: () => Promise<void>): void }) {
  const h = await startClaudeHarness(claude.cli.env, { server: { modeTag: false } });
  ctx.onTestFinished(() => h.close());
  return h;
}

describe('a prompt too long for Claude in Telegram', { timeout: 300_000 }, () => {
  it('says so, closes the session that holds it, and the next message is answered with the chat’s history', async (ctx) => {
    const h = await claudeHarness(ctx);
    // Like the API: every request holding the oversized message is refused.
    claude.fake.script((r) => {
      const sent = JSON.stringify(r.body?.messages);
      if (sent.includes('HUGE'))
        return httpError(400, { message: 'prompt is too long: 210000 tokens > 200000 maximum' });
      return text(sent.includes('remember plum') ? 'you said plum' : 'noted');
    });
    const u = h.tg.user(113);
    const reply = (pattern: RegExp) =>
      h.tg.waitFor(() => h.tg.botMessages(113).find((m) => pattern.test(m.text)), { timeoutMs: 120_000 });

    u.says('remember plum');
    await reply(/^you said plum$/);
    u.says('HUGE paste');
    const refused = await reply(/Prompt is too long/);
    expect(refused.text).toMatch(/^⚙️ \[proxy\] ⚠️ Prompt is too long for Claude's context/);
    expect(refused.text).toContain('the next message starts a new session');

    const before = claude.fake.mainRequests().length;
    u.says('which fruit?');
    const answers = () => h.tg.botMessages(113).filter((m) => m.text === 'you said plum');
    await h.tg.waitFor(() => answers().length === 2 || undefined, { timeoutMs: 120_000 });
    const sent = claude.fake.mainRequests().slice(before);
    // One request, in a new session: the chat's history replayed, without the refused message.
    expect(sent).toHaveLength(1);
    expect(sent[0]?.userTexts[0]).toContain('user: remember plum');
    expect(JSON.stringify(sent[0]?.body?.messages)).not.toContain('HUGE');
  });
});

describe('an answer longer than Claude’s output limit in Telegram', { timeout: 300_000 }, () => {
  it('shows the text so far and says it was cut, and what to do; a refused answer likewise', async (ctx) => {
    const h = await claudeHarness(ctx);
    // Every reply stops at the output-token limit: the CLI asks to go on three times, then gives up.
    claude.fake.script(() => text(['Long, '], { stopReason: 'max_tokens' }));
    // In the user's language (the English words are the local model's test below).
    h.tg.user(114, { languageCode: 'fr' }).says('write a long essay');
    const cut = await h.tg.waitFor(() => h.tg.botMessages(114).find((m) => /a été coupée/.test(m.text)), {
      timeoutMs: 120_000,
    });
    expect(cut.text).toMatch(
      /^Long, Long, Long, Long,\s+⚙️ \[proxy\] La réponse de Claude a été coupée : elle atteignait sans cesse la limite de jetons de sortie\. Demandez-lui de continuer, ou relevez la limite avec CLAUDE_CODE_MAX_OUTPUT_TOKENS dans claude\.env\.$/,
    );
    // A refused answer, on the same bot: its words once, though the current CLI goes on once after a refusal.
    claude.fake.script(() => text(['I can', 'not'], { stopReason: 'refusal' }));
    h.tg.user(118).says('something against the policy');
    const refused = await h.tg.waitFor(
      () => h.tg.botMessages(118).find((m) => /safety classifier/.test(m.text)),
      { timeoutMs: 120_000 },
    );
    expect(refused.text).toBe(
      "I cannot\n\n⚙️ [proxy] Claude's safety classifier stopped this answer (Anthropic's usage policy); the rest of it was withheld. Rephrase the request, or start a new conversation with /new.",
    );
  });
});

describe('an answer cut at the local model’s output limit in Telegram', () => {
  it('shows the text so far and says it was cut, and what to do', async (ctx) => {
    const h = await startHarness({ config: { server: { modeTag: false } } });
    ctx.onTestFinished(() => h.close());
    h.llama.script(() => ({ chunks: ['The first half'], finishReason: 'length' }));
    h.tg.user(115).says('write a long essay');
    const cut = await h.tg.waitFor(() => h.tg.botMessages(115).find((m) => /answer was cut/.test(m.text)), {
      timeoutMs: 60_000,
    });
    expect(cut.text).toBe(
      "The first half\n\n⚙️ [proxy] The local model's answer was cut: it reached its output limit (llama-server's --n-predict) or the end of its context (--ctx-size). Ask it to go on, or start a new conversation with /new.",
    );
    h.tg.user(116, { languageCode: 'fr' }).says('écris un long essai');
    const coupee = await h.tg.waitFor(() => h.tg.botMessages(116).find((m) => /a été coupée/.test(m.text)), {
      timeoutMs: 60_000,
    });
    expect(coupee.text).toBe(
      'The first half\n\n⚙️ [proxy] La réponse du modèle local a été coupée : il a atteint sa limite de sortie (--n-predict de llama-server) ou la fin de son contexte (--ctx-size). Demandez-lui de continuer, ou commencez une nouvelle conversation avec /new.',
    );
    // An answer its server's content filter stopped is told too, not left as if whole.
    h.llama.script(() => ({ chunks: ['The start'], finishReason: 'content_filter' }));
    h.tg.user(117).says('something filtered');
    const filtered = await h.tg.waitFor(
      () => h.tg.botMessages(117).find((m) => /content filter/.test(m.text)),
      { timeoutMs: 60_000 },
    );
    expect(filtered.text).toBe(
      "The start\n\n⚙️ [proxy] The local model's server stopped this answer with its content filter; the rest of it was withheld. Rephrase the request, or start a new conversation with /new.",
    );
  });
});
