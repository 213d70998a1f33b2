import type { Message, Update } from 'grammy/types';

/** A message of a user's chat (no channel post), as a message or an edit update carries it. */
type ChatMessage = Message & Update.NonChannel;

/** A turn's hold on its message (QueuedMessages.hold), until the turn makes its text. */
export interface HeldMessage {
  /**
   * The message as it now reads, its photo or file fixed from now on: a media turn reads its files
   * before its captions (media-messages.ts), and a file replaced after this is a turn of its own.
   */
  takeFile(): ChatMessage;
  /** Lets go of the message (later edits are turns of their own): the message as it then read. */
  release(): ChatMessage;
}

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
  private readonly messages = new Map<string, { message: ChatMessage; fileTaken: boolean }>();

  /** Keeps `message` as what its turn answers; the turn takes the latest when it begins (later edits are turns of their own). */
  hold(message: ChatMessage): HeldMessage {
    const key = keyOf(message);
    const box = { message, fileTaken: false };
    this.messages.set(key, box);
    return {
      takeFile: () => {
        box.fileTaken = true;
        return box.message;
      },
      release: () => {
        if (this.messages.get(key) === box) this.messages.delete(key);
        return box.message;
      },
    };
  }

  /** Puts the edited message (its text or caption) in place of the waiting one (the latest hold's): false when the message has no turn waiting. */
  replace(edited: ChatMessage): boolean {
    const box = this.messages.get(keyOf(edited));
    if (!box) return false;
    box.message = edited;
    return true;
  }

  /**
   * Puts the message, its photo or file replaced, in place of the waiting one (the latest hold's):
   * false when no turn waits that has not read its file yet.
   */
  replaceFile(edited: ChatMessage): boolean {
    const box = this.messages.get(keyOf(edited));
    if (!box || box.fileTaken) return false;
    box.message = edited;
    return true;
  }
}

const keyOf = (m: Message) => `${m.chat.id}:${m.message_id}`;
