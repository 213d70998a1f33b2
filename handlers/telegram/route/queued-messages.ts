import type { Message, Update } from 'grammy/types';

/** A message of a user's chat (no channel post), as a message or an edit update carries it. */
type ChatMessage = Message & Update.NonChannel;

/**
 * Each message whose turn waits in its queue and has not begun, by chat and
 * message id, as it now reads: an edit until then (its text, its caption, the
 * photo or file it holds replaced) changes what the turn answers, once.
 */
export class QueuedMessages {
  /**
   * One box per hold: a message replaced while its turn reads its files is held again by a turn
   * of its own, and the older turn must neither take the newer one's message nor end its hold.
   */
  private readonly messages = new Map<string, { message: ChatMessage }>();

  /** Keeps `message` as what its turn answers; the turn takes the latest when it begins (later edits are turns of their own). */
  hold(message: ChatMessage): () => ChatMessage {
    const key = keyOf(message);
    const box = { message };
    this.messages.set(key, box);
    return () => {
      if (this.messages.get(key) === box) this.messages.delete(key);
      return box.message;
    };
  }

  /** The message as it now reads, still held: a media turn reads its files before its captions (media-messages.ts). */
  peek(message: ChatMessage): ChatMessage {
    return this.messages.get(keyOf(message))?.message ?? message;
  }

  /** Puts the edited message in place of the waiting one (the latest hold's): false when the message has no turn waiting. */
  replace(edited: ChatMessage): boolean {
    const box = this.messages.get(keyOf(edited));
    if (!box) return false;
    box.message = edited;
    return true;
  }
}

const keyOf = (m: Message) => `${m.chat.id}:${m.message_id}`;
