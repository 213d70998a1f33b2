/**
 * Waits for `work`, but at most `ms`: shutdown steps use it so that one stuck
 * part (a Telegram call, a command that ignores SIGTERM) cannot hold up the
 * rest. Resolves true when `work` settled in time; a rejection of `work`
 * passes through. The timer is cleared either way, so nothing lingers.
 */
export async function waitAtMost(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, ms, false);
  });
  try {
    return await Promise.race([work.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
