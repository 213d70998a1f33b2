import type { MiddlewareFn, Transformer } from 'grammy';
import { z } from 'zod';
import type { KvStore } from '../../src/db/index.js';
import type { KeptWrites } from '../../src/db/kept-writes.js';

/** The last update id the direct route's runner handed to the bot, in the state database's kv. */
const HANDED_OVER_KEY = 'telegram_handed_over';

/** As stored: the id, and the Bot API server and bot it came from (another one's ids are not these). */
const storedSchema = z.object({ id: z.number().int().positive(), from: z.string() });

/**
 * The direct route's place in Telegram's updates, kept across restarts. The runner confirms what it
 * handed over only with its next getUpdates' offset, and starts each run (a restart, a new runner
 * after a 409) from no offset: when that next fetch failed (a network drop, a 409), a restart was
 * given the last updates again, and a message already answered was answered twice. Each update is
 * noted here as it is handed to the bot (handedOver, first in the middleware), and a fetch that
 * would start before the next one (`transformer`) starts there instead: what was handed over is
 * then never fetched twice (a message a crash cut is told by cut-turns.ts instead). With the Bot
 * API front on, the front keeps this offset itself (telegram-front/intake.ts).
 *
 * When Telegram's ids start again lower (after a week without updates), the offset kept is past
 * them, "in the future" for Telegram, which then confirms nothing and sends what waits from the
 * first: those are handed over as they come, and the note follows them down.
 */
export class HandedOver {
  private last: number | undefined;

  /**
   * `from`: the Bot API server and the bot (its id, not the token's secret). Another server (a local
   * one) or another bot numbers its updates apart: an id kept from the last would skip theirs.
   */
  constructor(
    private readonly kv: KvStore,
    private readonly kept: KeptWrites,
    private readonly from: string,
  ) {
    let raw: unknown;
    try {
      raw = JSON.parse(kv.get(HANDED_OVER_KEY) ?? 'null');
    } catch {
      raw = undefined;
    }
    const stored = storedSchema.safeParse(raw);
    this.last = stored.success && stored.data.from === from ? stored.data.id : undefined;
  }

  /** Installed first: notes the update before the runner's next fetch confirms it (synchronously). */
  middleware(): MiddlewareFn {
    return (ctx, next) => {
      const id = ctx.update.update_id;
      this.last = id;
      const value = JSON.stringify({ id, from: this.from } satisfies z.infer<typeof storedSchema>);
      this.kept.run('the last Telegram update handed over', () => this.kv.set(HANDED_OVER_KEY, value), {
        latest: true,
      });
      return next();
    };
  }

  /** getUpdates starts past the last update handed over, whatever offset the runner asks for. */
  transformer(): Transformer {
    return (prev, method, payload, signal) => {
      const from = this.last === undefined ? undefined : this.last + 1;
      if (method !== 'getUpdates' || from === undefined) return prev(method, payload, signal);
      const asked = (payload as { offset?: number }).offset ?? 0;
      return prev(method, asked < from ? { ...payload, offset: from } : payload, signal);
    };
  }
}
