import type { BenchSetup } from './fixture.js';

/** New Claude conversations the main bench starts at once (its concurrency figure) against one. */
export const AT_ONCE = 8;

/** The service `npm run bench`'s own figures (bench/run.ts) run on. */
export const MAIN_SETUP: BenchSetup = {
  config: {
    defaultMode: 'assistant',
    // The proxy's own cost: no tools offered, like a client (OpenClaw) that brings its own.
    // No spare: these figures are the CLI start's (the spare's own are in `claudeSpare`).
    modes: { local: { kind: 'llama', allowedTools: [] }, assistant: { kind: 'claude', spares: 0 } },
    // Eight new conversations at once, above the default cap of six processes, which would
    // refuse two with a 429; and room for them all to stay warm.
    claude: { warm: { max: 12 }, maxProcesses: 12 },
  },
  concurrentTurns: AT_ONCE,
  // Each new conversation's follow-up, timed right after its first turn.
  warmConversations: 1,
};
