import { type Span, ThinkFilter } from './think-filter.js';
import type { TokenLogprob } from './upstream.js';

/** What of a chunk's content a client can be given now. */
export interface Shown {
  text: string;
  logprobs: TokenLogprob[];
}

/**
 * What a client is shown of the upstream's content: the text without its think blocks
 * (ThinkFilter), and the logprobs of that text, so that their tokens spell it and the hidden
 * reasoning does not leak through them.
 *
 * The rule: a token's entry is kept when its text is shown, dropped when none of it is (the tags,
 * the reasoning, the blank lines after `</think>`), and, when only part of it is (`</think>Ans`),
 * kept with `token` and `bytes` cut to that part (`Ans`): its logprob and top_logprobs stay the
 * whole token's, the choice the model made. An entry leaves once what is shown of its text is
 * decided: the tokens of a partial tag held back, or of a block the template opened, wait.
 *
 * A chunk's entries are laid over its text in order, each as long as its token and none past the
 * chunk's end: where the tokens spell the text, as llama-server's do, the tokens returned spell the
 * content exactly; the entries of a chunk without text are dropped.
 */
export class ShownContent {
  private readonly filter: ThinkFilter;
  /** Entries not yet decided, with where their token lies in the raw text. */
  private readonly pending: { entry: TokenLogprob; from: number; to: number }[] = [];
  /** Shown spans of the raw text that may still hold part of a pending or coming token. */
  private spans: Span[] = [];

  /** `templateOpensThink`: the mode's setting (ThinkFilter's `templateOpens`). */
  constructor(templateOpensThink = false) {
    this.filter = new ThinkFilter(templateOpensThink);
  }

  /** One chunk's content and the logprobs of its tokens. */
  push(content: string, logprobs: TokenLogprob[]): Shown {
    let from = this.filter.pushed;
    const end = from + content.length;
    const text = this.filter.push(content);
    for (const entry of logprobs) {
      const to = Math.min(from + entry.token.length, end);
      this.pending.push({ entry, from, to });
      from = to;
    }
    return { text, logprobs: this.decided() };
  }

  /** End of stream: the rest (ThinkFilter.flush) and the logprobs still held. */
  flush(): Shown {
    const text = this.filter.flush();
    return { text, logprobs: this.decided() };
  }

  private decided(): TokenLogprob[] {
    this.spans.push(...this.filter.takeShown());
    const settled = this.filter.settled;
    const undecided = this.pending.findIndex((p) => p.to > settled);
    const out: TokenLogprob[] = [];
    const ready = this.pending.splice(0, undecided < 0 ? this.pending.length : undecided);
    for (const { entry, from, to } of ready) {
      let part = '';
      for (const [a, b] of this.spans) {
        if (a < to && b > from) part += entry.token.slice(Math.max(a, from) - from, Math.min(b, to) - from);
      }
      if (part === entry.token) out.push(entry);
      else if (part) out.push({ ...entry, token: part, ...(entry.bytes ? { bytes: utf8(part) } : {}) });
    }
    const next = this.pending[0]?.from ?? this.filter.pushed;
    this.spans = this.spans.filter(([, b]) => b > next);
    return out;
  }
}

function utf8(text: string): number[] {
  return [...Buffer.from(text, 'utf8')];
}
