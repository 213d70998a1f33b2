/**
 * "typing…" (handlers/telegram/stream/typing.ts through send/output.ts) to a chat Telegram
 * refuses for good: a stub Bot API and vitest's fake clock, so every repeat of the indicator
 * is a step the test takes, nothing waits on the wall clock.
 */
import { type Api, GrammyError } from 'grammy';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChatOutput } from '../handlers/telegram/send/output.js';
import { EditStreamSender } from '../handlers/telegram/stream/edit-sender.js';

/** A Bot API whose sendChatAction Telegram answers with `code` and `description`. */
function refusingApi(code: number, description: string) {
  const sendChatAction = vi.fn((chatId: number) =>
    Promise.reject(
      new GrammyError(
        `Call to 'sendChatAction' failed! (${code}: ${description})`,
        { ok: false, error_code: code, description },
        'sendChatAction',
        { chat_id: chatId, action: 'typing' },
      ),
    ),
  );
  return { api: { sendChatAction } as unknown as Api, sendChatAction };
}

describe('"typing…" to a chat that refuses it', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a user who blocked the bot: asked once and logged once, not every 4 s while the brain works', async () => {
    const { api, sendChatAction } = refusingApi(403, 'Forbidden: bot was blocked by the user');
    const errors: string[] = [];
    const stream = new EditStreamSender(new ChatOutput(api, 118), {
      intervalMs: 1000,
      onError: (_err, what) => errors.push(what),
    });
    stream.begin();
    // A minute of a brain thinking: the indicator's repeats come and go.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sendChatAction).toHaveBeenCalledTimes(1);
    expect(errors).toEqual(['typing']);
  });

  it('a failure that may pass (Telegram out of reach a moment) does not stop the indicator', async () => {
    const { api, sendChatAction } = refusingApi(502, 'Bad Gateway');
    const stream = new EditStreamSender(new ChatOutput(api, 119), { intervalMs: 1000, onError: () => {} });
    stream.begin();
    await vi.advanceTimersByTimeAsync(8_000);
    expect(sendChatAction).toHaveBeenCalledTimes(3);
  });
});
