import type { MessageEntity, Update } from 'grammy/types';
import { OPENCLAW_ALIAS_PREFIX } from '../../telegram-front/commands-merge.js';
import type { Split } from '../../telegram-front/index.js';
import { OWN_DATA_PREFIX } from '../commands/callback-data.js';
import { commandOf, isForwarded } from '../commands/handler.js';
import { withoutOwnMention } from './mention.js';

/**
 * With the Bot API front on, whose each update is. brainstem's: its commands
 * (see commands/table.ts), presses on its own buttons (their data starts with
 * `bs:`), and, from an allowed user, a message that is only a switch request
 * or a shortcut word; a command is read by commandOf, whatever its case, as
 * brainstem's handlers read it (commandsInAnyCase). OpenClaw's: everything else, whatever its kind (edits,
 * media, reactions, member updates, presses on OpenClaw's buttons) and a
 * forwarded message whatever it says (someone else wrote it), untouched, and
 * judged by OpenClaw's own access policy; brainstem's allow-list guards
 * only what brainstem answers. `/oc_<name>` (sent or edited, in a text or a caption, after the
 * bot's opening mention in a group too) reaches OpenClaw as `/<name>`: its command of a name
 * brainstem answers. Both: the service messages of a group's upgrade to a
 * supergroup, which move each one's state of the group to its new id.
 */

const BRAINSTEM: Split = { to: 'brainstem' };
const ADDRESSEE = /^\/\w+@(\w+)/;

export interface SplitOptions {
  /** The command names brainstem answers. */
  ownCommands: ReadonlySet<string>;
  allowedUsers: ReadonlySet<number>;
  /** Plain text brainstem answers when an allowed user sends it alone (a switch request, a shortcut word). */
  isOwnText(text: string): boolean;
  /** The bot's username (known once polling starts), to tell `/cmd@otherbot` apart. */
  botUsername(): string | undefined;
}

export function inboundSplit(opts: SplitOptions): (update: Update) => Split {
  return (update) => {
    const press = update.callback_query;
    if (press) return press.data?.startsWith(OWN_DATA_PREFIX) ? BRAINSTEM : openclaw(update);
    // An edit is OpenClaw's, whatever it says; one of an `/oc_<name>` it got as `/<name>` says that too.
    if (update.edited_message) return openclaw(unaliased(update, 'edited_message', opts) ?? update);
    const message = update.message;
    // A basic group upgraded to a supergroup: OpenClaw moves its chat, brainstem the group's own
    // conversation (its history and brain sessions, for the direct route: index.ts), or a front
    // turned off later would find the supergroup's brain had forgotten it.
    if (message?.migrate_to_chat_id !== undefined || message?.migrate_from_chat_id !== undefined)
      return { to: 'both', update };
    // A forum topic reopened: brainstem writes into it again rather than outside it (send/gone-topics.ts).
    if (message?.forum_topic_reopened !== undefined) return { to: 'both', update };
    const text = message?.text;
    if (!message || isForwarded(message)) return openclaw(update);
    // A caption is never brainstem's command; OpenClaw's grammY reads one as its own.
    if (text === undefined) return openclaw(unaliased(update, 'message', opts) ?? update);
    const name = commandOf(text);
    if (name !== undefined) {
      if (!addressedToMe(text, opts)) return openclaw(update);
      if (opts.ownCommands.has(name)) return BRAINSTEM;
      return openclaw(unaliased(update, 'message', opts) ?? update);
    }
    // "@bot switch to local" in a group is the switch request itself (mention.ts).
    const words =
      message.chat.type === 'private' ? text : (withoutOwnMention(message, opts.botUsername())?.text ?? text);
    // And "@bot /mode" its command: brainstem's handlers read it once the mention is out, as on the
    // direct route; handed over, OpenClaw got brainstem's command as text.
    const named = words === text ? undefined : commandOf(words);
    if (named !== undefined && opts.ownCommands.has(named) && addressedToMe(words, opts)) return BRAINSTEM;
    // "@bot /oc_usage" is OpenClaw's "@bot /usage", as "/oc_usage" is its "/usage".
    const alias = named === undefined ? undefined : unaliased(update, 'message', opts);
    if (alias) return openclaw(alias);
    if (message.from && opts.allowedUsers.has(message.from.id) && opts.isOwnText(words)) return BRAINSTEM;
    return openclaw(update);
  };
}

const openclaw = (update: Update): Split => ({ to: 'openclaw', update });

/** `usage` for a text that is the command `/oc_usage …`; undefined for any other text. */
function aliasOf(text: string | undefined): string | undefined {
  const name = text === undefined ? undefined : commandOf(text);
  return name?.startsWith(OPENCLAW_ALIAS_PREFIX) ? name.slice(OPENCLAW_ALIAS_PREFIX.length) : undefined;
}

/**
 * The update with its `/oc_<name>` command given back to OpenClaw as `/<name>`, in the message's (or
 * edit's) text or caption, its entities moved to match; undefined when it holds none. Read where
 * brainstem reads a command: at the start (`/oc_usage 7d`, `/oc_usage@yourbot`, not
 * `/oc_usage@otherbot`), or in a group after the bot's own mention that opens the message
 * (`@yourbot /oc_usage`, mention.ts).
 */
function unaliased(
  update: Update,
  key: 'message' | 'edited_message',
  opts: SplitOptions,
): Update | undefined {
  const message = update[key];
  if (!message) return undefined;
  const fields = [
    ['text', 'entities'],
    ['caption', 'caption_entities'],
  ] as const;
  for (const [field, entitiesField] of fields) {
    const text = message[field];
    const entities = message[entitiesField];
    if (text === undefined) continue;
    const at = commandStart(text, entities, message.chat.type === 'private', opts);
    if (at === undefined) continue;
    const command = text.slice(at);
    if (!addressedToMe(command, opts) || !opts.ownCommands.has(aliasOf(command) ?? '')) continue;
    // `oc_` starts right after the slash: what follows it moves back by its length.
    const cutAt = at + 1;
    const cut = OPENCLAW_ALIAS_PREFIX.length;
    const moved = (x: number) => (x <= cutAt ? x : Math.max(cutAt, x - cut));
    const shifted = entities?.map((e) => {
      const offset = moved(e.offset);
      return { ...e, offset, length: moved(e.offset + e.length) - offset };
    });
    const rewritten = `${text.slice(0, cutAt)}${text.slice(cutAt + cut)}`;
    return {
      ...update,
      [key]: { ...message, [field]: rewritten, ...(shifted ? { [entitiesField]: shifted } : {}) },
    };
  }
  return undefined;
}

/** Where a text's command starts: 0, or after a group message's opening mention of the bot; undefined when it holds none there. */
function commandStart(
  text: string,
  entities: MessageEntity[] | undefined,
  isPrivate: boolean,
  opts: SplitOptions,
): number | undefined {
  if (text.startsWith('/')) return 0;
  if (isPrivate) return undefined;
  const rest = withoutOwnMention({ text, entities }, opts.botUsername())?.text;
  if (!rest?.startsWith('/')) return undefined;
  // The mention opened the text (what is left is its end), not closed it.
  const at = text.length - rest.length;
  return text.slice(at) === rest ? at : undefined;
}

/** A command without `@name`, or with the bot's own: not `/mode@otherbot`. */
function addressedToMe(command: string, opts: SplitOptions): boolean {
  const addressee = ADDRESSEE.exec(command)?.[1];
  return !addressee || addressee.toLowerCase() === opts.botUsername()?.toLowerCase();
}
