/**
 * The text (or a voice note's caption) of each message whose turn waits in its
 * queue and has not begun, by chat and message id: an edit until then changes
 * what the turn answers.
 */
export class QueuedTexts {
  private readonly texts = new Map<string, string>();

  /** Keeps `text` as what the message's turn answers; the turn takes the latest when it begins. */
  hold(chatId: number, messageId: number, text: string): () => string {
    const key = `${chatId}:${messageId}`;
    this.texts.set(key, text);
    return () => {
      const latest = this.texts.get(key) ?? text;
      this.texts.delete(key);
      return latest;
    };
  }

  /** Puts `text` in place of the waiting one: false when the message has no turn waiting. */
  replace(chatId: number, messageId: number, text: string): boolean {
    const key = `${chatId}:${messageId}`;
    if (!this.texts.has(key)) return false;
    this.texts.set(key, text);
    return true;
  }
}
