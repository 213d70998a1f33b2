/**
 * "Wait at most N ms", the one way brainstem bounds a wait: shutdown steps
 * use it so that one stuck part (a Telegram call, a command that ignores
 * SIGTERM) cannot hold up the rest, probes so that a slow brain answers
 * "not within N ms". The timer is cleared as soon as the work settles, so
 * nothing lingers; a rejection of the work passes through.
 */

/** The longest delay a Node timer takes (about 24.8 days): it fires after 1 ms for a longer one. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** Why a configured time over MAX_TIMER_MS is refused. */
export const TIMER_TOO_LONG = `at most ${MAX_TIMER_MS} ms (about 24 days): Node's timers cannot wait longer`;

/** The work's value if it settles within `ms`, else `late` (the work goes on, unwatched). */
export async function settleWithin<T, L>(work: Promise<T>, ms: number, late: L): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<L>((resolve) => {
    timer = setTimeout(resolve, ms, late);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether the work settled within `ms`. */
export function waitAtMost(work: Promise<unknown>, ms: number): Promise<boolean> {
  return settleWithin(
    work.then(() => true as const),
    ms,
    false as const,
  );
}
