/**
 * Time to first text of a follow-up turn, warm process vs freshly started CLI,
 * measured alternately in one run (issue 6's figure; target warm ≤ 0.3× fresh).
 * For the benchmark (speed is measured there, never asserted in a test):
 *
 *   const h = await claudeHarness();
 *   const { warmMs, freshMs } = await followUpTtft(h, 5);
 *   await h.close();
 */
import { ClaudeCodeBrain } from '../../brains/claude-code/index.js';
import type { Brain } from '../../brains/types.js';
import { text } from '../fakes/anthropic.js';
import type { ClaudeHarness } from './claude-harness.js';

export interface FollowUpTtft {
  /** Follow-ups answered by the conversation's warm process. */
  warmMs: number[];
  /** Follow-ups of the same conversations on a new CLI process (`--resume`). */
  freshMs: number[];
}

/**
 * Each run starts a conversation, then sends a follow-up through a brain
 * without a pool (a new process resumes the session) and one through the
 * harness's brain (its warm process). Needs a harness with the pool on; sets
 * the fake's script.
 */
export async function followUpTtft(h: ClaudeHarness, runs: number): Promise<FollowUpTtft> {
  if (!h.warm) throw new Error('followUpTtft needs a harness with claude.warm.enabled');
  const fresh = new ClaudeCodeBrain({ ...h.options, warm: undefined });
  h.fake.script(() => text(['first words', ' and more']));
  const out: FollowUpTtft = { warmMs: [], freshMs: [] };
  for (let i = 0; i < runs; i++) {
    const key = `ttft:${i}:${Date.now()}`;
    await firstText(h.brain, key, 'start', false);
    out.freshMs.push(await firstText(fresh, key, 'follow-up on a new process', true));
    out.warmMs.push(await firstText(h.brain, key, 'follow-up on the warm process', true));
  }
  return out;
}

/** Milliseconds from the call until the first text event; the turn is read to its end. */
async function firstText(brain: Brain, key: string, words: string, followUp: boolean): Promise<number> {
  const history = followUp
    ? [
        { role: 'user' as const, content: 'start' },
        { role: 'assistant' as const, content: 'first words and more' },
      ]
    : [];
  const started = performance.now();
  let at: number | undefined;
  const req = {
    sessionKey: key,
    messages: [...history, { role: 'user' as const, content: words }],
    freshSession: !followUp,
  };
  for await (const ev of brain.turn(req, new AbortController().signal)) {
    if (ev.type === 'text') at ??= performance.now();
    if (ev.type === 'error') throw new Error(`turn failed: ${ev.error.message}`);
  }
  if (at === undefined) throw new Error('the turn gave no text');
  return at - started;
}
