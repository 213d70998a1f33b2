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
  private readonly messages = new Map<
    string,
    { message: ChatMessage; fileTaken: boolean; reads: ((m: Message) => boolean) | undefined }
  >();

  /**
   * Keeps `message` as what its turn answers; the turn takes the latest when it begins (later edits
   * are turns of their own). `reads`: the files the turn reads from the message as it then reads
   * (a photo, a recording); none for a turn whose file, if any, was fixed when it came.
   */
  hold(message: ChatMessage, reads?: (m: Message) => boolean): HeldMessage {
    const key = keyOf(message);
    const box = { message, fileTaken: false, reads };
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
   * Puts the message, its file replaced, in place of the waiting one (the latest hold's), when its
   * turn reads its file and has not yet: 'taken' when the turn reads the new one; 'left out' when
   * the turn reads no file of that kind (a video in place of a photo): it then answers without this
   * message, whose new file is for the caller to handle as a new message's, and later edits of it
   * are turns of their own. Undefined when no such turn waits.
   */
  replaceFile(edited: ChatMessage): 'taken' | 'left out' | undefined {
    const key = keyOf(edited);
    const box = this.messages.get(key);
    if (!box?.reads || box.fileTaken) return undefined;
    box.message = edited;
    if (box.reads(edited)) return 'taken';
    this.messages.delete(key);
    return 'left out';
  }
}

const keyOf = (m: Message) => `${m.chat.id}:${m.message_id}`;
