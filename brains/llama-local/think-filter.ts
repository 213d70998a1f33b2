const OPEN = '<think>';
const CLOSE = '</think>';

/**
 * Removes `<think>…</think>` blocks from a stream of text deltas. A tag may be
 * split anywhere across deltas, so the end of a delta that could be the start
 * of a tag is held back until the next delta tells whether it is one.
 *
 * The whitespace right after a `</think>` is dropped while nothing visible has
 * been emitted yet: reasoning models write `</think>\n\n` before the answer and
 * the user should not see an answer that starts with blank lines.
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
    this.held = '';
    let out = '';
    while (buf.length > 0) {
      const tag = this.inside ? CLOSE : OPEN;
      const at = buf.indexOf(tag);
      if (at >= 0) {
        if (!this.inside) out += this.visible(buf.slice(0, at));
        buf = buf.slice(at + tag.length);
        this.inside = !this.inside;
        if (!this.inside) {
          this.afterThink = true;
          this.templateBlock = undefined;
        }
        continue;
      }
      const keep = partialTagLength(buf, tag);
      if (!this.inside) out += this.visible(buf.slice(0, buf.length - keep));
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
    const rest =
      block !== undefined ? this.visible(block + this.held) : this.inside ? '' : this.visible(this.held);
    this.held = '';
    this.templateBlock = undefined;
    return rest;
  }

  private visible(text: string): string {
    let t = text;
    if (this.afterThink && !this.emittedVisible) t = t.trimStart();
    if (t.length > 0) {
      this.emittedVisible = true;
      this.afterThink = false;
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
