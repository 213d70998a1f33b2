import { escapeHtml, htmlMarkup } from '../../../src/html.js';

/**
 * The brains' Markdown as Telegram HTML. Telegram rejects a whole message for
 * one stray `<` or an unclosed tag, so every piece of text is escaped and a tag
 * is only written when its closing half is known: a lone `*` or `_` stays a
 * character. Line-oriented on purpose: half-streamed text renders too (an
 * unclosed code fence is code up to the end). A backslash before punctuation
 * makes it a plain character, as in CommonMark: escapeMarkdown puts text from
 * outside into an answer that way.
 */

export { escapeHtml, htmlMarkup };

/** A fence line: an info string may not hold a backtick (```` ```npm i``` ```` is inline code). Also the splitter's. */
export const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)[^`]*$/;
const HEADING = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const BULLET = /^(\s*)[-*+]\s+(.*)$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const TABLE_ROW = /^\s*\|.*\|\s*$/;
const SAFE_URL = /^(?:https?:\/\/|tg:\/\/|mailto:)[^\s<>"]+$/i;
/** What a backslash makes plain (CommonMark); also the splitter's. */
export const ASCII_PUNCTUATION = /^[!-/:-@[-`{-~]$/;
/** What makes inline Markdown: code, emphasis, links (and the backslash itself). */
const INLINE_MARKUP = /[\\`*_~[\]]/g;

/**
 * `text` as Markdown that renders as exactly that text: no link, no emphasis, no code taken from
 * it, and no line of it read as a heading, a quote, a bullet, a rule or a table (a multi-line
 * command quoted in a notice: its `# comment` lines showed as bold headings, the `#` gone).
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(INLINE_MARKUP, '\\$&')
    .split('\n')
    .map((line) => (opensBlock(line) ? line.replace(/\S/, '\\$&') : line))
    .join('\n');
}

function escapeAttr(s: string): string {
  return escapeHtml(s).replace(/"/g, '&quot;');
}

/**
 * Put above a message that would start with code whose first line is indented: Telegram trims the
 * whitespace at a message's start, the code's with it (a long block continued in a second message
 * lost its first line's indentation, wrong Python once copied). A line of its own, outside the
 * block, so that copying the code does not take it; it reads as "continued". Shorter than the
 * opening fence the message then starts with, which does not show: the splitter's bound holds.
 */
const INDENT_KEEPER = '…';

export function renderMarkdown(md: string): string {
  const lines = md.replace(/\r\n?/g, '\n').split('\n');
  const out: string[] = [];
  /** The message starts with a code block whose first characters are whitespace (see INDENT_KEEPER). */
  let indentedStart = false;
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? '';
    const fence = FENCE.exec(line);
    if (fence) {
      const marker = fence[1] ?? '```';
      const body: string[] = [];
      i++;
      while (i < lines.length && !isFenceClose(lines[i] ?? '', marker)) body.push(lines[i++] ?? '');
      i++; // the closing fence, if any
      const code = body.join('\n');
      if (out.every((l) => l.trim() === '') && /^\s/.test(code) && code.trim()) indentedStart = true;
      out.push(codeBlock(code, fence[2] ?? ''));
      continue;
    }
    if (TABLE_ROW.test(line)) {
      const rows: string[] = [];
      while (i < lines.length && TABLE_ROW.test(lines[i] ?? '')) rows.push(lines[i++] ?? '');
      out.push(codeBlock(rows.join('\n'), ''));
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted: string[] = [];
      while (i < lines.length && QUOTE.test(lines[i] ?? ''))
        quoted.push(inline(QUOTE.exec(lines[i++] ?? '')?.[1] ?? ''));
      out.push(`<blockquote>${quoted.join('\n')}</blockquote>`);
      continue;
    }
    out.push(renderLine(line));
    i++;
  }
  const html = out.join('\n');
  return indentedStart ? `${INDENT_KEEPER}\n${html.trimStart()}` : html;
}

/**
 * Whether `line` opens a block when it starts a line (a fence, a table row, a quote, a heading, a
 * bullet, a rule) rather than reading as inline text. The splitter's: the rest of a line it cut
 * must not become one (split.ts).
 */
export function opensBlock(line: string): boolean {
  return [FENCE, TABLE_ROW, QUOTE, HEADING, BULLET, RULE].some((re) => re.test(line));
}

function isFenceClose(line: string, marker: string): boolean {
  const t = line.trim();
  return t.length >= marker.length && t[0] === marker[0] && /^(`+|~+)$/.test(t);
}

function codeBlock(code: string, lang: string): string {
  // Telegram refuses an empty pre; a space keeps an empty block visible and valid.
  const body = escapeHtml(code) || ' ';
  return lang ? `<pre><code class="language-${escapeAttr(lang)}">${body}</code></pre>` : `<pre>${body}</pre>`;
}

function renderLine(line: string): string {
  // Never longer than its source: the splitter counts on it (split.ts).
  if (RULE.test(line)) return '─'.repeat(Math.min(10, line.trim().length));
  const heading = HEADING.exec(line);
  if (heading) return `<b>${inline(heading[1] ?? '')}</b>`;
  const bullet = BULLET.exec(line);
  if (bullet) return `${bullet[1] ?? ''}• ${inline(bullet[2] ?? '')}`;
  return inline(line);
}

const isWordChar = (c: string | undefined) => c !== undefined && /[\p{L}\p{N}]/u.test(c);
const isSpace = (c: string | undefined) => c === undefined || /\s/.test(c);

/**
 * Inline Markdown of one line: code spans, links, bold, italic, strikethrough.
 * Inside a link's text `links` is false: Telegram keeps one of two nested links
 * and drops the other, and CommonMark does not nest them either.
 */
export function inline(s: string, links = true): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i] ?? '';
    if (isEscape(s, i)) {
      out += escapeHtml(s[i + 1] ?? '');
      i += 2;
      continue;
    }
    if (c === '`') {
      const ticks = runLength(s, i, '`');
      const end = findTicks(s, i + ticks, ticks);
      if (end !== -1) {
        out += `<code>${escapeHtml(s.slice(i + ticks, end))}</code>`;
        i = end + ticks;
      } else {
        out += '`'.repeat(ticks);
        i += ticks;
      }
      continue;
    }
    if (c === '[' && links) {
      const link = matchLink(s, i);
      if (link) {
        out += `<a href="${escapeAttr(link.url)}">${inline(link.text, false)}</a>`;
        i = link.end;
        continue;
      }
    }
    const three = tripleEmphasis(s, i, links);
    if (three) {
      out += three.html;
      i = three.end;
      continue;
    }
    const pair = delimiterAt(s, i);
    if (pair) {
      const close = findClose(s, i + pair.delim.length, pair.delim);
      if (close !== -1) {
        out += `<${pair.tag}>${inline(s.slice(i + pair.delim.length, close), links)}</${pair.tag}>`;
        i = close + pair.delim.length;
        continue;
      }
      out += escapeHtml(pair.delim);
      i += pair.delim.length;
      continue;
    }
    out += escapeHtml(c);
    i++;
  }
  return out;
}

