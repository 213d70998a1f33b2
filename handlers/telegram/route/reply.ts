import type { Chat, ExternalReplyInfo, Message, MessageOrigin, User } from 'grammy/types';
import { formatUtc } from '../../../src/i18n.js';
import { headChars } from '../../../src/text.js';
import { aboutFile } from './media.js';

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
 *
 * A reply to a message of another chat (Telegram's "reply in another chat",
 * a quote from a channel) has no `reply_to_message`: it comes as
 * `external_reply`, which says where the message came from and what media it
 * holds but never its text, and `quote`, the text quoted from it (by the
 * user, or added by Telegram). What reaches the brain is plain text in the
 * turn; none of it is shown back in the chat.
 */
export function withReplyContext(text: string, message: Message | undefined): string {
  if (!message) return text;
  const replied = message.reply_to_message;
  if (replied && !replied.forum_topic_created) return inChat(text, message, replied);
  if (message.external_reply) return fromElsewhere(text, message, message.external_reply);
  return text;
}

function inChat(text: string, message: Message, replied: Message): string {
  const quoted = (message.quote?.text ?? replied.text ?? replied.caption ?? '').trim();
  const holds = heldBy(replied);
  if (!quoted && !holds) return text;
  const who = replied.from?.is_bot ? 'your earlier answer' : 'an earlier message';
  const what = message.quote ? `this part of ${who}` : who;
  const held = holds ? `, which holds ${holds}` : '';
  return `[The user replies to ${what}${held}${quoted ? `: ${quotation(quoted)}` : ''}]\n\n${text}`;
}

function fromElsewhere(text: string, message: Message, ext: ExternalReplyInfo): string {
  const quoted = (message.quote?.text ?? '').trim();
  const holds = heldBy(ext);
  const who = `a message ${sourceOf(ext)}`;
  const what = quoted && message.quote?.is_manual ? `this part of ${who}` : who;
  const held = holds ? `, which holds ${holds}` : '';
  const said = quoted
    ? `: ${quotation(quoted)}`
    : holds
      ? ''
      : '; Telegram passes on none of its text: ask for it if you need it';
  return `[The user replies to ${what}${held}${said}]\n\n${text}`;
}

/**
 * The turn's text as the brain gets it when its message was forwarded: whose it is, said first.
 * Someone else's words then never read as the user's own request (a switch in words, which the
 * chat core answers itself when they are the whole message).
 */
export function withForwardNote(text: string, message: Message | undefined): string {
  const origin = message?.forward_origin;
  if (!origin) return text;
  return `[The user forwards a message ${originText(origin) || 'from elsewhere'}; what follows is its text, not the user's own words]\n\n${text}`;
}

/** The turn's text as the brain gets it when its message is an edit: what it edits, said first. */
export function withEditNote(text: string, edited: Message | undefined): string {
  if (!edited) return text;
  const when = formatUtc(edited.date * 1000);
  const holds = edited.text === undefined ? heldBy(edited) : undefined;
  const what = holds
    ? `the caption of their message of ${when}, which holds ${holds}`
    : `their message of ${when}`;
  return `[The user edited ${what}; answer it as it now reads]\n\n${text}`;
}

/** The quoted text in quotes; a text over MAX_QUOTE_CHARS is cut, and the brain is told it has the beginning only. */
function quotation(quoted: string): string {
  if (quoted.length <= MAX_QUOTE_CHARS) return `"${quoted}"`;
  const head = headChars(quoted, MAX_QUOTE_CHARS);
  return `"${head}…" (cut: these are its first ${head.length} of ${quoted.length} characters)`;
}

/** Where a message of another chat came from, as its origin says: who wrote it, in which chat. */
function sourceOf(ext: ExternalReplyInfo): string {
  const by = originText(ext.origin);
  // A channel is where it was posted: no other chat to name.
  if (ext.origin.type === 'channel') return by;
  const where = ext.chat ? `in ${chatName(ext.chat)}` : 'in another chat';
  return by ? `${by} ${where}` : where;
}

/** Who wrote a message, as its origin says (a channel's post: where it was posted); '' when it says nothing. */
function originText(origin: MessageOrigin): string {
  const signed = (signature: string | undefined) => (signature ? `, signed "${signature}"` : '');
  switch (origin.type) {
    case 'user':
      return `by ${userName(origin.sender_user)}`;
    case 'hidden_user':
      return `by "${origin.sender_user_name}"`;
    case 'chat':
      return `sent as ${chatName(origin.sender_chat)}${signed(origin.author_signature)}`;
    case 'channel':
      return `posted in ${chatName(origin.chat)}${signed(origin.author_signature)}`;
    default:
      return '';
  }
}

function userName(u: User): string {
  const name = [u.first_name, u.last_name].filter(Boolean).join(' ');
  return `"${name}"${u.username ? ` (@${u.username})` : ''}`;
}

function chatName(c: Chat): string {
  const kind = c.type === 'channel' ? 'the channel' : c.type === 'private' ? 'the private chat' : 'the group';
  const title = 'title' in c && c.title ? ` "${c.title}"` : '';
  const username = 'username' in c && c.username ? ` (@${c.username})` : '';
  return `${kind}${title}${username}`;
}

/** What a message, or the message of another chat a reply names, holds besides its text. */
type Holding = Pick<
  ExternalReplyInfo,
  | 'animation'
  | 'audio'
  | 'document'
  | 'live_photo'
  | 'photo'
  | 'sticker'
  | 'story'
  | 'video'
  | 'video_note'
  | 'voice'
  | 'contact'
  | 'dice'
  | 'game'
  | 'giveaway'
  | 'giveaway_winners'
  | 'invoice'
  | 'location'
  | 'paid_media'
  | 'poll'
  | 'checklist'
  | 'venue'
>;

/** The file or media a message holds, as the brain was told of it when it came; every kind is named. */
function heldBy(m: Holding): string | undefined {
  // A GIF comes as an animation and as a document of the same file: it is a GIF.
  if (m.animation) return 'a GIF';
  const file = m.document ?? m.audio;
  if (file) {
    const kind = m.document ? 'the document' : 'the audio file';
    const name = file.file_name ? ` "${file.file_name}"` : '';
    const details = aboutFile(file.mime_type, file.file_size);
    return `${kind}${name}${details ? ` (${details})` : ''}`;
  }
  if (m.photo || m.live_photo) return 'a photo';
  if (m.voice) return 'a voice message';
  if (m.video_note) return 'a video message';
  if (m.video) return 'a video';
  if (m.sticker) return 'a sticker';
  if (m.poll) return `a poll ("${m.poll.question}")`;
  if (m.venue) return `a venue ("${m.venue.title}", ${m.venue.address})`;
  if (m.location) return `a location (${m.location.latitude}, ${m.location.longitude})`;
  if (m.contact)
    return `a contact ("${[m.contact.first_name, m.contact.last_name].filter(Boolean).join(' ')}")`;
  if (m.story) return 'a story';
  if (m.dice) return `a dice roll (${m.dice.emoji} ${m.dice.value})`;
  if (m.checklist) return `a checklist ("${m.checklist.title}")`;
  if (m.paid_media) return 'paid media';
  if (m.game) return `a game ("${m.game.title}")`;
  if (m.invoice) return `an invoice ("${m.invoice.title}")`;
  if (m.giveaway) return 'a giveaway';
  if (m.giveaway_winners) return 'giveaway results';
  return undefined;
}
