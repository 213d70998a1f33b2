import type { TestContext } from 'vitest';
import { vi } from 'vitest';

const DAY_MS = 86_400_000;

/**
 * For the rest of the test, `Date` runs (still ticking) from noon UTC yesterday: twelve hours from
 * either midnight, so what a test records and then reads falls on one UTC day (and one month, hours
 * from a month's end at worst), and in the past, so the rows it records count in the later tests'
 * periods. The timers stay real: the service under test and the processes it runs keep their pace.
 */
export function clockFromNoonYesterday(ctx: TestContext): void {
  vi.useFakeTimers({
    toFake: ['Date'],
    now: Math.floor(Date.now() / DAY_MS) * DAY_MS - DAY_MS / 2,
    shouldAdvanceTime: true,
  });
  ctx.onTestFinished(() => {
    vi.useRealTimers();
  });
}