/** A backslash that makes the next character plain. */
const isEscape = (s: string, i: number) => s[i] === '\\' && ASCII_PUNCTUATION.test(s[i + 1] ?? '');

function runLength(s: string, i: number, ch: string): number {
  let n = 0;
  while (s[i + n] === ch) n++;
  return n;
}

/** The next run of exactly `n` backticks from `from`. */
function findTicks(s: string, from: number, n: number): number {
  let j = s.indexOf('`', from);
  while (j !== -1) {
    const run = runLength(s, j, '`');
    if (run === n) return j;
    j = s.indexOf('`', j + run);
  }
  return -1;
}

/** An opening emphasis delimiter at i: it must touch the text it wraps, and `_` must start a word. */
function delimiterAt(s: string, i: number): { delim: string; tag: string } | undefined {
  const c = s[i];
  if (c !== '*' && c !== '_' && c !== '~') return undefined;
  const double = s[i + 1] === c;
  if (c === '~' && !double) return undefined;
  const delim = double ? c + c : c;
  const after = s[i + delim.length];
  if (isSpace(after) || after === c) return undefined;
  if (c === '_' && isWordChar(s[i - 1])) return undefined;
  const tag = c === '~' ? 's' : double ? 'b' : 'i';
  return { delim, tag };
}

