import type { ModeConfig } from '../../src/config.js';
import { unreadPartLine } from '../../src/content-parts.js';
import { type ImageData, imageMention, isImagePart, newTurnImages } from '../../src/images.js';
import { contentText, historyDigest, lastAssistantIndex, tailChars } from '../../src/text.js';
import type { ChatMessage, ToolCall, TurnRequest } from '../types.js';

/**
 * What the CLI is told this turn. The prompt goes to stdin, never argv: Linux
 * refuses one argv string over 128 KiB (E2BIG) and a client's system prompt
 * alone can be ~50 KB. Only a short mode system prompt rides in argv.
 */

/** Bytes above which the mode's system prompt moves from argv into the first prompt. */
export const ARGV_SYSTEM_PROMPT_MAX_BYTES = 32 * 1024;

/** Characters of earlier turns replayed into a new session; the oldest go first past it. */
export const HISTORY_REPLAY_MAX_CHARS = 100_000;

export interface PromptPlan {
  /** For `--append-system-prompt`; given on every run because the CLI does not keep it in the session. */
  appendSystemPrompt?: string;
  /** The text written to the CLI's stdin. */
  stdin: string;
  /**
   * The new turn's images, sent after the text as image blocks of the same
   * user message (see stdin.ts). Images of earlier turns are not sent again:
   * a resumed session holds them already, and a replayed history says where
   * one was (`[image (image/png) not shown here]`) rather than resending
   * megabytes the brain has answered about.
   */
  images: ImageData[];
}

/**
 * A new session gets the setup (a long mode prompt, the client's system and
 * developer messages) and the earlier turns the client sent, if any (a
 * conversation whose session is gone, or an edited or regenerated history),
 * before the turn; a resumed one already holds them, so it gets only the new
 * turn, never the history again. Only what changed in the client's
 * instructions since the session was last told them (`told`; OpenClaw's
 * prompt has the date in it) goes to a resumed session; all of them when
 * that is not known (a session stored before brainstem kept them).
 *
 * A resumed session holds the conversation up to its own last answer
 * (`answered`, its answerDigest) and no further: turns another mode answered
 * since (a switch to a local mode and back) come before the new turn, as
 * history. When that answer is not in the client's history (not known, a
 * client that compacted it, a text the core changed), the session gets the
 * messages after the last assistant one only.
 */
export function planPrompt(
  req: TurnRequest,
  mode: ModeConfig,
  resumed: boolean,
  told?: string,
  answered?: string,
): PromptPlan {
  const modePrompt = mode.systemPrompt?.trim() || undefined;
  const inArgv = argvSystemPrompt(mode) !== undefined;
  const from = lastAssistantIndex(req.messages) + 1;
  const calls = toolCalls(req.messages);
  const client = clientInstructions(req.messages);
  const parts: string[] = [];
  if (!resumed) {
    if (modePrompt && !inArgv) parts.push(block('instructions', 'brainstem', modePrompt));
    if (req.outbox) parts.push(block('instructions', 'brainstem', outboxPrompt(req.outbox)));
    if (client) parts.push(block('instructions', 'client', client));
    const earlier = transcript(req.messages.slice(0, from), calls);
    if (earlier) parts.push(block('history', 'client', earlier));
  } else {
    if (client !== (told ?? ''))
      parts.push(block('instructions', 'client', instructionsUpdate(told, client)));
    const missed = transcript(req.messages.slice(answeredAt(req.messages, from, answered) + 1, from), calls);
    if (missed) parts.push(block('history', 'client', missed));
  }
  if (req.extraContext?.trim()) parts.push(block('context', 'brainstem', req.extraContext.trim()));
  const turn = newTurn(req.messages.slice(from), calls);
  if (turn.trim()) parts.push(turn);
  return {
    appendSystemPrompt: inArgv ? modePrompt : undefined,
    stdin: parts.join('\n\n'),
    images: newTurnImages(req.messages, from),
  };
}

