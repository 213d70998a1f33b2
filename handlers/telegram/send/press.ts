import type { Context } from 'grammy';
import type { Logger } from '../../../src/logger.js';

/**
 * Answers a button press: its toast, and the end of the spinner on the button. The press has
 * done its work by then, and Telegram refusing the answer takes none of it back: a press that
 * waited while brainstem restarted, or behind a 429, is "too old" once about 15 s have passed.
 * So the refusal is logged, never thrown: thrown from a command's handler, the chat was told
 * the command had failed (a mode press that did switch said "/mode failed").
 */
export async function answerPress(
  ctx: Context,
  logger: Logger,
  answer?: Parameters<Context['answerCallbackQuery']>[0],
): Promise<void> {
  await ctx
    .answerCallbackQuery(answer)
    .catch((err: unknown) =>
      logger.warn(
        { err: err instanceof Error ? err.message : String(err), chatId: ctx.chat?.id },
        'Telegram refused the answer to a button press (its toast); what the press did stands',
      ),
    );
}
