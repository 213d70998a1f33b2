import { headChars } from '../../src/text.js';

/**
 * What of a tool call's output goes out as MCP progress. Progress is advisory (the result is what
 * the model reads), and both Claude CLIs ask for it on every call: unbounded, a 700 KB build log
 * went out whole as progress for a result capped at 200 KB, written whatever the client read.
 * So it carries at most the first `max` characters of the output (tools.maxOutputChars, the
 * result's own cap), then says once that the rest is not sent; and while the stream's buffer is
 * full (the client is not reading), output is not queued behind it but left out, and the next
 * progress sent says how much was (the result still holds its head and tail); with none after it,
 * `end` says it, before the result.
 */
export class ProgressFeed {
  /** Characters of output seen, sent or not: progress covers the output's first `max` of them. */
  private seen = 0;
  /** Characters left out while the client was not reading, said with the next progress sent. */
  private skipped = 0;
  private capped = false;

  constructor(
    private readonly max: number,
    /** Sends one progress message. */
    private readonly send: (message: string) => void,
    /** Whether the stream takes more now (false while a write waits for 'drain'). */
    private readonly ready: () => boolean,
  ) {}

  push(chunk: string): void {
    if (this.capped || !chunk) return;
    const part = headChars(chunk, this.max - this.seen);
    this.seen += part.length;
    this.capped = part.length < chunk.length;
    if (!this.ready()) this.skipped += part.length;
    else if (part) {
      const gap = this.skipped > 0 ? skippedNote(this.skipped) : '';
      this.skipped = 0;
      this.send(gap + part);
    }
    if (!this.capped) return;
    // Sent even to a client not reading (one short line, the call's last progress), with what was left out before it.
    const gap = this.skipped > 0 ? skippedNote(this.skipped) : '';
    this.skipped = 0;
    const newline = part && !part.endsWith('\n') && !gap ? '\n' : '';
    this.send(newline + gap + cappedNote(this.max));
  }

  /**
   * The call ended: output left out since the last progress sent is said now, or no later progress
   * would say it and the client would take what it saw for the whole output. Sent even to a client
   * not reading, as the cap's note: one short line, queued before the result it precedes.
   */
  end(): void {
    if (this.skipped === 0) return;
    const gap = skippedNote(this.skipped);
    this.skipped = 0;
    this.send(gap);
  }
}

const skippedNote = (n: number) =>
  `[${n} characters of output not sent as progress: the client was not reading; the result holds its head and tail.]\n`;

const cappedNote = (max: number) =>
  `[Output past ${max} characters is not sent as progress; the result holds its head and tail.]\n`;