/**
 * What a session's answer is known by: the digest the core gives the history
 * of a client that sends no session key (historyDigest), of that answer alone,
 * so the mode tag in front of it and its whitespace do not count.
 */
export function answerDigest(text: string): string {
  return historyDigest([{ role: 'assistant', content: text }]);
}

/** The index of the last assistant message before `from` whose answerDigest is `answered`; `from - 1` when none is. */
function answeredAt(messages: ChatMessage[], from: number, answered: string | undefined): number {
  if (answered !== undefined)
    for (let i = from - 1; i >= 0; i--) {
      const m = messages[i];
      if (m?.role === 'assistant' && historyDigest([m]) === answered) return i;
    }
  return from - 1;
}

/**
 * The client's system and developer messages, as one text: what a session is
 * told of them. A named one keeps its name before its text, as a user
 * message does: OpenAI's few-shot examples are system messages named
 * `example_user` and `example_assistant`, which without their names read as
 * more instructions.
 */
export function clientInstructions(messages: ChatMessage[]): string {
  return messages
    .filter((m) => m.role === 'system' || m.role === 'developer')
    .map((m) => [m, messageText(m)] as const)
    .filter(([, t]) => t.trim().length > 0)
    .map(([m, t]) => said(m, t))
    .join('\n\n');
}

/**
 * What a resumed session is told of the client's instructions when they are
 * not the ones it was given: the lines that went and came, when few did (a
 * new date in a 50,000-character prompt is two lines, not the prompt again)
 * and the rest stands as it was, else all of them. Lines that only moved or
 * repeat another number of times went nowhere and came from nowhere: no diff
 * of went and came says that, so those get all of them too.
 */
function instructionsUpdate(told: string | undefined, now: string): string {
  const intro = 'The client’s instructions given earlier in this conversation have changed';
  if (told === undefined || !now) {
    return now ? `${intro}, or may have; as they stand now:\n\n${now}` : `${intro}: there are none any more.`;
  }
  const before = new Set(told.split('\n'));
  const after = new Set(now.split('\n'));
  const gone = [...before].filter((l) => !after.has(l) && l.trim());
  const came = [...after].filter((l) => !before.has(l) && l.trim());
  const diff = [...gone.map((l) => `- ${l}`), ...came.map((l) => `+ ${l}`)].join('\n');
  if (!diff || rest(told, gone) !== rest(now, came) || diff.length * 2 > now.length)
    return `${intro}; these replace them:\n\n${now}`;
  return `${intro}: lines marked - are gone, lines marked + are new, the rest stands.\n\n${diff}`;
}

/** The lines of `text` but `changed` and blank ones, in their order: what a diff says stands. */
function rest(text: string, changed: string[]): string {
  const c = new Set(changed);
  return text
    .split('\n')
    .filter((l) => l.trim() && !c.has(l))
    .join('\n');
}

/**
 * The messages after the last assistant message, as a resumed session needs
 * them: the user's words, and the results of tool calls answered since (a
 * local mode's call answered after a switch to this one). A result names its
 * call with the arguments: the call is the last assistant message, a local
 * mode's (Claude's own tools never reach the client), so a resumed session has
 * not seen what was asked. Their images go as image blocks (see PromptPlan);
 * any other part was refused (claudeRefusal).
 */
function newTurn(messages: ChatMessage[], calls: Map<string, ToolCall>): string {
  return messages
    .flatMap((m) => {
      if (m.role === 'tool') return [toolResult(m, contentText(m.content), calls, true)];
      const text = m.role === 'user' ? turnText(m) : '';
      return text ? [said(m, text)] : [];
    })
    .join('\n\n');
}

/**
 * A user message's words in the new turn. A named message of images only
 * gets a line per image, so its name goes before something: the images
 * themselves follow the turn's text as blocks, which carry no name.
 */
