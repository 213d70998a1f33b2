import { describe, expect, it } from 'vitest';
import { fitHtml } from '../handlers/telegram/format/fit.js';
import { escapeMarkdown, htmlToPlain, renderMarkdown } from '../handlers/telegram/format/render.js';
import { splitMarkdown } from '../handlers/telegram/format/split.js';
import { parseTelegramHtml } from './fakes/telegram.js';

/** What Telegram would show for the rendered Markdown (throws like Telegram on invalid HTML). */
const visible = (md: string) => parseTelegramHtml(renderMarkdown(md));

describe('renderMarkdown', () => {
  it('renders bold, italic, strikethrough, inline code, links and headings', () => {
    expect(renderMarkdown('**b** *i* _j_ ~~s~~ `c` [t](https://x.y/?a=1&b=2)')).toBe(
      '<b>b</b> <i>i</i> <i>j</i> <s>s</s> <code>c</code> <a href="https://x.y/?a=1&amp;b=2">t</a>',
    );
    expect(renderMarkdown('## Title')).toBe('<b>Title</b>');
    expect(renderMarkdown('- one\n* two')).toBe('• one\n• two');
  });

  it('renders three markers as bold and italic, the one closing last outside', () => {
    expect(renderMarkdown('***both*** and ___both___')).toBe('<b><i>both</i></b> and <b><i>both</i></b>');
    expect(renderMarkdown('***bold** then italic*')).toBe('<i><b>bold</b> then italic</i>');
    expect(renderMarkdown('***italic* then bold**')).toBe('<b><i>italic</i> then bold</b>');
    expect(renderMarkdown('rated *** and ***** and *** a ***')).toBe('rated *** and ***** and *** a ***');
  });

  it('never puts a link inside a link: the inner one stays text', () => {
    expect(renderMarkdown('[see [docs](https://d.example) here](https://o.example)')).toBe(
      '<a href="https://o.example">see [docs](https://d.example) here</a>',
    );
  });

  it('escapes every dynamic part and keeps unpaired markers as text', () => {
    expect(renderMarkdown('a < b & c > d')).toBe('a &lt; b &amp; c &gt; d');
    expect(renderMarkdown('2 * 3 = 6, *open')).toBe('2 * 3 = 6, *open');
    expect(renderMarkdown('snake_case_name and __init__')).toBe('snake_case_name and <b>init</b>');
    expect(renderMarkdown('`<b>` stays code')).toBe('<code>&lt;b&gt;</code> stays code');
    expect(renderMarkdown('[x](javascript:alert(1))')).toBe('[x](javascript:alert(1))');
  });

  it('renders fenced code (closed or still streaming) as pre with its language', () => {
    expect(renderMarkdown('```py\nif a < b:\n  pass\n```\nafter')).toBe(
      '<pre><code class="language-py">if a &lt; b:\n  pass</code></pre>\nafter',
    );
    expect(renderMarkdown('text\n```\nhalf <written')).toBe('text\n<pre>half &lt;written</pre>');
    expect(renderMarkdown('| a | b |\n|---|---|\n| 1 | 2 |')).toBe(
      '<pre>| a | b |\n|---|---|\n| 1 | 2 |</pre>',
    );
  });

  it('puts a line above code that starts a message indented: Telegram trims a message’s start, the indentation with it', () => {
    // A long block continued in a second message: its first line lost its indentation there.
    expect(renderMarkdown('```py\n    return x\n```')).toBe(
      '…\n<pre><code class="language-py">    return x</code></pre>',
    );
    expect(renderMarkdown('\n```\n\tindented\n```\nafter')).toBe('…\n<pre>\tindented</pre>\nafter');
    // Not when the code starts unindented, comes after text, or is still empty (nothing to show yet).
    expect(renderMarkdown('```py\nx = 1\n    y\n```')).toBe(
      '<pre><code class="language-py">x = 1\n    y</code></pre>',
    );
    expect(renderMarkdown('text\n```\n    x\n```')).toBe('text\n<pre>    x</pre>');
    expect(renderMarkdown('```py\n   ')).toBe('<pre><code class="language-py">   </code></pre>');
  });

  it('always produces HTML Telegram accepts, whatever the input', () => {
    const alphabet = [
      '*',
      '**',
      '_',
      '__',
      '`',
      '```',
      '~~',
      '<',
      '>',
      '&',
      '[',
      ']',
      '(',
      ')',
      'a',
      'b',
      ' ',
      '\n',
      '#',
      '> ',
      '- ',
      'https://x.y',
      '"',
      '\\',
    ];
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let n = 0; n < 2000; n++) {
      const md = Array.from(
        { length: 1 + Math.floor(random() * 30) },
        () => alphabet[Math.floor(random() * alphabet.length)],
      ).join('');
      expect(() => visible(md), md).not.toThrow();
    }
  });

  it('takes a backslash before punctuation as a plain character, as CommonMark does', () => {
    expect(renderMarkdown('\\*not italic\\* \\[not](https://a.link) C:\\Users \\\\ `co\\de`')).toBe(
      '*not italic* [not](https://a.link) C:\\Users \\ <code>co\\de</code>',
    );
    expect(renderMarkdown('*a\\*b*')).toBe('<i>a*b</i>');
  });

  it('renders escaped text as exactly that text: no link, no emphasis, no code, no line read as a heading, quote, bullet or table', () => {
    const alphabet = [
      '*',
      '**',
      '_',
      '__',
      '`',
      '~~',
      '<',
      '>',
      '&',
      '[',
      ']',
      '(',
      ')',
      'a',
      ' ',
      '\\',
      '|',
    ];
    const samples = [
      '<a href="https://evil.example/renew">renew</a> [renew](https://evil.example/md) **b** `c`',
      '⚙️ [proxy] Claude refused its credentials (`claude /login`): C:\\Users\\x',
    ];
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let n = 0; n < 2000; n++) {
      const parts = Array.from({ length: 1 + Math.floor(random() * 20) }, () =>
        [...alphabet, 'https://x.y'].at(Math.floor(random() * (alphabet.length + 1))),
      );
      samples.push(`x ${parts.join('')}`);
    }
    // Lines of a multi-line text (a command quoted in a notice) that would open a block.
    samples.push(
      'cd /srv\n# build it\nmake > out.txt\n> out.txt\n- not a bullet\n  + nor this\n---\n| a | b |\n```\n~~~\n## 2',
      '# starts with a heading',
    );
    for (const text of samples) expect(visible(escapeMarkdown(text)), text).toEqual({ text, entities: [] });
  });

  it('turns brainstem HTML back into plain text for the fallback', () => {
    expect(htmlToPlain('⚙️ [proxy] <b>a</b> &lt;b&gt; &amp; <a href="https://x.y">docs</a>')).toBe(
      '⚙️ [proxy] a <b> & docs (https://x.y)',
    );
  });
});

