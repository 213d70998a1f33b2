import type { Message } from 'grammy/types';
import { headChars } from '../../../src/text.js';
import { sizeText } from './media.js';

/** Characters of the replied-to message the brain gets; a longer one is cut, and the brain is told so. */
const MAX_QUOTE_CHARS = 2_000;

/**
 * A reply to an earlier message gives the brain what it replies to: the part
 * the user quoted (Telegram's `quote`), else the whole text or caption of that
 * message (its first MAX_QUOTE_CHARS characters, saying so when it was
 * longer), and what it holds (a document by name, a photo), so "summarise
 * this one" names the file meant. In a forum topic every message "replies" to
 * the topic's opening service message: that is no reply, and it has no text
 * anyway.
 */
export function withReplyContext(text: string, message: Message | undefined): string {
  const replied = message?.reply_to_message;
  if (!message || !replied || replied.forum_topic_created) return text;
  const quoted = (message.quote?.text ?? replied.text ?? replied.caption ?? '').trim();
  const holds = heldBy(replied);
  if (!quoted && !holds) return text;
  const who = replied.from?.is_bot ? 'your earlier answer' : 'an earlier message';
  const what = message.quote ? `this part of ${who}` : who;
  const held = holds ? `, which holds ${holds}` : '';
  return `[The user replies to ${what}${held}${quoted ? `: ${quotation(quoted)}` : ''}]\n\n${text}`;
}

/** The quoted text in quotes; a text over MAX_QUOTE_CHARS is cut, and the brain is told it has the beginning only. */
function quotation(quoted: string): string {
  if (quoted.length <= MAX_QUOTE_CHARS) return `"${quoted}"`;
  const head = headChars(quoted, MAX_QUOTE_CHARS);
  return `"${head}…" (cut: these are its first ${head.length} of ${quoted.length} characters)`;
}

/** The file or media a message holds, as the brain was told of it when it came. */
function heldBy(m: Message): string | undefined {
  const file = m.document ?? m.audio;
  if (file) {
    const about = [file.mime_type, file.file_size === undefined ? undefined : sizeText(file.file_size)];
    const kind = m.document ? 'the document' : 'the audio file';
    const name = file.file_name ? ` "${file.file_name}"` : '';
    const details = about.filter(Boolean).join(', ');
    return `${kind}${name}${details ? ` (${details})` : ''}`;
  }
  if (m.photo) return 'a photo';
  if (m.voice) return 'a voice message';
  if (m.video_note) return 'a video message';
  if (m.video) return 'a video';
  if (m.sticker) return 'a sticker';
  return undefined;
}
