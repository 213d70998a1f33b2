import type { Lang } from './i18n.js';
import type { Logger } from './logger.js';
import type { ModeRegistry } from './modes.js';
import type { Switcher } from './switcher.js';

/**
 * Removes `[SWITCH:mode]` markers from streamed text, also when a marker is
 * split across chunks: text that could still become a marker is held back
 * (a marker's length at most, or the rest of its line for a marker after a
 * backtick not closed yet) and everything else passes at once.
 * A marker the text only quotes is text, shown and not followed: in inline
 * code or a fenced code block, on a `>` quotation line, or between quotation
 * marks (a model explaining the syntax, or quoting what it was sent).
 */
const MARKER = /\[SWITCH:\s*([A-Za-z0-9_-]{1,40})\s*\]/iy;
const PARTIAL = /^\[(S(W(I(T(C(H(:\s*[A-Za-z0-9_-]*\s*)?)?)?)?)?)?)?$/i;
const MAX_MARKER = 52;
/** Quotation marks, opening one → the closing one that makes a marker between them quoted. */
const QUOTES: Record<string, string> = { '"': '"', "'": "'", '“': '”', '‘': '’', '«': '»' };
/** Spaces, French typography's no-break ones included (« [SWITCH:x] »). */
const SPACE = /[ \t\u00a0\u202f]/;

export class SwitchMarkerFilter {
  private held = '';
  readonly found: string[] = [];
  /** The fenced code block the text is in: its fence's character and length. */
  private fence: { char: string; length: number } | undefined;
  /** Length of the backtick run that opened the inline code the text is in; 0 outside code. */
  private inlineTicks = 0;
  /** Nothing but spaces has passed on the current line. */
  private lineHead = true;
  /** The current line is a `>` quotation. */
  private quoteLine = false;
  /** The last character passed on the line that is not a space. */
  private lastMark = '';

  push(chunk: string): string {
    return this.scan(this.held + chunk, false);
  }

  /** End of stream: what was held is decided with nothing more to come. */
  flush(): string {
    const rest = this.held;
    this.held = '';
    return this.scan(rest, true);
  }

  /** Passes `text` up to where what follows could change its meaning, which is held back. */
  private scan(text: string, final: boolean): string {
    let out = '';
    let i = 0;
    const pass = (s: string) => {
      out += s;
      i += s.length;
      this.track(s);
    };
    while (i < text.length) {
      const ch = text.charAt(i);
      if (ch === '`' || ch === '~') {
        let end = i;
        while (text.charAt(end) === ch) end++;
        // A run the next chunk may lengthen: its length decides what it opens or closes.
        if (end === text.length && !final) break;
        const run = text.slice(i, end);
        this.onRun(ch, run.length);
        pass(run);
        continue;
      }
      if (ch !== '[' || this.quoted()) {
        pass(ch);
        continue;
      }
      MARKER.lastIndex = i;
      const marker = MARKER.exec(text);
      if (!marker) {
        const tail = text.slice(i);
        if (!final && tail.length <= MAX_MARKER && PARTIAL.test(tail)) break;
        pass(ch);
        continue;
      }
      const end = i + marker[0].length;
      const quoted = this.quotedAfter(text.slice(end), final);
      if (quoted === undefined) break;
      if (quoted) {
        pass(marker[0]);
        continue;
      }
      this.found.push((marker[1] ?? '').toLowerCase());
      i = end;
    }
    this.held = text.slice(i);
    return out;
  }

  private quoted(): boolean {
    return this.fence !== undefined || this.quoteLine;
  }

  /**
   * Whether a marker is quoted by what follows it: the backticks closing the inline code it is in
   * (on its line: left open, a backtick is only a backtick), or the quotation mark closing the one
   * before it. Undefined while the text that tells has not come.
   */
  private quotedAfter(after: string, final: boolean): boolean | undefined {
    if (this.inlineTicks > 0) {
      const line = after.split('\n', 1)[0] ?? '';
      const closed = [...line.matchAll(/`+/g)].some((run) => run[0].length === this.inlineTicks);
      if (closed) return true;
      return line.length < after.length || final ? false : undefined;
    }
    const closing = QUOTES[this.lastMark];
    if (closing === undefined) return false;
    const next = [...after].find((ch) => !SPACE.test(ch));
    if (next === undefined) return final ? false : undefined;
    return next === closing;
  }

  /** A run of backticks or tildes: a code fence at the start of a line, else inline code's delimiter. */
  private onRun(char: string, length: number): void {
    if (this.lineHead && length >= 3) {
      if (!this.fence) this.fence = { char, length };
      else if (this.fence.char === char && length >= this.fence.length) this.fence = undefined;
      return;
    }
    if (char !== '`' || this.fence) return;
    if (this.inlineTicks === 0) this.inlineTicks = length;
    else if (this.inlineTicks === length) this.inlineTicks = 0;
  }

  /** Follows the lines of the text passed: where each starts, and which is a quotation. */
  private track(s: string): void {
    for (const ch of s) {
      if (ch === '\n') {
        // Inline code left open at the end of its line was only a backtick.
        this.inlineTicks = 0;
        this.lineHead = true;
        this.quoteLine = false;
        this.lastMark = '';
      } else if (!SPACE.test(ch)) {
        if (this.lineHead && ch === '>' && !this.fence) this.quoteLine = true;
        this.lineHead = false;
        this.lastMark = ch;
      }
    }
  }
}

/** What following a marker needs: the modes it may name and the one switching orchestrator. */
export interface MarkerTargets {
  modes: Pick<ModeRegistry, 'find'>;
  switcher: Pick<Switcher, 'switchTo'>;
  logger: Logger;
}

/**
 * Switches to the mode the markers of an answer named (once each, not
 * awaited: the answer is over, the switch announces itself); a marker naming
 * no mode is logged and ignored. `by` says whose answer it was.
 */
export function followSwitchMarkers(
  found: readonly string[],
  to: MarkerTargets,
  by: string,
  lang?: Lang,
): void {
  for (const target of new Set(found)) {
    if (to.modes.find(target)) {
      void to.switcher.switchTo(target, { source: 'marker', by, lang });
    } else {
      to.logger.warn({ target }, 'ignored [SWITCH] marker naming an unknown mode');
    }
  }
}
