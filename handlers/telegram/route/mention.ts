import type { Context, MiddlewareFn } from 'grammy';
import type { Message, MessageEntity } from 'grammy/types';
import { isForwarded } from '../commands/handler.js';

/**
 * In a group a message reaches the bot by naming it: with privacy mode on
 * (BotFather's default) Telegram delivers only commands, replies to the bot
 * and messages that mention it by username. "@brainstem_bot switch to local"
 * or "@brainstem_bot status" is then the owner's only way to say brainstem's
 * words without a reply, and the mention made them text for the brain: no
 * switch, no shortcut, and the brain read the bot's handle. The mention that
 * opens or closes such a message only says whom it is for: what brainstem
 * reads is the rest.
 */

type Text = Pick<Message, 'text' | 'entities'>;

/** The text without a mention of `username` that opens or ends it; undefined when there is none, or nothing else. */
export function withoutOwnMention(
  message: Text,
  username: string | undefined,
): { text: string; entities: MessageEntity[] | undefined } | undefined {
  const text = message.text;
  if (text === undefined || !username) return undefined;
  const me = `@${username}`.toLowerCase();
  const mention = (message.entities ?? []).find(
    (e) =>
      e.type === 'mention' &&
      text.slice(e.offset, e.offset + e.length).toLowerCase() === me &&
      (text.slice(0, e.offset).trim() === '' || text.slice(e.offset + e.length).trim() === ''),
  );
  if (!mention) return undefined;
  const before = text.slice(0, mention.offset);
  const after = text.slice(mention.offset + mention.length);
  // "@bot, status" and "@bot: status" too: the punctuation only set the name apart.
  const opening = before.trim() === '';
  const rest = opening ? after.replace(/^[\s,:;]+/, '') : before.replace(/[\s,;]+$/, '');
  if (rest.trim() === '') return undefined;
  const cut = text.length - rest.length;
  const entities = message.entities
    ?.filter((e) => e !== mention)
    .map((e) => (opening ? { ...e, offset: e.offset - cut } : e))
    .filter((e) => e.offset >= 0 && e.offset + e.length <= rest.length);
  return { text: rest, entities: entities?.length ? entities : undefined };
}

/**
 * Takes the bot's own opening or closing mention out of a group message or caption (and of its edits) before
 * any handler reads it; after the allow-list, which reads the mention to know a stranger
 * addressed the bot. A forwarded message is left as it was written: someone else's words.
 */
export function ownMentionOut(): MiddlewareFn<Context> {
  return (ctx, next) => {
    const message = ctx.message ?? ctx.editedMessage;
    if (message && ctx.chat?.type !== 'private' && !isForwarded(message)) {
      const stripped = withoutOwnMention(message, ctx.me.username);
      if (stripped) {
        message.text = stripped.text;
        if (stripped.entities) message.entities = stripped.entities;
        else delete message.entities;
      }
      // A photo's or a file's caption addresses the bot the same way.
      const caption = withoutOwnMention(
        { text: message.caption, entities: message.caption_entities },
        ctx.me.username,
      );
      if (caption) {
        message.caption = caption.text;
        if (caption.entities) message.caption_entities = caption.entities;
        else delete message.caption_entities;
      }
    }
    return next();
  };
}
