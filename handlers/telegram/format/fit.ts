/**
 * Telegram HTML cut to what one message shows (4096 characters, counted as Telegram counts: the
 * text once tags are gone and entities read, in UTF-16 code units). brainstem's own messages are
 * made to fit, but some quote text from outside whose length nobody bounds (an upstream's error in
 * a notice or in /status): Telegram refuses such a message whole ("message is too long"), and a
 * notice refused so was skipped for good. Cut here instead, between two characters: never inside a
 * tag or an entity (`&amp;`), never between the two halves of an emoji; the tags still open are
 * closed (or dropped when nothing is in them yet), and a note below says how much is left out.
 */

import { TELEGRAM_LIMIT } from './split.js';

const NAMED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"' };

/** One piece of Telegram HTML: a tag, or a character as shown (an entity read, an emoji whole). */
type Token = { tag: string; closing: boolean; raw: string } | { shown: string; raw: string };

function* tokens(html: string): Generator<Token> {
  let i = 0;
  while (i < html.length) {
    const c = html[i] ?? '';
    if (c === '<') {
      const end = html.indexOf('>', i);
      const raw = end === -1 ? html.slice(i) : html.slice(i, end + 1);
      const m = /^<(\/?)\s*([a-z][\w-]*)/i.exec(raw);
      yield m ? { tag: (m[2] ?? '').toLowerCase(), closing: m[1] === '/', raw } : { shown: raw, raw };
      i += raw.length;
      continue;
    }
    if (c === '&') {
      const m = /^&(?:#x([0-9a-f]+)|#([0-9]+)|([a-z]+));/i.exec(html.slice(i, i + 12));
      const code = m?.[1] ? Number.parseInt(m[1], 16) : m?.[2] ? Number(m[2]) : undefined;
      const shown = code !== undefined && code <= 0x10ffff ? String.fromCodePoint(code) : NAMED[m?.[3] ?? ''];
      if (m && shown !== undefined) {
        yield { shown, raw: m[0] };
        i += m[0].length;
        continue;
      }
    }
    const width = (html.codePointAt(i) ?? 0) > 0xffff ? 2 : 1;
    yield { shown: html.slice(i, i + width), raw: html.slice(i, i + width) };
    i += width;
  }
}

/** What Telegram counts of `html`. */
export function shownLength(html: string): number {
  let n = 0;
  for (const t of tokens(html)) if ('shown' in t) n += t.shown.length;
  return n;
}

/**
 * `html` whole while it fits `limit`; else its start, cut as said above, then `note(omitted)`
 * (HTML, on a line of its own) with the count of characters left out.
 */
export function fitHtml(html: string, note: (omitted: number) => string, limit = TELEGRAM_LIMIT): string {
  // What Telegram shows is never longer than the HTML (tags go, an entity is one character): the
  // streaming edits, which the splitter already keeps short, skip the count.
  if (html.length <= limit) return html;
  const total = shownLength(html);
  if (total <= limit) return html;
  // The note with the largest count it can hold: the room it leaves is the text's.
  const budget = limit - shownLength(`\n${note(total)}`);
  let out = '';
  let kept = 0;
  const open: { tag: string; at: number; kept: number }[] = [];
  for (const t of tokens(html)) {
    if ('tag' in t) {
      if (!t.closing) open.push({ tag: t.tag, at: out.length, kept });
      else if (open.at(-1)?.tag === t.tag) open.pop();
      out += t.raw;
      continue;
    }
    if (kept + t.shown.length > budget) break;
    out += t.raw;
    kept += t.shown.length;
  }
  // Tags still open: closed, or left out with what follows them when nothing shows in them yet
  // (Telegram refuses an empty <pre>, and an empty tag says nothing).
  for (const o of open.reverse()) {
    if (o.kept === kept) out = out.slice(0, o.at);
    else out += `</${o.tag}>`;
  }
  return `${out.trimEnd()}\n${note(total - kept)}`;
}