function turnText(m: ChatMessage): string {
  const text = contentText(m.content);
  if (text || !m.name || !Array.isArray(m.content)) return text;
  return m.content
    .filter(isImagePart)
    .map((p) => imageMention(p, 'attached'))
    .join('\n');
}

/**
 * Told once, at the start of the session (it stays in the session, like the
 * client's instructions), never in argv: argv is fixed when a process starts,
 * and a spare started ahead must fit any conversation. The folder is per
 * conversation, so a warm process keeps it.
 */
export function outboxPrompt(dir: string): string {
  return [
    `Files for the user: every file you write directly into the folder ${dir} is sent to the user in the chat after your answer (images as photos up to 10 MB, other files as documents up to 50 MB), and the folder is emptied then.`,
    'Write a file there only when the user should receive it (they asked for a file, an image, an export), give it a clear name, and say in your answer what you sent.',
  ].join(' ');
}

/** The mode's system prompt when it is short enough for `--append-system-prompt` (every turn of the mode has it). */
export function argvSystemPrompt(mode: ModeConfig): string | undefined {
  const modePrompt = mode.systemPrompt?.trim() || undefined;
  return modePrompt !== undefined && Buffer.byteLength(modePrompt) <= ARGV_SYSTEM_PROMPT_MAX_BYTES
    ? modePrompt
    : undefined;
}

/** The earlier turns as plain lines, the most recent kept when they are too long. */
function transcript(messages: ChatMessage[], calls: Map<string, ToolCall>): string {
  const lines = messages.flatMap((m) => {
    const text = messageText(m).trim();
    if (m.role === 'user' && text) return [`user: ${said(m, text)}`];
    // The call, with its arguments, has a line of its own before.
    if (m.role === 'tool') return [toolResult(m, text, calls, false)];
    if (m.role !== 'assistant') return [];
    const made = (m.tool_calls ?? []).map((c) => `assistant called ${callText(c)}`);
    return [...(text ? [`assistant: ${said(m, text)}`] : []), ...made];
  });
  const all = lines.join('\n\n');
  if (all.length <= HISTORY_REPLAY_MAX_CHARS) return all;
  return `(earlier turns left out)\n\n${tailChars(all, HISTORY_REPLAY_MAX_CHARS)}`;
}

/** Each tool call by its id, from the assistant messages. */
function toolCalls(messages: ChatMessage[]): Map<string, ToolCall> {
  return new Map(messages.flatMap((m) => (m.tool_calls ?? []).map((c) => [c.id, c] as const)));
}

/**
 * A tool's result with the call it answers (its id and function, and its
 * arguments when `withArgs`): which of several calls, and what it was.
 */
function toolResult(m: ChatMessage, text: string, calls: Map<string, ToolCall>, withArgs: boolean): string {
  const id = m.tool_call_id;
  const c = id === undefined ? undefined : calls.get(id);
  const call = [id, c && (withArgs ? callText(c) : c.function.name)].filter(Boolean).join(', ');
  return `tool result${call ? ` (${call})` : ''}: ${text}`;
}

/** A call as `name(arguments)`. */
function callText(c: ToolCall): string {
  return `${c.function.name}(${c.function.arguments})`;
}

/** A message's words after the name of who said them, when the client names them (several people in one chat). */
function said(m: ChatMessage, text: string): string {
  return m.name ? `${m.name}: ${text}` : text;
}

function block(tag: string, source: string, body: string): string {
  return `<${tag} source="${source}">\n${body}\n</${tag}>`;
}

/** The text of a message whose content is a string or an array of parts; an image or another part is a line saying one was there. */
export function messageText(m: ChatMessage): string {
  if (typeof m.content === 'string') return m.content;
  if (!Array.isArray(m.content)) return '';
  return m.content
    .map((p) => {
      if (p.type === 'text' && typeof p.text === 'string') return p.text;
      return isImagePart(p) ? imageMention(p) : unreadPartLine(p.type, 'Claude Code');
    })
    .filter(Boolean)
    .join('\n');
}
