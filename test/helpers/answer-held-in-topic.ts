import type { Harness } from '../telegram-harness.js';

/**
 * A question in a forum topic whose answer (`answer`, from the fake local model) is being written:
 * "typing…" shows in the topic, nothing of the answer yet. The returned function lets the answer
 * end; the model's script stays `answer` until the test puts it back (`h.llama.script()`).
 */
export async function answerHeldInTopic(
  h: Harness,
  forum: { userId: number; chatId: number; topicId: number },
  question: string,
  answer: string,
): Promise<() => void> {
  let open = () => {};
  const held = new Promise<void>((resolve) => {
    open = resolve;
  });
  h.llama.script(() => ({ chunks: [{ wait: held }, answer] }));
  try {
    h.tg.user(forum.userId, { chatId: forum.chatId, topicId: forum.topicId }).says(question);
    await h.tg.waitFor(() =>
      h.tg
        .callsOf('sendChatAction', forum.chatId)
        .find((c) => Number(c.params.message_thread_id) === forum.topicId),
    );
  } catch (e) {
    open();
    h.llama.script();
    throw e;
  }
  return open;
}
