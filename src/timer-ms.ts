import { z } from 'zod';

/** The longest delay a Node timer takes (about 24.8 days): it fires after 1 ms for any longer one. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A configured time in ms that a timer waits: refused above Node's limit, where it would fire at
 * once, so `claude.turnTimeoutMs: 3000000000` (35 days, "no limit") stopped every turn 2 s in,
 * telling it was stopped after 50000 minutes. The one schema for it, in brainstem.json's every
 * section (src/config.ts, src/tools/config.ts).
 */
export function timerMs() {
  return z
    .number()
    .int()
    .max(MAX_TIMER_MS, `at most ${MAX_TIMER_MS} ms (about 24 days): Node's timers cannot wait longer`);
}
