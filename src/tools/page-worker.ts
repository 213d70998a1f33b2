/**
 * The worker thread that reads a fetched HTML page (src/tools/page-reader.ts starts it): parsing
 * a large page with linkedom and extracting its article with Readability take seconds, which on
 * brainstem's event loop held every chat, request and approval.
 *
 * Each message is a page's HTML. For each the worker answers `{ kind: 'text' }` with the page's
 * whole text as soon as it has it (what the reader answers if the rest takes too long), then
 * `{ kind: 'done' }` with the title and main text, or `{ kind: 'error' }`.
 */

import { parentPort } from 'node:worker_threads';
import { Tokenizer } from 'htmlparser2';
import { parseHTML } from 'linkedom';

// Imported, not bundled into this entry: Readability's source is not all Latin-1, and in a chunk of
// its own it alone is held by V8 at two bytes per character (test/bundle.test.ts). Its module is
// CommonJS, whose exports the bundle's chunk has as its default export only.
const { Readability } = (await import('@mozilla/readability')).default;

/**
 * The deepest nesting Readability is given. Its time grows far faster than the depth (on linkedom,
 * 500 nested elements, 3 KB of HTML, took seconds; 2,000 minutes), the time limit's whole worth
 * of this worker, while real pages nest a few dozen deep: a deeper page is read as its whole text.
 */
const MAX_ARTICLE_DEPTH = 100;
/**
 * The deepest nesting parsed into a DOM: the parser's time grows with the square of the depth
 * (200,000 nested elements, 1 MB, took minutes). A deeper page's text is read from its tokens.
 */
const MAX_PARSED_DEPTH = 2_000;
/**
 * The most elements parsed into a DOM. linkedom holds some 1.7 KB of heap an element with its text
 * and attributes: a flat 2 MB page of `a<br>` (400,000 elements, within tools.webFetch.maxBytes)
 * took the process to 846 MB, far over pm2's 300 MB `max_memory_restart`, which restarts brainstem
 * and cuts every turn under way. 30,000 is some 50 MB, more than a long article has (a few thousand), and
 * Readability takes longer than the time limit on such a page anyway: its whole text is the answer.
 */
const MAX_PARSED_ELEMENTS = 30_000;

/** Title and main text of an HTML page; the whole body text when Readability finds no article, or is not given the page. */
function readable(html: string, early: (text: string) => void): { title?: string; text: string } {
  const scan = scanTags(html);
  // The scan's text, not the DOM's textContent, which runs a heading into the next paragraph.
  const fallback = tidy(scan.text);
  const scannedTitle = tidy(scan.title) || undefined;
  if (scan.depth > MAX_PARSED_DEPTH || scan.elements > MAX_PARSED_ELEMENTS) {
    return { title: scannedTitle, text: fallback };
  }
  early(fallback);
  const { document } = parseHTML(html);
  // linkedom builds no root for a page without tags (an empty body, a bare `OK` sent as text/html),
  // and its `title` then throws: such a page is its text.
  if (!document.documentElement) return { title: scannedTitle, text: fallback };
  const title = document.title || scannedTitle;
  if (depthOf(document.documentElement) > MAX_ARTICLE_DEPTH) return { title, text: fallback };
  const article = new Readability(document as unknown as Document).parse();
  return {
    title: article?.title || title,
    text: article?.textContent ? tidy(article.textContent) : fallback,
  };
}

parentPort?.on('message', (html: string) => {
  try {
    const page = readable(html, (text) => parentPort?.postMessage({ kind: 'text', text }));
    parentPort?.postMessage({ kind: 'done', ...page });
  } catch (err) {
    parentPort?.postMessage({ kind: 'error', message: (err as Error).message });
  }
});

/** Elements the parser never holds open (htmlparser2's list): they nest nothing. */
const VOID_ELEMENTS = new Set(
  'area base basefont br col command embed frame hr img input isindex keygen link meta param source track wbr'.split(
    ' ',
  ),
);

/** Elements that sit inside a line of text: the others (blocks, cells, `<br>`) break it. */
const INLINE_ELEMENTS = new Set(
  'a abbr b bdi bdo cite code data dfn em font i img kbd mark q s samp small span strong sub sup time u var wbr'.split(
    ' ',
  ),
);

/**
 * In one pass of the tokenizer the parser uses (so comments, scripts and attribute values hide
 * the same tags from both): a depth at least that of the parsed page, how many elements it has,
 * and its text. An end tag closes a name still open only (the parser ignores the others), `<x/>`
 * counts as open (the parser holds it outside SVG), and implied ends (`<p>`, `<li>`) only make the
 * page shallower.
 */
function scanTags(html: string) {
  const open = new Map<string, number>();
  const text: string[] = [];
  let title = '';
  let inTitle = false;
  let depth = 0;
  let max = 0;
  let elements = 0;
  let raw = false;
  const tag = (start: number, end: number) => html.slice(start, end).toLowerCase();
  const none = () => undefined;
  const tokenizer = new Tokenizer(
    { decodeEntities: true },
    {
      onopentagname(start, end) {
        const name = tag(start, end);
        elements++;
        raw = name === 'script' || name === 'style';
        inTitle = name === 'title';
        // A title, heading or paragraph does not run into the next one's words.
        if (!INLINE_ELEMENTS.has(name)) text.push('\n');
        if (VOID_ELEMENTS.has(name)) return;
        open.set(name, (open.get(name) ?? 0) + 1);
        max = Math.max(max, ++depth);
      },
      onclosetag(start, end) {
        raw = false;
        inTitle = false;
        const name = tag(start, end);
        if (!INLINE_ELEMENTS.has(name)) text.push('\n');
        const n = open.get(name) ?? 0;
        if (n === 0) return;
        open.set(name, n - 1);
        depth--;
      },
      ontext(start, end) {
        if (inTitle) title += html.slice(start, end);
        else if (!raw) text.push(html.slice(start, end));
      },
      ontextentity(codepoint) {
        if (inTitle) title += String.fromCodePoint(codepoint);
        else if (!raw) text.push(String.fromCodePoint(codepoint));
      },
      onopentagend: none,
      onselfclosingtag: none,
      onattribdata: none,
      onattribentity: none,
      onattribend: none,
      onattribname: none,
      oncdata: none,
      oncomment: none,
      ondeclaration: none,
      onprocessinginstruction: none,
      onend: none,
    },
  );
  tokenizer.write(html);
  tokenizer.end();
  return { depth: max, elements, text: text.join(''), title };
}

/** How deep elements nest under `root`, walked without recursion (a deep page would exhaust the stack). */
function depthOf(root: Element | null): number {
  let max = 0;
  let depth = 1;
  let node = root;
  while (node) {
    max = Math.max(max, depth);
    if (node.firstElementChild) {
      node = node.firstElementChild;
      depth++;
      continue;
    }
    while (node && !node.nextElementSibling) {
      node = node.parentElement;
      depth--;
    }
    node = node?.nextElementSibling ?? null;
  }
  return max;
}

function tidy(text: string): string {
  return text
    .replace(/\r/g, '')
    .replace(/[ \t\f\v\u00a0]+/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
