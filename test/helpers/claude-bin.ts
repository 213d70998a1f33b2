/**
 * The one place that says which real Claude Code CLI the tests and benches drive.
 *
 * Two are installed: the pinned `@anthropic-ai/claude-code` (the version the fakes were
 * first written against) and `claude-code-current` (an npm alias of the current release).
 * `node_modules/.bin/claude` is whichever npm linked last, so nothing may rely on it.
 * `BRAINSTEM_TEST_CLI=current` selects the current one; CI runs the whole suite with each:
 * the pinned one on Node 20, the current one on Node 24 (.ci/run).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const BINS = {
  pinned: 'node_modules/@anthropic-ai/claude-code/bin/claude.exe',
  current: 'node_modules/claude-code-current/bin/claude.exe',
} as const;

function selected(): keyof typeof BINS {
  const want = process.env.BRAINSTEM_TEST_CLI ?? 'pinned';
  if (want !== 'pinned' && want !== 'current') {
    throw new Error(`BRAINSTEM_TEST_CLI must be "pinned" or "current", not "${want}"`);
  }
  return want;
}

/** Which CLI this run drives, for test names and bench results. */
export const CLAUDE_CLI = selected();
export const CLAUDE_BIN = path.join(ROOT, BINS[CLAUDE_CLI]);

/**
 * For tests that set a turn's cost through token counts: the CLIs' default models
 * differ (and so do their prices), but both price `claude-sonnet-4-5` at $3 per million
 * input tokens and $15 per million output tokens. Add it to the CLI's environment.
 */
export const PRICED_MODEL = { ANTHROPIC_MODEL: 'claude-sonnet-4-5' } as const;
