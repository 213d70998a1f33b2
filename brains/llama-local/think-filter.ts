const OPEN = '<think>';
const CLOSE = '</think>';

/** A stretch of the raw text, as [from, to) offsets in UTF-16 units from its start. */
export type Span = readonly [number, number];

/**
 * Removes `<think>…</think>` blocks from a stream of text deltas. A tag may be
 * split anywhere across deltas, so the end of a delta that could be the start
 * of a tag is held back until the next delta tells whether it is one.
 *
 * The whitespace right after a `</think>` is dropped while nothing visible has
 * been emitted yet: reasoning models write `</think>\n\n` before the answer and
 * the user should not see an answer that starts with blank lines.
 *
 * What it shows is always a part of the raw text, and it says which part (takeShown, settled):
 * the logprobs of the raw text's tokens are cut to match (shown-content.ts).
 */
export class ThinkFilter {
  private inside: boolean;
  private held = '';
  private emittedVisible = false;
  private afterThink = false;
  /**
   * The text of the think block the chat template opened, until its `</think>` comes
   * (undefined after it, or when the template opens none): kept for flush, in case none comes.
   */
  private templateBlock: string | undefined;
  private pushedLength = 0;
  /** Where the text returned since the last takeShown lies in the raw text. */
  private shown: Span[] = [];

  /**
   * `templateOpens`: the chat template ended the prompt with `<think>` (DeepSeek-R1, QwQ, Qwen3
   * Thinking), so the text starts inside a think block whose opening tag never comes.
   */
  constructor(templateOpens = false) {
    this.inside = templateOpens;
    this.templateBlock = templateOpens ? '' : undefined;
  }

  /** Feed one delta; returns the text that can be shown now (possibly empty). */
  push(delta: string): string {
    let buf = this.held + delta;
    let at = this.pushedLength - this.held.length;
    this.pushedLength += delta.length;
    this.held = '';
    let out = '';
    while (buf.length > 0) {
      const tag = this.inside ? CLOSE : OPEN;
      const found = buf.indexOf(tag);
      if (found >= 0) {
        if (!this.inside) out += this.visible(buf.slice(0, found), at);
        buf = buf.slice(found + tag.length);
        at += found + tag.length;
        this.inside = !this.inside;
        if (!this.inside) {
          this.afterThink = true;
          this.templateBlock = undefined;
        }
        continue;
      }
      const keep = partialTagLength(buf, tag);
      if (!this.inside) out += this.visible(buf.slice(0, buf.length - keep), at);
      else if (this.templateBlock !== undefined) this.templateBlock += buf.slice(0, buf.length - keep);
      this.held = buf.slice(buf.length - keep);
      break;
    }
    return out;
  }

  /**
   * End of stream: a held partial opening tag was plain text after all; an unclosed think block
   * is dropped. A block the template was said to open that never closed is shown: the setting did
   * not fit the model (Qwen3 with thinking off writes the whole block into the prompt), and an
   * answer dropped whole would leave the user with nothing.
   */
  flush(): string {
    const block = this.templateBlock;
    // The template's block is all the raw text there is: it starts at 0.
    const rest =
      block !== undefined
        ? this.visible(block + this.held, 0)
        : this.inside
          ? ''
          : this.visible(this.held, this.pushedLength - this.held.length);
    this.held = '';
    this.templateBlock = undefined;
    return rest;
  }

  /**
   * The raw text before this offset is decided: what of it is shown has been returned. What
   * follows is held, or is the template's block, shown at flush if its `</think>` never comes.
   */
  get settled(): number {
    return this.templateBlock !== undefined ? 0 : this.pushedLength - this.held.length;
  }

  /** Length of the raw text pushed so far: the offset of the next delta. */
  get pushed(): number {
    return this.pushedLength;
  }

  /** Where the text returned since the last call lies in the raw text, in order. */
  takeShown(): Span[] {
    return this.shown.splice(0);
  }

  /** `text` starts at raw offset `at`. */
  private visible(text: string, at: number): string {
    let t = text;
    if (this.afterThink && !this.emittedVisible) t = t.trimStart();
    if (t.length > 0) {
      this.emittedVisible = true;
      this.afterThink = false;
      this.shown.push([at + text.length - t.length, at + text.length]);
    }
    return t;
  }
}

/** Length of the longest suffix of `text` that is a proper prefix of `tag`. */
function partialTagLength(text: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, text.length); n > 0; n--) {
    if (text.endsWith(tag.slice(0, n))) return n;
  }
  return 0;
}
