import type { StreamOutput } from './ports.js';

/**
 * The "typing…" indicator until the first words are shown. Telegram clears it
 * after ~5 s, so it is repeated; failures only get reported, never thrown.
 */
export class TypingIndicator {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly out: StreamOutput,
    private readonly everyMs = 4000,
    private readonly onError?: (err: unknown, what: string) => void,
  ) {}

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    if (this.timer) return;
    const tick = () => {
      this.out.typing().catch((err) => this.onError?.(err, 'typing'));
    };
    tick();
    this.timer = setInterval(tick, this.everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
