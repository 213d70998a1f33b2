import type { Message, Update } from 'grammy/types';

/** A message of a user's chat (no channel post), as a message or an edit update carries it. */
type ChatMessage = Message & Update.NonChannel;

/**
 * Each message whose turn waits in its queue and has not begun, by chat and
 * message id, as it now reads: an edit until then (its text, its caption, the
 * photo or file it holds replaced) changes what the turn answers, once.
 */
export class QueuedMessages {
  private readonly messages = new Map<string, ChatMessage>();

  /** Keeps `message` as what its turn answers; the turn takes the latest when it begins (later edits are turns of their own). */
  hold(message: ChatMessage): () => ChatMessage {
    const key = keyOf(message);
    this.messages.set(key, message);
    return () => {
      const latest = this.messages.get(key) ?? message;
      this.messages.delete(key);
      return latest;
    };
  }

  /** The message as it now reads, still held: a media turn reads its files before its captions (media-messages.ts). */
  peek(message: ChatMessage): ChatMessage {
    return this.messages.get(keyOf(message)) ?? message;
  }

  /** Puts the edited message in place of the waiting one: false when the message has no turn waiting. */
  replace(edited: ChatMessage): boolean {
    const key = keyOf(edited);
    if (!this.messages.has(key)) return false;
    this.messages.set(key, edited);
    return true;
  }
}

const keyOf = (m: Message) => `${m.chat.id}:${m.message_id}`;