/**
 * A run of exactly three `*` or `_` at i: bold and italic at once (`***both***`), or
 * one of them opening inside the other (`***bold** then italic*`). Whichever closes
 * last is the outer one, as in CommonMark; without this the run stayed as stray marks.
 */
function tripleEmphasis(s: string, i: number, links: boolean): { html: string; end: number } | undefined {
  const c = s[i];
  if ((c !== '*' && c !== '_') || runLength(s, i, c) !== 3 || isSpace(s[i + 3])) return undefined;
  if (c === '_' && isWordChar(s[i - 1])) return undefined;
  const both = findClose(s, i + 3, c.repeat(3));
  if (both !== -1) return { html: `<b><i>${inline(s.slice(i + 3, both), links)}</i></b>`, end: both + 3 };
  const italic = findClose(s, i + 1, c);
  const bold = findClose(s, i + 2, c + c);
  if (italic === -1 && bold === -1) return undefined;
  if (italic > bold) return { html: `<i>${inline(s.slice(i + 1, italic), links)}</i>`, end: italic + 1 };
  return { html: `<b>${inline(s.slice(i + 2, bold), links)}</b>`, end: bold + 2 };
}

/** Where `delim` closes, skipping code spans and (for a single `*`) doubled ones; -1 if never. */
function findClose(s: string, from: number, delim: string): number {
  let j = from;
  while (j < s.length) {
    const c = s[j];
    if (isEscape(s, j)) {
      j += 2;
      continue;
    }
    if (c === '`') {
      const ticks = runLength(s, j, '`');
      const end = findTicks(s, j + ticks, ticks);
      j = end === -1 ? j + ticks : end + ticks;
      continue;
    }
    if (s.startsWith(delim, j)) {
      const single = delim.length === 1;
      const doubled = single && s[j + 1] === delim;
      if (doubled) {
        j += 2;
        continue;
      }
      const before = s[j - 1];
      const after = s[j + delim.length];
      const closes =
        j > from && !isSpace(before) && (delim[0] !== '_' || !isWordChar(after)) && after !== delim[0];
      if (closes) return j;
    }
    j++;
  }
  return -1;
}

/** `[text](url)` with a URL Telegram accepts; brackets and parentheses may nest once. */
function matchLink(s: string, i: number): { text: string; url: string; end: number } | undefined {
  let depth = 0;
  let j = i;
  for (; j < s.length; j++) {
    if (isEscape(s, j)) j++;
    else if (s[j] === '[') depth++;
    else if (s[j] === ']' && --depth === 0) break;
  }
  if (j >= s.length || s[j + 1] !== '(') return undefined;
  const text = s.slice(i + 1, j);
  let k = j + 2;
  depth = 1;
  for (; k < s.length; k++) {
    if (s[k] === '(') depth++;
    else if (s[k] === ')' && --depth === 0) break;
  }
  if (k >= s.length) return undefined;
  const url = s.slice(j + 2, k).trim();
  if (!text.trim() || !SAFE_URL.test(url)) return undefined;
  return { text, url, end: k + 1 };
}

/**
 * Whether `md` renders to no visible text: a block only just opened ("```python", "## ", "> ").
 * Telegram refuses such a message (400 message text is empty), so a streamed text waits for its first words.
 */
export function showsNothing(md: string): boolean {
  return htmlToPlain(renderMarkdown(md)).trim().length === 0;
}

/** Telegram HTML back to what the reader sees: for the plain-text fallback of brainstem's own messages. */
export function htmlToPlain(html: string): string {
  return html
    .replace(/<a href="([^"]*)">([^<]*)<\/a>/g, (_m, url: string, text: string) =>
      text === url ? text : `${text} (${url})`,
    )
    .replace(/<[^>]+>/g, '')
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}