describe('splitMarkdown', () => {
  it('keeps short text whole and cuts long text at paragraph, then line, then space boundaries', () => {
    expect(splitMarkdown('short')).toEqual(['short']);
    const paragraphs = `${'a'.repeat(60)}\n\n${'b'.repeat(60)}`;
    expect(splitMarkdown(paragraphs, 100)).toEqual(['a'.repeat(60), 'b'.repeat(60)]);
    const lines = `${'a'.repeat(60)}\n${'b'.repeat(60)}`;
    expect(splitMarkdown(lines, 100)).toEqual(['a'.repeat(60), 'b'.repeat(60)]);
    const words = `${'a '.repeat(40)}${'b '.repeat(40)}`.trim();
    const pieces = splitMarkdown(words, 100);
    expect(pieces.every((p) => p.length <= 100)).toBe(true);
    expect(pieces.join(' ')).toBe(words);
  });

  it('closes a cut code block and reopens it with its language', () => {
    const code = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n');
    const pieces = splitMarkdown(`intro\n\`\`\`ts\n${code}\n\`\`\`\noutro`, 120);
    expect(pieces.length).toBeGreaterThan(2);
    for (const p of pieces) {
      expect(p.length).toBeLessThanOrEqual(120);
      expect((p.match(/```/g) ?? []).length % 2).toBe(0);
      expect(() => visible(p)).not.toThrow();
    }
    expect(pieces[1]?.startsWith('```ts\n')).toBe(true);
    const shown = pieces.map((p) => visible(p).text).join('\n');
    for (let i = 0; i < 30; i++) expect(shown).toContain(`line ${i}`);
  });

  it('keeps earlier pieces unchanged while the text grows (streaming)', () => {
    const text = Array.from({ length: 400 }, (_, i) => `sentence ${i}.${i % 7 === 6 ? '\n\n' : ' '}`).join(
      '',
    );
    const final = splitMarkdown(text, 500);
    for (let end = 600; end < text.length; end += 97) {
      const partial = splitMarkdown(text.slice(0, end), 500);
      for (const [i, piece] of partial.slice(0, -1).entries()) expect(piece).toBe(final[i]);
    }
  });

  it('gives pieces whose visible text fits, rules and all: the splitter counts on it', () => {
    // Thirty short sections between `---` rules, as models write long step-by-step answers.
    const text = Array.from({ length: 30 }, (_, i) => `Step ${i}. ${'word '.repeat(40)}`).join('\n\n---\n\n');
    const pieces = splitMarkdown(text);
    expect(pieces.length).toBeGreaterThan(1);
    for (const p of pieces) expect(visible(p).text.length).toBeLessThanOrEqual(4096);
  });

  it('takes a line that starts with inline code for prose, not for an open code block', () => {
    const prose = `${'plain words '.repeat(30)}\n\n`;
    const text = `\`\`\`npm i foo\`\`\` installs it.\n\n${prose.repeat(6)}`;
    const pieces = splitMarkdown(text, 1000);
    expect(pieces.length).toBeGreaterThan(1);
    for (const p of pieces) expect(visible(p).entities.filter((e) => e.type === 'pre')).toEqual([]);
  });

  it('never cuts a surrogate pair', () => {
    const emoji = '😀'.repeat(100);
    const pieces = splitMarkdown(emoji, 51);
    expect(pieces.join('')).toBe(emoji);
    for (const p of pieces) expect(p).not.toMatch(/^[\udc00-\udfff]|[\ud800-\udbff]$/u);
  });

  it('never cuts a backslash from the character it makes plain: no stray backslash, no emphasis taken from it', () => {
    // An upstream's error without spaces (a path, JSON), escaped as every notice is: a hard cut.
    for (const unit of ['a_', 'a*', 'a\\', 'x[y]']) {
      for (const limit of [100, 101, 102, 103]) {
        const text = unit.repeat(150);
        const pieces = splitMarkdown(escapeMarkdown(text), limit);
        expect(pieces.length).toBeGreaterThan(1);
        const shown = pieces.map((p) => visible(p));
        expect(shown.map((v) => v.text).join(''), `${unit} ${limit}`).toBe(text);
        expect(shown.flatMap((v) => v.entities)).toEqual([]);
      }
    }
  });

  it('never makes the rest of a cut line a quote, a bullet, a heading or a code block', () => {
    // A long paragraph cut at a space: what follows it was the middle of a line.
    for (const next of ['> y', '- b', '# 42', '+ c', '* d', '```sh', '| a |', '---', '  - e']) {
      const text = `${'word '.repeat(30)}${next} ${'tail '.repeat(10)}`.trim();
      // The budget (the limit less room for a closing fence) ends just at `next`: the cut is the space before it.
      const pieces = splitMarkdown(text, text.indexOf(next.trimStart()) + 8);
      expect(pieces.length, next).toBeGreaterThan(1);
      const second = visible(pieces[1] ?? '');
      expect(second.text.trimStart().startsWith(next.trim()), `${next}: ${pieces[1]}`).toBe(true);
      expect(second.entities, next).toEqual([]);
    }
    // A cut at a line break keeps what the next line is: a quote stays a quote.
    const quoted = splitMarkdown(`${'word '.repeat(20).trim()}\n> quoted`, 107);
    expect(visible(quoted[1] ?? '').entities.map((e) => e.type)).toEqual(['blockquote']);
  });

  it('on 400 generated answers: pieces that fit when shown, nothing lost, repeated or reordered, earlier pieces kept as the text grows', () => {
    const random = seeded(20261206);
    for (let n = 0; n < 400; n++) {
      const text = generatedAnswer(random);
      const limit = 120 + Math.floor(random() * 400);
      const pieces = splitMarkdown(text, limit);
      for (const p of pieces) {
        expect(p.length, p).toBeLessThanOrEqual(limit);
        expect(p, p).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
        // Telegram would take it (valid HTML) and show at most `limit` characters of it.
        expect(visible(p).text.length, p).toBeLessThanOrEqual(limit);
      }
      // Whitespace aside, the text is all there in order, and what the pieces add is fences only.
      expect(added(text, pieces.join('')), text).toMatch(/^[`~\w+#.-]*$/);
      // Streaming: a shorter text's pieces, all but its last, are the longer one's.
      const end = Math.floor(random() * text.length);
      for (const [i, piece] of splitMarkdown(text.slice(0, end), limit).slice(0, -1).entries()) {
        expect(piece, text).toBe(pieces[i]);
      }
    }
  });
});

/** mulberry32: the same answers on every run, so a failure is found again. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An answer as models write them: prose with inline marks, lists, rules, headings and code blocks. */
function generatedAnswer(random: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const words = [
    'the',
    'brain',
    'café',
    'naïve',
    '日本語',
    '😀',
    '👩‍💻',
    'a<b',
    'x&y',
    '**bold**',
    '_it_',
    '`code`',
    '~~s~~',
    '[t](https://x.y/?a=1&b=2)',
    'snake_case',
    '2*3',
  ];
  const sentence = () => Array.from({ length: 1 + Math.floor(random() * 30) }, () => pick(words)).join(' ');
  const blocks: string[] = [];
  for (let b = 0, count = 1 + Math.floor(random() * 12); b < count; b++) {
    const kind = random();
    if (kind < 0.4) blocks.push(sentence());
    else if (kind < 0.5) blocks.push(Array.from({ length: 3 }, () => `- ${sentence()}`).join('\n'));
    else if (kind < 0.55) blocks.push('---');
    else if (kind < 0.6) blocks.push(`## ${sentence()}`);
    else if (kind < 0.7) blocks.push(pick(['y', '😀', '日']).repeat(Math.floor(random() * 600)));
    else {
      const fence = pick(['```', '````', '~~~']);
      const lines = Array.from({ length: Math.floor(random() * 40) }, () => `  ${sentence()}`);
      blocks.push(
        [`${fence}${pick(['', 'ts', 'py', 'c++'])}`, ...lines, ...(random() < 0.8 ? [fence] : [])].join('\n'),
      );
    }
  }
  return blocks.join(pick(['\n\n', '\n']));
}

/** What `joined` has beyond `text`, whitespace aside; throws when some of `text` is missing or out of order. */
function added(text: string, joined: string): string {
  // Code points, not UTF-16 units: an emoji is one character on both sides.
  const want = [...text.replace(/\s+/g, '')];
  let at = 0;
  let extra = '';
  for (const c of joined.replace(/\s+/g, '')) {
    if (c === want[at]) at++;
    else extra += c;
  }
  if (at < want.length) throw new Error(`lost from "${want.slice(at, at + 40).join('')}" on`);
  return extra;
}

describe('fitHtml', () => {
  const note = (n: number) => `<i>[${n} more]</i>`;

  it('keeps HTML that fits as it is', () => {
    const html = '<b>a</b> &amp; <code>b</code>';
    expect(fitHtml(html, note, 10)).toBe(html);
  });

  it('cuts between two characters: never inside a tag, an entity or an emoji; tags closed, the note said', () => {
    const random = seeded(4096);
    const pieces = [
      'a',
      ' ',
      '\n',
      '&amp;',
      '&lt;',
      '&quot;',
      '&#128512;',
      '😀',
      '👩‍💻',
      'é',
      '<b>',
      '<i>',
      '<code>',
      '<pre>',
    ];
    for (let n = 0; n < 400; n++) {
      // Well-formed HTML: each tag closed after a few characters.
      let html = '';
      const open: string[] = [];
      for (let k = 0; k < 40 + Math.floor(random() * 200); k++) {
        const p = pieces[Math.floor(random() * pieces.length)] ?? 'a';
        const tag = /^<(\w+)>$/.exec(p)?.[1];
        if (tag && !open.includes(tag) && !open.includes('code') && !open.includes('pre')) {
          html += p;
          open.push(tag);
        } else if (!tag) html += p;
        if (open.length && random() < 0.1) html += `</${open.pop()}>`;
      }
      while (open.length) html += `</${open.pop()}>`;
      const whole = parseTelegramHtml(html).text;
      const limit = 10 + Math.floor(random() * whole.length);
      const fit = fitHtml(html, note, limit);
      const shown = parseTelegramHtml(fit).text;
      expect(shown.length, fit).toBeLessThanOrEqual(limit);
      expect(shown, fit).not.toMatch(
        /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/,
      );
      if (whole.length <= limit) {
        expect(fit).toBe(html);
        continue;
      }
      const m = /\n\[(\d+) more\]$/.exec(shown);
      expect(m, fit).not.toBeNull();
      const kept = shown.slice(0, m?.index);
      expect(whole.startsWith(kept), fit).toBe(true);
      // The count is what is left out: all of it but trailing spaces the cut took off the kept part.
      expect(whole.slice(kept.length, whole.length - Number(m?.[1])), fit).toMatch(/^\s*$/);
    }
  });
});
