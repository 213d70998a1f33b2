/**
 * Cuts Markdown into Telegram-sized pieces. Telegram counts the visible text
 * (at most 4096 characters), which is never longer than the Markdown it comes
 * from, so pieces of at most `limit` source characters always fit, rendered or
 * sent plain. Cuts prefer a paragraph break, then a line break, then a space;
 * a code block that has to be cut is closed at the end of one piece and
 * reopened, with its language, at the start of the next. The same text always
 * gives the same cuts, and text that only grows keeps its earlier pieces: what
 * a streamed message showed stays right when the next one starts.
 */

import { headChars } from '../../../src/text.js';
import { ASCII_PUNCTUATION, FENCE, opensBlock } from './render.js';

export const TELEGRAM_LIMIT = 4096;

export function splitMarkdown(text: string, limit = TELEGRAM_LIMIT): string[] {
  const pieces: string[] = [];
  let rest = text;
  let reopen = '';
  while (rest.length > 0) {
    const head = reopen ? `${reopen}\n` : '';
    if (head.length + rest.length <= limit) {
      pieces.push(head + rest);
      break;
    }
    // Room for a closing fence (a newline and up to 7 backticks) in case the cut falls inside a code block.
    const budget = limit - head.length - 8;
    const cut = cutPoint(rest, budget);
    const piece = rest.slice(0, cut).trimEnd();
    const midLine = cut > 0 && rest[cut - 1] !== '\n';
    rest = rest.slice(cut).replace(/^\n+/, '');
    const open = openFenceAfter(head + piece);
    pieces.push(open ? `${head}${piece}\n${closingOf(open)}` : head + piece);
    reopen = open ?? '';
    if (midLine && !open) rest = asContinuation(rest);
  }
  return pieces.filter((p) => p.trim().length > 0);
}

/** Where to cut `text` so that the first part is at most `budget` characters. */
function cutPoint(text: string, budget: number): number {
  const window = text.slice(0, budget + 1);
  const floor = Math.floor(budget / 2);
  const paragraph = window.lastIndexOf('\n\n', budget);
  if (paragraph >= floor) return paragraph + 2;
  const line = window.lastIndexOf('\n', budget);
  if (line >= floor) return line + 1;
  const space = window.lastIndexOf(' ', budget);
  if (space >= floor) return space + 1;
  // No boundary: a hard cut, never between the two halves of a surrogate pair, nor between a
  // backslash and the character it makes plain (`\*`): the first piece would show a stray
  // backslash, and the next read the `*` or `_` as emphasis.
  const hard = headChars(text, budget).length;
  return hard > 1 && escapesNext(text, hard - 1) ? hard - 1 : hard;
}

/** Whether the backslash at `i` makes the character after it plain: an odd run of backslashes ending at `i`. */
function escapesNext(text: string, i: number): boolean {
  if (!ASCII_PUNCTUATION.test(text[i + 1] ?? '')) return false;
  let run = 0;
  while (text[i - run] === '\\') run++;
  return run % 2 === 1;
}

/**
 * The rest of a line cut in the middle, as the start of the next piece: it was never a line's
 * start, so it must not read as one. "x > y" cut before "> y" made the next piece a quote (the ">"
 * gone), "a - b" a bullet, "issue # 42" a heading; its first character is made plain instead.
 */
function asContinuation(rest: string): string {
  const firstLine = rest.split('\n', 1)[0] ?? '';
  if (!opensBlock(firstLine)) return rest;
  const at = firstLine.search(/\S/);
  return `${rest.slice(0, at)}\\${rest.slice(at)}`;
}

/** The opening fence line (e.g. "```ts") still open at the end of `text`, if any. */
export function openFenceAfter(text: string): string | undefined {
  let open: { marker: string; line: string } | undefined;
  for (const line of text.split('\n')) {
    const m = FENCE.exec(line);
    if (!m) continue;
    const marker = m[1] ?? '```';
    const bare = line.trim();
    if (!open) open = { marker, line: `${marker}${m[2] ?? ''}` };
    else if (bare[0] === open.marker[0] && /^(`+|~+)$/.test(bare) && bare.length >= open.marker.length) {
      open = undefined;
    }
  }
  return open?.line;
}

/**
 * `text` with its last code block closed when the model left it open: a line brainstem adds below
 * an answer cut mid-block (a stop, a failure, the approval wait) must not render as code.
 */
export function withFenceClosed(text: string): string {
  const open = openFenceAfter(text);
  return open === undefined ? text : `${text}\n${closingOf(open)}`;
}

function closingOf(fenceLine: string): string {
  return /^(`+|~+)/.exec(fenceLine)?.[1] ?? '```';
}
