/**
 * "Wait at most N ms", the one way brainstem bounds a wait: shutdown steps
 * use it so that one stuck part (a Telegram call, a command that ignores
 * SIGTERM) cannot hold up the rest, probes so that a slow brain answers
 * "not within N ms". The timer is cleared as soon as the work settles, so
 * nothing lingers; a rejection of the work passes through.
 */

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
