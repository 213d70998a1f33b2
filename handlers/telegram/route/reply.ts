import type { Message } from 'grammy/types';

/** Characters of the replied-to message the brain gets; a longer one is cut (the brain has the history). */
const MAX_QUOTE_CHARS = 2_000;

/**
 * A reply to an earlier message gives the brain what it replies to: the part
 * the user quoted (Telegram's `quote`), else the whole text or caption of that
 * message. In a forum topic every message "replies" to the topic's opening
 * service message: that is no reply, and it has no text anyway.
 */
export function withReplyContext(text: string, message: Message | undefined): string {
  const replied = message?.reply_to_message;
  if (!message || !replied || replied.forum_topic_created) return text;
  const quoted = (message.quote?.text ?? replied.text ?? replied.caption ?? '').trim();
  if (!quoted) return text;
  const cut = quoted.length > MAX_QUOTE_CHARS ? `${quoted.slice(0, MAX_QUOTE_CHARS)}…` : quoted;
  const who = replied.from?.is_bot ? 'your earlier answer' : 'an earlier message';
  const what = message.quote ? `this part of ${who}` : who;
  return `[The user replies to ${what}: "${cut}"]\n\n${text}`;
}
